package coordinator

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/stratafs/strata/cluster"
	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/ufs"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func toWire(fis []ufs.FileInfo) []*rpcpb.FileInfo {
	out := make([]*rpcpb.FileInfo, len(fis))
	for i, fi := range fis {
		out[i] = rpcpb.FromFileInfo(fi)
	}
	return out
}

// metaReplicas is the least number of owners loaded metadata goes to,
// whatever the job's --replicas: a directory's metadata is small, but
// without it none of the directory's files (whose blocks are spread over
// every worker) can be opened while the under-storage is down. Clients ask a
// path's first two metadata owners before the UFS.
const metaReplicas = 2

// sendMeta sends stats to their metadata owners, and a listing to its
// directory's, the first max(replicas, metaReplicas) owners of each: the
// workers persist it, so a loaded dataset stays listable offline while one of
// them lives. Metadata that cannot be delivered is logged, not fatal: the
// workers read it from the UFS on demand.
func (j *loadJob) sendMeta(ctx context.Context, stats []ufs.FileInfo, listing *rpcpb.Listing) {
	members := j.s.view.Members()
	n := int(max(j.opts.Replicas, metaReplicas))
	reqs := map[string]*rpcpb.CacheMetadataRequest{}
	req := func(id string) *rpcpb.CacheMetadataRequest {
		r := reqs[id]
		if r == nil {
			r = &rpcpb.CacheMetadataRequest{MountId: j.mount.ID}
			reqs[id] = r
		}
		return r
	}
	for _, fi := range stats {
		if _, err := namespace.CleanRel(fi.Path); err != nil {
			continue // a name no request may carry (invalid UTF-8, ...): read on demand, if at all
		}
		w := rpcpb.FromFileInfo(fi)
		for _, id := range members.Ring.Placement(cluster.StatKey(j.mount.ID, fi.Path), n) {
			req(id).Stats = append(req(id).Stats, w)
		}
	}
	if listing != nil {
		listing.Entries = slices.DeleteFunc(listing.Entries, func(e *rpcpb.FileInfo) bool {
			_, err := namespace.CleanRel(e.GetPath())
			return err != nil
		})
		for _, id := range members.Ring.Placement(cluster.MetaKey(j.mount.ID, listing.Path), n) {
			req(id).Listings = append(req(id).Listings, listing)
		}
	}
	var wg sync.WaitGroup
	for id, r := range reqs {
		w, ok := members.Get(id)
		if !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			delay := taskBackoff
			for attempt := 0; attempt <= taskRetries && ctx.Err() == nil; attempt++ {
				if attempt > 0 {
					sleep(ctx, delay)
					delay *= 2
				}
				var wc rpcpb.WorkerClient
				if wc, err = j.s.workerClient(w); err != nil {
					continue
				}
				mctx, cancel := context.WithTimeout(ctx, metaTimeout)
				_, err = wc.CacheMetadata(mctx, r)
				cancel()
				if err == nil || status.Code(err) == codes.InvalidArgument {
					break // delivered, or refused for good: no retry
				}
			}
			if err != nil && ctx.Err() == nil {
				j.log.Warn("metadata not cached on its owner", "worker", id, "err", rpcpb.FromStatus(err))
			}
		}()
	}
	wg.Wait()
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
