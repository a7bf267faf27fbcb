// Package fusee2e tests the FUSE front-end end to end: real mounts (root,
// /dev/fuse, DirectMount) under temp dirs, served from an in-process cluster
// over MinIO and local directories, used by coreutils, Python and PyTorch.
package fusee2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/fuse"
	"github.com/stratafs/strata/tests/harness"
	"github.com/stratafs/strata/tests/testcluster"
	"golang.org/x/sync/errgroup"
)

var minio *harness.MinIO

// childEnv marks a re-executed test binary that serves a mount (see
// TestBrokenMountPointRecovery and TestSIGTERMUnmounts).
const childEnv = "STRATA_FUSEE2E_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	if os.Getenv(readerEnv) != "" {
		os.Exit(runReader())
	}
	harness.Main(m, func(t harness.TB) {
		if reason := fuseUnavailable(); reason != "" {
			if os.Getenv("STRATA_ALLOW_SKIP") == "1" {
				t.Skipf("FUSE tests: %s", reason)
			}
			t.Fatalf("FUSE tests need root and /dev/fuse: %s (STRATA_ALLOW_SKIP=1 skips them)", reason)
		}
		minio = harness.StartMinIO(t)
	})
}

// fuseUnavailable says why real mounts cannot be made here, or "".
func fuseUnavailable() string {
	if os.Geteuid() != 0 {
		return "not running as root"
	}
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return err.Error()
	}
	f.Close()
	return ""
}

// testConfig is the default FUSE configuration with a private staging dir.
func testConfig(t testing.TB) conf.FUSE {
	cfg := conf.DefaultFUSE()
	cfg.StagingDir = filepath.Join(t.TempDir(), "staging")
	return cfg
}

// mount mounts c's namespace (or subpath) under a temp dir, unmounted when
// the test ends.
func mount(t testing.TB, c *client.Client, cfg conf.FUSE, subpath string) *fuse.Server {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := fuse.Mount(ctx, dir, fuse.Options{Client: c, Config: cfg, Subpath: subpath, Logger: testLogger()})
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return srv
}

// testLogger logs warnings, or everything with STRATA_TEST_DEBUG set.
func testLogger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("STRATA_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// newCluster starts a one-worker cluster and mounts an S3 bucket (filled
// with files) at /data.
func newS3Cluster(t testing.TB, files map[string][]byte, tune func(*conf.Config)) (*testcluster.Cluster, string) {
	t.Helper()
	c := testcluster.Start(t, testcluster.Options{Tune: tune})
	bucket := minio.NewBucket(t, t.Name())
	putObjects(t, bucket, files)
	c.MustMount(t, "/data", "s3://"+bucket, minio.S3Options())
	return c, bucket
}

func putObjects(t testing.TB, bucket string, files map[string][]byte) {
	t.Helper()
	cli := minio.S3Client(t)
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(16)
	for k, v := range files {
		g.Go(func() error {
			_, err := cli.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: bytes.NewReader(v)})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("put objects: %v", err)
	}
}

func getObject(t testing.TB, bucket, key string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := minio.S3Client(t).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

func mustGetObject(t testing.TB, bucket, key string) []byte {
	t.Helper()
	b, err := getObject(t, bucket, key)
	if err != nil {
		t.Fatalf("get %s/%s: %v", bucket, key, err)
	}
	return b
}

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// run runs a command and returns its stdout, failing the test with its
// stderr on error. Commands never run inside the mount (no Dir there): the
// FUSE server shares this process.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := runErr(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return out
}

func runErr(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w\n%s", err, lastBytes(stderr.String(), 4000))
	}
	return stdout.String(), nil
}

func lastBytes(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// python is Debian's interpreter, which has torch (another python may come
// first in PATH).
const python = "/usr/bin/python3"

func needPython(t testing.TB, modules ...string) {
	t.Helper()
	args := []string{"-c", "import " + strings.Join(append([]string{"sys"}, modules...), ", ")}
	if _, err := runErr(python, args...); err != nil {
		msg := fmt.Sprintf("%s with %v is needed: %v (run scripts/install-tools.sh)", python, modules, err)
		if os.Getenv("STRATA_ALLOW_SKIP") == "1" {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
}

// writeScript writes a Python script to a temp file.
func writeScript(t testing.TB, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "script.py")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
