package tier

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stratafs/strata/conf"
)

// fakeClock is an injectable clock for TTL and pin tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// fid returns a valid file id for n.
func fid(n int) string { return fmt.Sprintf("%016x", 0xf00d0000+n) }

// content is the deterministic content of page idx of file id.
func content(id string, idx int64, n int) []byte {
	b := make([]byte, n)
	x := fileHash(id) ^ uint64(idx)*0x9e3779b97f4a7c15
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}

func memTier(name string, size int64, policy string) conf.Tier {
	return conf.Tier{Name: name, Medium: "memory", Size: conf.Size(size), Policy: policy}
}

func diskTier(name string, policy string, quota int64, dirs ...string) conf.Tier {
	t := conf.Tier{Name: name, Medium: "disk", Policy: policy}
	for _, d := range dirs {
		t.Dirs = append(t.Dirs, conf.TierDir{Path: d, Quota: conf.Size(quota)})
	}
	return t
}

func newCache(t testing.TB, pageSize int64, clk *fakeClock, tiers ...conf.Tier) *Cache {
	t.Helper()
	opts := Options{PageSize: pageSize, Logger: quietLogger()}
	if clk != nil {
		opts.Now = clk.Now
	}
	c, err := New(conf.Cache{Tiers: tiers}, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// put stores page idx of a file of size bytes under path.
func put(t testing.TB, c *Cache, id, path string, size, idx int64) {
	t.Helper()
	n := pageLen(size, c.PageSize(), idx)
	if err := c.Put(context.Background(), PageKey{id, idx}, FileMeta{Path: path, Size: size}, content(id, idx, int(n))); err != nil {
		t.Fatalf("Put %s/%d: %v", id, idx, err)
	}
}

// tierOf returns the name of the tier holding the page, or "".
func tierOf(c *Cache, key PageKey) string {
	for _, t := range c.tiers {
		for _, s := range t.spaces {
			if s.store.has(key) {
				return t.cfg.Name
			}
		}
	}
	return ""
}
