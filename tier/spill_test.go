package tier

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stratafs/strata/conf"
)

// TestSpillKeepsMemoryPagesAcrossARestart: a graceful stop moves the memory
// tier's pages (pinned ones included) to the disk tier, so that a reopened
// cache serves every page the stopped one held.
func TestSpillKeepsMemoryPagesAcrossARestart(t *testing.T) {
	dir := t.TempDir()
	cfg := conf.Cache{Tiers: []conf.Tier{memTier("mem", 16*(ps+memPageOverhead), "lru"), diskTier("ssd", "lru", 1<<22, dir)}}
	c := openCache(t, cfg, ps)
	c.Pin("/p", time.Time{})
	const files, pages = 6, 4
	size := int64(pages*ps - 10)
	for n := range files {
		p := fmt.Sprintf("/d/f%d", n)
		if n == 0 {
			p = "/p/pinned"
		}
		for i := int64(0); i < pages; i++ {
			put(t, c, fid(n), p, size, i)
		}
	}
	st := c.Stats()
	if st[0].Pages == 0 || st[1].Pages == 0 {
		t.Fatalf("want pages in both tiers before the spill: mem %d, ssd %d", st[0].Pages, st[1].Pages)
	}
	inMem := st[0].Pages
	r, err := c.Spill(context.Background())
	if err != nil || r.Pages != inMem || r.Lost != 0 {
		t.Fatalf("Spill = %+v, %v; want %d pages moved", r, err, inMem)
	}
	if st := c.Stats(); st[0].Pages != 0 || st[1].Pages != files*pages {
		t.Fatalf("after the spill: mem %d pages, ssd %d, want 0 and %d", st[0].Pages, st[1].Pages, files*pages)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = openCache(t, cfg, ps)
	defer c.Close()
	for n := range files {
		for i := int64(0); i < pages; i++ {
			checkPage(t, c, fid(n), size, i)
		}
	}
}

// TestSpillStopsWithItsContext: a spill that runs out of time stops, and
// what it did not move stays servable until Close.
func TestSpillStopsWithItsContext(t *testing.T) {
	cfg := conf.Cache{Tiers: []conf.Tier{memTier("mem", 16*(ps+memPageOverhead), "lru"), diskTier("ssd", "lru", 1<<22, t.TempDir())}}
	c := openCache(t, cfg, ps)
	defer c.Close()
	for i := int64(0); i < 8; i++ {
		put(t, c, fid(1), "/x", 8*ps, i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r, err := c.Spill(ctx); !errors.Is(err, context.Canceled) || r.Pages != 0 {
		t.Fatalf("Spill with a cancelled context = %+v, %v", r, err)
	}
	for i := int64(0); i < 8; i++ {
		checkPage(t, c, fid(1), 8*ps, i)
	}
	// A memory-only cache has nowhere to spill to.
	m := openCache(t, conf.Cache{Tiers: []conf.Tier{memTier("mem", 16*(ps+memPageOverhead), "lru")}}, ps)
	defer m.Close()
	put(t, m, fid(2), "/y", ps, 0)
	if r, err := m.Spill(context.Background()); err != nil || r.Pages != 0 {
		t.Fatalf("Spill of a memory-only cache = %+v, %v", r, err)
	}
	checkPage(t, m, fid(2), ps, 0)
}
