package fusee2e

// Benchmarks of the FUSE front-end against a plain go-fuse loopback mount,
// the local disk and MinIO itself. docs/fuse.md has the command and figures:
//
//	go test -run XXX -bench . -benchtime 3x -timeout 30m ./tests/fusee2e/

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"
	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/fuse"
	"github.com/stratafs/strata/tests/testcluster"
	"golang.org/x/sys/unix"
)

const (
	benchBigSize    = 256 << 20 // the big file read sequentially and at random
	benchRandReads  = 2000      // 4 KiB reads per random-read op
	benchSmallFiles = 5000      // small files (128 KiB each), read by 4 readers
	benchSmallSize  = 128 << 10
	benchDirFiles   = 100_000 // entries of the metadata directory
)

// seqRead reads path to the end in 1 MiB reads, from another process, and
// returns the time the reads took.
func seqRead(tb testing.TB, path string) time.Duration {
	return externalRead(tb, readerRun{dir: filepath.Dir(path), names: []string{filepath.Base(path)}, mode: "seq", readers: 1})
}

// randRead does benchRandReads 4 KiB reads at random aligned offsets of
// path, from another process.
func randRead(tb testing.TB, path string, seed uint64) time.Duration {
	return externalRead(tb, readerRun{dir: filepath.Dir(path), names: []string{filepath.Base(path)}, mode: "rand4k", readers: 1, count: benchRandReads, seed: seed})
}

// dropPageCache drops the kernel's cached pages of path (of the FUSE inode
// for a file in a mount), so the next read reaches the file system.
func dropPageCache(b testing.TB, path string) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		b.Fatal(err)
	}
}

// readSmall reads every file of names under dir, in random order, with 4
// readers of another process.
func readSmall(tb testing.TB, dir string, names []string, seed uint64) time.Duration {
	order := slices.Clone(names)
	rand.New(rand.NewPCG(seed, 3)).Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	return externalRead(tb, readerRun{dir: dir, names: order, mode: "seq", readers: 4})
}

// loopbackMount mounts go-fuse's loopback file system of dir, with the
// same kernel options as Strata's defaults.
func loopbackMount(b *testing.B, dir string) string {
	root, err := fs.NewLoopbackRoot(dir)
	if err != nil {
		b.Fatal(err)
	}
	mnt := filepath.Join(b.TempDir(), "loop")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		b.Fatal(err)
	}
	ttl := 60 * time.Second
	srv, err := fs.Mount(mnt, root, &fs.Options{
		MountOptions: gofuse.MountOptions{DirectMountStrict: true, MaxWrite: 1 << 20, DisableXAttrs: true, MaxBackground: 64, Name: "loopback"},
		AttrTimeout:  &ttl, EntryTimeout: &ttl,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Unmount() })
	return mnt
}

func benchMount(b *testing.B, c *client.Client, cfg conf.FUSE, subpath string) *fuse.Server {
	return mount(b, c, cfg, subpath)
}

func BenchmarkFUSE(b *testing.B) {
	if minio == nil {
		b.Skip("no MinIO")
	}
	ctx := context.Background()
	// The data: one big file and many small files, in MinIO and on the
	// local disk (for the disk and loopback baselines).
	local := b.TempDir()
	big := randBytes(b, benchBigSize)
	files := map[string][]byte{"big.bin": big}
	var smallNames []string
	for i := range benchSmallFiles {
		name := fmt.Sprintf("small/%02d/f%05d", i%50, i)
		files[name] = randBytes(b, benchSmallSize)
		smallNames = append(smallNames, name)
	}
	for k, v := range files {
		p := filepath.Join(local, k)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, v, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	bucket := minio.NewBucket(b, "bench")
	putObjects(b, bucket, files)
	files = nil

	// Cluster A: memory tier over MinIO. Cluster B: disk tier, with its
	// worker in this process for passthrough.
	memC := testcluster.Start(b, testcluster.Options{Tune: func(cfg *conf.Config) {
		cfg.Worker.Cache.Tiers[0].Size = 3 << 30
	}})
	memC.MustMount(b, "/data", "s3://"+bucket, minio.S3Options())
	diskDir := b.TempDir()
	diskC := testcluster.Start(b, testcluster.Options{Tune: func(cfg *conf.Config) {
		cfg.Worker.Cache.Tiers = []conf.Tier{{Name: "ssd", Medium: "disk", Policy: "lru", Dirs: []conf.TierDir{{Path: diskDir, Quota: 4 << 30}}}}
	}})
	diskC.MustMount(b, "/data", "s3://"+bucket, minio.S3Options())
	diskLocal, err := client.New(ctx, client.Options{Etcd: diskC.Etcd, Config: diskC.Config, Registry: diskC.Registry, Logger: diskC.Log, Local: diskC.Workers[0], Secrets: diskC.Secrets})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = diskLocal.Close() })

	ptOff := testConfig(b)
	ptOff.Passthrough = false
	memMnt := benchMount(b, memC.Client, testConfig(b), "/")
	diskPT := benchMount(b, diskLocal, testConfig(b), "/data")
	diskDaemon := benchMount(b, diskLocal, ptOff, "/data")
	loop := loopbackMount(b, local)

	// Warm the caches: everything through memMnt and diskDaemon.
	seqRead(b, filepath.Join(memMnt.Dir(), "data", "big.bin"))
	seqRead(b, filepath.Join(diskDaemon.Dir(), "big.bin"))
	readSmall(b, filepath.Join(memMnt.Dir(), "data"), smallNames, 0)
	readSmall(b, diskDaemon.Dir(), smallNames, 0)
	waitFullyCached(b, diskLocal, "/data/big.bin")
	for _, n := range smallNames {
		waitFullyCached(b, diskLocal, "/data/"+n)
	}

	coldMounts := 0
	coldPath := func(b *testing.B) string {
		coldMounts++
		p := fmt.Sprintf("/cold%d", coldMounts)
		memC.MustMount(b, p, "s3://"+bucket, minio.S3Options())
		return filepath.Join(memMnt.Dir(), p)
	}

	// Origin: one GET of the whole object, as MinIO serves it.
	b.Run("seq1M/minio-get", func(b *testing.B) {
		b.SetBytes(benchBigSize)
		for b.Loop() {
			out, err := minio.S3Client(b).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("big.bin")})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, out.Body); err != nil {
				b.Fatal(err)
			}
			out.Body.Close()
		}
	})
	type target struct {
		name string
		path func(b *testing.B) string // the big file, prepared for one iteration
	}
	same := func(p string, drop bool) func(b *testing.B) string {
		return func(b *testing.B) string {
			if drop {
				dropPageCache(b, p)
			}
			return p
		}
	}
	localBig := filepath.Join(local, "big.bin")
	targets := []target{
		{"disk-pagecache", same(localBig, false)},
		{"disk-nocache", same(localBig, true)},
		{"loopback", same(filepath.Join(loop, "big.bin"), true)},
		{"strata-warm-mem", same(filepath.Join(memMnt.Dir(), "data", "big.bin"), true)},
		{"strata-warm-disk-daemon", same(filepath.Join(diskDaemon.Dir(), "big.bin"), true)},
		{"strata-warm-disk-passthrough", same(filepath.Join(diskPT.Dir(), "big.bin"), true)},
		{"strata-keepcache", func(b *testing.B) string {
			// Read once: the kernel keeps the pages between opens.
			p := filepath.Join(memMnt.Dir(), "data", "big.bin")
			seqRead(b, p)
			return p
		}},
		// Last: cold runs push other data out of the memory tier.
		{"strata-cold-minio", func(b *testing.B) string { return filepath.Join(coldPath(b), "big.bin") }},
	}
	for _, tg := range targets {
		b.Run("seq1M/"+tg.name, func(b *testing.B) {
			measure(b, tg.path, func(p string, _ uint64) time.Duration { return seqRead(b, p) }, benchBigSize, 0, "")
		})
	}
	for _, tg := range targets {
		b.Run("rand4K/"+tg.name, func(b *testing.B) {
			measure(b, tg.path, func(p string, seed uint64) time.Duration { return randRead(b, p, seed) }, benchRandReads*4096, benchRandReads, "reads/s")
		})
	}

	// Small files: 5,000 × 128 KiB in random order, 4 readers.
	type smallTarget struct {
		name string
		dir  func(b *testing.B) string
	}
	freshMount := func(c *client.Client, cfg conf.FUSE, sub string) func(b *testing.B) string {
		return func(b *testing.B) string { return benchMount(b, c, cfg, sub).Dir() }
	}
	smallTargets := []smallTarget{
		{"disk-pagecache", func(*testing.B) string { return local }},
		{"loopback", func(*testing.B) string { return loop }},
		{"strata-warm-mem", freshMount(memC.Client, testConfig(b), "/data")},
		{"strata-warm-disk-daemon", freshMount(diskLocal, ptOff, "/data")},
		{"strata-warm-disk-passthrough", freshMount(diskLocal, testConfig(b), "/data")},
		{"strata-cold-minio", coldPath},
	}
	for _, st := range smallTargets {
		b.Run("small128K/"+st.name, func(b *testing.B) {
			measure(b, st.dir, func(d string, seed uint64) time.Duration { return readSmall(b, d, smallNames, seed) },
				benchSmallFiles*benchSmallSize, benchSmallFiles, "files/s")
		})
	}

	// Metadata: `ls -l` and stat of 100,000 entries of a local-UFS mount.
	metaDir := b.TempDir()
	for i := range benchDirFiles {
		if err := os.WriteFile(filepath.Join(metaDir, fmt.Sprintf("f%06d", i)), nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	memC.MustMount(b, "/meta", "file://"+metaDir, nil)
	metaLoop := loopbackMount(b, metaDir)
	lsl := func(dir string, _ uint64) time.Duration {
		start := time.Now()
		cmd := exec.Command("ls", "-l", dir)
		cmd.Stdout = io.Discard
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	metaNames := make([]string, benchDirFiles)
	for i := range metaNames {
		metaNames[i] = fmt.Sprintf("f%06d", i)
	}
	statAll := func(dir string, _ uint64) time.Duration {
		return externalRead(b, readerRun{dir: dir, names: metaNames, mode: "stat", readers: 4})
	}
	warmMeta := benchMount(b, memC.Client, testConfig(b), "/meta")
	lsl(warmMeta.Dir(), 0)
	metaTargets := []smallTarget{
		{"disk", func(*testing.B) string { return metaDir }},
		{"loopback", func(*testing.B) string { return metaLoop }},
		{"strata-fresh-mount", freshMount(memC.Client, testConfig(b), "/meta")},
		{"strata-warm", func(*testing.B) string { return warmMeta.Dir() }},
	}
	for _, mt := range metaTargets {
		b.Run("ls-l-100k/"+mt.name, func(b *testing.B) {
			measure(b, mt.dir, lsl, 0, benchDirFiles, "entries/s")
		})
		b.Run("stat-100k/"+mt.name, func(b *testing.B) {
			measure(b, mt.dir, statAll, 0, benchDirFiles, "stats/s")
		})
	}
}

// measure runs do on what prep returns, b.N times, and reports rates over
// the time do measured (the reads themselves, not process start-up or
// preparation): MB/s when bytes > 0, and units per second as unit.
func measure(b *testing.B, prep func(*testing.B) string, do func(string, uint64) time.Duration, bytes, units float64, unit string) {
	var spent time.Duration
	var seed uint64
	for b.Loop() {
		b.StopTimer()
		p := prep(b)
		b.StartTimer()
		seed++
		spent += do(p, seed)
	}
	if bytes > 0 {
		b.ReportMetric(bytes*float64(b.N)/spent.Seconds()/1e6, "MB/s")
	}
	if unit != "" {
		b.ReportMetric(units*float64(b.N)/spent.Seconds(), unit)
	}
}

// readerRun is one run of a reader process (see runReader).
type readerRun struct {
	dir     string
	names   []string
	mode    string // whole, seq, rand4k
	readers int
	count   int // rand4k: reads per file
	seed    uint64
}

// externalRead runs a reader process and returns the time it took to read.
func externalRead(tb testing.TB, r readerRun) time.Duration {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), readerEnv+"="+r.dir, "STRATA_FUSEE2E_MODE="+r.mode,
		fmt.Sprintf("STRATA_FUSEE2E_READERS=%d", r.readers), fmt.Sprintf("STRATA_FUSEE2E_COUNT=%d", r.count),
		fmt.Sprintf("STRATA_FUSEE2E_SEED=%d", r.seed))
	cmd.Stdin = strings.NewReader(strings.Join(r.names, "\n") + "\n")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("reader: %v\n%s", err, stderr.String())
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		tb.Fatalf("reader output %q: %v", out, err)
	}
	return time.Duration(ns)
}
