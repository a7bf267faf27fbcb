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
	// The drop is on disk before the writer goes on: a restart must not
	// bring the old entries back.
	if err := r.s.meta.sync(); err != nil {
		return nil, rpcpb.ToStatus(fmt.Errorf("invalidate cached metadata: %w", err))
	}
	return &rpcpb.InvalidateResponse{}, nil
}

func (r *rpcService) Stats(context.Context, *rpcpb.StatsRequest) (*rpcpb.WorkerStats, error) {
	return r.s.Stats(), nil
}

// stat answers from the metadata cache or the UFS. When the UFS is
// unreachable, the last known entry is served even if it expired
// (stale-if-error), so a loaded dataset stays usable while its origin is down;
// while the mount's UFS counts as down (breaker) an expired entry is served
// at once and revalidated in the background, and a path with no entry at all
// fails at once with ufs.ErrUnavailable (the client asks the next owner). A
// sync stat always asks the UFS and never answers from the cache: it fails
// when the UFS does not answer.
func (s *Server) stat(ctx context.Context, mountID, path string, sync bool) (ufs.FileInfo, error) {
	path, err := cleanRel(path)
	if err != nil {
		return ufs.FileInfo{}, err
	}
	m, err := s.mountOf(mountID)
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
		if s.health.down(mountID) {
			if fi, ok, err := s.staleStat(m, path); ok {
				s.revalidate(m, func(ctx context.Context) error {
					_, err := s.statUFS(ctx, m, path, false)
					return err
				})
				return fi, err
			}
		}
		if !s.health.probe(mountID) {
			s.m.fastFails.Inc()
			return ufs.FileInfo{}, s.health.unavailable(mountID, joinDisplay(m.Path, path))
		}
	}
	s.m.metaMisses.Inc()
	var fi ufs.FileInfo
	if s.hasStaleStat(mountID, path) && !sync {
		// An expired copy to fall back on: do not wait for the UFS client's
		// retries to learn that the UFS is down.
		err = withStaleBudget(ctx, s.staleBudget, func(ctx context.Context, _ func()) error {
			fi, err = s.statUFS(ctx, m, path, sync)
			return err
		})
	} else {
		fi, err = s.statUFS(ctx, m, path, sync)
	}
	s.ufsOutcome(ctx, mountID, err)
	if err != nil && !sync && unreachable(ctx, err) {
		if fi, ok, serr := s.staleStat(m, path); ok {
			s.log.Debug("UFS unreachable; serving an expired stat", "mount", m.Path, "path", path, "err", err)
			return fi, serr
		}
	}
	return fi, err
}

// hasStaleStat reports whether staleStat could answer for path.
func (s *Server) hasStaleStat(mountID, path string) bool {
	if _, ok := s.meta.getStaleStat(mountID, path); ok {
		return true
	}
	_, _, ok := s.meta.lookupStaleChild(mountID, path)
	return ok
}

// staleStat answers a stat while the UFS does not: from the last known stat
// of path, else from the last known listing of its parent (a name it does
// not hold is not found: the listing is the last known state of the
// directory). ok is false when nothing cached can answer.
func (s *Server) staleStat(m namespace.Mount, path string) (fi ufs.FileInfo, ok bool, err error) {
	if fi, ok := s.meta.getStaleStat(m.ID, path); ok {
		s.m.metaStale.Inc()
		return fi, true, nil
	}
	fi, found, ok := s.meta.lookupStaleChild(m.ID, path)
	if !ok {
		return ufs.FileInfo{}, false, nil
	}
	s.m.metaStale.Inc()
	if !found {
		return ufs.FileInfo{}, true, fmt.Errorf("%s: %w (as last listed: the under-storage does not answer)", joinDisplay(m.Path, path), ufs.ErrNotFound)
	}
	return fi, true, nil
}

// staleBudget is how long a request that holds an expired copy of what it
// asks for waits for the UFS to revalidate it (for a listing: for its first
// entry) before it serves the copy and counts the UFS as down. A UFS that
// answers keeps the TTL semantics; one that is unreachable (or this slow)
// costs at most this, once, instead of its client's retries.
const staleBudget = 2 * time.Second

// errSlowUFS is the cause of a UFS request cut at its stale budget.
var errSlowUFS = errors.New("the under-storage did not answer in time for a request that holds an expired copy")

// withStaleBudget runs call with a context cut after budget unless call
// reports progress (answered) first. An error caused by the cut wraps
// ufs.ErrUnavailable.
func withStaleBudget(ctx context.Context, budget time.Duration, call func(ctx context.Context, answered func()) error) error {
	bctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	t := time.AfterFunc(budget, func() { cancel(errSlowUFS) })
	err := call(bctx, func() { t.Stop() })
	t.Stop()
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(bctx), errSlowUFS) {
		return fmt.Errorf("%w: %w (%v)", ufs.ErrUnavailable, errSlowUFS, err)
	}
	return err
}

// revalidateStaleTimeout bounds a background revalidation of an expired
// metadata entry served while the mount's UFS counts as down.
const revalidateStaleTimeout = 30 * time.Second

// revalidate runs read (a UFS request that refreshes a cached entry) in the
// background when the mount's breaker lets a probe through now; its outcome
// closes the breaker (the UFS is back) or keeps it open.
func (s *Server) revalidate(m namespace.Mount, read func(context.Context) error) {
	if !s.health.probe(m.ID) {
		return
	}
	if !s.spawn(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, revalidateStaleTimeout)
		defer cancel()
		s.ufsOutcome(ctx, m.ID, read(ctx))
	}) {
		s.health.release(m.ID)
	}
}

// ufsOutcome tells the mount's breaker what a UFS request (made with ctx)
// said about the UFS: it answered (err nil, or an answer such as not found),
// it did not (unreachable), or the caller gave up (no news).
func (s *Server) ufsOutcome(ctx context.Context, mountID string, err error) {
	switch {
	case err == nil:
		s.health.done(mountID, nil, false)
	case unreachable(ctx, err):
		s.health.done(mountID, err, true)
	case ctx.Err() != nil:
		s.health.release(mountID)
	default:
		s.health.done(mountID, err, false)
	}
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
// whether the file exists; ok is false when no listing could answer. err is
// set when the listing failed because the UFS is unreachable (then stat'ing
// the file would fail too).
func (s *Server) statFromListing(ctx context.Context, m namespace.Mount, path string, ttl time.Duration) (fi ufs.FileInfo, found, ok bool, err error) {
	if path == "" || ttl <= 0 {
		return ufs.FileInfo{}, false, false, nil
	}
	if fi, found, ok := s.meta.lookupChild(m.ID, path, siblingListLimit); ok {
		return fi, found, true, nil
	}
	dir := parentRel(path)
	if s.meta.isBig(m.ID, dir) {
		return ufs.FileInfo{}, false, false, nil
	}
	_, err, _ = s.lists.Do(metaKey(m.ID, dir), func() (any, error) {
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
		if unreachable(ctx, err) {
			return ufs.FileInfo{}, false, false, err
		}
		if !errors.Is(err, errBigDir) {
			s.log.Debug("list a directory for a stat; stat'ing the file instead", "mount", m.Path, "dir", dir, "err", err)
		}
		return ufs.FileInfo{}, false, false, nil
	}
	fi, found, ok = s.meta.lookupChild(m.ID, path, siblingListLimit)
	return fi, found, ok, nil
}

// statUFS reads a stat from the UFS (from a listing of the parent unless
// sync) and caches it.
func (s *Server) statUFS(ctx context.Context, m namespace.Mount, path string, sync bool) (ufs.FileInfo, error) {
	ttl := s.meta.ttl(m.MetadataTTL)
	listTTL := ttl
	if sync {
		listTTL = 0 // a sync stat asks the UFS for the file itself
	}
	fi, found, ok, err := s.statFromListing(ctx, m, path, listTTL)
	if err != nil {
		return ufs.FileInfo{}, fmt.Errorf("%s: %w", joinDisplay(m.Path, path), err)
	}
	if ok {
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
	fi, err = fs.Stat(ctx, path)
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
// listing is served even if it expired (stale-if-error; at once while the
// mount's UFS counts as down, and then revalidated in the background). A
// sync listing always asks the UFS and fails when it does not answer.
func (s *Server) list(ctx context.Context, mountID, path string, sync bool, emit func(ufs.FileInfo) error) error {
	path, err := cleanRel(path)
	if err != nil {
		return err
	}
	m, err := s.mountOf(mountID)
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
		if s.health.down(mountID) {
			if entries, ok := stale(); ok {
				s.m.metaStale.Inc()
				s.revalidate(m, func(ctx context.Context) error {
					return s.listUFS(ctx, m, path, func(ufs.FileInfo) error { return nil })
				})
				return emitAll(entries)
			}
		}
		if !s.health.probe(mountID) {
			s.m.fastFails.Inc()
			return s.health.unavailable(mountID, joinDisplay(m.Path, path))
		}
	}
	s.m.metaMisses.Inc()
	sent := 0
	if _, ok := stale(); ok && !sync {
		// An expired copy to fall back on: wait for the first entry at most
		// staleBudget.
		err = withStaleBudget(ctx, s.staleBudget, func(bctx context.Context, answered func()) error {
			return s.listUFS(bctx, m, path, func(fi ufs.FileInfo) error {
				if sent == 0 {
					answered()
				}
				sent++
				return emit(fi)
			})
		})
	} else {
		err = s.listUFS(ctx, m, path, func(fi ufs.FileInfo) error {
			sent++
			return emit(fi)
		})
	}
	s.ufsOutcome(ctx, mountID, err)
	if err != nil && !sync && sent == 0 && unreachable(ctx, err) {
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
