package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/tier"
	"github.com/stratafs/strata/ufs"
	bolt "go.etcd.io/bbolt"
)

// fixedMounts is a mount table that does not change.
type fixedMounts struct{ t *namespace.Table }

func (f fixedMounts) Mounts() *namespace.Table {
	if f.t == nil {
		t, _ := namespace.NewTable(nil)
		return t
	}
	return f.t
}

// fakeFS is an under-storage in memory that can be "down": then every call
// fails with ufs.ErrUnavailable. It counts the calls that reached it.
type fakeFS struct {
	ufs.FS // not implemented: panics if called
	down   atomic.Bool
	// hang makes metadata calls wait for their context to end.
	hang  atomic.Bool
	calls atomic.Int64

	mu    sync.Mutex
	files map[string][]byte
	mtime time.Time
}

func newFakeFS() *fakeFS {
	return &fakeFS{files: map[string][]byte{}, mtime: time.Date(2029, 5, 1, 12, 0, 0, 123456789, time.UTC)}
}

func (f *fakeFS) info(p string) ufs.FileInfo {
	return ufs.FileInfo{Path: p, Size: int64(len(f.files[p])), ModTime: f.mtime, ETag: fmt.Sprintf("etag-%s-%d", p, len(f.files[p]))}
}

func (f *fakeFS) fail() error {
	f.calls.Add(1)
	if f.down.Load() {
		return fmt.Errorf("dial tcp 127.0.0.1:9: connection refused: %w", ufs.ErrUnavailable)
	}
	return nil
}

func (f *fakeFS) Stat(ctx context.Context, p string) (ufs.FileInfo, error) {
	if err := f.fail(); err != nil {
		return ufs.FileInfo{}, err
	}
	if f.hang.Load() {
		<-ctx.Done()
		return ufs.FileInfo{}, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.files[p]; ok {
		return f.info(p), nil
	}
	for k := range f.files {
		if p == "" || strings.HasPrefix(k, p+"/") {
			return ufs.FileInfo{Path: p, IsDir: true}, nil
		}
	}
	return ufs.FileInfo{}, fmt.Errorf("%s: %w", p, ufs.ErrNotFound)
}

func (f *fakeFS) List(ctx context.Context, dir string) iter.Seq2[ufs.FileInfo, error] {
	return func(yield func(ufs.FileInfo, error) bool) {
		if err := f.fail(); err != nil {
			yield(ufs.FileInfo{}, err)
			return
		}
		if f.hang.Load() {
			<-ctx.Done()
			yield(ufs.FileInfo{}, ctx.Err())
			return
		}
		f.mu.Lock()
		var out []ufs.FileInfo
		for k := range f.files {
			if parentRel(k) == dir {
				out = append(out, f.info(k))
			}
		}
		f.mu.Unlock()
		for _, fi := range out {
			if !yield(fi, nil) {
				return
			}
		}
	}
}

func (f *fakeFS) OpenRange(_ context.Context, p string, off, n int64, _ ufs.ReadOptions) (io.ReadCloser, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.files[p]
	if !ok {
		return nil, fmt.Errorf("%s: %w", p, ufs.ErrNotFound)
	}
	end := min(off+n, int64(len(b)))
	return io.NopCloser(bytes.NewReader(b[off:end])), nil
}

func (f *fakeFS) Close() error { return nil }

// offlineWorker is a worker without etcd: one mount "m" at /ds over fs,
// a metadata cache persisted in metaDir (none when ""), and a 64 MiB memory
// tier.
type offlineWorker struct {
	*Server
	fs    *fakeFS
	mount namespace.Mount
	now   time.Time
}

func newOfflineWorker(t *testing.T, fs *fakeFS, metaDir string, ttl time.Duration) *offlineWorker {
	t.Helper()
	return newOfflineWorkerWith(t, fs, metaDir, ttl, conf.Cache{Tiers: []conf.Tier{{Name: "mem", Medium: "memory", Size: 64 << 20, Policy: "lru"}}})
}

func newOfflineWorkerWith(t *testing.T, fs *fakeFS, metaDir string, ttl time.Duration, tiers conf.Cache) *offlineWorker {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	m := namespace.Mount{ID: "m", Path: "/ds", URI: "fake://bucket", MetadataTTL: -1, Replicas: 1, Created: time.Now()}
	table, err := namespace.NewTable([]namespace.Mount{m})
	if err != nil {
		t.Fatal(err)
	}
	reg := &ufs.Registry{}
	reg.Register("fake", func(context.Context, ufs.Location, ufs.Options) (ufs.FS, error) { return fs, nil })
	cache, err := tier.New(tiers, tier.Options{PageSize: 1 << 20, BlockSize: 4 << 20, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	w := &offlineWorker{fs: fs, mount: m, now: time.Now()}
	s := &Server{
		wcfg: conf.Worker{BlockSize: 4 << 20, PageSize: 1 << 20, UFSConcurrency: 4}, id: "w-test", log: log,
		meta: newMetaCache(1000, ttl), mounts: fixedMounts{table}, health: newBreaker(), m: newMetrics(prometheus.NewRegistry()),
		fss: ufs.NewPool(reg), cache: cache, staleBudget: staleBudget,
	}
	s.health.now = func() time.Time { return w.now }
	s.bg, s.cancel = context.WithCancel(context.Background())
	s.fills = newFiller(s, 4)
	if metaDir != "" {
		st, err := openMetaStore(metaDir, log)
		if err != nil {
			t.Fatal(err)
		}
		s.meta.store = st
		if err := s.restoreMeta(); err != nil {
			t.Fatal(err)
		}
	}
	w.Server = s
	t.Cleanup(func() { w.close() })
	return w
}

// close stops what Close would, without servers or etcd.
func (w *offlineWorker) close() {
	w.spawnMu.Lock()
	w.stopped = true
	w.spawnMu.Unlock()
	w.cancel()
	w.wg.Wait()
	_ = w.closeLocal()
}

func (w *offlineWorker) list(t *testing.T, dir string, sync bool) ([]string, error) {
	t.Helper()
	var names []string
	err := w.Server.list(context.Background(), "m", dir, sync, func(fi ufs.FileInfo) error {
		names = append(names, fi.Path)
		return nil
	})
	return names, err
}

// loadMeta stores what a load job would send: the stats of files and their
// directory's listing.
func (w *offlineWorker) loadMeta(t *testing.T, dir string, paths ...string) {
	t.Helper()
	req := &rpcpb.CacheMetadataRequest{MountId: "m"}
	l := &rpcpb.Listing{Path: dir}
	w.fs.mu.Lock()
	for _, p := range paths {
		fi := rpcpb.FromFileInfo(w.fs.info(p))
		req.Stats = append(req.Stats, fi)
		l.Entries = append(l.Entries, fi)
	}
	w.fs.mu.Unlock()
	req.Listings = []*rpcpb.Listing{l}
	if _, err := (&rpcService{s: w.Server}).CacheMetadata(context.Background(), req); err != nil {
		t.Fatal(err)
	}
}

func (w *offlineWorker) put(paths ...string) {
	w.fs.mu.Lock()
	defer w.fs.mu.Unlock()
	for _, p := range paths {
		w.fs.files[p] = bytes.Repeat([]byte(p), 1000)
	}
}

// TestSyncFailsWhileTheUFSIsDown: with the UFS down a cached (expired) entry
// is served, but a --sync stat or listing asks the UFS only, and fails.
func TestSyncFailsWhileTheUFSIsDown(t *testing.T) {
	w := newOfflineWorker(t, newFakeFS(), "", time.Nanosecond)
	w.put("d/a", "d/b")
	w.loadMeta(t, "d", "d/a", "d/b")
	time.Sleep(time.Millisecond) // past the TTL
	w.fs.down.Store(true)
	if _, err := w.stat(context.Background(), "m", "d/a", true); !errors.Is(err, ufs.ErrUnavailable) {
		t.Fatalf("sync stat with the UFS down: %v, want ErrUnavailable", err)
	}
	if names, err := w.list(t, "d", true); !errors.Is(err, ufs.ErrUnavailable) {
		t.Fatalf("sync listing with the UFS down: %v %v, want ErrUnavailable", names, err)
	}
	fi, err := w.stat(context.Background(), "m", "d/a", false)
	if err != nil || fi.Size != 3000 {
		t.Fatalf("stat with the UFS down: %+v %v, want the cached entry", fi, err)
	}
	if names, err := w.list(t, "d", false); err != nil || len(names) != 2 {
		t.Fatalf("listing with the UFS down: %v %v, want the cached one", names, err)
	}
	// A name the last listing of its directory does not hold is not found
	// (not "unavailable"): lookups of missing files stay cheap offline.
	if _, err := w.stat(context.Background(), "m", "d/missing", false); !errors.Is(err, ufs.ErrNotFound) {
		t.Fatalf("stat of a name the cached listing lacks, UFS down: %v, want ErrNotFound", err)
	}
}

// TestDownUFSCostsOneFailure: once the UFS failed, expired entries are
// served without asking it again, misses fail at once (so the client asks
// the next owner), one probe per interval goes through, and the first answer
// closes the breaker.
func TestDownUFSCostsOneFailure(t *testing.T) {
	w := newOfflineWorker(t, newFakeFS(), "", time.Nanosecond)
	files := []string{"d/a", "d/b", "d/c", "d/e"}
	w.put(files...)
	w.loadMeta(t, "d", files...)
	time.Sleep(time.Millisecond)
	w.fs.down.Store(true)
	ctx := context.Background()
	for _, p := range files {
		if _, err := w.stat(ctx, "m", p, false); err != nil {
			t.Fatalf("stat %s: %v", p, err)
		}
	}
	if _, err := w.list(t, "d", false); err != nil {
		t.Fatal(err)
	}
	if n := w.fs.calls.Load(); n != 1 {
		t.Fatalf("%d UFS calls for %d expired entries with the UFS down, want 1", n, len(files)+1)
	}
	// A miss fails at once, without a UFS call.
	_, err := w.stat(ctx, "m", "other/x", false)
	if !errors.Is(err, ufs.ErrUnavailable) || !strings.Contains(err.Error(), "has not answered since") {
		t.Fatalf("miss with the UFS down: %v", err)
	}
	data := &bytes.Buffer{}
	ref := w.ref(t, "d/a")
	if err := w.readRange(ctx, ref, 0, 100, data); !errors.Is(err, ufs.ErrUnavailable) {
		t.Fatalf("data miss with the UFS down: %v", err)
	}
	if n := w.fs.calls.Load(); n != 1 {
		t.Fatalf("misses with the UFS known down reached it (%d calls)", n)
	}
	// After an interval one request probes (and fails again).
	w.now = w.now.Add(probeInterval)
	if _, err := w.stat(ctx, "m", "other/x", false); !errors.Is(err, ufs.ErrUnavailable) {
		t.Fatal(err)
	}
	if n := w.fs.calls.Load(); n != 2 {
		t.Fatalf("%d UFS calls after one probe interval, want 2", n)
	}
	// The UFS comes back: the next due probe (here a background
	// revalidation of an expired entry) closes the breaker.
	w.fs.down.Store(false)
	w.now = w.now.Add(probeInterval)
	if _, err := w.stat(ctx, "m", "d/a", false); err != nil {
		t.Fatal(err)
	}
	w.close() // waits for the revalidation
	if w.health.down("m") {
		t.Fatal("the breaker stayed open after the UFS answered")
	}
}

// ref is the file reference of a fake file, as a data request makes it.
func (w *offlineWorker) ref(t *testing.T, p string) *fileRef {
	t.Helper()
	fs, err := w.openFS(context.Background(), w.mount)
	if err != nil {
		t.Fatal(err)
	}
	w.fs.mu.Lock()
	fi := w.fs.info(p)
	w.fs.mu.Unlock()
	return &fileRef{mount: w.mount, fs: fs, path: p, info: fi, id: fileID("m", p, fi)}
}

// TestMetadataSurvivesARestart: what a load stored, and what reads cached,
// is served after a restart with the UFS down, with its fingerprint and
// expiry; what was invalidated or evicted is not.
func TestMetadataSurvivesARestart(t *testing.T) {
	dir := t.TempDir()
	fs := newFakeFS()
	w := newOfflineWorker(t, fs, dir, time.Hour)
	w.put("d/a", "d/b", "e/x", "e/y")
	w.loadMeta(t, "d", "d/a", "d/b")
	if _, err := w.stat(context.Background(), "m", "e/x", false); err != nil { // cached by a read: lists e
		t.Fatal(err)
	}
	if _, err := w.stat(context.Background(), "m", "", false); err != nil {
		t.Fatal(err)
	}
	want, _ := w.meta.getStat("m", "d/a")
	if _, err := (&rpcService{s: w.Server}).Invalidate(context.Background(), &rpcpb.InvalidateRequest{MountId: "m", Paths: []string{"d/b"}}); err != nil {
		t.Fatal(err)
	}
	w.close()

	fs.down.Store(true)
	w = newOfflineWorker(t, fs, dir, time.Hour)
	ctx := context.Background()
	calls := fs.calls.Load()
	got, err := w.stat(ctx, "m", "d/a", false)
	if err != nil || got != want.fi || got.Fingerprint() != want.fi.Fingerprint() {
		t.Fatalf("stat after a restart: %+v %v, want %+v", got, err, want.fi)
	}
	if e, ok := w.meta.getStat("m", "d/a"); !ok || !e.expires.Equal(want.expires) {
		t.Fatalf("expiry after a restart: %v (fresh %v), want %v", e.expires, ok, want.expires)
	}
	for _, p := range []string{"e/x", "e/y", ""} {
		if _, err := w.stat(ctx, "m", p, false); err != nil {
			t.Fatalf("stat %q (cached by a read) after a restart: %v", p, err)
		}
	}
	if names, err := w.list(t, "e", false); err != nil || len(names) != 2 {
		t.Fatalf("listing after a restart: %v %v", names, err)
	}
	// Invalidated: the stat and the parent's listing are gone.
	if _, err := w.stat(ctx, "m", "d/b", false); !errors.Is(err, ufs.ErrUnavailable) {
		t.Fatalf("invalidated stat after a restart: %v, want a miss", err)
	}
	if _, ok := w.meta.getStaleList("m", "d"); ok {
		t.Fatal("invalidated listing back after a restart")
	}
	// Only the invalidated path's miss asked the UFS: the restored entries
	// were fresh.
	if n := fs.calls.Load() - calls; n != 1 {
		t.Fatalf("%d UFS calls after the restart, want 1", n)
	}
}

// TestMetadataStoreMirrorsEvictions: an entry the in-memory cache evicts is
// deleted from disk too, so the store stays as big as the cache.
func TestMetadataStoreMirrorsEvictions(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	st, err := openMetaStore(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	c := newMetaCache(3, time.Hour)
	c.store = st
	for i := range 5 {
		c.storeStats("m", []ufs.FileInfo{{Path: fmt.Sprintf("f%d", i), Size: int64(i)}}, time.Hour)
	}
	if err := c.sync(); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	st, err = openMetaStore(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c = newMetaCache(100, time.Hour)
	c.store = st
	rs, err := c.restore(func(string) bool { return true })
	if err != nil || rs.stats != 3 {
		t.Fatalf("restore: %+v %v, want the 3 entries the cache held", rs, err)
	}
	for i := range 5 {
		if _, ok := c.getStaleStat("m", fmt.Sprintf("f%d", i)); ok != (i >= 2) {
			t.Fatalf("f%d restored: %v", i, ok)
		}
	}
}

// TestMetadataStoreDropsWhatDoesNotDecode: a damaged record is dropped (and
// the rest served), the entries of a removed mount are deleted, and a file
// that is not a database is moved aside.
func TestMetadataStoreDropsWhatDoesNotDecode(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	st, err := openMetaStore(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	c := newMetaCache(100, time.Hour)
	c.store = st
	c.storeStats("m", []ufs.FileInfo{{Path: "a", Size: 1}, {Path: "b", Size: 2}}, time.Hour)
	c.storeStats("gone", []ufs.FileInfo{{Path: "a", Size: 1}}, time.Hour)
	if err := c.sync(); err != nil {
		t.Fatal(err)
	}
	if err := st.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("m"))
		v := append([]byte(nil), b.Get([]byte("sb"))...)
		v[len(v)/2] ^= 0xff
		return b.Put([]byte("sb"), v)
	}); err != nil {
		t.Fatal(err)
	}
	c = newMetaCache(100, time.Hour)
	c.store = st
	rs, err := c.restore(func(id string) bool { return id == "m" })
	if err != nil || rs.stats != 1 || rs.bad != 1 {
		t.Fatalf("restore: %+v %v, want 1 good and 1 bad record", rs, err)
	}
	if _, ok := c.getStaleStat("m", "a"); !ok {
		t.Fatal("the good record was not restored")
	}
	if _, ok := c.getStaleStat("gone", "a"); ok {
		t.Fatal("a removed mount's entry was restored")
	}
	_ = st.Close()

	p := filepath.Join(dir, metaLayoutDir, metaDBFile)
	if err := os.WriteFile(p, bytes.Repeat([]byte("not a database "), 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err = openMetaStore(dir, log)
	if err != nil {
		t.Fatalf("open over a corrupt file: %v", err)
	}
	defer st.Close()
	aside, _ := filepath.Glob(p + ".corrupt-*")
	if len(aside) != 1 {
		t.Fatalf("corrupt file not moved aside: %v", aside)
	}
}

func TestMetadataRecordsRoundTrip(t *testing.T) {
	exp := time.Unix(0, 1_900_000_000_123_456_789)
	for _, fi := range []ufs.FileInfo{
		{Path: "a/b.bin", Size: 1 << 40, ModTime: time.Unix(0, 1_700_000_000_987_654_321), ETag: `"9b2cf535f27731c974343645a3985328"`},
		{Path: "dir", IsDir: true},
		{Path: "ü/ä x", Size: 0, ModTime: time.Unix(-5, 0), ETag: ""},
	} {
		e, err := decodeStat(fi.Path, encodeStat(statEntry{fi: fi, expires: exp}))
		if err != nil || e.fi != fi || e.fi.Fingerprint() != fi.Fingerprint() || !e.expires.Equal(exp) {
			t.Fatalf("stat %+v came back as %+v, %v", fi, e, err)
		}
	}
	for _, dir := range []string{"", "d", "d/e"} {
		var entries []ufs.FileInfo
		for i := range 3 {
			entries = append(entries, ufs.FileInfo{Path: ufs.Join(dir, fmt.Sprintf("f%d", i)), Size: int64(i), ModTime: time.Unix(int64(i), 5), ETag: "x"})
		}
		entries = append(entries, ufs.FileInfo{Path: ufs.Join(dir, "sub"), IsDir: true})
		listed := time.Unix(0, 1_800_000_000_000_000_001)
		e, err := decodeList(dir, encodeList(dir, listEntry{entries: entries, listed: listed, expires: exp}))
		if err != nil || len(e.entries) != len(entries) || !e.listed.Equal(listed) || !e.expires.Equal(exp) {
			t.Fatalf("listing of %q: %+v, %v", dir, e, err)
		}
		for i := range entries {
			if e.entries[i] != entries[i] {
				t.Fatalf("listing of %q: entry %d is %+v, want %+v", dir, i, e.entries[i], entries[i])
			}
		}
	}
	rec := encodeStat(statEntry{fi: ufs.FileInfo{Path: "x", Size: 3}})
	for i := range rec {
		bad := append([]byte(nil), rec...)
		bad[i] ^= 0x10
		if _, err := decodeStat("x", bad); err == nil {
			t.Fatalf("a record with byte %d flipped decoded", i)
		}
	}
	if _, err := decodeStat("y", rec); err == nil {
		t.Fatal("a record decoded under another key")
	}
}

// TestExpiredEntryWaitsForTheUFSABoundedTime: a request that holds an
// expired copy waits for a UFS that does not answer at most the stale
// budget, then serves the copy; the UFS then counts as down.
func TestExpiredEntryWaitsForTheUFSABoundedTime(t *testing.T) {
	w := newOfflineWorker(t, newFakeFS(), "", time.Nanosecond)
	w.staleBudget = 50 * time.Millisecond
	w.put("d/a", "d/b")
	w.loadMeta(t, "d", "d/a", "d/b")
	time.Sleep(time.Millisecond)
	w.fs.hang.Store(true)
	start := time.Now()
	if fi, err := w.stat(context.Background(), "m", "d/a", false); err != nil || fi.Size != 3000 {
		t.Fatalf("stat of an expired entry with the UFS hanging: %+v %v", fi, err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("stat waited %s for a hanging UFS", took)
	}
	if !w.health.down("m") {
		t.Fatal("a UFS that did not answer in the budget is not counted down")
	}
	w.health.done("m", nil, false) // up again: the listing waits its own budget
	if names, err := w.list(t, "d", false); err != nil || len(names) != 2 {
		t.Fatalf("listing with the UFS hanging: %v %v", names, err)
	}
	if !w.health.down("m") {
		t.Fatal("a listing cut at its budget did not count the UFS down")
	}
}

// TestFullDiskTierIsReported: a disk tier on a full file system is reported
// degraded (with ENOSPC) and a load that could not keep a block says why.
func TestFullDiskTierIsReported(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	tiers := conf.Cache{Tiers: []conf.Tier{{Name: "ssd", Medium: "disk", Policy: "lru", Dirs: []conf.TierDir{{Path: dir, Quota: 1 << 30}}}}}
	w := newOfflineWorkerWith(t, newFakeFS(), "", time.Minute, tiers)
	w.fs.mu.Lock()
	w.fs.files["big"] = bytes.Repeat([]byte("x"), 4<<20)
	w.fs.mu.Unlock()
	if deg := w.degradedDirs(); len(deg) != 0 {
		t.Fatalf("degraded before any write: %v", deg)
	}
	ref := w.ref(t, "big")
	resp, err := w.load(context.Background(), &rpcpb.LoadRequest{MountId: "m", Path: "big", Info: rpcpb.FromFileInfo(ref.info), Blocks: []int64{0}})
	if err != nil {
		t.Fatal(err)
	}
	msg := resp.GetBlocks()[0].GetError()
	if !strings.Contains(msg, "did not keep it") || !strings.Contains(msg, "is full") || !strings.Contains(msg, dir) {
		t.Fatalf("load onto a full disk tier: %q, want a message naming the full directory", msg)
	}
	t.Logf("load says: %s", msg)
	deg := w.degradedDirs()
	if len(deg) != 1 || !deg[0].NoSpace || deg[0].Dir != dir || deg[0].Tier != "ssd" || !strings.Contains(deg[0].Error, "no space left") {
		t.Fatalf("degraded dirs: %+v", deg)
	}
	w.publishHealth(context.Background()) // no registration: only records it
	if len(w.Info().Degraded) != 1 {
		t.Fatalf("the worker's published info does not say it is degraded: %+v", w.Info())
	}
}
