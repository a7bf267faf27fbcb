package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

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

// Invalidate drops cached metadata of paths. A request with a bad path is
// refused whole, before anything is dropped.
func (r *rpcService) Invalidate(_ context.Context, req *rpcpb.InvalidateRequest) (*rpcpb.InvalidateResponse, error) {
	if len(req.GetPaths()) > maxInvalidatePaths {
		return nil, rpcpb.ToStatus(tooMany(len(req.GetPaths()), maxInvalidatePaths, "paths"))
	}
	paths := make([]string, len(req.GetPaths()))
	for i, p := range req.GetPaths() {
		c, err := cleanRel(p)
		if err != nil {
			return nil, rpcpb.ToStatus(err)
		}
		paths[i] = c
	}
	r.s.meta.invalidate(req.GetMountId(), paths)
	return &rpcpb.InvalidateResponse{}, nil
}

func (r *rpcService) Stats(context.Context, *rpcpb.StatsRequest) (*rpcpb.WorkerStats, error) {
	return r.s.Stats(), nil
}

// stat answers from the metadata cache or the UFS. When the UFS is
// unreachable, the last known entry is served even if it expired
// (stale-if-error), so a loaded dataset stays usable while its origin is down.
func (s *Server) stat(ctx context.Context, mountID, path string, sync bool) (ufs.FileInfo, error) {
	path, err := cleanRel(path)
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
	fi, err := s.statUFS(ctx, m, path, sync)
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

// Stat answers a stat as the Stat RPC does, for a client in this process.
func (s *Server) Stat(ctx context.Context, mountID, path string, sync bool) (ufs.FileInfo, error) {
	return s.stat(ctx, mountID, path, sync)
}

// siblingListLimit is the largest directory a stat miss lists to answer it
// (and to cache the stats of every sibling: a DataLoader opening its
// samples, ls -l or find stat a directory's files together, and one LIST
// of up to 1,000 keys costs about as much as one HEAD). A larger directory's
// children are stat'ed one by one.
const siblingListLimit = 1000

// errBigDir stops a listing that grew past siblingListLimit.
var errBigDir = errors.New("directory too large to list for a stat")

// statFromListing answers a stat miss from the parent directory's listing:
// the cached one, or one read now when the directory is small. found is
// whether the file exists; ok is false when no listing could answer.
func (s *Server) statFromListing(ctx context.Context, m namespace.Mount, path string, ttl time.Duration) (fi ufs.FileInfo, found, ok bool) {
	if path == "" || ttl <= 0 {
		return ufs.FileInfo{}, false, false
	}
	if fi, found, ok := s.meta.lookupChild(m.ID, path, siblingListLimit); ok {
		return fi, found, true
	}
	dir := parentRel(path)
	if s.meta.isBig(m.ID, dir) {
		return ufs.FileInfo{}, false, false
	}
	_, err, _ := s.lists.Do(metaKey(m.ID, dir), func() (any, error) {
		gen := s.meta.generation(m.ID)
		fs, err := s.openFS(ctx, m)
		if err != nil {
			return nil, err
		}
		var entries []ufs.FileInfo
		for fi, err := range fs.List(ctx, dir) {
			if err != nil {
				return nil, err
			}
			if len(entries) == siblingListLimit {
				s.meta.markBig(m.ID, dir, ttl)
				return nil, errBigDir
			}
			if fi.Path == "" {
				fi.Path = ufs.Join(dir, fi.Name())
			}
			entries = append(entries, fi)
		}
		s.meta.putList(m.ID, dir, entries, ttl, gen)
		return nil, nil
	})
	if err != nil {
		if !errors.Is(err, errBigDir) {
			s.log.Debug("list a directory for a stat; stat'ing the file instead", "mount", m.Path, "dir", dir, "err", err)
		}
		return ufs.FileInfo{}, false, false
	}
	return s.meta.lookupChild(m.ID, path, siblingListLimit)
}

// statUFS reads a stat from the UFS (from a listing of the parent unless
// sync) and caches it.
func (s *Server) statUFS(ctx context.Context, m namespace.Mount, path string, sync bool) (ufs.FileInfo, error) {
	ttl := s.meta.ttl(m.MetadataTTL)
	listTTL := ttl
	if sync {
		listTTL = 0 // a sync stat asks the UFS for the file itself
	}
	if fi, found, ok := s.statFromListing(ctx, m, path, listTTL); ok {
		if !found {
			return ufs.FileInfo{}, fmt.Errorf("%s: %w", joinDisplay(m.Path, path), ufs.ErrNotFound)
		}
		return fi, nil
	}
	gen := s.meta.generation(m.ID)
	fs, err := s.openFS(ctx, m)
	if err != nil {
		return ufs.FileInfo{}, err
	}
	fi, err := fs.Stat(ctx, path)
	switch {
	case errors.Is(err, ufs.ErrNotFound):
		s.meta.putStat(m.ID, path, statEntry{notFound: true}, ttl, gen)
		return ufs.FileInfo{}, fmt.Errorf("%s: %w", joinDisplay(m.Path, path), ufs.ErrNotFound)
	case err != nil:
		return ufs.FileInfo{}, err
	}
	fi.Path = path
	s.meta.putStat(m.ID, path, statEntry{fi: fi}, ttl, gen)
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
	path, err := cleanRel(path)
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
	gen := s.meta.generation(m.ID)
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
	s.meta.putList(m.ID, path, keep, ttl, gen)
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
