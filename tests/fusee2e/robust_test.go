package fusee2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/fuse"
	"github.com/stratafs/strata/tests/harness"
	"github.com/stratafs/strata/tests/testcluster"
)

// TestWorkerKilledMidRead stops a worker while a file is read through the
// mount: the read completes from the next owner or the UFS, byte for byte.
func TestWorkerKilledMidRead(t *testing.T) {
	content := randBytes(t, 24<<20+99)
	c := testcluster.Start(t, testcluster.Options{Workers: 2, Tune: func(cfg *conf.Config) {
		cfg.Worker.BlockSize = 2 << 20 // blocks spread over both workers
		cfg.Client.RequestTimeout = conf.Duration(5 * time.Second)
	}})
	bucket := minio.NewBucket(t, "killed")
	putObjects(t, bucket, map[string][]byte{"f.bin": content})
	c.MustMount(t, "/data", "s3://"+bucket, minio.S3Options())
	srv := mount(t, c.Client, testConfig(t), "/data")

	f, err := os.Open(filepath.Join(srv.Dir(), "f.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := make([]byte, 0, len(content))
	buf := make([]byte, 256<<10)
	for len(got) < 6<<20 {
		n, err := f.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Workers[1].Close(ctx); err != nil {
		t.Logf("stop worker: %v", err)
	}
	rest, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("read after the worker stopped: %v", err)
	}
	got = append(got, rest...)
	if !bytes.Equal(got, content) {
		t.Fatalf("read %d bytes, want %d; content differs", len(got), len(content))
	}
	// A fresh open after the failure reads correctly too.
	if b, err := os.ReadFile(filepath.Join(srv.Dir(), "f.bin")); err != nil || !bytes.Equal(b, content) {
		t.Fatalf("reopen: %d bytes, %v", len(b), err)
	}
}

// startChild runs the test binary as a mount server of c's namespace at dir.
func startChild(t *testing.T, c *testcluster.Cluster, dir string) *harness.Process {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := harness.Start(t, "fuse-child", childEnvFor(clusterInfo(c), dir, filepath.Join(t.TempDir(), "staging")), exe)
	p.WaitReady(t, 60*time.Second, func(context.Context) error {
		if _, err := os.Stat(filepath.Join(dir, "data", "probe")); err != nil {
			return err
		}
		return nil
	})
	return p
}

// isStrataMount reports whether dir is a mount point of type fuse.strata.
func isStrataMount(t testing.TB, dir string) bool {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, _ := strings.Cut(sc.Text(), " - ")
		fields := strings.Fields(pre)
		if len(fields) > 4 && fields[4] == dir && strings.HasPrefix(post, "fuse.strata ") {
			return true
		}
	}
	return false
}

// TestBrokenMountPointRecovery kills a mount server without unmounting: the
// mount point then fails with ENOTCONN, and mounting there again recovers it.
func TestBrokenMountPointRecovery(t *testing.T) {
	c, _ := newS3Cluster(t, map[string][]byte{"probe": []byte("ok")}, nil)
	dir := filepath.Join(t.TempDir(), "mnt")
	child := startChild(t, c, dir)
	child.Kill()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("after SIGKILL of the server: statfs = %v, want ENOTCONN", err)
	}
	if _, err := os.ReadFile(filepath.Join(dir, "data", "probe")); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("after SIGKILL of the server: read = %v, want ENOTCONN", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := fuseMount(ctx, c, dir)
	if err != nil {
		t.Fatalf("mount on the broken mount point: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	if b, err := os.ReadFile(filepath.Join(dir, "data", "probe")); err != nil || string(b) != "ok" {
		t.Fatalf("read through the recovered mount: %q, %v", b, err)
	}
}

// TestSIGTERMUnmounts stops a mount server with SIGTERM: it unmounts
// cleanly and exits 0, leaving a plain directory.
func TestSIGTERMUnmounts(t *testing.T) {
	c, _ := newS3Cluster(t, map[string][]byte{"probe": []byte("ok")}, nil)
	dir := filepath.Join(t.TempDir(), "mnt")
	child := startChild(t, c, dir)
	if !isStrataMount(t, dir) {
		t.Fatalf("%s is not a mount point while the server runs", dir)
	}
	child.Stop(30 * time.Second)
	if err := child.Cmd.ProcessState; err == nil || !err.Success() {
		t.Fatalf("server exit: %v\n%s", child.Cmd.ProcessState, child.Tail(2000))
	}
	if isStrataMount(t, dir) {
		t.Fatalf("%s is still mounted after SIGTERM", dir)
	}
	if !strings.Contains(child.Tail(2000), "child: unmounted") {
		t.Errorf("the server did not report a clean unmount:\n%s", child.Tail(2000))
	}
}

// TestLargeDirectory lists 100,000 entries (streamed, with attributes from
// the listing) and stats them with `ls -l` and find.
func TestLargeDirectory(t *testing.T) {
	const n = 100_000
	src := t.TempDir()
	big := filepath.Join(src, "big")
	if err := os.Mkdir(big, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := os.WriteFile(filepath.Join(big, fmt.Sprintf("f%06d", i)), []byte(strings.Repeat("x", i%7)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := testcluster.Start(t, testcluster.Options{})
	c.MustMount(t, "/local", "file://"+src, nil)
	srv := mount(t, c.Client, testConfig(t), "/local")
	dir := filepath.Join(srv.Dir(), "big")

	out := run(t, "ls", "-l", dir)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != n+1 { // "total ..." first
		t.Fatalf("ls -l printed %d lines, want %d", len(lines), n+1)
	}
	for _, i := range []int{0, 1, 6, 99_999} {
		name := fmt.Sprintf("f%06d", i)
		want := fmt.Sprintf(" %d ", i%7)
		found := false
		for _, l := range lines {
			if strings.HasSuffix(l, " "+name) {
				found = strings.Contains(l, want)
				break
			}
		}
		if !found {
			t.Errorf("ls -l: %s not listed with size %d", name, i%7)
		}
	}
	if got := strings.Count(run(t, "find", dir, "-type", "f"), "\n"); got != n {
		t.Errorf("find found %d files, want %d", got, n)
	}
}

// fuseMount mounts c's namespace at dir with the default configuration.
func fuseMount(ctx context.Context, c *testcluster.Cluster, dir string) (*fuse.Server, error) {
	cfg := conf.DefaultFUSE()
	cfg.StagingDir = filepath.Join(filepath.Dir(dir), "staging")
	return fuse.Mount(ctx, dir, fuse.Options{Client: c.Client, Config: cfg, Logger: testLogger()})
}
