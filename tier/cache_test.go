package tier

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/stratafs/strata/conf"
)

const ps = 4096 // page size of the cache tests

// onePage is the size of the single-page files most tests use.
const onePage = ps

// memCap is the memory budget for n pages.
func memCap(n int) int64 { return int64(n) * (ps + memPageOverhead) }

// diskCap is the quota for n single-page files in dir.
func diskCap(t testing.TB, dir string, n int) int64 {
	blk, _, err := fsInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	f := newDiskFile(fid(0), FileMeta{Path: "/x", Size: onePage}, ps)
	per := roundUp(onePage, blk) + roundUp(f.sideN, blk) + blk
	return int64(n) * per
}

// page is the key of single-page file n.
func page(n int) PageKey { return PageKey{fid(n), 0} }

func path(n int) string { return fmt.Sprintf("/d/f%d", n) }

func putPage(t testing.TB, c *Cache, n int) {
	t.Helper()
	put(t, c, fid(n), path(n), onePage, 0)
}

func getPage(t testing.TB, c *Cache, n int) {
	t.Helper()
	h, err := c.Get(context.Background(), page(n))
	if err != nil {
		t.Fatalf("Get f%d: %v", n, err)
	}
	defer h.Close()
	if !bytes.Equal(h.Bytes(), content(fid(n), 0, onePage)) {
		t.Fatalf("Get f%d: wrong bytes", n)
	}
}

// where returns the tier of each single-page file 1..n as "f1:mem f2:ssd ...",
// "-" for not cached.
func where(c *Cache, n int) string {
	var parts []string
	for i := 1; i <= n; i++ {
		w := tierOf(c, page(i))
		if w == "" {
			w = "-"
		}
		parts = append(parts, fmt.Sprintf("f%d:%s", i, w))
	}
	return strings.Join(parts, " ")
}

// runScript applies "p3" (Put f3), "g3" (Get f3) steps.
func runScript(t *testing.T, c *Cache, script string) {
	t.Helper()
	for _, op := range strings.Fields(script) {
		var n int
		if _, err := fmt.Sscanf(op[1:], "%d", &n); err != nil {
			t.Fatalf("bad step %q", op)
		}
		switch op[0] {
		case 'p':
			putPage(t, c, n)
		case 'g':
			getPage(t, c, n)
			c.flushPromotions()
		default:
			t.Fatalf("bad step %q", op)
		}
	}
}

func TestEvictionAndDemotion(t *testing.T) {
	cases := []struct {
		name   string
		policy string
		script string
		want   string
	}{
		{"lru chain mem→ssd→hdd→drop", "lru", "p1 p2 p3 p4 p5 p6 p7",
			"f1:- f2:hdd f3:hdd f4:ssd f5:ssd f6:mem f7:mem"},
		{"lru hit keeps a page in memory", "lru", "p1 p2 g1 p3",
			"f1:mem f2:ssd f3:mem"},
		{"lru demoted pages keep their order below", "lru", "p1 p2 p3 p4 p5",
			"f1:hdd f2:ssd f3:ssd f4:mem f5:mem"},
		{"lrfu frequent page stays", "lrfu", "p1 g1 g1 g1 p2 p3 p4",
			"f1:mem f2:ssd f3:ssd f4:mem"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ssd, hdd := t.TempDir(), t.TempDir()
			tiers := []conf.Tier{
				memTier("mem", memCap(2), tc.policy),
				diskTier("ssd", tc.policy, diskCap(t, ssd, 2), ssd),
				diskTier("hdd", tc.policy, diskCap(t, hdd, 2), hdd),
			}
			for i := range tiers {
				tiers[i].Promote = conf.PromoteNever
			}
			c := newCache(t, ps, nil, tiers...)
			runScript(t, c, tc.script)
			if got := where(c, 7)[:len(tc.want)]; got != tc.want {
				t.Fatalf("placement\n got %s\nwant %s", got, tc.want)
			}
			for _, n := range []int{1, 2, 3, 4, 5, 6, 7} {
				if tierOf(c, page(n)) != "" {
					getPage(t, c, n) // every cached page reads back intact
				}
			}
		})
	}
}

func TestEvictionCounters(t *testing.T) {
	ssd := t.TempDir()
	c := newCache(t, ps, nil, memTier("mem", memCap(2), "lru"), diskTier("ssd", "lru", diskCap(t, ssd, 2), ssd))
	runScript(t, c, "p1 p2 p3 p4 p5")
	st := c.Stats()
	if st[0].Evictions != 3 || st[0].Demotions != 3 || st[1].Evictions != 1 || st[1].Demotions != 0 {
		t.Fatalf("counters: mem %+v ssd %+v", st[0], st[1])
	}
	if st[0].Pages != 2 || st[1].Pages != 2 || st[1].Files != 2 {
		t.Fatalf("pages: mem %d ssd %d", st[0].Pages, st[1].Pages)
	}
}

func TestPromotionRules(t *testing.T) {
	cases := []struct {
		rule   string
		hits   int
		script string
		want   string
	}{
		{conf.PromoteAlways, 0, "p1 p2 p3 p4 g1", "f1:mem f2:ssd f3:ssd f4:mem"},
		{conf.PromoteHits, 2, "p1 p2 p3 p4 g1", "f1:ssd f2:ssd f3:mem f4:mem"},
		{conf.PromoteHits, 2, "p1 p2 p3 p4 g1 g1", "f1:mem f2:ssd f3:ssd f4:mem"},
		{conf.PromoteHits, 3, "p1 p2 p3 p4 g1 g2 g1 g2", "f1:ssd f2:ssd f3:mem f4:mem"},
		{conf.PromoteNever, 0, "p1 p2 p3 p4 g1 g1 g1 g1", "f1:ssd f2:ssd f3:mem f4:mem"},
		// Hits in the lower tier add up across other traffic.
		{conf.PromoteHits, 2, "p1 p2 p3 g1 p4 g1", "f1:mem f2:ssd f3:ssd f4:mem"},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s-%d-%s", tc.rule, tc.hits, tc.script), func(t *testing.T) {
			ssd := t.TempDir()
			disk := diskTier("ssd", "lru", diskCap(t, ssd, 4), ssd)
			disk.Promote, disk.PromoteHits = tc.rule, tc.hits
			c := newCache(t, ps, nil, memTier("mem", memCap(2), "lru"), disk)
			runScript(t, c, tc.script)
			if got := where(c, 4); got != tc.want {
				t.Fatalf("placement\n got %s\nwant %s", got, tc.want)
			}
			for n := 1; n <= 4; n++ {
				getPage(t, c, n)
			}
		})
	}
}

func TestHandleSurvivesEviction(t *testing.T) {
	c := newCache(t, ps, nil, memTier("mem", memCap(2), "lru"))
	putPage(t, c, 1)
	h, err := c.Get(context.Background(), page(1))
	if err != nil {
		t.Fatal(err)
	}
	for n := 2; n <= 6; n++ { // f1 is evicted and dropped meanwhile
		putPage(t, c, n)
	}
	if tierOf(c, page(1)) != "" {
		t.Fatal("f1 should have been evicted")
	}
	if !bytes.Equal(h.Bytes(), content(fid(1), 0, onePage)) {
		t.Fatal("bytes changed under a reader")
	}
	// The held page still counts against the budget until Close.
	before := c.Stats()[0].Used
	_ = h.Close()
	if after := c.Stats()[0].Used; after != before-(ps+memPageOverhead) {
		t.Fatalf("used %d → %d after Close", before, after)
	}
}

func TestPinning(t *testing.T) {
	clk := newClock()
	ctx := context.Background()
	t.Run("pinned pages are not evicted", func(t *testing.T) {
		c := newCache(t, ps, clk, memTier("mem", memCap(2), "lru"))
		c.Pin("/p", time.Time{})
		put(t, c, fid(1), "/p/a", onePage, 0)
		put(t, c, fid(2), "/p/b/c", onePage, 0)
		err := c.Put(ctx, page(3), FileMeta{Path: "/q", Size: onePage}, content(fid(3), 0, onePage))
		if !errors.Is(err, ErrNoSpace) {
			t.Fatalf("Put into a tier full of pinned pages: %v", err)
		}
		// "/pq" is not below "/p".
		c.Unpin("/p")
		c.Pin("/p/a", time.Time{})
		put(t, c, fid(3), "/pq", onePage, 0)
		if tierOf(c, page(2)) != "" || tierOf(c, page(1)) != "mem" {
			t.Fatalf("after unpin: f1 %q f2 %q", tierOf(c, page(1)), tierOf(c, page(2)))
		}
		if got := c.Pins(); len(got) != 1 {
			t.Fatalf("pins %v", got)
		}
	})
	t.Run("pinned data spills to the next tier", func(t *testing.T) {
		ssd := t.TempDir()
		c := newCache(t, ps, clk, memTier("mem", memCap(2), "lru"), diskTier("ssd", "lru", diskCap(t, ssd, 2), ssd))
		c.Pin("/", time.Time{}) // everything
		for n := 1; n <= 4; n++ {
			putPage(t, c, n)
		}
		if got := where(c, 4); got != "f1:mem f2:mem f3:ssd f4:ssd" {
			t.Fatalf("placement %s", got)
		}
		err := c.Put(ctx, page(5), FileMeta{Path: "/z", Size: onePage}, content(fid(5), 0, onePage))
		if !errors.Is(err, ErrNoSpace) {
			t.Fatalf("Put with every tier pinned full: %v", err)
		}
		for n := 1; n <= 4; n++ {
			getPage(t, c, n)
		}
	})
	t.Run("pin expiry", func(t *testing.T) {
		c := newCache(t, ps, clk, memTier("mem", memCap(2), "lru"))
		c.Pin("/d", clk.Now().Add(time.Hour))
		putPage(t, c, 1)
		putPage(t, c, 2)
		if err := c.Put(ctx, page(3), FileMeta{Path: "/e", Size: onePage}, content(fid(3), 0, onePage)); !errors.Is(err, ErrNoSpace) {
			t.Fatalf("Put while pinned: %v", err)
		}
		clk.Advance(2 * time.Hour)
		c.Sweep(ctx)
		if len(c.Pins()) != 0 {
			t.Fatal("lapsed pin not dropped")
		}
		put(t, c, fid(3), "/e", onePage, 0)
		if got := where(c, 3); got != "f1:- f2:mem f3:mem" {
			t.Fatalf("placement %s", got)
		}
	})
}

func TestTTL(t *testing.T) {
	clk := newClock()
	ctx := context.Background()
	c := newCache(t, ps, clk, memTier("mem", memCap(8), "lru"))
	meta := FileMeta{Path: "/t/a", Size: 2 * ps, TTL: time.Hour}
	for i := int64(0); i < 2; i++ {
		if err := c.Put(ctx, PageKey{fid(1), i}, meta, content(fid(1), i, ps)); err != nil {
			t.Fatal(err)
		}
	}
	putPage(t, c, 2) // no TTL
	clk.Advance(30 * time.Minute)
	// A later Put does not move the expiry.
	if err := c.Put(ctx, PageKey{fid(1), 0}, meta, content(fid(1), 0, ps)); err != nil {
		t.Fatal(err)
	}
	h, err := c.Get(ctx, PageKey{fid(1), 1})
	if err != nil {
		t.Fatal(err)
	}
	_ = h.Close()
	clk.Advance(31 * time.Minute)
	r := c.Sweep(ctx)
	if r.Files != 1 || r.Pages != 2 || r.Bytes != 2*ps {
		t.Fatalf("sweep freed %+v", r)
	}
	if _, err := c.Get(ctx, PageKey{fid(1), 0}); !errors.Is(err, ErrNotCached) {
		t.Fatalf("expired page served: %v", err)
	}
	getPage(t, c, 2)
	// Get notices an expiry before the sweep does.
	if err := c.Put(ctx, PageKey{fid(3), 0}, FileMeta{Path: "/t/b", Size: ps, Expires: clk.Now().Add(time.Minute)}, content(fid(3), 0, ps)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if _, err := c.Get(ctx, PageKey{fid(3), 0}); !errors.Is(err, ErrNotCached) {
		t.Fatalf("expired page served: %v", err)
	}
	if st := c.Stats()[0]; st.Pages != 1 {
		t.Fatalf("pages %d", st.Pages)
	}
}

func TestFreePath(t *testing.T) {
	ssd := t.TempDir()
	c := newCache(t, ps, nil, memTier("mem", memCap(2), "lru"), diskTier("ssd", "lru", diskCap(t, ssd, 8), ssd))
	files := map[int]string{1: "/a/x", 2: "/a/y/z", 3: "/ab/z", 4: "/a", 5: "/a/pinned/q"}
	for n := 1; n <= 5; n++ {
		put(t, c, fid(n), files[n], onePage, 0)
	}
	c.Pin("/a/pinned", time.Time{})
	r, err := c.FreePath("/a/")
	if err != nil {
		t.Fatal(err)
	}
	if r.Files != 3 || r.Pages != 3 || r.Bytes != 3*onePage || r.Pinned != 1 {
		t.Fatalf("FreePath: %+v", r)
	}
	if got := where(c, 5); strings.Count(got, ":-") != 3 || strings.Contains(got, "f3:-") || strings.Contains(got, "f5:-") {
		t.Fatalf("placement %s", got)
	}
	if _, err := c.FreePath("relative"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("relative prefix: %v", err)
	}
	r, _ = c.FreePath("/")
	if r.Files != 1 || r.Pinned != 1 {
		t.Fatalf("FreePath /: %+v", r)
	}
}

func TestFullFileAndBlocks(t *testing.T) {
	dir := t.TempDir()
	c, err := New(conf.Cache{Tiers: []conf.Tier{diskTier("ssd", "lru", 1<<22, dir)}},
		Options{PageSize: ps, BlockSize: 2 * ps, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	id := fid(1)
	size := int64(3*ps + 500)
	if _, ok := c.FullFile(id); ok {
		t.Fatal("FullFile of nothing")
	}
	for i := int64(0); i < 3; i++ {
		put(t, c, id, "/full", size, i)
	}
	if _, ok := c.FullFile(id); ok {
		t.Fatal("FullFile with a page missing")
	}
	if _, ok := c.FullBlock(id, 0); !ok {
		t.Fatal("block 0 is complete")
	}
	if _, ok := c.FullBlock(id, 1); ok {
		t.Fatal("block 1 is not complete")
	}
	put(t, c, id, "/full", size, 3)
	p, ok := c.FullFile(id)
	if !ok {
		t.Fatal("FullFile of a complete file")
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	for i := int64(0); i < 4; i++ {
		want = append(want, content(id, i, int(pageLen(size, ps, i)))...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the full file (%d bytes) is not the original (%d bytes)", len(got), len(want))
	}
	if _, ok := c.FullBlock(id, 1); !ok {
		t.Fatal("block 1 is complete now")
	}
	if _, ok := c.FullBlock(id, 2); ok {
		t.Fatal("block 2 does not exist")
	}

	// OpenFull keeps the bytes of a deleted page until Close.
	fh, err := c.OpenFull(id)
	if err != nil {
		t.Fatal(err)
	}
	used := c.Stats()[0].Used
	if err := c.Delete(PageKey{id, 1}); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.FullFile(id); ok {
		t.Fatal("FullFile after a delete")
	}
	buf := make([]byte, ps)
	if _, err := fh.File().ReadAt(buf, ps); err != nil || !bytes.Equal(buf, content(id, 1, ps)) {
		t.Fatalf("page read through the FullHandle changed: %v", err)
	}
	if u := c.Stats()[0].Used; u != used {
		t.Fatalf("used %d → %d before the deferred punch", used, u)
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
	if u := c.Stats()[0].Used; u != used-ps {
		t.Fatalf("used %d → %d after the deferred punch", used, u)
	}
	if _, err := c.OpenFull(id); !errors.Is(err, ErrNotCached) {
		t.Fatalf("OpenFull of a partial file: %v", err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadAt(buf, ps); err != nil || !bytes.Equal(buf, make([]byte, ps)) {
		t.Fatalf("the deleted page was not punched out: %v", err)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	ssd := t.TempDir()
	c, err := New(conf.Cache{Tiers: []conf.Tier{memTier("mem", memCap(2), "lru"), diskTier("ssd", "lru", diskCap(t, ssd, 4), ssd)}},
		Options{PageSize: ps, Logger: quietLogger(), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	runScript(t, c, "p1 p2 p3 g3 g1")
	if _, err := c.Get(context.Background(), page(9)); !errors.Is(err, ErrNotCached) {
		t.Fatal(err)
	}
	st := c.Stats()
	if st[0].Hits != 1 || st[0].Misses != 2 || st[1].Hits != 1 || st[1].Misses != 1 || st[0].HitRatio != 1.0/3 {
		t.Fatalf("stats %+v / %+v", st[0], st[1])
	}
	want := `
# HELP strata_tier_hits_total Gets served by the tier.
# TYPE strata_tier_hits_total counter
strata_tier_hits_total{tier="mem"} 1
strata_tier_hits_total{tier="ssd"} 1
# HELP strata_tier_promotions_total Pages moved from the tier to the top tier.
# TYPE strata_tier_promotions_total counter
strata_tier_promotions_total{tier="mem"} 0
strata_tier_promotions_total{tier="ssd"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "strata_tier_hits_total", "strata_tier_promotions_total"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "strata_tier_dir_healthy"); err != nil || n != 1 {
		t.Fatalf("dir metrics: %d %v", n, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// Close unregisters: a new cache can register on the same registry.
	c2, err := New(conf.Cache{Tiers: []conf.Tier{memTier("mem", memCap(2), "lru")}}, Options{PageSize: ps, Logger: quietLogger(), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	_ = c2.Close()
}

func TestNewValidates(t *testing.T) {
	bad := []conf.Cache{
		{},
		{Tiers: []conf.Tier{memTier("mem", 100, "lru")}},         // smaller than a page
		{Tiers: []conf.Tier{memTier("mem", memCap(2), "clock")}}, // unknown policy
		{Tiers: []conf.Tier{memTier("a", memCap(2), "lru"), memTier("a", memCap(2), "lru")}},
	}
	for i, cfg := range bad {
		if c, err := New(cfg, Options{PageSize: ps, Logger: quietLogger()}); err == nil {
			_ = c.Close()
			t.Errorf("config %d accepted", i)
		}
	}
	if _, err := New(conf.DefaultCache(), Options{PageSize: 1000}); !errors.Is(err, ErrInvalid) {
		t.Errorf("page size 1000: %v", err)
	}
	// A directory cannot serve two caches.
	dir := t.TempDir()
	cfg := conf.Cache{Tiers: []conf.Tier{diskTier("ssd", "lru", 1<<20, dir)}}
	c1 := newCache(t, ps, nil, cfg.Tiers...)
	if c2, err := New(cfg, Options{PageSize: ps, Logger: quietLogger()}); err == nil {
		_ = c2.Close()
		t.Fatal("a locked directory was opened twice")
	}
	_ = c1.Close()
}

func TestSamePutRace(t *testing.T) {
	ssd := t.TempDir()
	c := newCache(t, ps, nil, memTier("mem", memCap(4), "lru"), diskTier("ssd", "lru", diskCap(t, ssd, 8), ssd))
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 1; n <= 6; n++ {
				if err := c.Put(context.Background(), page(n), FileMeta{Path: path(n), Size: onePage}, content(fid(n), 0, onePage)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	var pages int64
	for _, st := range c.Stats() {
		pages += st.Pages
	}
	if pages != 6 {
		t.Fatalf("%d pages cached for 6 keys: %s", pages, where(c, 6))
	}
	for n := 1; n <= 6; n++ {
		getPage(t, c, n)
	}
}

// TestConcurrentCache hammers a three-tier cache with puts, gets, deletes, frees
// and promotions; every byte served must be right (run with -race).
func TestConcurrentCache(t *testing.T) {
	ssd, hdd := t.TempDir(), t.TempDir()
	tiers := []conf.Tier{memTier("mem", memCap(6), "lru"), diskTier("ssd", "lrfu", diskCap(t, ssd, 10), ssd), diskTier("hdd", "lru", diskCap(t, hdd, 14), hdd)}
	tiers[2].Promote, tiers[2].PromoteHits = conf.PromoteHits, 2
	c := newCache(t, ps, nil, tiers...)
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 300 {
				n := 1 + (j*13+w*7)%40
				switch j % 7 {
				case 0, 1, 2:
					if err := c.Put(ctx, page(n), FileMeta{Path: path(n), Size: onePage}, content(fid(n), 0, onePage)); err != nil && !errors.Is(err, ErrNoSpace) {
						t.Error(err)
						return
					}
				case 3:
					_ = c.Delete(page(n))
				case 4:
					if j%35 == 4 {
						_, _ = c.FreePath(path(n))
					}
				default:
					h, err := c.Get(ctx, page(n))
					if err == nil {
						if !bytes.Equal(h.Bytes(), content(fid(n), 0, onePage)) {
							t.Errorf("f%d: wrong bytes", n)
						}
						_ = h.Close()
					} else if !errors.Is(err, ErrNotCached) {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	c.flushPromotions()
	// Every page is in at most one tier, and the accounting matches. (Check
	// everything before reading: a read may start a promotion.)
	for _, st := range c.Stats() {
		if st.Used > st.Capacity {
			t.Errorf("tier %s over budget: %d > %d", st.Name, st.Used, st.Capacity)
		}
	}
	for n := 1; n <= 40; n++ {
		in := 0
		for _, tr := range c.tiers {
			for _, s := range tr.spaces {
				h, err := s.store.Get(ctx, page(n)) // not through the cache: no promotions
				if err != nil {
					continue
				}
				in++
				if !bytes.Equal(h.Bytes(), content(fid(n), 0, onePage)) {
					t.Errorf("f%d in %s: wrong bytes", n, tr.cfg.Name)
				}
				_ = h.Close()
			}
		}
		if in > 1 {
			t.Errorf("f%d is in %d tiers", n, in)
		}
	}
}

func TestContains(t *testing.T) {
	clk := newClock()
	ssd := t.TempDir()
	c := newCache(t, ps, clk, memTier("mem", memCap(1), "lru"), diskTier("ssd", "lru", diskCap(t, ssd, 8), ssd))
	ctx := context.Background()
	put(t, c, fid(1), "/c/a", 2*ps, 0)
	put(t, c, fid(1), "/c/a", 2*ps, 1) // demotes page 0 to the disk tier
	if !c.Contains(PageKey{fid(1), 0}) || !c.Contains(PageKey{fid(1), 1}) {
		t.Fatalf("Contains misses a page in memory or on disk: %s", where(c, 1))
	}
	before := c.Stats()
	if c.Contains(PageKey{fid(2), 0}) || c.Contains(PageKey{"not-hex", 0}) {
		t.Fatal("Contains reports an absent or invalid page")
	}
	after := c.Stats()
	for i := range before {
		if before[i].Hits != after[i].Hits || before[i].Misses != after[i].Misses {
			t.Fatalf("Contains counted a hit or a miss: %+v -> %+v", before[i], after[i])
		}
	}
	if err := c.Put(ctx, PageKey{fid(3), 0}, FileMeta{Path: "/c/b", Size: ps, TTL: time.Minute}, content(fid(3), 0, ps)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if c.Contains(PageKey{fid(3), 0}) {
		t.Fatal("Contains reports a page whose file expired")
	}
}
