package worker

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/ufs"
)

// rpcService implements rpcpb.WorkerServer.
type rpcService struct {
	rpcpb.UnimplementedWorkerServer
	s *Server
}

// listBatch is how many entries one List message carries.
const listBatch = 1000

func (r *rpcService) Stat(ctx context.Context, req *rpcpb.StatRequest) (*rpcpb.StatResponse, error) {
	fi, err := r.s.stat(ctx, req.GetMountId(), req.GetPath(), req.GetSync())
	if err != nil {
		return nil, rpcpb.ToStatus(err)
	}
	return &rpcpb.StatResponse{Info: rpcpb.FromFileInfo(fi)}, nil
}

func (r *rpcService) List(req *rpcpb.ListRequest, stream rpcpb.Worker_ListServer) error {
	batch := make([]*rpcpb.FileInfo, 0, listBatch)
	err := r.s.list(stream.Context(), req.GetMountId(), req.GetPath(), req.GetSync(), func(fi ufs.FileInfo) error {
		batch = append(batch, rpcpb.FromFileInfo(fi))
		if len(batch) == listBatch {
			if err := stream.Send(&rpcpb.ListResponse{Entries: batch}); err != nil {
				return err
			}
			batch = make([]*rpcpb.FileInfo, 0, listBatch)
		}
		return nil
	})
	if err != nil {
		return rpcpb.ToStatus(err)
	}
	if len(batch) > 0 {
		return rpcpb.ToStatus(stream.Send(&rpcpb.ListResponse{Entries: batch}))
	}
	return nil
}

func (r *rpcService) Invalidate(_ context.Context, req *rpcpb.InvalidateRequest) (*rpcpb.InvalidateResponse, error) {
	r.s.meta.invalidate(req.GetMountId(), req.GetPaths())
	return &rpcpb.InvalidateResponse{}, nil
}

func (r *rpcService) Stats(context.Context, *rpcpb.StatsRequest) (*rpcpb.WorkerStats, error) {
	return r.s.Stats(), nil
}

// stat answers from the metadata cache or the UFS. When the UFS is
// unreachable, the last known entry is served even if it expired
// (stale-if-error), so a loaded dataset stays usable while its origin is down.
func (s *Server) stat(ctx context.Context, mountID, path string, sync bool) (ufs.FileInfo, error) {
	path, err := ufs.CleanPath(path)
	if err != nil {
		return ufs.FileInfo{}, err
	}
	m, err := mountOf(s.view, mountID)
	if err != nil {
		return ufs.FileInfo{}, err
	}
	if !sync {
		if e, ok := s.meta.getStat(mountID, path); ok {
			s.m.metaHits.Inc()
			if e.notFound {
				return ufs.FileInfo{}, fmt.Errorf("%s: %w", joinDisplay(m.Path, path), ufs.ErrNotFound)
			}
			return e.fi, nil
		}
		if s.meta.isDown(mountID) {
			if fi, ok := s.meta.getStaleStat(mountID, path); ok {
				s.m.metaStale.Inc()
				return fi, nil
			}
		}
	}
	s.m.metaMisses.Inc()
	fi, err := s.statUFS(ctx, m, path)
	if err != nil && unreachable(ctx, err) {
		s.meta.markDown(mountID)
		if fi, ok := s.meta.getStaleStat(mountID, path); ok {
			s.m.metaStale.Inc()
			s.log.Debug("UFS unreachable; serving an expired stat", "mount", m.Path, "path", path, "err", err)
			return fi, nil
		}
	}
	return fi, err
}

func (s *Server) statUFS(ctx context.Context, m namespace.Mount, path string) (ufs.FileInfo, error) {
	fs, err := s.openFS(ctx, m)
	if err != nil {
		return ufs.FileInfo{}, err
	}
	fi, err := fs.Stat(ctx, path)
	ttl := s.meta.ttl(m.MetadataTTL)
	switch {
	case errors.Is(err, ufs.ErrNotFound):
		s.meta.putStat(m.ID, path, statEntry{notFound: true}, ttl)
		return ufs.FileInfo{}, fmt.Errorf("%s: %w", joinDisplay(m.Path, path), ufs.ErrNotFound)
	case err != nil:
		return ufs.FileInfo{}, err
	}
	fi.Path = path
	s.meta.putStat(m.ID, path, statEntry{fi: fi}, ttl)
	return fi, nil
}

// unreachable reports whether err means the UFS could not be reached (and
// not that the caller gave up).
func unreachable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var ne net.Error
	return errors.Is(err, ufs.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne)
}

// list streams a directory from the cache or the UFS, caching what it read.
// When the UFS is unreachable before any entry was sent, the last known
// listing is served even if it expired (stale-if-error).
func (s *Server) list(ctx context.Context, mountID, path string, sync bool, emit func(ufs.FileInfo) error) error {
	path, err := ufs.CleanPath(path)
	if err != nil {
		return err
	}
	m, err := mountOf(s.view, mountID)
	if err != nil {
		return err
	}
	stale := func() ([]ufs.FileInfo, bool) { return s.meta.getStaleList(mountID, path) }
	emitAll := func(entries []ufs.FileInfo) error {
		for _, fi := range entries {
			if err := emit(fi); err != nil {
				return err
			}
		}
		return nil
	}
	if !sync {
		if entries, ok := s.meta.getList(mountID, path); ok {
			s.m.metaHits.Inc()
			return emitAll(entries)
		}
		if s.meta.isDown(mountID) {
			if entries, ok := stale(); ok {
				s.m.metaStale.Inc()
				return emitAll(entries)
			}
		}
	}
	s.m.metaMisses.Inc()
	sent := 0
	err = s.listUFS(ctx, m, path, func(fi ufs.FileInfo) error {
		sent++
		return emit(fi)
	})
	if err != nil && sent == 0 && unreachable(ctx, err) {
		s.meta.markDown(mountID)
		if entries, ok := stale(); ok {
			s.m.metaStale.Inc()
			s.log.Debug("UFS unreachable; serving an expired listing", "mount", m.Path, "path", path, "err", err)
			return emitAll(entries)
		}
	}
	return err
}

func (s *Server) listUFS(ctx context.Context, m namespace.Mount, path string, emit func(ufs.FileInfo) error) error {
	fs, err := s.openFS(ctx, m)
	if err != nil {
		return err
	}
	ttl := s.meta.ttl(m.MetadataTTL)
	var keep []ufs.FileInfo
	for fi, err := range fs.List(ctx, path) {
		if err != nil {
			return err
		}
		if fi.Path == "" {
			fi.Path = ufs.Join(path, fi.Name())
		}
		if ttl > 0 && len(keep) <= maxCachedListing {
			keep = append(keep, fi)
		}
		if err := emit(fi); err != nil {
			return err
		}
	}
	s.meta.putList(m.ID, path, keep, ttl)
	return nil
}

func joinDisplay(mountPath, rel string) string {
	if rel == "" {
		return mountPath
	}
	if mountPath == "/" {
		return "/" + rel
	}
	return mountPath + "/" + rel
}

// Stats returns the worker's figures.
func (s *Server) Stats() *rpcpb.WorkerStats {
	info := s.Info()
	st := &rpcpb.WorkerStats{
		Id: s.id, Host: info.Host, RpcAddr: info.RPCAddr, DataAddr: info.DataAddr,
		State: info.State, StartedUnixMs: info.Started.UnixMilli(),
		PageHits: s.m.get(s.m.pageHits), PageMisses: s.m.get(s.m.pageMisses),
		UfsFetches: s.m.get(s.m.ufsFetches), UfsBytes: s.m.get(s.m.ufsBytes),
		ServedBytes: s.m.get(s.m.servedBytes), MetadataHits: s.m.get(s.m.metaHits),
		MetadataMisses: s.m.get(s.m.metaMisses),
	}
	for _, t := range s.cache.Stats() {
		st.Tiers = append(st.Tiers, &rpcpb.TierStats{
			Name: t.Name, Medium: t.Medium, Policy: t.Policy, CapacityBytes: t.Capacity,
			UsedBytes: t.Used, Pages: t.Pages, Hits: int64(t.Hits), Misses: int64(t.Misses),
			Evictions: int64(t.Evictions), Demotions: int64(t.Demotions), Promotions: int64(t.Promotions),
			ChecksumFailures: int64(t.ChecksumFailures), IoErrors: int64(t.ReadErrors),
		})
	}
	return st
}
