package tier

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/stratafs/strata/conf"
)

// benchCache builds a one-tier cache without the page-size check.
func benchCache(b *testing.B, pageSize int64, tiers ...conf.Tier) *Cache {
	b.Helper()
	cfg := conf.Cache{Tiers: tiers}
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	opts := Options{PageSize: pageSize, BlockSize: max(pageSize, DefaultBlockSize), Logger: quietLogger()}.withDefaults()
	c, err := build(cfg.Effective(), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return c
}

func benchTier(b *testing.B, medium string, capacity int64) conf.Tier {
	if medium == "memory" {
		return memTier("mem", capacity, "lru")
	}
	return diskTier("ssd", "lru", capacity, b.TempDir())
}

// BenchmarkGet measures hits per tier for 1 MiB and 4 KiB pages: one reader
// (latency: ns/op) and all CPUs (throughput: MB/s).
func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	for _, medium := range []string{"memory", "disk"} {
		for _, pageSize := range []int64{1 << 20, 4 << 10} {
			const pages = 64
			name := fmt.Sprintf("%s/%dKiB", medium, pageSize>>10)
			c := benchCache(b, pageSize, benchTier(b, medium, 4*pages*(pageSize+1<<16)))
			keys := make([]PageKey, pages)
			for i := range keys {
				id := fid(i % 8)
				keys[i] = PageKey{id, int64(i / 8)}
				data := content(id, keys[i].Index, int(pageSize))
				if err := c.Put(ctx, keys[i], FileMeta{Path: "/b/" + id, Size: 8 * pageSize}, data); err != nil {
					b.Fatal(err)
				}
			}
			b.Run(name+"/serial", func(b *testing.B) {
				b.SetBytes(pageSize)
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					h, err := c.Get(ctx, keys[i%pages])
					if err != nil {
						b.Fatal(err)
					}
					_ = h.Close()
				}
			})
			b.Run(name+"/parallel", func(b *testing.B) {
				b.SetBytes(pageSize)
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						h, err := c.Get(ctx, keys[i%pages])
						if err != nil {
							b.Fatal(err)
						}
						_ = h.Close()
						i++
					}
				})
			})
		}
	}
}

// BenchmarkPut measures puts into a tier that is full, so each put evicts one
// page (memory: dropped; memory over disk: demoted).
func BenchmarkPut(b *testing.B) {
	ctx := context.Background()
	const pageSize = 1 << 20
	for _, shape := range []string{"memory", "disk", "memory>disk"} {
		b.Run(shape, func(b *testing.B) {
			var tiers []conf.Tier
			switch shape {
			case "memory":
				tiers = []conf.Tier{memTier("mem", 32*(pageSize+memPageOverhead), "lru")}
			case "disk":
				tiers = []conf.Tier{benchTier(b, "disk", 32*(pageSize+1<<16))}
			default:
				tiers = []conf.Tier{memTier("mem", 16*(pageSize+memPageOverhead), "lru"), benchTier(b, "disk", 32*(pageSize+1<<16))}
			}
			c := benchCache(b, pageSize, tiers...)
			data := content(fid(1), 0, pageSize)
			b.SetBytes(pageSize)
			for i := 0; b.Loop(); i++ {
				id := fid(i / 64)
				if err := c.Put(ctx, PageKey{id, int64(i % 64)}, FileMeta{Path: "/p/" + id, Size: 64 * pageSize}, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEvict1M measures steady-state eviction with a million cached pages:
// every put into the full memory tier evicts (drops) the policy's victim.
// Pages are 64 bytes so that the million fit in memory; what is measured is the
// index and the policy.
func BenchmarkEvict1M(b *testing.B) {
	ctx := context.Background()
	const n, pageSize = 1 << 20, 64
	for _, policy := range []string{"lru", "lrfu"} {
		b.Run(policy, func(b *testing.B) {
			t := memTier("mem", n*(pageSize+memPageOverhead), policy)
			c := benchCache(b, pageSize, t)
			data := make([]byte, pageSize)
			meta := FileMeta{Path: "/e", Size: 1 << 30}
			id := fid(1)
			for i := range int64(n) {
				if err := c.Put(ctx, PageKey{id, i}, meta, data); err != nil {
					b.Fatal(err)
				}
			}
			if p := c.Stats()[0].Pages; p != n {
				b.Fatalf("%d pages cached", p)
			}
			next := int64(n)
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Put(ctx, PageKey{id, next}, meta, data); err != nil {
					b.Fatal(err)
				}
				next++
			}
			b.ReportMetric(float64(c.Stats()[0].Evictions)/b.Elapsed().Seconds(), "evictions/s")
		})
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkIndexOverhead reports the memory the index takes per cached page with
// a million pages (B/page): a memory tier (page bytes excluded), a disk tier
// (recovered from sidecars of sparse files), and the policies alone next to
// golang-lru's simplelru.
func BenchmarkIndexOverhead(b *testing.B) {
	const n = 1 << 20
	ctx := context.Background()
	for _, perFile := range []int{1024, 16} {
		b.Run(fmt.Sprintf("memory/%dpages-per-file", perFile), func(b *testing.B) {
			for b.Loop() {
				const pageSize = 64
				before := heapInUse()
				c := benchCache(b, pageSize, memTier("mem", n*(pageSize+memPageOverhead), "lru"))
				data := make([]byte, pageSize)
				for i := range n {
					id := fid(i / perFile)
					if err := c.Put(ctx, PageKey{id, int64(i % perFile)}, FileMeta{Path: "/bench/dir/" + id, Size: int64(perFile * pageSize)}, data); err != nil {
						b.Fatal(err)
					}
				}
				after := heapInUse()
				b.ReportMetric((float64(after-before)-n*pageSize)/n, "B/page")
				runtime.KeepAlive(c)
				_ = c.Close()
			}
		})
	}
	b.Run("disk/1024pages-per-file", func(b *testing.B) {
		const perFile, pageSize = 1024, 1 << 20
		dir := b.TempDir()
		root := filepath.Join(dir, layoutDir)
		d := &DiskStore{root: root}
		// Sparse data files and clean sidecars with every page present: what a
		// full 1 TiB tier of 1 MiB pages looks like to recovery.
		for f := range n / perFile {
			id := fid(f)
			data, side := d.paths(id)
			if err := os.MkdirAll(filepath.Dir(data), 0o755); err != nil {
				b.Fatal(err)
			}
			sc := encodeSidecar(sidecarHeader{pageSize: pageSize, fileSize: perFile * pageSize, path: "/bench/dir/" + id})
			sc[dirtyOff] = 0
			_, _, bmOff, _ := sidecarLayout("/bench/dir/"+id, perFile)
			for i := bmOff; i < int64(len(sc)); i++ {
				sc[i] = 0xff
			}
			if err := os.WriteFile(side, sc, 0o644); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(data, nil, 0o644); err != nil {
				b.Fatal(err)
			}
			if err := os.Truncate(data, perFile*pageSize); err != nil {
				b.Fatal(err)
			}
		}
		for b.Loop() {
			before := heapInUse()
			c := benchCache(b, pageSize, diskTier("ssd", "lru", 2<<40, dir))
			after := heapInUse()
			if p := c.Stats()[0].Pages; p != n {
				b.Fatalf("%d pages recovered", p)
			}
			b.ReportMetric(float64(after-before)/n, "B/page")
			runtime.KeepAlive(c)
			_ = c.Close()
		}
	})
	policies := map[string]func() func(PageKey){
		"lru": func() func(PageKey) {
			p := NewLRU()
			return func(k PageKey) { p.Add(k, 1) }
		},
		"lrfu": func() func(PageKey) {
			p, _ := NewLRFU(0, 0)
			return func(k PageKey) { p.Add(k, 1) }
		},
		"simplelru": func() func(PageKey) {
			p, _ := simplelru.NewLRU[PageKey, int64](1<<30, nil)
			return func(k PageKey) { p.Add(k, 1) }
		},
	}
	for _, name := range []string{"lru", "lrfu", "simplelru"} {
		b.Run("policy/"+name, func(b *testing.B) {
			id := fid(1)
			for b.Loop() {
				before := heapInUse()
				add := policies[name]()
				for i := range int64(n) {
					add(PageKey{id, i})
				}
				after := heapInUse()
				b.ReportMetric(float64(after-before)/n, "B/page")
				runtime.KeepAlive(add)
			}
		})
	}
}
