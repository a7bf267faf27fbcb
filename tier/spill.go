package tier

import (
	"context"
	"errors"
)

// SpillResult says what Spill moved.
type SpillResult struct {
	// Pages and Bytes moved from memory tiers to the tiers below them.
	Pages, Bytes int64
	// Lost counts pages that no tier below could take (full of pinned
	// pages, unhealthy directories); they were dropped.
	Lost int64
}

// Spill empties the memory tiers that have a disk tier below them into the
// tiers below, coldest pages first (each tier's eviction order, pinned pages
// included), so that a process that stops gracefully keeps what it cached:
// the disk tiers survive a restart. Promotions stop for the rest of the
// cache's life. It stops early, with ctx's error, when ctx ends; the pages
// not moved by then stay in memory (and are lost at Close). Call it after the
// last Put and Get, before Close. Safe for concurrent use.
func (c *Cache) Spill(ctx context.Context) (SpillResult, error) {
	var r SpillResult
	if c.closed.Load() {
		return r, ErrClosed
	}
	c.spilling.Store(true)
	// Top down: a memory tier above another memory tier spills into it, and
	// that one then on down.
	for i := 0; i+1 < len(c.tiers); i++ {
		if c.tiers[i].cfg.Medium != "memory" || !c.diskBelow(i) {
			continue
		}
		for _, s := range c.tiers[i].spaces {
			if err := c.spillSpace(ctx, s, &r); err != nil {
				return r, err
			}
		}
	}
	return r, nil
}

// diskBelow reports whether a disk tier lies below tier i.
func (c *Cache) diskBelow(i int) bool {
	for _, t := range c.tiers[i+1:] {
		if t.cfg.Medium == "disk" && len(t.spaces) > 0 {
			return true
		}
	}
	return false
}

// spillSpace moves every page of one space to the next tier.
func (c *Cache) spillSpace(ctx context.Context, s *space, r *SpillResult) error {
	s.mu.Lock()
	for k := range s.parked { // pinned pages: out of the policy, not of the spill
		s.policy.Add(k, 0)
	}
	clear(s.parked)
	s.mu.Unlock()
	never := func(string) bool { return false }
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		key, ok := s.popVictim(never)
		if !ok {
			return nil
		}
		unlock, err := c.lockKey(ctx, key)
		if err != nil {
			return err
		}
		moved, n := c.spillPage(ctx, s, key)
		unlock()
		if moved {
			r.Pages++
			r.Bytes += n
		} else if n >= 0 {
			r.Lost++
		}
	}
}

// spillPage moves one page (already out of the policy, its guard held) to
// the tier below s and removes it from s. n is the page length, -1 when the
// page was gone already.
func (c *Cache) spillPage(ctx context.Context, s *space, key PageKey) (moved bool, n int64) {
	fs := c.lookup(key.File)
	if fs == nil || fs.expired(c.now()) || !s.store.has(key) {
		if s.store.has(key) {
			c.removeFrom(s, key)
		}
		return false, -1
	}
	gen := fs.gen.Load()
	h, err := s.store.Get(ctx, key)
	if err != nil {
		if errors.Is(err, ErrChecksum) {
			s.checksumFailed()
		}
		c.removeFrom(s, key)
		return false, 0
	}
	n = int64(len(h.Bytes()))
	dst, err := c.putTier(ctx, s.t.idx+1, key, fs.meta, h.Bytes())
	_ = h.Close()
	if err == nil && c.changed(fs, gen) {
		c.removeFrom(dst, key)
		err = errors.New("deleted meanwhile")
	}
	c.removeFrom(s, key)
	if err != nil {
		return false, n
	}
	s.t.demotions.Add(1)
	return true, n
}
