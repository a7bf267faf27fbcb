package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/tests/harness"
	"github.com/stratafs/strata/tests/testcluster"
	"github.com/stratafs/strata/ufs"
)

func readAll(t *testing.T, c *testcluster.Cluster, path string, sync bool) ([]byte, error) {
	t.Helper()
	f, err := c.Client.Open(context.Background(), path, sync)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func workerStats(c *testcluster.Cluster) (hits, misses, ufsBytes int64) {
	for _, w := range c.Workers {
		s := w.Stats()
		hits += s.GetPageHits()
		misses += s.GetPageMisses()
		ufsBytes += s.GetUfsBytes()
	}
	return
}

func TestReadThroughS3(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	bucket := minio.NewBucket(t, "readthrough")
	small := []byte("hello strata\n")
	big := randBytes(t, 21<<20+12345) // spans several fetch chunks, last page short
	putObject(t, bucket, "mnist/README", small)
	putObject(t, bucket, "mnist/train/big.bin", big)
	putObject(t, bucket, "mnist/train/dir with space/ü 名前.txt", small)
	c.MustMount(t, "/datasets/mnist", "s3://"+bucket+"/mnist", minio.S3Options())
	ctx := context.Background()

	// The namespace shows virtual directories above the mount.
	root := list(t, c, "/")
	if !slices.Equal(root, []string{"/datasets"}) {
		t.Fatalf("ls / = %v", root)
	}
	if got := list(t, c, "/datasets/mnist"); !slices.Equal(got, []string{"/datasets/mnist/README", "/datasets/mnist/train"}) {
		t.Fatalf("ls /datasets/mnist = %v", got)
	}
	if got := list(t, c, "/datasets/mnist/train"); !slices.Equal(got, []string{"/datasets/mnist/train/big.bin", "/datasets/mnist/train/dir with space"}) {
		t.Fatalf("ls train = %v", got)
	}
	fi, err := c.Client.Stat(ctx, "/datasets/mnist/train/big.bin", false)
	if err != nil || fi.Size != int64(len(big)) || fi.IsDir || fi.ETag == "" {
		t.Fatalf("stat big.bin = %+v, %v", fi, err)
	}

	got, err := readAll(t, c, "/datasets/mnist/train/big.bin", false)
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("first read: %d bytes, %v", len(got), err)
	}
	_, _, ufsAfterFirst := workerStats(c)
	if ufsAfterFirst < int64(len(big)) {
		t.Fatalf("the first read fetched %d bytes from the UFS, want >= %d", ufsAfterFirst, len(big))
	}
	hitsBefore, _, _ := workerStats(c)
	got, err = readAll(t, c, "/datasets/mnist/train/big.bin", false)
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("second read: %d bytes, %v", len(got), err)
	}
	hits, _, ufsAfterSecond := workerStats(c)
	if ufsAfterSecond != ufsAfterFirst {
		t.Errorf("the cached read went to the UFS: %d -> %d bytes", ufsAfterFirst, ufsAfterSecond)
	}
	if pages := int64(len(big)+(1<<20)-1) >> 20; hits-hitsBefore < pages {
		t.Errorf("second read: %d page hits, want >= %d", hits-hitsBefore, pages)
	}

	// Ranged reads at edges, through ReadAt.
	f, err := c.Client.Open(ctx, "/datasets/mnist/train/big.bin", false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, r := range []struct{ off, n int64 }{{0, 1}, {1<<20 - 1, 2}, {8<<20 - 3, 7}, {int64(len(big)) - 5, 5}, {int64(len(big)) - 5, 100}, {3 << 20, 16 << 20}} {
		buf := make([]byte, r.n)
		n, err := f.ReadAt(buf, r.off)
		want := big[r.off:min(r.off+r.n, int64(len(big)))]
		if !bytes.Equal(buf[:n], want) || (n < len(buf) && !errors.Is(err, io.EOF)) || (n == len(buf) && err != nil) {
			t.Errorf("ReadAt(%d, %d) = %d, %v", r.off, r.n, n, err)
		}
	}
	if n, err := f.ReadAt(make([]byte, 4), int64(len(big))); n != 0 || err != io.EOF {
		t.Errorf("ReadAt at EOF = %d, %v", n, err)
	}

	got, err = readAll(t, c, "/datasets/mnist/train/dir with space/ü 名前.txt", false)
	if err != nil || !bytes.Equal(got, small) {
		t.Errorf("unicode name: %q, %v", got, err)
	}
}

func list(t *testing.T, c *testcluster.Cluster, path string) []string {
	t.Helper()
	var out []string
	for e, err := range c.Client.List(context.Background(), path, false) {
		if err != nil {
			t.Fatalf("list %s: %v", path, err)
		}
		out = append(out, e.Path)
	}
	slices.Sort(out)
	return out
}

func TestMountValidation(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	bucket := minio.NewBucket(t, "validation")
	c.MustMount(t, "/data/a", "s3://"+bucket+"/a", minio.S3Options())
	wrongCreds := maps.Clone(minio.S3Options())
	wrongCreds["s3.secret_access_key"] = "not-the-secret"
	unreachable := maps.Clone(minio.S3Options())
	unreachable["s3.endpoint"] = "http://" + harness.Addr(harness.FreePort(t))
	unreachable["s3.max_attempts"] = "1"

	cases := []struct {
		name, path, uri string
		opts            map[string]string
		want            error
		mention         string
	}{
		{"unknown scheme", "/x", "foo://bucket/p", nil, ufs.ErrInvalidURI, `unknown scheme "foo"`},
		{"malformed URI", "/x", "s3://bu cket/%zz", nil, ufs.ErrInvalidURI, ""},
		{"no scheme", "/x", "bucket/prefix", nil, ufs.ErrInvalidURI, "no scheme"},
		{"missing bucket", "/x", "s3://no-such-bucket-strata/p", minio.S3Options(), ufs.ErrNotFound, "no-such-bucket-strata"},
		{"wrong credentials", "/x", "s3://" + bucket, wrongCreds, ufs.ErrPermission, ""},
		{"unreachable endpoint", "/x", "s3://" + bucket, unreachable, ufs.ErrUnavailable, ""},
		{"relative mount point", "data/b", "s3://" + bucket, minio.S3Options(), namespace.ErrInvalidPath, "not absolute"},
		{"dot-dot", "/data/../etc", "s3://" + bucket, minio.S3Options(), namespace.ErrInvalidPath, ".."},
		{"same mount point", "/data/a", "s3://" + bucket, minio.S3Options(), namespace.ErrMountConflict, "already a mount point"},
		{"inside a mount", "/data/a/b", "s3://" + bucket, minio.S3Options(), namespace.ErrMountConflict, "inside"},
		{"above a mount", "/data", "s3://" + bucket, minio.S3Options(), namespace.ErrMountConflict, "above"},
		{"root above a mount", "/", "s3://" + bucket, minio.S3Options(), namespace.ErrMountConflict, "above"},
		{"missing local dir", "/x", "file:///no/such/dir/strata", nil, ufs.ErrNotFound, "/no/such/dir/strata"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Mount(tc.path, tc.uri, tc.opts)
			if !errors.Is(err, tc.want) {
				t.Fatalf("mount %s %s: error %v, want %v", tc.path, tc.uri, err, tc.want)
			}
			if tc.mention != "" && !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q does not mention %q", err, tc.mention)
			}
			if strings.Contains(err.Error(), "not-the-secret") || strings.Contains(err.Error(), minio.SecretKey) {
				t.Errorf("error leaks a secret: %v", err)
			}
		})
	}
	// Nothing was stored by the refused mounts, and secrets are masked.
	resp, err := c.Coordinator().ListMounts(context.Background(), &rpcpb.ListMountsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetMounts()) != 1 || resp.GetMounts()[0].GetPath() != "/data/a" {
		t.Fatalf("mounts after refusals = %v", resp.GetMounts())
	}
	if got := resp.GetMounts()[0].GetOptions()["s3.secret_access_key"]; got != "****" {
		t.Errorf("secret in ListMounts = %q, want ****", got)
	}
	// Unmount, and unmount of a path that is not a mount point.
	if _, err := c.Coordinator().RemoveMount(context.Background(), &rpcpb.RemoveMountRequest{Path: "/data/a"}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Coordinator().RemoveMount(context.Background(), &rpcpb.RemoveMountRequest{Path: "/data/a"})
	if !errors.Is(rpcpb.FromStatus(err), namespace.ErrNotMounted) {
		t.Errorf("second unmount: %v", err)
	}
}

func TestBadPaths(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	bucket := minio.NewBucket(t, "badpaths")
	putObject(t, bucket, "dir/file", []byte("x"))
	c.MustMount(t, "/b", "s3://"+bucket, minio.S3Options())
	ctx := context.Background()
	if _, err := c.Client.Open(ctx, "/b/dir", false); !errors.Is(err, ufs.ErrIsDir) {
		t.Errorf("open a directory: %v", err)
	}
	if _, err := c.Client.Open(ctx, "/b/missing", false); !errors.Is(err, ufs.ErrNotFound) || !strings.Contains(err.Error(), "/b/missing") {
		t.Errorf("open a missing file: %v", err)
	}
	if _, err := c.Client.Open(ctx, "/elsewhere/x", false); !errors.Is(err, ufs.ErrNotFound) {
		t.Errorf("open outside every mount: %v", err)
	}
	if _, err := c.Client.Open(ctx, "/b/../etc/passwd", false); !errors.Is(err, namespace.ErrInvalidPath) {
		t.Errorf("open with ..: %v", err)
	}
	for _, err := range c.Client.List(ctx, "/b/dir/file", false) {
		if !errors.Is(err, ufs.ErrNotDir) {
			t.Errorf("list a file: %v", err)
		}
	}
}

func TestChangedObjectIsNeverServedStale(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	bucket := minio.NewBucket(t, "changed")
	v1 := bytes.Repeat([]byte("1"), 3<<20)
	v2 := bytes.Repeat([]byte("2"), 3<<20) // same size: only the ETag/mtime tells them apart
	putObject(t, bucket, "fresh/f", v1)
	putObject(t, bucket, "cached/f", v1)
	// TTL 0: every open checks the UFS.
	c.MustMount(t, "/fresh", "s3://"+bucket+"/fresh", minio.S3Options(), func(m *namespace.Mount) { m.MetadataTTL = 0 })
	// Default TTL: an open with sync (fs ls --sync, fs cat after a 412) checks.
	c.MustMount(t, "/cached", "s3://"+bucket+"/cached", minio.S3Options())
	for _, p := range []string{"/fresh/f", "/cached/f"} {
		if got, err := readAll(t, c, p, false); err != nil || !bytes.Equal(got, v1) {
			t.Fatalf("read v1 of %s: %v", p, err)
		}
	}
	putObject(t, bucket, "fresh/f", v2)
	putObject(t, bucket, "cached/f", v2)
	if got, err := readAll(t, c, "/fresh/f", false); err != nil || !bytes.Equal(got, v2) {
		t.Errorf("TTL 0 mount served stale data after a change (err %v)", err)
	}
	if got, err := readAll(t, c, "/cached/f", true); err != nil || !bytes.Equal(got, v2) {
		t.Errorf("sync open served stale data after a change (err %v)", err)
	}

	// A file opened before the change, read after it on uncached pages, fails
	// with ErrChanged rather than mixing versions.
	v3 := bytes.Repeat([]byte("3"), 3<<20)
	putObject(t, bucket, "fresh/g", v1)
	f, err := c.Client.Open(context.Background(), "/fresh/g", false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	putObject(t, bucket, "fresh/g", v3)
	if _, err := f.ReadAt(make([]byte, 10), 0); !errors.Is(err, ufs.ErrChanged) {
		t.Errorf("read of a changed object: %v, want ErrChanged", err)
	}
}

func TestUFSUnreachableMidRead(t *testing.T) {
	own := harness.StartMinIO(t) // this test stops its origin
	c := testcluster.Start(t, testcluster.Options{})
	bucket := own.NewBucket(t, "midread")
	data := randBytes(t, 40<<20)
	ctx := context.Background()
	if _, err := c.Registry.Open(ctx, "s3://"+bucket, own.S3Options()); err != nil {
		t.Fatal(err)
	}
	fs, err := c.Registry.Open(ctx, "s3://"+bucket, own.S3Options())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Put(ctx, "big", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	opts := own.S3Options()
	opts["s3.max_attempts"] = "1"
	c.MustMount(t, "/m", "s3://"+bucket, opts)
	f, err := c.Client.Open(ctx, "/m/big", false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, 1<<20)
	if _, err := f.ReadAt(head, 0); err != nil || !bytes.Equal(head, data[:1<<20]) {
		t.Fatalf("read the head: %v", err)
	}
	own.Stop(10 * time.Second)
	// The first chunk is cached, the rest is not: the worker starts answering
	// and must cut the response when the UFS fails, and the client must report
	// the failure, never a short success.
	buf := make([]byte, 30<<20)
	n, err := f.ReadAt(buf, 0)
	if err == nil {
		t.Fatalf("read across the uncached part with the UFS down succeeded (%d bytes)", n)
	}
	t.Logf("error with the UFS down: %v", err)
	// The cached part still reads.
	if _, err := f.ReadAt(head, 0); err != nil || !bytes.Equal(head, data[:1<<20]) {
		t.Errorf("cached head after the UFS went down: %v", err)
	}
}

func TestWorkerDownFallsBackToUFS(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	bucket := minio.NewBucket(t, "fallback")
	data := randBytes(t, 5<<20)
	putObject(t, bucket, "f", data)
	c.MustMount(t, "/fb", "s3://"+bucket, minio.S3Options())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Workers[0].Close(ctx); err != nil {
		t.Fatal(err)
	}
	c.WaitWorkers(t, 0)
	got, err := readAll(t, c, "/fb/f", false)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read with no worker: %d bytes, %v", len(got), err)
	}
	if got := list(t, c, "/fb"); !slices.Equal(got, []string{"/fb/f"}) {
		t.Errorf("list with no worker = %v", got)
	}
}

func TestWritesGoThroughToUFS(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Tune: func(cfg *conf.Config) { cfg.Worker.MetadataTTL = conf.Duration(time.Hour) }})
	bucket := minio.NewBucket(t, "writes")
	c.MustMount(t, "/w", "s3://"+bucket+"/out", minio.S3Options())
	c.MustMount(t, "/ro", "s3://"+bucket+"/ro", minio.S3Options(), func(m *namespace.Mount) { m.ReadOnly = true })
	ctx := context.Background()
	if got := list(t, c, "/w"); len(got) != 0 {
		t.Fatalf("new mount lists %v", got) // also primes the listing cache
	}
	data := randBytes(t, 7<<20)
	if _, err := c.Client.Create(ctx, "/w/ckpt/model.pt", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if got := getObject(t, bucket, "out/ckpt/model.pt"); !bytes.Equal(got, data) {
		t.Fatal("the UFS does not hold what was written")
	}
	// Metadata caches were invalidated: the new file lists at once.
	if got := list(t, c, "/w"); !slices.Equal(got, []string{"/w/ckpt"}) {
		t.Errorf("ls after write = %v", got)
	}
	if got, err := readAll(t, c, "/w/ckpt/model.pt", false); err != nil || !bytes.Equal(got, data) {
		t.Errorf("read back: %v", err)
	}
	if err := c.Client.Mkdir(ctx, "/w/empty/dir"); err != nil {
		t.Fatal(err)
	}
	if fi, err := c.Client.Stat(ctx, "/w/empty/dir", false); err != nil || !fi.IsDir {
		t.Errorf("stat new dir: %+v %v", fi, err)
	}
	if err := c.Client.Remove(ctx, "/w/ckpt", false); !errors.Is(err, ufs.ErrNotEmpty) {
		t.Errorf("rm non-empty dir: %v", err)
	}
	if err := c.Client.Rename(ctx, "/w/ckpt/model.pt", "/w/ckpt/final.pt"); err != nil {
		t.Fatal(err)
	}
	if got := list(t, c, "/w/ckpt"); !slices.Equal(got, []string{"/w/ckpt/final.pt"}) {
		t.Errorf("after rename: %v", got)
	}
	if err := c.Client.Remove(ctx, "/w", true); !errors.Is(err, ufs.ErrNotSupported) {
		t.Errorf("rm of a mount point: %v", err)
	}
	if err := c.Client.Remove(ctx, "/w/ckpt", true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.Stat(ctx, "/w/ckpt/final.pt", false); !errors.Is(err, ufs.ErrNotFound) {
		t.Errorf("stat after rm -r: %v", err)
	}
	_, err := c.Client.Create(ctx, "/ro/x", strings.NewReader("x"), 1)
	if !errors.Is(err, rpcpb.ErrReadOnly) {
		t.Errorf("write to a read-only mount: %v", err)
	}
	// A writer that fails midway leaves nothing behind.
	_, err = c.Client.Create(ctx, "/w/partial", io.MultiReader(bytes.NewReader(data[:1<<20]), failingReader{}), -1)
	if err == nil {
		t.Fatal("a failing writer succeeded")
	}
	if _, err := c.Client.Stat(ctx, "/w/partial", true); !errors.Is(err, ufs.ErrNotFound) {
		t.Errorf("partial upload is visible: %v", err)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk read error") }

func TestUpdateMount(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	bucket := minio.NewBucket(t, "update")
	c.MustMount(t, "/u", "s3://"+bucket, minio.S3Options())
	ctx := context.Background()
	ro := true
	resp, err := c.Coordinator().UpdateMount(ctx, &rpcpb.UpdateMountRequest{Path: "/u", ReadOnly: &ro, SetOptions: map[string]string{"s3.region": "us-east-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.GetMount().GetReadOnly() || resp.GetMount().GetOptions()["s3.secret_access_key"] != "****" {
		t.Errorf("updated mount = %v", resp.GetMount())
	}
	// A change of credentials is checked before it is stored.
	_, err = c.Coordinator().UpdateMount(ctx, &rpcpb.UpdateMountRequest{Path: "/u", SetOptions: map[string]string{"s3.secret_access_key": "wrong"}})
	if !errors.Is(rpcpb.FromStatus(err), ufs.ErrPermission) {
		t.Errorf("update to bad credentials: %v", err)
	}
	_, err = c.Coordinator().UpdateMount(ctx, &rpcpb.UpdateMountRequest{Path: "/nope", ReadOnly: &ro})
	if !errors.Is(rpcpb.FromStatus(err), namespace.ErrNotMounted) {
		t.Errorf("update of a missing mount: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, _ := c.Client.Mounts().ByPath("/u")
		if m.ReadOnly {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the client never saw the update")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := c.Client.Create(ctx, "/u/x", strings.NewReader("x"), 1); !errors.Is(err, rpcpb.ErrReadOnly) {
		t.Errorf("write after switching to read-only: %v", err)
	}
	// The stored credentials are still the good ones.
	if _, err := c.Client.Stat(ctx, "/u", true); err != nil {
		t.Errorf("stat after the refused update: %v", err)
	}
}
