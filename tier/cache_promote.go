package tier

import (
	"context"
	"errors"
)

// promoteQueue is how many promotions may wait; more hits are not promoted
// (counted as dropped) until the queue drains.
const promoteQueue = 1024

type promoReq struct {
	key  PageKey
	from *space
	done chan struct{} // a marker: closed when reached (flushPromotions)
}

func (c *Cache) maybePromote(fs *fileState, t *tierState, s *space, key PageKey) {
	switch {
	case t.promoteHits < 0:
		return
	case t.promoteHits > 1:
		fs.mu.Lock()
		if fs.hits == nil {
			fs.hits = map[int64]uint32{}
		}
		fs.hits[key.Index]++
		n := fs.hits[key.Index]
		fs.mu.Unlock()
		if n < uint32(t.promoteHits) {
			return
		}
	}
	if c.closed.Load() || c.spilling.Load() {
		return
	}
	select {
	case c.promoQ <- promoReq{key: key, from: s}:
	default:
		t.promoteDropped.Add(1)
	}
}

func (c *Cache) clearHits(key PageKey) {
	if fs := c.lookup(key.File); fs != nil {
		fs.mu.Lock()
		delete(fs.hits, key.Index)
		fs.mu.Unlock()
	}
}

func (c *Cache) promoteLoop() {
	defer c.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-c.stop
		cancel()
	}()
	for {
		select {
		case <-c.stop:
			return
		case r := <-c.promoQ:
			if r.done != nil {
				close(r.done)
				continue
			}
			c.promote(ctx, r)
		}
	}
}

// promote moves a page from a lower tier to the top tier (skipped when the key
// is being stored or moved already).
func (c *Cache) promote(ctx context.Context, r promoReq) {
	if c.spilling.Load() {
		return
	}
	unlock, _ := c.tryLockKey(r.key)
	if unlock == nil {
		return
	}
	defer unlock()
	fs := c.lookup(r.key.File)
	if fs == nil || !r.from.store.has(r.key) {
		return
	}
	gen := fs.gen.Load()
	h, err := r.from.store.Get(ctx, r.key)
	if err != nil {
		if errors.Is(err, ErrChecksum) {
			r.from.checksumFailed()
			c.removeFrom(r.from, r.key)
		}
		return
	}
	dst, err := c.putTier(ctx, 0, r.key, fs.meta, h.Bytes())
	_ = h.Close()
	if err != nil {
		return
	}
	if c.changed(fs, gen) {
		c.removeFrom(dst, r.key)
		return
	}
	r.from.t.promotions.Add(1)
	c.removeFrom(r.from, r.key)
}

// flushPromotions waits until every promotion queued before the call is done.
func (c *Cache) flushPromotions() {
	done := make(chan struct{})
	select {
	case c.promoQ <- promoReq{done: done}:
	case <-c.stop:
		return
	}
	select {
	case <-done:
	case <-c.stop:
	}
}
