package tier

import (
	"context"
	"time"
)

// FreeResult says what FreePath or Sweep dropped.
type FreeResult struct {
	// Files and Pages dropped; Bytes is the sum of their page lengths.
	Files, Pages, Bytes int64
	// Pinned counts files under the prefix that were left alone because they
	// are pinned (FreePath only; Unpin first to free them).
	Pinned int64
}

func (r *FreeResult) add(o FreeResult) {
	r.Files += o.Files
	r.Pages += o.Pages
	r.Bytes += o.Bytes
	r.Pinned += o.Pinned
}

// pinnedFile reports whether the file's path is pinned now.
func (c *Cache) pinnedFile(file string) bool {
	fs := c.lookup(file)
	return fs != nil && c.pins.pinned(fs.meta.Path, c.now())
}

// freeFile drops every page of a file from every tier.
func (c *Cache) freeFile(fs *fileState) FreeResult {
	fs.gen.Store(c.gen.Add(1))
	var r FreeResult
	for _, t := range c.tiers {
		for _, s := range t.spaces {
			idx := s.store.removeFile(fs.id)
			if len(idx) == 0 {
				continue
			}
			s.forget(fs.id, idx...)
			r.Pages += int64(len(idx))
			for _, i := range idx {
				r.Bytes += max(0, pageLen(fs.meta.Size, c.opts.PageSize, i))
			}
		}
	}
	sh := &c.files[shardOf(fs.id)]
	sh.mu.Lock()
	if sh.m[fs.id] == fs && !c.anyHasFile(fs.id) {
		delete(sh.m, fs.id)
	}
	sh.mu.Unlock()
	if r.Pages > 0 {
		r.Files = 1
	}
	return r
}

// filesWhere returns the files whose state matches.
func (c *Cache) filesWhere(match func(*fileState) bool) []*fileState {
	var out []*fileState
	for i := range c.files {
		sh := &c.files[i]
		sh.mu.RLock()
		for _, fs := range sh.m {
			if match(fs) {
				out = append(out, fs)
			}
		}
		sh.mu.RUnlock()
	}
	return out
}

// FreePath drops every page of the files whose namespace path equals prefix or
// lies below it, from all tiers. Pinned files are left alone and counted in
// FreeResult.Pinned. Pages held by readers are freed when their Handles close.
// Safe for concurrent use. Errors: ErrInvalid (prefix not absolute), ErrClosed.
func (c *Cache) FreePath(prefix string) (FreeResult, error) {
	if c.closed.Load() {
		return FreeResult{}, ErrClosed
	}
	prefix = normPrefix(prefix)
	if err := checkPath(prefix); err != nil {
		return FreeResult{}, err
	}
	now := c.now()
	var r FreeResult
	for _, fs := range c.filesWhere(func(fs *fileState) bool { return under(fs.meta.Path, prefix) }) {
		if c.pins.pinned(fs.meta.Path, now) {
			r.Pinned++
			continue
		}
		r.add(c.freeFile(fs))
	}
	return r, nil
}

// Pin keeps the pages of files whose namespace path equals prefix or lies below
// it from being evicted, until until (zero: until Unpin). When a tier is full of
// pinned pages, Puts of other data into it fail over to lower tiers and finally
// with ErrNoSpace rather than evicting pinned pages. TTL expiry still frees pinned
// files. Pins are not persisted. Pinning an empty or relative prefix does
// nothing (it is logged). Safe for concurrent use.
func (c *Cache) Pin(prefix string, until time.Time) {
	prefix = normPrefix(prefix)
	if err := checkPath(prefix); err != nil {
		c.log.Warn("pin ignored", "err", err)
		return
	}
	c.pins.set(prefix, until)
}

// Unpin removes the pin of exactly prefix (pins of other prefixes stay); its
// pages become evictable again. Safe for concurrent use.
func (c *Cache) Unpin(prefix string) {
	if c.pins.remove(normPrefix(prefix)) {
		c.unparkAll()
	}
}

// Pins returns the current pins and their expiry (zero: none). Safe for
// concurrent use.
func (c *Cache) Pins() map[string]time.Time { return c.pins.list() }

func (c *Cache) unparkAll() {
	for _, t := range c.tiers {
		for _, s := range t.spaces {
			s.unpark(c.pinnedFile)
		}
	}
}

// Sweep frees the files whose TTL expired and releases the pages of lapsed
// pins. It runs every conf.Cache.SweepInterval in the background; calling it
// directly is safe for concurrent use.
func (c *Cache) Sweep(ctx context.Context) FreeResult {
	var r FreeResult
	now := c.now()
	for _, fs := range c.filesWhere(func(fs *fileState) bool { return fs.expired(now) }) {
		if ctx.Err() != nil {
			break
		}
		r.add(c.freeFile(fs))
	}
	if c.pins.expire(now) > 0 {
		c.unparkAll()
	}
	return r
}

func (c *Cache) sweepLoop() {
	defer c.wg.Done()
	tick := time.NewTicker(c.cfg.SweepInterval.D())
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
			if r := c.Sweep(context.Background()); r.Files > 0 {
				c.log.Info("expired files freed", "files", r.Files, "pages", r.Pages, "bytes", r.Bytes)
			}
			c.checkpoint()
		}
	}
}

// checkpoint lets every disk store sync and mark clean its idle files.
func (c *Cache) checkpoint() {
	for _, t := range c.tiers {
		for _, s := range t.spaces {
			if s.disk != nil {
				s.disk.Checkpoint()
			}
		}
	}
}
