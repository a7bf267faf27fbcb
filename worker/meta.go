package worker

import (
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/stratafs/strata/ufs"
)

// negativeTTLCap bounds how long "not found" is remembered, so a file created
// behind Strata's back shows up soon even with a long metadata TTL.
const negativeTTLCap = 5 * time.Second

// maxCachedListing is the largest listing kept in the cache (entries).
const maxCachedListing = 200_000

// downHold is how long a mount's UFS counts as unreachable after a metadata
// request to it failed for the network: in that window, requests with an
// expired cache entry are answered from it at once instead of waiting for the
// UFS client's retries again.
const downHold = 5 * time.Second

// metaCache caches stat results and directory listings per (mount, path) with
// a TTL. Expired entries stay until the LRU drops them, so they can still be
// served when the UFS is unreachable (stale-if-error). Safe for concurrent
// use.
type metaCache struct {
	defTTL time.Duration
	now    func() time.Time

	mu    sync.Mutex
	stats *lru.LRU[string, statEntry]
	lists *lru.LRU[string, listEntry]
	big   *lru.LRU[string, time.Time] // directories too large to list for a stat, until when
	down  map[string]time.Time        // mount id -> until when its UFS counts as unreachable
	// gens counts each mount's invalidations: a stat or listing read from
	// the UFS is cached only if no invalidation of its mount happened while
	// it was read (it may predate the write that caused it).
	gens map[string]uint64
}

type statEntry struct {
	fi       ufs.FileInfo
	notFound bool
	expires  time.Time
}

type listEntry struct {
	entries []ufs.FileInfo
	listed  time.Time
	expires time.Time
}

func newMetaCache(size int, defTTL time.Duration) *metaCache {
	stats, _ := lru.NewLRU[string, statEntry](size, nil)
	lists, _ := lru.NewLRU[string, listEntry](4096, nil)
	big, _ := lru.NewLRU[string, time.Time](4096, nil)
	return &metaCache{defTTL: defTTL, now: time.Now, stats: stats, lists: lists, big: big, down: map[string]time.Time{}, gens: map[string]uint64{}}
}

func metaKey(mountID, path string) string { return mountID + "\x00" + path }

// ttl returns the mount's TTL: its own when set (>= 0), else the default.
func (c *metaCache) ttl(mountTTL time.Duration) time.Duration {
	if mountTTL >= 0 {
		return mountTTL
	}
	return c.defTTL
}

func (c *metaCache) getStat(mountID, path string) (statEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.stats.Get(metaKey(mountID, path))
	if !ok || !c.now().Before(e.expires) {
		return statEntry{}, false
	}
	return e, true
}

// generation returns the mount's invalidation count, to pass to putStat and
// putList for what is read from the UFS after this call.
func (c *metaCache) generation(mountID string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gens[mountID]
}

// putStat caches a stat read from the UFS since generation gen.
func (c *metaCache) putStat(mountID, path string, e statEntry, ttl time.Duration, gen uint64) {
	if e.notFound && ttl > negativeTTLCap {
		ttl = negativeTTLCap
	}
	if ttl <= 0 {
		return
	}
	e.expires = c.now().Add(ttl)
	c.mu.Lock()
	if c.gens[mountID] == gen {
		c.stats.Add(metaKey(mountID, path), e)
	}
	c.mu.Unlock()
}

func (c *metaCache) getList(mountID, path string) ([]ufs.FileInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.lists.Get(metaKey(mountID, path))
	if !ok || !c.now().Before(e.expires) {
		return nil, false
	}
	return e.entries, true
}

// putList caches a listing read from the UFS since generation gen, and the
// stat of each child.
func (c *metaCache) putList(mountID, path string, entries []ufs.FileInfo, ttl time.Duration, gen uint64) {
	if ttl <= 0 || len(entries) > maxCachedListing {
		return
	}
	now := c.now()
	exp := now.Add(ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gens[mountID] != gen {
		return
	}
	c.lists.Add(metaKey(mountID, path), listEntry{entries: entries, listed: now, expires: exp})
	for _, fi := range entries {
		c.stats.Add(metaKey(mountID, fi.Path), statEntry{fi: fi, expires: exp})
	}
}

// lookupChild answers a stat of path from the fresh cached listing of its
// parent, when that listing has at most limit entries: found is whether the
// listing holds it. A "no such child" answer is given only from a listing
// younger than negativeTTLCap, as a cached "not found" would be. ok is false
// when the listing cannot answer.
func (c *metaCache) lookupChild(mountID, path string, limit int) (fi ufs.FileInfo, found, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, hit := c.lists.Get(metaKey(mountID, parentRel(path)))
	now := c.now()
	if !hit || !now.Before(e.expires) || len(e.entries) > limit {
		return ufs.FileInfo{}, false, false
	}
	for _, fi := range e.entries {
		if fi.Path == path {
			return fi, true, true
		}
	}
	if now.Sub(e.listed) < negativeTTLCap {
		return ufs.FileInfo{}, false, true
	}
	return ufs.FileInfo{}, false, false
}

// markBig records that directory path has more entries than a stat should
// list, for ttl.
func (c *metaCache) markBig(mountID, path string, ttl time.Duration) {
	c.mu.Lock()
	c.big.Add(metaKey(mountID, path), c.now().Add(ttl))
	c.mu.Unlock()
}

// isBig reports whether markBig recorded path within its ttl.
func (c *metaCache) isBig(mountID, path string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.big.Get(metaKey(mountID, path))
	return ok && c.now().Before(until)
}

// getStaleStat returns the last known stat of path, expired or not (never a
// "not found" entry).
func (c *metaCache) getStaleStat(mountID, path string) (ufs.FileInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.stats.Peek(metaKey(mountID, path))
	if !ok || e.notFound {
		return ufs.FileInfo{}, false
	}
	return e.fi, true
}

// getStaleList returns the last known listing of path, expired or not.
func (c *metaCache) getStaleList(mountID, path string) ([]ufs.FileInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.lists.Peek(metaKey(mountID, path))
	return e.entries, ok
}

// storeStats caches stats read by a load job. Unlike putStat they are kept
// even with a zero TTL (already expired, then): they serve only when the UFS
// is unreachable.
func (c *metaCache) storeStats(mountID string, fis []ufs.FileInfo, ttl time.Duration) {
	exp := c.now().Add(max(ttl, 0))
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, fi := range fis {
		c.stats.Add(metaKey(mountID, fi.Path), statEntry{fi: fi, expires: exp})
	}
}

// storeList caches a listing read by a load job (kept as storeStats keeps
// stats). Listings longer than maxCachedListing are not kept.
func (c *metaCache) storeList(mountID, path string, entries []ufs.FileInfo, ttl time.Duration) {
	if len(entries) > maxCachedListing {
		return
	}
	now := c.now()
	exp := now.Add(max(ttl, 0))
	c.mu.Lock()
	c.lists.Add(metaKey(mountID, path), listEntry{entries: entries, listed: now, expires: exp})
	c.mu.Unlock()
}

// markDown records that the mount's UFS did not answer.
func (c *metaCache) markDown(mountID string) {
	c.mu.Lock()
	c.down[mountID] = c.now().Add(downHold)
	c.mu.Unlock()
}

// isDown reports whether the mount's UFS failed for the network within
// downHold.
func (c *metaCache) isDown(mountID string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.down[mountID]
	if ok && !c.now().Before(until) {
		delete(c.down, mountID)
		return false
	}
	return ok
}

// invalidate drops the stat and listing of each path and the listing of its
// parent.
func (c *metaCache) invalidate(mountID string, paths []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gens[mountID]++
	for _, p := range paths {
		c.stats.Remove(metaKey(mountID, p))
		c.lists.Remove(metaKey(mountID, p))
		c.lists.Remove(metaKey(mountID, parentRel(p)))
	}
}

// parentRel is the parent of a UFS-relative path ("" for top-level names).
func parentRel(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return ""
}
