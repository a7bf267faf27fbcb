package tier

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratafs/strata/conf"
)

func diskOnly(dir string, quota int64) conf.Cache {
	return conf.Cache{Tiers: []conf.Tier{diskTier("ssd", "lru", quota, dir)}}
}

func openCache(t testing.TB, cfg conf.Cache, pageSize int64, opts ...func(*Options)) *Cache {
	t.Helper()
	o := Options{PageSize: pageSize, Logger: quietLogger()}
	for _, f := range opts {
		f(&o)
	}
	c, err := New(cfg, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// checkPage asserts that a page is served with its content.
func checkPage(t testing.TB, c *Cache, id string, size, idx int64) {
	t.Helper()
	h, err := c.Get(context.Background(), PageKey{id, idx})
	if err != nil {
		t.Fatalf("Get %s/%d: %v", id, idx, err)
	}
	defer h.Close()
	if !bytes.Equal(h.Bytes(), content(id, idx, int(pageLen(size, c.PageSize(), idx)))) {
		t.Fatalf("Get %s/%d: wrong bytes", id, idx)
	}
}

func TestReopenKeepsPages(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	cfg := diskOnly(dir, 1<<22)
	c := openCache(t, cfg, ps, func(o *Options) { o.Now = clk.Now })
	sizes := map[int]int64{1: 5*ps + 17, 2: 3 * ps, 3: 100}
	for n, size := range sizes {
		for i := int64(0); i < npagesOf(size, ps); i++ {
			if n == 2 && i == 1 {
				continue // a file with a gap
			}
			put(t, c, fid(n), fmt.Sprintf("/r/f%d", n), size, i)
		}
	}
	ctx := context.Background()
	if err := c.Put(ctx, PageKey{fid(4), 0}, FileMeta{Path: "/r/ttl", Size: 10, TTL: time.Hour}, content(fid(4), 0, 10)); err != nil {
		t.Fatal(err)
	}
	before := c.Stats()[0]
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	c = openCache(t, cfg, ps, func(o *Options) { o.Now = clk.Now })
	defer c.Close()
	after := c.Stats()[0]
	if after.Pages != before.Pages || after.Used != before.Used || after.Files != before.Files {
		t.Fatalf("after reopen %+v, before %+v", after, before)
	}
	for n, size := range sizes {
		for i := int64(0); i < npagesOf(size, ps); i++ {
			if n == 2 && i == 1 {
				if _, err := c.Get(ctx, PageKey{fid(n), i}); !errors.Is(err, ErrNotCached) {
					t.Fatalf("missing page served: %v", err)
				}
				continue
			}
			checkPage(t, c, fid(n), size, i)
		}
	}
	if _, ok := c.FullFile(fid(1)); !ok {
		t.Fatal("a complete file is not full after reopen")
	}
	// Paths survive: FreePath finds the file by its namespace path.
	if r, _ := c.FreePath("/r/f3"); r.Files != 1 {
		t.Fatalf("FreePath after reopen: %+v", r)
	}
	// So do expiries.
	checkPage(t, c, fid(4), 10, 0)
	clk.Advance(2 * time.Hour)
	if _, err := c.Get(ctx, PageKey{fid(4), 0}); !errors.Is(err, ErrNotCached) {
		t.Fatalf("expired page served after reopen: %v", err)
	}
}

func TestRecoveryRemovesLeftovers(t *testing.T) {
	dir := t.TempDir()
	cfg := diskOnly(dir, 1<<22)
	c := openCache(t, cfg, ps)
	for n := 1; n <= 3; n++ {
		put(t, c, fid(n), path(n), 2*ps, 0)
		put(t, c, fid(n), path(n), 2*ps, 1)
	}
	_ = c.Close()
	root := filepath.Join(dir, layoutDir)
	d := &DiskStore{root: root}
	write := func(p string, b []byte) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Orphans, temporaries, junk, a sidecar with a bad header, a file of
	// another page size, a data file of the wrong size.
	orphanData, _ := d.paths(fid(10))
	_, orphanMeta := d.paths(fid(11))
	_, tmpMeta := d.paths(fid(12))
	tmpMeta += ".tmp"
	junk := filepath.Join(root, fid(13)[:2], "junk")
	write(orphanData, []byte("x"))
	write(orphanMeta, []byte("x"))
	write(tmpMeta, []byte("x"))
	write(junk, []byte("x"))
	write(filepath.Join(root, "stray.tmp"), []byte("x"))
	badData, badMeta := d.paths(fid(14))
	side := encodeSidecar(sidecarHeader{pageSize: ps, fileSize: ps, path: "/b"})
	side[20] ^= 1 // breaks the header CRC
	write(badMeta, side)
	write(badData, make([]byte, ps))
	otherData, otherMeta := d.paths(fid(15))
	write(otherMeta, encodeSidecar(sidecarHeader{pageSize: 2 * ps, fileSize: 2 * ps, path: "/o"}))
	write(otherData, make([]byte, 2*ps))
	shortData, _ := d.paths(fid(2))
	if err := os.Truncate(shortData, ps); err != nil { // fid(2) no longer matches its sidecar
		t.Fatal(err)
	}

	c = openCache(t, cfg, ps)
	defer c.Close()
	for _, p := range []string{orphanData, orphanMeta, tmpMeta, junk, badData, badMeta, otherData, otherMeta, filepath.Join(root, "stray.tmp")} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("leftover %s not removed (%v)", p, err)
		}
	}
	checkPage(t, c, fid(1), 2*ps, 1)
	checkPage(t, c, fid(3), 2*ps, 0)
	if _, err := c.Get(context.Background(), PageKey{fid(2), 0}); !errors.Is(err, ErrNotCached) {
		t.Fatalf("page of a truncated data file served: %v", err)
	}
	if st := c.Stats()[0]; st.Files != 2 || st.Pages != 4 {
		t.Fatalf("stats after recovery: %+v", st)
	}
	// A different page size drops everything.
	_ = c.Close()
	c2 := openCache(t, cfg, 2*ps)
	defer c2.Close()
	if st := c2.Stats()[0]; st.Files != 0 || st.Used != 0 {
		t.Fatalf("files of another page size kept: %+v", st)
	}
}

// flipByte flips one byte of a file.
func flipByte(t testing.TB, p string, off int64) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptionDetected(t *testing.T) {
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	c := openCache(t, diskOnly(dir, 1<<22), ps, func(o *Options) { o.Registerer = reg })
	defer c.Close()
	id := fid(1)
	for i := int64(0); i < 3; i++ {
		put(t, c, id, "/c", 3*ps, i)
	}
	p, ok := c.FullFile(id)
	if !ok {
		t.Fatal("not full")
	}
	flipByte(t, p, ps+1234) // page 1, under a running cache
	_, err := c.Get(context.Background(), PageKey{id, 1})
	if !errors.Is(err, ErrNotCached) || !errors.Is(err, ErrChecksum) {
		t.Fatalf("Get of a corrupted page: %v", err)
	}
	if _, err := c.Get(context.Background(), PageKey{id, 1}); !errors.Is(err, ErrNotCached) || errors.Is(err, ErrChecksum) {
		t.Fatalf("the corrupted page was not dropped: %v", err)
	}
	checkPage(t, c, id, 3*ps, 0)
	checkPage(t, c, id, 3*ps, 2)
	if _, ok := c.FullFile(id); ok {
		t.Fatal("a file with a dropped page is still full")
	}
	if got := counterSum(t, reg, "strata_tier_checksum_failures_total"); got != 1 {
		t.Fatalf("checksum metric %v", got)
	}
	// The worker refetches and puts it again.
	put(t, c, id, "/c", 3*ps, 1)
	checkPage(t, c, id, 3*ps, 1)
}

// counterSum sums the samples of one counter family of reg.
func counterSum(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var sum float64
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

func TestCorruptionAfterRestartAndTornWrite(t *testing.T) {
	dir := t.TempDir()
	cfg := diskOnly(dir, 1<<22)
	c := openCache(t, cfg, ps)
	for n := 1; n <= 2; n++ {
		for i := int64(0); i < 4; i++ {
			put(t, c, fid(n), path(n), 4*ps, i)
		}
	}
	_ = c.Close()
	d := &DiskStore{root: filepath.Join(dir, layoutDir)}

	// f1: a corrupt byte in a clean file: found when read.
	data1, _ := d.paths(fid(1))
	flipByte(t, data1, 2*ps+7)
	// f2: a torn write: half of page 3 never reached the disk while the file
	// was being changed (dirty).
	data2, side2 := d.paths(fid(2))
	f, err := os.OpenFile(data2, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, ps/2), 3*ps+ps/2); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	sf, err := os.OpenFile(side2, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sf.WriteAt([]byte{1}, dirtyOff); err != nil {
		t.Fatal(err)
	}
	_ = sf.Close()

	c = openCache(t, cfg, ps)
	defer c.Close()
	// The torn page was found by recovery: gone before any read.
	if st := c.Stats()[0]; st.Pages != 7 {
		t.Fatalf("pages after recovery: %d", st.Pages)
	}
	if _, err := c.Get(context.Background(), PageKey{fid(2), 3}); !errors.Is(err, ErrNotCached) {
		t.Fatalf("torn page served: %v", err)
	}
	b, _ := os.ReadFile(side2)
	if h, _, bm, err := decodeSidecar(b); err != nil || h.dirty || bm[0] != 0x07 {
		t.Fatalf("sidecar after recovery: dirty=%v bitmap=%08b err=%v", h.dirty, bm, err)
	}
	// The corrupt page of the clean file is caught by the startup scrub,
	// before anyone reads it.
	<-c.scrubbed
	if _, err := c.Get(context.Background(), PageKey{fid(1), 2}); !errors.Is(err, ErrNotCached) || errors.Is(err, ErrChecksum) {
		t.Fatalf("corrupt page after the scrub: %v, want it dropped already", err)
	}
	if st := c.Stats()[0]; st.ChecksumFailures != 2 || st.Dirs[0].ScrubbedPages != 7 || !st.Dirs[0].Scrubbed {
		// 2: the torn page (recovery) and the corrupt one (scrub).
		t.Fatalf("after the scrub: %d checksum failures, %+v", st.ChecksumFailures, st.Dirs[0])
	}
	for i := int64(0); i < 4; i++ {
		if i != 2 {
			checkPage(t, c, fid(1), 4*ps, i)
		}
		if i != 3 {
			checkPage(t, c, fid(2), 4*ps, i)
		}
	}
}

// crashEnv names the directory a crash-test child fills.
const crashEnv = "STRATA_TIER_CRASH_DIR"

// crashFiles and crashPages shape what the crash-test child writes.
const (
	crashFiles = 64
	crashPages = 16
	crashPS    = 4096
)

func crashSize(n int) int64 { return int64(crashPages)*crashPS - int64(n%3)*100 }

func crashConfig(dir string) conf.Cache {
	// Room for about half of the data: the child also evicts (punches) while
	// it is killed.
	return diskOnly(dir, crashFiles*crashPages*crashPS/2)
}

// TestCrashChild is the child of TestKill9Recovery: it fills a disk tier from
// several goroutines until it is killed. It does nothing in a normal run.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("only runs as the child of TestKill9Recovery")
	}
	c, err := New(crashConfig(dir), Options{PageSize: crashPS, Logger: quietLogger()})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	var written atomic.Int64
	for w := range 4 {
		go func() {
			for j := 0; ; j++ {
				n := (j*7 + w*13) % crashFiles
				size := crashSize(n)
				i := int64((j/crashFiles + w) % crashPages)
				id := fid(1000 + n)
				data := content(id, i, int(pageLen(size, crashPS, i)))
				if err := c.Put(context.Background(), PageKey{id, i}, FileMeta{Path: "/crash/" + id, Size: size}, data); err == nil {
					written.Add(1)
				}
				if j%5 == 0 {
					_ = c.Delete(PageKey{id, (i + 3) % crashPages})
				}
			}
		}()
	}
	for {
		fmt.Println("written", written.Load())
		time.Sleep(2 * time.Millisecond)
	}
}

// TestKill9Recovery kills a process filling a disk tier with SIGKILL, several
// times, and checks that every byte served after each restart is right.
func TestKill9Recovery(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("child")
	}
	dir := t.TempDir()
	served := 0
	for round := range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		target := int64(300 + round*400)
		sc := bufio.NewScanner(out)
		var last int64
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "written "); ok {
				last, _ = strconv.ParseInt(v, 10, 64)
				if last >= target {
					break
				}
			} else if strings.HasPrefix(line, "error") {
				t.Fatalf("child: %s", line)
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		go func() { _, _ = bufio.NewReader(out).WriteTo(discard{}) }()
		_ = cmd.Wait()
		if last < target {
			t.Fatalf("round %d: the child stopped after %d pages", round, last)
		}

		c := openCache(t, crashConfig(dir), crashPS)
		ctx := context.Background()
		for n := range crashFiles {
			id := fid(1000 + n)
			size := crashSize(n)
			for i := int64(0); i < crashPages; i++ {
				h, err := c.Get(ctx, PageKey{id, i})
				if err != nil {
					if !errors.Is(err, ErrNotCached) {
						t.Fatalf("round %d: Get %s/%d: %v", round, id, i, err)
					}
					continue
				}
				if !bytes.Equal(h.Bytes(), content(id, i, int(pageLen(size, crashPS, i)))) {
					t.Fatalf("round %d: %s/%d served wrong bytes after a crash", round, id, i)
				}
				_ = h.Close()
				served++
			}
			if p, ok := c.FullFile(id); ok {
				got, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				var want []byte
				for i := int64(0); i < crashPages; i++ {
					want = append(want, content(id, i, int(pageLen(size, crashPS, i)))...)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("round %d: full file %s differs after a crash", round, id)
				}
			}
		}
		if st := c.Stats()[0]; st.ChecksumFailures != 0 {
			t.Logf("round %d: %d pages failed their checksum and were dropped", round, st.ChecksumFailures)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if served == 0 {
		t.Fatal("nothing survived the crashes")
	}
	t.Logf("%d pages served correctly over 4 crashes", served)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// mountTmpfs mounts a tmpfs of size bytes on a new directory, or skips.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

func TestFullDisk(t *testing.T) {
	const pageSize = 64 << 10
	const nfiles, npages = 24, 8 // 12 MiB in all, the tmpfs holds 1 MiB
	size := int64(npages * pageSize)
	fill := func(t *testing.T, c *Cache) {
		t.Helper()
		var wg sync.WaitGroup
		for n := range nfiles {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := int64(0); i < npages; i++ {
					id := fid(n)
					if err := c.Put(context.Background(), PageKey{id, i}, FileMeta{Path: "/full/" + id, Size: size}, content(id, i, pageSize)); err != nil {
						t.Errorf("Put %s/%d: %v", id, i, err)
					}
				}
			}()
		}
		wg.Wait()
		for n := range nfiles {
			for i := int64(0); i < npages; i++ {
				checkPage(t, c, fid(n), size, i)
			}
		}
	}
	t.Run("spill to another directory", func(t *testing.T) {
		small := mountTmpfs(t, "1m")
		big := t.TempDir()
		cfg := conf.Cache{Tiers: []conf.Tier{diskTier("ssd", "lru", 64<<20, small, big)}}
		clk := newClock()
		c := openCache(t, cfg, pageSize, func(o *Options) { o.Now = clk.Now })
		defer c.Close()
		fill(t, c)
		st := c.Stats()[0]
		if st.Dirs[0].Healthy || st.Dirs[0].WriteErrors == 0 || st.Dirs[0].Pages == 0 || st.Dirs[1].Pages == 0 {
			t.Fatalf("dirs: %+v", st.Dirs)
		}
		if st.Pages != nfiles*npages {
			t.Fatalf("%d pages cached, want %d", st.Pages, nfiles*npages)
		}
		// The full file system is reported as such, and the tier as
		// degraded (strata report shows it).
		if d := st.Dirs[0]; !st.Degraded || !d.NoSpace || d.NoSpaceErrors == 0 || !strings.Contains(d.LastError, "no space left on device") || d.LastErrorAt.IsZero() {
			t.Fatalf("full directory reported as degraded %v, dir %+v", st.Degraded, d)
		}
		// After its pause the directory is tried again.
		clk.Advance(2 * time.Minute)
		if st := c.Stats()[0]; !st.Dirs[0].Healthy || st.Degraded {
			t.Fatal("the directory stays unhealthy after its pause")
		}
	})
	t.Run("spill to the next tier", func(t *testing.T) {
		small := mountTmpfs(t, "1m")
		hdd := t.TempDir()
		cfg := conf.Cache{Tiers: []conf.Tier{diskTier("ssd", "lru", 64<<20, small), diskTier("hdd", "lru", 64<<20, hdd)}}
		c := openCache(t, cfg, pageSize)
		defer c.Close()
		fill(t, c)
		st := c.Stats()
		if st[0].Dirs[0].Healthy || st[0].Pages == 0 || st[1].Pages == 0 || st[0].Pages+st[1].Pages != nfiles*npages {
			t.Fatalf("ssd %+v hdd %+v", st[0], st[1])
		}
	})
}

// TestIntegrityCountersSurviveRestarts: a page corrupted and a data file
// truncated while the process was down are found at the next start (the
// scrub, recovery) and counted, and the counts outlive later restarts.
func TestIntegrityCountersSurviveRestarts(t *testing.T) {
	dir := t.TempDir()
	cfg := diskOnly(dir, 1<<22)
	c := openCache(t, cfg, ps)
	for n := 1; n <= 3; n++ {
		for i := int64(0); i < 4; i++ {
			put(t, c, fid(n), path(n), 4*ps, i)
		}
	}
	_ = c.Close()
	d := &DiskStore{root: filepath.Join(dir, layoutDir)}
	data1, _ := d.paths(fid(1))
	flipByte(t, data1, ps+3)
	data2, _ := d.paths(fid(2))
	if err := os.Truncate(data2, 2*ps); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	c = openCache(t, cfg, ps, func(o *Options) { o.Registerer = reg })
	<-c.scrubbed
	st := c.Stats()[0]
	if st.ChecksumFailures != 1 || st.TruncatedFiles != 1 || st.Pages != 7 {
		t.Fatalf("after a restart with damage: %d checksum failures, %d truncated files, %d pages; want 1, 1, 7",
			st.ChecksumFailures, st.TruncatedFiles, st.Pages)
	}
	if got := counterSum(t, reg, "strata_tier_checksum_failures_total"); got != 1 {
		t.Fatalf("checksum metric %v", got)
	}
	if got := counterSum(t, reg, "strata_tier_truncated_files_total"); got != 1 {
		t.Fatalf("truncated metric %v", got)
	}
	for i := int64(0); i < 4; i++ {
		if i != 1 {
			checkPage(t, c, fid(1), 4*ps, i)
		}
		checkPage(t, c, fid(3), 4*ps, i)
	}
	_ = c.Close()

	// Counted over the directory's life: a clean restart keeps them.
	reg = prometheus.NewRegistry()
	c = openCache(t, cfg, ps, func(o *Options) { o.Registerer = reg })
	defer c.Close()
	<-c.scrubbed
	if st := c.Stats()[0]; st.ChecksumFailures != 1 || st.TruncatedFiles != 1 {
		t.Fatalf("after a clean restart: %d checksum failures, %d truncated files; want 1 and 1", st.ChecksumFailures, st.TruncatedFiles)
	}
	if got := counterSum(t, reg, "strata_tier_checksum_failures_total"); got != 1 {
		t.Fatalf("checksum metric after a clean restart %v", got)
	}
}
