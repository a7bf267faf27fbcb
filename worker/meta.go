package worker

import (
	"strings"
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

// metaCache caches stat results and directory listings per (mount, path) with
// a TTL. Expired entries stay until the LRU drops them, so they can still be
// served when the UFS is unreachable (stale-if-error). With a store (a worker
// with a disk tier) every entry is also written to disk and every dropped
// one deleted there, so a restart gets them back (restore). Safe for
// concurrent use.
type metaCache struct {
	defTTL time.Duration
	now    func() time.Time

	mu    sync.Mutex
	stats *lru.LRU[string, statEntry]
	lists *lru.LRU[string, listEntry]
	big   *lru.LRU[string, time.Time] // directories too large to list for a stat, until when
	// gens counts each mount's invalidations: a stat or listing read from
	// the UFS is cached only if no invalidation of its mount happened while
	// it was read (it may predate the write that caused it).
	gens map[string]uint64
	// store persists the entries (nil: memory only). Set before use.
	store *metaStore
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

// maxCachedListings is how many directory listings the cache holds.
const maxCachedListings = 4096

func newMetaCache(size int, defTTL time.Duration) *metaCache {
	c := &metaCache{defTTL: defTTL, now: time.Now, gens: map[string]uint64{}}
	c.stats, _ = lru.NewLRU(size, func(k string, _ statEntry) { c.dropped(recStat, k) })
	c.lists, _ = lru.NewLRU(maxCachedListings, func(k string, _ listEntry) { c.dropped(recList, k) })
	c.big, _ = lru.NewLRU[string, time.Time](4096, nil)
	return c
}

// dropped deletes the stored record of an entry the LRU evicted or removed.
// c.mu is held (the LRU calls it from Add and Remove).
func (c *metaCache) dropped(kind byte, key string) {
	if c.store == nil {
		return
	}
	mount, path, _ := strings.Cut(key, "\x00")
	c.store.del(mount, storeKey(kind, path))
}

// statRecord is the stored record of a stat entry: nil without a store or
// for a "not found" entry (not kept across restarts). Encoded before c.mu is
// taken: a load's batch or a long listing must not hold the lock.
func (c *metaCache) statRecord(e statEntry) []byte {
	if c.store == nil || e.notFound {
		return nil
	}
	return encodeStat(e)
}

// listRecord is the stored record of a listing (nil without a store).
func (c *metaCache) listRecord(path string, e listEntry) []byte {
	if c.store == nil {
		return nil
	}
	return encodeList(path, e)
}

// persistStat writes a stat entry's record (a "not found" entry deletes the
// stored one). c.mu is held.
func (c *metaCache) persistStat(mountID, path string, e statEntry, rec []byte) {
	if c.store == nil {
		return
	}
	if e.notFound {
		c.store.del(mountID, storeKey(recStat, path))
		return
	}
	c.store.put(mountID, storeKey(recStat, path), rec)
}

// persistList writes a listing entry's record. c.mu is held.
func (c *metaCache) persistList(mountID, path string, rec []byte) {
	if c.store != nil {
		c.store.put(mountID, storeKey(recList, path), rec)
	}
}

// sync waits until every entry cached or dropped before the call is on disk
// (no-op without a store).
func (c *metaCache) sync() error {
	if c.store == nil {
		return nil
	}
	return c.store.sync()
}

// restore loads the stored entries of the mounts known returns true for,
// with their expiry and age, and deletes the others.
func (c *metaCache) restore(known func(mountID string) bool) (restoreStats, error) {
	if c.store == nil {
		return restoreStats{}, nil
	}
	return c.store.load(known, func(mount string, kind byte, path string, rec []byte) error {
		switch kind {
		case recStat:
			e, err := decodeStat(path, rec)
			if err != nil {
				return err
			}
			c.mu.Lock()
			c.stats.Add(metaKey(mount, path), e)
			c.mu.Unlock()
		case recList:
			e, err := decodeList(path, rec)
			if err != nil {
				return err
			}
			c.mu.Lock()
			c.lists.Add(metaKey(mount, path), e)
			c.mu.Unlock()
		}
		return nil
	})
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
	rec := c.statRecord(e)
	c.mu.Lock()
	if c.gens[mountID] == gen {
		c.addStat(mountID, path, e, rec)
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
	le := listEntry{entries: entries, listed: now, expires: exp}
	listRec, statRecs := c.listRecord(path, le), c.statRecords(entries, exp)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gens[mountID] != gen {
		return
	}
	c.addList(mountID, path, le, listRec)
	for i, fi := range entries {
		c.addStat(mountID, fi.Path, statEntry{fi: fi, expires: exp}, statRecs[i])
	}
}

// statRecords encodes the stat records of fis expiring at exp (nils
// without a store).
func (c *metaCache) statRecords(fis []ufs.FileInfo, exp time.Time) [][]byte {
	recs := make([][]byte, len(fis))
	if c.store != nil {
		for i, fi := range fis {
			recs[i] = encodeStat(statEntry{fi: fi, expires: exp})
		}
	}
	return recs
}

// addStat caches and persists a stat entry with its record. c.mu is held.
func (c *metaCache) addStat(mountID, path string, e statEntry, rec []byte) {
	c.stats.Add(metaKey(mountID, path), e)
	c.persistStat(mountID, path, e, rec)
}

// addList caches and persists a listing entry with its record. c.mu is
// held.
func (c *metaCache) addList(mountID, path string, e listEntry, rec []byte) {
	c.lists.Add(metaKey(mountID, path), e)
	c.persistList(mountID, path, rec)
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

// lookupStaleChild answers a stat of path from the last known listing of
// its parent, expired or not: found is whether the listing holds it; ok is
// false without a listing. For stale-if-error only.
func (c *metaCache) lookupStaleChild(mountID, path string) (fi ufs.FileInfo, found, ok bool) {
	if path == "" {
		return ufs.FileInfo{}, false, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, hit := c.lists.Peek(metaKey(mountID, parentRel(path)))
	if !hit {
		return ufs.FileInfo{}, false, false
	}
	for _, fi := range e.entries {
		if fi.Path == path {
			return fi, true, true
		}
	}
	return ufs.FileInfo{}, false, true
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
	recs := c.statRecords(fis, exp)
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, fi := range fis {
		c.addStat(mountID, fi.Path, statEntry{fi: fi, expires: exp}, recs[i])
	}
}

// storeList caches a listing read by a load job (kept as storeStats keeps
// stats). Listings longer than maxCachedListing are not kept.
func (c *metaCache) storeList(mountID, path string, entries []ufs.FileInfo, ttl time.Duration) {
	if len(entries) > maxCachedListing {
		return
	}
	now := c.now()
	le := listEntry{entries: entries, listed: now, expires: now.Add(max(ttl, 0))}
	rec := c.listRecord(path, le)
	c.mu.Lock()
	c.addList(mountID, path, le, rec)
	c.mu.Unlock()
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
