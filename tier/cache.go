package tier

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stratafs/strata/conf"
)

// maxPutAttempts bounds the evict-and-retry rounds of one Put into one store.
const maxPutAttempts = 16

// Cache is the worker's tiered page store. It is safe for concurrent use. A hit
// takes no global lock: the stores' indexes and the file table are sharded by
// file id, and the eviction policies see hits through buffered, batched
// touches.
//
// Put stores into the top tier, evicting there as needed; each evicted page is
// demoted to the next tier (which evicts in turn) and dropped from the last.
// A hit in a lower tier is promoted back to the top tier in the background
// according to the tier's promote rule. Two Puts of the same key may race: the
// page is stored once (pages of a key never change, since file ids carry the
// UFS fingerprint).
type Cache struct {
	opts  Options
	cfg   conf.Cache
	log   *slog.Logger
	tiers []*tierState
	pins  pinTable
	files [shardCount]fileShard
	gen   atomic.Uint64

	guards [shardCount]struct {
		mu sync.Mutex
		m  map[PageKey]chan struct{}
	}

	promoQ chan promoReq
	stop   chan struct{}
	// spilling stops promotions while Spill empties the memory tiers.
	spilling atomic.Bool
	// scrubbed is closed when the startup scrub ends.
	scrubbed chan struct{}
	wg       sync.WaitGroup
	closed   atomic.Bool
	closeMu  sync.Mutex

	metrics *collector
}

type tierState struct {
	idx         int
	cfg         conf.Tier
	spaces      []*space
	promoteHits int // 0: always; -1: never

	hits, misses, evictions, demotions, promotions atomic.Uint64
	checksumFailures, promoteDropped, readErrors   atomic.Uint64
}

type fileShard struct {
	mu sync.RWMutex
	m  map[string]*fileState
	_  [40]byte
}

// fileState is the cache's record of one cached file: its meta (for pins, frees,
// TTL, FullFile) and a generation bumped whenever pages of the file are deleted,
// so a demotion or promotion racing with a delete never resurrects a page.
type fileState struct {
	id   string
	meta FileMeta // Expires filled in
	gen  atomic.Uint64

	mu   sync.Mutex
	hits map[int64]uint32 // hits of pages in lower tiers, for promote: hits
}

// New builds the cache from its configuration: memory tiers start empty, disk
// tiers are opened and recovered (see docs/tier-layout.md). The configuration is
// validated first (errors wrap conf.ErrInvalid or ErrInvalid). Close releases
// everything.
func New(cfg conf.Cache, opts Options) (*Cache, error) {
	opts = opts.withDefaults()
	if err := errors.Join(opts.validate(), cfg.Validate()); err != nil {
		return nil, err
	}
	return build(cfg.Effective(), opts)
}

// build makes the cache from a valid configuration; the page size is not
// checked (benchmarks use tiny pages).
func build(cfg conf.Cache, opts Options) (*Cache, error) {
	c := &Cache{
		opts:     opts,
		cfg:      cfg,
		log:      opts.Logger.With("component", "tier"),
		promoQ:   make(chan promoReq, promoteQueue),
		stop:     make(chan struct{}),
		scrubbed: make(chan struct{}),
	}
	for i := range c.files {
		c.files[i].m = map[string]*fileState{}
	}
	var errs []error
	for i, tc := range cfg.Tiers {
		t := &tierState{idx: i, cfg: tc}
		switch tc.Promote {
		case conf.PromoteNever:
			t.promoteHits = -1
		case conf.PromoteHits:
			t.promoteHits = tc.PromoteHits
		}
		c.tiers = append(c.tiers, t)
		policy := func() Policy {
			p, err := NewPolicy(tc.Policy, tc.LRFUStepFactor, tc.LRFUAttenuationFactor)
			if err != nil {
				errs = append(errs, fmt.Errorf("tier %s: %w", tc.Name, err))
				return NewLRU()
			}
			return p
		}
		switch tc.Medium {
		case "memory":
			if min := opts.PageSize + memPageOverhead; int64(tc.Size) < min {
				errs = append(errs, fmt.Errorf("%w: tier %s: size %d cannot hold one %d-byte page (needs %d)", ErrInvalid, tc.Name, tc.Size, opts.PageSize, min))
			}
			t.spaces = append(t.spaces, newSpace(t, NewMemStore(int64(tc.Size), opts.PageSize, tc.VerifyChecksum), "memory", policy()))
		case "disk":
			for _, d := range tc.Dirs {
				ds, rec, err := OpenDiskStore(DiskOptions{
					Dir:          d.Path,
					Quota:        int64(d.Quota),
					PageSize:     opts.PageSize,
					MaxOpenFiles: cfg.MaxOpenFiles,
					UnhealthyFor: cfg.UnhealthyFor.D(),
					Logger:       c.log.With("tier", tc.Name, "dir", d.Path),
					Now:          opts.Now,
				})
				if err != nil {
					errs = append(errs, fmt.Errorf("tier %s: %w", tc.Name, err))
					continue
				}
				s := newSpace(t, ds, d.Path, policy())
				t.spaces = append(t.spaces, s)
				c.adopt(s, rec)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		c.closeStores()
		return nil, err
	}
	if opts.Registerer != nil {
		c.metrics = newCollector(c)
		if err := opts.Registerer.Register(c.metrics); err != nil {
			c.closeStores()
			return nil, fmt.Errorf("tier: register metrics: %w", err)
		}
	}
	c.Sweep(context.Background()) // files that expired while we were down
	jobs := c.scrubJobs()
	c.wg.Add(3)
	go c.promoteLoop()
	go c.sweepLoop()
	go c.scrub(jobs)
	return c, nil
}

// adopt registers the files a disk store recovered: file table and policy, the
// least recently modified first so that they are evicted first.
func (c *Cache) adopt(s *space, rec []RecoveredFile) {
	slices.SortFunc(rec, func(a, b RecoveredFile) int { return a.ModTime.Compare(b.ModTime) })
	for _, r := range rec {
		sh := &c.files[shardOf(r.ID)]
		sh.mu.Lock()
		if sh.m[r.ID] == nil {
			fs := &fileState{id: r.ID, meta: r.Meta}
			fs.gen.Store(c.gen.Add(1))
			sh.m[r.ID] = fs
		}
		sh.mu.Unlock()
		s.mu.Lock()
		for _, i := range r.Pages {
			s.policy.Add(PageKey{File: r.ID, Index: i}, pageLen(r.Meta.Size, c.opts.PageSize, i))
		}
		s.mu.Unlock()
	}
}

func (c *Cache) now() time.Time { return c.opts.Now() }

// PageSize returns the page size in bytes. Safe for concurrent use.
func (c *Cache) PageSize() int64 { return c.opts.PageSize }

// BlockSize returns the block size in bytes. Safe for concurrent use.
func (c *Cache) BlockSize() int64 { return c.opts.BlockSize }

// lookup returns the file's state, or nil.
func (c *Cache) lookup(file string) *fileState {
	sh := &c.files[shardOf(file)]
	sh.mu.RLock()
	fs := sh.m[file]
	sh.mu.RUnlock()
	return fs
}

func (fs *fileState) expired(now time.Time) bool {
	return !fs.meta.Expires.IsZero() && !now.Before(fs.meta.Expires)
}

// ensureFile registers a file for a Put and returns its state.
func (c *Cache) ensureFile(file string, meta FileMeta) (*fileState, error) {
	now := c.now()
	for {
		fs := c.lookup(file)
		if fs != nil && fs.expired(now) {
			c.freeFile(fs)
			continue
		}
		if fs != nil {
			if fs.meta.Size != meta.Size {
				return nil, fmt.Errorf("%w: file %s: size %d, but it is cached with size %d", ErrInvalid, file, meta.Size, fs.meta.Size)
			}
			return fs, nil
		}
		sh := &c.files[shardOf(file)]
		sh.mu.Lock()
		if fs = sh.m[file]; fs == nil {
			m := meta
			m.Expires = meta.expiry(now)
			m.TTL = 0
			fs = &fileState{id: file, meta: m}
			fs.gen.Store(c.gen.Add(1))
			sh.m[file] = fs
		}
		sh.mu.Unlock()
	}
}

// reregister puts fs back into the file table after a page was stored, in case
// a concurrent removal of the file's last page dropped it meanwhile.
func (c *Cache) reregister(fs *fileState) {
	sh := &c.files[shardOf(fs.id)]
	sh.mu.Lock()
	if sh.m[fs.id] == nil {
		sh.m[fs.id] = fs
	}
	sh.mu.Unlock()
}

// maybeForget drops the file's state when no store holds a page of it.
func (c *Cache) maybeForget(file string) {
	sh := &c.files[shardOf(file)]
	sh.mu.Lock()
	if sh.m[file] != nil && !c.anyHasFile(file) {
		delete(sh.m, file)
	}
	sh.mu.Unlock()
}

func (c *Cache) anyHasFile(file string) bool {
	for _, t := range c.tiers {
		for _, s := range t.spaces {
			if s.store.hasFile(file) {
				return true
			}
		}
	}
	return false
}

// changed reports whether pages of the file were deleted since gen was read.
func (c *Cache) changed(fs *fileState, gen uint64) bool {
	return c.lookup(fs.id) != fs || fs.gen.Load() != gen
}

// Get returns the page, from the fastest tier holding it. The Handle pins the
// page until Close (a concurrent eviction or Delete frees it only then). A hit in
// a lower tier may schedule a promotion. Safe for concurrent use.
//
// Errors: ErrNotCached (also wrapping ErrChecksum when the page failed its
// checksum and was dropped: refetch it), ErrInvalid, ErrClosed, ctx's error.
func (c *Cache) Get(ctx context.Context, key PageKey) (Handle, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkKey(key); err != nil {
		return nil, err
	}
	fs := c.lookup(key.File)
	if fs == nil {
		for _, t := range c.tiers {
			t.misses.Add(1)
		}
		return nil, ErrNotCached
	}
	if fs.expired(c.now()) {
		c.freeFile(fs)
		for _, t := range c.tiers {
			t.misses.Add(1)
		}
		return nil, ErrNotCached
	}
	var bad error
	for _, t := range c.tiers {
		for _, s := range t.spaces {
			h, err := s.store.Get(ctx, key)
			if err == nil {
				t.hits.Add(1)
				s.touch(key)
				if t.idx > 0 {
					c.maybePromote(fs, t, s, key)
				}
				return h, nil
			}
			switch {
			case errors.Is(err, ErrClosed):
				return nil, err
			case errors.Is(err, ErrChecksum):
				s.checksumFailed()
				c.log.Warn("page failed its checksum; dropped", "tier", t.cfg.Name, "store", s.name, "page", key.String())
				c.removeFrom(s, key)
				bad = err
			case !errors.Is(err, ErrNotCached):
				t.readErrors.Add(1)
				c.log.Warn("page read failed; dropped", "tier", t.cfg.Name, "store", s.name, "page", key.String(), "err", err)
				c.removeFrom(s, key)
			}
		}
		t.misses.Add(1)
	}
	if bad != nil {
		return nil, bad
	}
	return nil, ErrNotCached
}

// Put stores a page of a file into the top tier, evicting (and demoting) as
// needed; when the top tier cannot take it (full of pinned pages, unhealthy
// directories) the next tiers are tried. Storing a page that is already cached
// in any tier only counts as an access. data is copied. Safe for concurrent use,
// also for the same key.
//
// Errors: ErrNoSpace (no tier can take the page), ErrInvalid (bad key, path, or
// a data length that does not match meta.Size), ErrClosed, ctx's error.
func (c *Cache) Put(ctx context.Context, key PageKey, meta FileMeta, data []byte) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkPut(key, meta, len(data), c.opts.PageSize); err != nil {
		return err
	}
	fs, err := c.ensureFile(key.File, meta)
	if err != nil {
		return err
	}
	// One Put per key at a time: a second one waits, then finds the page.
	unlock, err := c.lockKey(ctx, key)
	if err != nil {
		return err
	}
	defer unlock()
	for _, t := range c.tiers {
		for _, s := range t.spaces {
			if s.store.has(key) {
				s.touch(key)
				return nil
			}
		}
	}
	var lastErr error
	for ti := range c.tiers {
		if _, err := c.putTier(ctx, ti, key, fs.meta, data); err == nil {
			c.reregister(fs)
			return nil
		} else {
			lastErr = err
		}
		if ctx.Err() != nil || errors.Is(lastErr, ErrInvalid) || errors.Is(lastErr, ErrClosed) {
			break
		}
	}
	c.maybeForget(key.File)
	if errors.Is(lastErr, ErrNoSpace) || lastErr == nil {
		return fmt.Errorf("%w: %s: no tier can take the page (last: %v)", ErrNoSpace, key, lastErr)
	}
	return lastErr
}

// lockKey takes the key's guard, waiting for its holder. Puts, demotions and
// promotions of a key hold it, so a key is stored or moved by one goroutine at
// a time and never ends up in two tiers. The guard protects no memory; a holder
// only blocks on other guards through tryLockKey, so guards cannot deadlock.
func (c *Cache) lockKey(ctx context.Context, key PageKey) (func(), error) {
	for {
		unlock, ch := c.tryLockKey(key)
		if unlock != nil {
			return unlock, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// tryLockKey takes the key's guard if it is free; otherwise it returns a
// channel closed when the holder releases it. The uncontended path allocates
// nothing: a held key maps to a nil channel until someone waits for it.
func (c *Cache) tryLockKey(key PageKey) (func(), <-chan struct{}) {
	sh := &c.guards[shardOf(key.File)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m == nil {
		sh.m = map[PageKey]chan struct{}{}
	}
	if ch, busy := sh.m[key]; busy {
		if ch == nil {
			ch = make(chan struct{})
			sh.m[key] = ch
		}
		return nil, ch
	}
	sh.m[key] = nil
	return func() {
		sh.mu.Lock()
		ch := sh.m[key]
		delete(sh.m, key)
		sh.mu.Unlock()
		if ch != nil {
			close(ch)
		}
	}, nil
}

// placement lists the spaces of a tier a page of file may go to, in order: the
// healthy directory already holding the file, then the other healthy ones by
// rendezvous hashing of the file id.
func (t *tierState) placement(file string) []*space {
	if len(t.spaces) == 1 {
		if t.spaces[0].healthy() {
			return t.spaces
		}
		return nil
	}
	type cand struct {
		s     *space
		score uint64
	}
	h := fileHash(file)
	cands := make([]cand, 0, len(t.spaces))
	var holder *space
	for _, s := range t.spaces {
		if !s.healthy() {
			continue
		}
		if holder == nil && s.store.hasFile(file) {
			holder = s
			continue
		}
		cands = append(cands, cand{s, mix64(h ^ s.dirID)})
	}
	slices.SortFunc(cands, func(a, b cand) int { return cmp.Compare(b.score, a.score) })
	out := make([]*space, 0, len(cands)+1)
	if holder != nil {
		out = append(out, holder)
	}
	for _, c := range cands {
		out = append(out, c.s)
	}
	return out
}

// putTier stores a page into one tier and returns the space that took it.
func (c *Cache) putTier(ctx context.Context, ti int, key PageKey, meta FileMeta, data []byte) (*space, error) {
	t := c.tiers[ti]
	var lastErr error
	for _, s := range t.placement(key.File) {
		err := c.putSpace(ctx, s, key, meta, data)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if ctx.Err() != nil || errors.Is(err, ErrInvalid) || errors.Is(err, ErrClosed) {
			return nil, err
		}
		if !errors.Is(err, ErrUnhealthy) && s.store.hasFile(key.File) {
			// The file's directory is full of pinned pages: keep its pages
			// together and let the caller try the next tier.
			return nil, err
		}
	}
	if lastErr == nil {
		return nil, fmt.Errorf("%w: %w: tier %s: no healthy directory", ErrNoSpace, ErrUnhealthy, t.cfg.Name)
	}
	return nil, lastErr
}

// putSpace stores a page into one space, evicting its victims as needed.
func (c *Cache) putSpace(ctx context.Context, s *space, key PageKey, meta FileMeta, data []byte) error {
	for attempt := 0; ; attempt++ {
		err := s.store.Put(ctx, key, meta, data)
		if err == nil {
			s.add(key, len(data))
			return nil
		}
		if !errors.Is(err, ErrNoSpace) || errors.Is(err, ErrUnhealthy) || attempt >= maxPutAttempts {
			return err
		}
		need := s.store.need(key, meta, len(data))
		if u := s.store.Usage(); need > u.Capacity {
			return fmt.Errorf("%w: %s: needs %d bytes, %s holds %d", ErrNoSpace, key, need, s.name, u.Capacity)
		}
		if err := c.makeRoom(ctx, s, need); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
}

// maxBusyVictims bounds how many victims being moved by others one eviction
// round skips before it gives up.
const maxBusyVictims = 64

// makeRoom evicts victims of a space until need bytes are free.
func (c *Cache) makeRoom(ctx context.Context, s *space, need int64) error {
	var busy []PageKey
	defer func() {
		for _, k := range busy {
			if s.store.has(k) {
				s.add(k, 0)
			}
		}
	}()
	for s.store.Usage().Free() < need {
		if err := ctx.Err(); err != nil {
			return err
		}
		v, ok := s.popVictim(c.pinnedFile)
		if !ok {
			return fmt.Errorf("%w: %s (tier %s) is full of pinned or in-use pages", ErrNoSpace, s.name, s.t.cfg.Name)
		}
		unlock, _ := c.tryLockKey(v)
		if unlock == nil {
			if busy = append(busy, v); len(busy) > maxBusyVictims {
				return fmt.Errorf("%w: %s (tier %s): every victim is busy", ErrNoSpace, s.name, s.t.cfg.Name)
			}
			continue
		}
		c.evict(ctx, s, v)
		unlock()
	}
	return nil
}

// evict moves a victim (already out of the policy) to the next tier, or drops it
// from the last one.
func (c *Cache) evict(ctx context.Context, s *space, key PageKey) {
	t := s.t
	t.evictions.Add(1)
	if next := t.idx + 1; next < len(c.tiers) {
		fs := c.lookup(key.File)
		if fs != nil && !fs.expired(c.now()) {
			gen := fs.gen.Load()
			h, err := s.store.Get(ctx, key)
			switch {
			case err == nil:
				dst, err := c.putTier(ctx, next, key, fs.meta, h.Bytes())
				_ = h.Close()
				if err == nil {
					if c.changed(fs, gen) {
						c.removeFrom(dst, key)
					} else {
						t.demotions.Add(1)
					}
				}
			case errors.Is(err, ErrChecksum):
				s.checksumFailed()
			}
		}
	}
	c.removeFrom(s, key)
}

// removeFrom deletes a page from one space: store, policy, hit count, and the
// file's state when it was its last page.
func (c *Cache) removeFrom(s *space, key PageKey) {
	err := s.store.Delete(key)
	s.forget(key.File, key.Index)
	if err != nil && !errors.Is(err, ErrNotCached) && s.store.has(key) {
		s.add(key, 0) // could not remove it: keep it evictable
		return
	}
	if s.t.idx > 0 {
		c.clearHits(key)
	}
	c.maybeForget(key.File)
}

// Delete removes a page from every tier; deleting a page that is not cached is
// not an error. Readers holding a Handle keep their bytes until Close. Safe for
// concurrent use. Errors: ErrInvalid, ErrClosed.
func (c *Cache) Delete(key PageKey) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if err := checkKey(key); err != nil {
		return err
	}
	fs := c.lookup(key.File)
	if fs == nil {
		return nil
	}
	fs.gen.Store(c.gen.Add(1))
	for _, t := range c.tiers {
		for _, s := range t.spaces {
			if s.store.has(key) {
				c.removeFrom(s, key)
			}
		}
	}
	return nil
}

// Contains reports whether some tier holds the page, without reading it and
// without counting a hit or a miss (for `strata load --verify` and the load
// path's "already cached" check). A page the file's TTL expired counts as
// absent. Safe for concurrent use.
func (c *Cache) Contains(key PageKey) bool {
	if c.closed.Load() || checkKey(key) != nil {
		return false
	}
	fs := c.lookup(key.File)
	if fs == nil || fs.expired(c.now()) {
		return false
	}
	for _, t := range c.tiers {
		for _, s := range t.spaces {
			if s.store.has(key) {
				return true
			}
		}
	}
	return false
}

// Close stops the background work, waits for it, and closes every store (disk
// tiers are synced and marked clean). Later calls return ErrClosed; Close itself
// is idempotent.
func (c *Cache) Close() error {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.closed.Swap(true) {
		return nil
	}
	close(c.stop)
	c.wg.Wait()
	if c.metrics != nil {
		c.opts.Registerer.Unregister(c.metrics)
	}
	return c.closeStores()
}

func (c *Cache) closeStores() error {
	var errs []error
	for _, t := range c.tiers {
		for _, s := range t.spaces {
			if err := s.store.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
