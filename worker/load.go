package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/stratafs/strata/cluster"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/tier"
	"github.com/stratafs/strata/ufs"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"
)

// Load makes sure the requested blocks of one file version are cached here:
// every chunk of a block that is not cached yet is fetched from the UFS by
// the filler (single-flighted with readers and other load tasks, so a task
// that is sent again costs only cache lookups). Per-block errors are in the
// response; a bad request is an error status.
func (r *rpcService) Load(ctx context.Context, req *rpcpb.LoadRequest) (*rpcpb.LoadResponse, error) {
	resp, err := r.s.load(ctx, req)
	if err != nil {
		return nil, rpcpb.ToStatus(err)
	}
	return resp, nil
}

// LoadFiles is Load for several files in one call (a load job batches small
// files so): the files load concurrently, at most worker.ufs_concurrency at
// once; a file whose request is bad gets the error in each of its block
// results. A request of more than maxLoadFiles files is refused.
func (r *rpcService) LoadFiles(ctx context.Context, req *rpcpb.LoadFilesRequest) (*rpcpb.LoadFilesResponse, error) {
	files := req.GetFiles()
	if len(files) > maxLoadFiles {
		return nil, rpcpb.ToStatus(tooMany(len(files), maxLoadFiles, "files"))
	}
	resp, err := r.s.loadFiles(ctx, files, r.s.load)
	if err != nil {
		return nil, rpcpb.ToStatus(err)
	}
	return resp, nil
}

// loadFiles runs loadOne for each file, at most loadFilesConcurrency at
// once, and starts no more once ctx is done (then it returns ctx's error).
func (s *Server) loadFiles(ctx context.Context, files []*rpcpb.LoadRequest,
	loadOne func(context.Context, *rpcpb.LoadRequest) (*rpcpb.LoadResponse, error)) (*rpcpb.LoadFilesResponse, error) {
	resp := &rpcpb.LoadFilesResponse{Files: make([]*rpcpb.LoadResponse, len(files))}
	var g errgroup.Group
	g.SetLimit(s.loadFilesConcurrency())
	for i, f := range files {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if ctx.Err() != nil {
				return nil // ended while this one waited for its turn
			}
			lr, err := loadOne(ctx, f)
			if err != nil {
				lr = &rpcpb.LoadResponse{}
				for _, b := range f.GetBlocks()[:min(len(f.GetBlocks()), maxLoadBlocks)] {
					lr.Blocks = append(lr.Blocks, &rpcpb.BlockResult{Block: b, Error: err.Error(), ErrorReason: rpcpb.Reason(err)})
				}
			}
			resp.Files[i] = lr
			return nil
		})
	}
	_ = g.Wait() // the goroutines return no error: each file's is in its results
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return resp, nil
}

// loadFilesConcurrency is how many files of one LoadFiles request load at
// once: worker.ufs_concurrency, as many as the UFS fetches that may run.
func (s *Server) loadFilesConcurrency() int {
	if n := s.wcfg.UFSConcurrency; n > 0 {
		return n
	}
	return defaultLoadFilesConcurrency
}

// Present answers which of the requested blocks of a file version are fully
// cached here.
func (r *rpcService) Present(_ context.Context, req *rpcpb.PresentRequest) (*rpcpb.PresentResponse, error) {
	if len(req.GetBlocks()) > maxLoadBlocks {
		return nil, rpcpb.ToStatus(tooMany(len(req.GetBlocks()), maxLoadBlocks, "blocks"))
	}
	ref, err := r.s.loadRef(req.GetMountId(), req.GetPath(), req.GetInfo())
	if err != nil {
		return nil, rpcpb.ToStatus(err)
	}
	resp := &rpcpb.PresentResponse{}
	for _, b := range req.GetBlocks() {
		first, last, err := r.s.blockPages(ref, b)
		if err != nil {
			return nil, rpcpb.ToStatus(err)
		}
		if r.s.pagesCached(ref, first, last) {
			resp.Present = append(resp.Present, b)
		}
	}
	return resp, nil
}

// CacheMetadata stores the stats and listings a load job read, with the
// mount's metadata TTL. They outlive the TTL as last known entries, served
// when the UFS is unreachable. The request is checked whole before anything
// is stored: every path must be clean, every size not negative, every
// listing entry a child of its directory.
func (r *rpcService) CacheMetadata(_ context.Context, req *rpcpb.CacheMetadataRequest) (*rpcpb.CacheMetadataResponse, error) {
	if err := checkCacheMetadata(req); err != nil {
		return nil, rpcpb.ToStatus(err)
	}
	m, err := r.s.mountOf(req.GetMountId())
	if err != nil {
		return nil, rpcpb.ToStatus(err)
	}
	ttl := r.s.meta.ttl(m.MetadataTTL)
	stats := make([]ufs.FileInfo, 0, len(req.GetStats()))
	for _, p := range req.GetStats() {
		stats = append(stats, rpcpb.ToFileInfo(p))
	}
	r.s.meta.storeStats(m.ID, stats, ttl)
	for _, l := range req.GetListings() {
		entries := make([]ufs.FileInfo, 0, len(l.GetEntries()))
		for _, p := range l.GetEntries() {
			entries = append(entries, rpcpb.ToFileInfo(p))
		}
		r.s.meta.storeList(m.ID, l.GetPath(), entries, ttl)
	}
	// Loaded metadata is on disk (when the worker has a disk tier) before
	// the job counts it delivered: a restart keeps it.
	if err := r.s.meta.sync(); err != nil {
		return nil, rpcpb.ToStatus(fmt.Errorf("cache metadata of %s: write the metadata store: %w", m.Path, err))
	}
	return &rpcpb.CacheMetadataResponse{}, nil
}

// FreePath evicts every cached file at or below a namespace path, except
// pinned ones (counted in the response).
func (r *rpcService) FreePath(_ context.Context, req *rpcpb.FreePathRequest) (*rpcpb.FreePathResponse, error) {
	p, err := cleanNamespacePath(req.GetPath())
	if err != nil {
		return nil, rpcpb.ToStatus(err)
	}
	res, err := r.s.cache.FreePath(p)
	if err != nil {
		return nil, rpcpb.ToStatus(fmt.Errorf("%w: %v", ufs.ErrInvalidPath, err))
	}
	r.s.log.Info("freed", "path", p, "files", res.Files, "bytes", res.Bytes, "pinned", res.Pinned)
	return &rpcpb.FreePathResponse{Files: res.Files, Pages: res.Pages, Bytes: res.Bytes, PinnedFiles: res.Pinned}, nil
}

// loadRef resolves a load or presence request to a file reference.
func (s *Server) loadRef(mountID, path string, info *rpcpb.FileInfo) (*fileRef, error) {
	path, err := cleanRel(path)
	if err != nil {
		return nil, err
	}
	if info == nil {
		return nil, fmt.Errorf("%w: %s: no file info in the request", rpcpb.ErrInvalidArgument, path)
	}
	if info.GetSize() < 0 {
		return nil, fmt.Errorf("%w: %s: negative size %d in the file info", rpcpb.ErrInvalidArgument, path, info.GetSize())
	}
	m, err := s.mountOf(mountID)
	if err != nil {
		return nil, err
	}
	fi := rpcpb.ToFileInfo(info)
	fi.Path = path
	if fi.IsDir {
		return nil, fmt.Errorf("%s: %w", joinDisplay(m.Path, path), ufs.ErrIsDir)
	}
	return &fileRef{mount: m, path: path, info: fi, id: fileID(m.ID, path, fi)}, nil
}

// blockPages returns the first and last page of block b of ref.
func (s *Server) blockPages(ref *fileRef, b int64) (first, last int64, err error) {
	bs, ps := int64(s.wcfg.BlockSize), int64(s.wcfg.PageSize)
	// b > (Size-1)/bs rather than b*bs >= Size: a huge b must not overflow
	// into a block that seems to exist.
	if b < 0 || ref.info.Size <= 0 || b > (ref.info.Size-1)/bs {
		return 0, 0, fmt.Errorf("%w: block %d of %s (%d bytes) does not exist", rpcpb.ErrInvalidArgument, b, ref.path, ref.info.Size)
	}
	end := min((b+1)*bs, ref.info.Size)
	return b * bs / ps, (end - 1) / ps, nil
}

// pagesCached reports whether pages first..last of ref are all cached.
func (s *Server) pagesCached(ref *fileRef, first, last int64) bool {
	for p := first; p <= last; p++ {
		if !s.cache.Contains(tier.PageKey{File: ref.id, Index: p}) {
			return false
		}
	}
	return true
}

type pendingChunk struct {
	block, bytes int64
	ch           <-chan singleflight.Result
}

func (s *Server) load(ctx context.Context, req *rpcpb.LoadRequest) (*rpcpb.LoadResponse, error) {
	if len(req.GetBlocks()) > maxLoadBlocks {
		return nil, tooMany(len(req.GetBlocks()), maxLoadBlocks, "blocks")
	}
	ref, err := s.loadRef(req.GetMountId(), req.GetPath(), req.GetInfo())
	if err != nil {
		return nil, err
	}
	ref.fs, err = s.openFS(ctx, ref.mount)
	if err != nil {
		return nil, err
	}
	ps := int64(s.wcfg.PageSize)
	cp := s.fills.chunkPages
	results := map[int64]*rpcpb.BlockResult{}
	resp := &rpcpb.LoadResponse{}
	var pending []pendingChunk
	for _, b := range req.GetBlocks() {
		first, last, err := s.blockPages(ref, b)
		if err != nil {
			return nil, err
		}
		if results[b] != nil {
			continue
		}
		res := &rpcpb.BlockResult{Block: b}
		results[b] = res
		resp.Blocks = append(resp.Blocks, res)
		for c := first / cp; c <= last/cp; c++ {
			lo, hi := max(c*cp, first), min((c+1)*cp-1, last)
			n := min((hi+1)*ps, ref.info.Size) - lo*ps
			if s.pagesCached(ref, lo, hi) {
				res.CachedBytes += n
				continue
			}
			pending = append(pending, pendingChunk{block: b, bytes: n, ch: s.fills.start(ref, c)})
		}
	}
	start := time.Now()
	for _, p := range pending {
		res := results[p.block]
		var r singleflight.Result
		select {
		case r = <-p.ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		switch {
		case r.Err != nil && res.Error == "":
			res.Error, res.ErrorReason = r.Err.Error(), rpcpb.Reason(r.Err)
		case r.Err == nil:
			res.FetchedBytes += p.bytes
		}
	}
	var fetched, cached int64
	for _, res := range resp.Blocks {
		if res.Error == "" && res.FetchedBytes > 0 {
			if first, last, _ := s.blockPages(ref, res.Block); !s.pagesCached(ref, first, last) {
				why := s.cacheTrouble()
				if why == "" {
					why = "its tiers are full of pinned pages, or smaller than what is being loaded"
				}
				res.Error = fmt.Sprintf("%s: block %d was read from the UFS but the cache of worker %s did not keep it: %s",
					joinDisplay(ref.mount.Path, ref.path), res.Block, s.id, why)
				res.ErrorReason = rpcpb.Reason(nil)
			}
		}
		fetched += res.FetchedBytes
		cached += res.CachedBytes
	}
	s.m.loadFetched.Add(float64(fetched))
	s.m.loadCached.Add(float64(cached))
	s.log.Debug("load task", "mount", ref.mount.Path, "path", ref.path, "blocks", len(resp.Blocks),
		"fetched", fetched, "cached", cached, "took", time.Since(start))
	return resp, nil
}

// watchPins applies the pins stored in etcd to the cache, and again after
// every change; the tier keeps pins in memory only, so a restarted worker
// gets them back here.
func (s *Server) watchPins(ctx context.Context) {
	applied := map[string]time.Time{}
	cluster.NewPinStore(s.etcd, s.keys).Watch(ctx, s.log, func(pins []cluster.PinInfo) {
		want := map[string]time.Time{}
		for _, p := range pins {
			want[p.Path] = p.Until
		}
		for path := range applied {
			if _, ok := want[path]; !ok {
				s.cache.Unpin(path)
				delete(applied, path)
				s.log.Info("unpinned", "path", path)
			}
		}
		for path, until := range want {
			if cur, ok := applied[path]; ok && cur.Equal(until) {
				continue
			}
			s.cache.Pin(path, until)
			applied[path] = until
			s.log.Info("pinned", "path", path, "until", until)
		}
	})
}
