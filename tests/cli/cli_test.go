// Package cli tests the strata binary as a user runs it: `strata local` in the
// background and the client commands against it, over a real MinIO.
package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stratafs/strata/tests/harness"
)

var (
	minio  *harness.MinIO
	binary string
)

func TestMain(m *testing.M) {
	harness.Main(m, func(t harness.TB) {
		binary = harness.BuildStrata(t)
		minio = harness.StartMinIO(t)
	})
}

// local is a running `strata local`.
type local struct {
	proc *harness.Process
	etcd string
	// certs is the certificate directory `strata local` created: its
	// client.crt is an admin, its node.crt serves daemons started beside it.
	certs string
}

func startLocal(t *testing.T) *local {
	t.Helper()
	ports := harness.FreePorts(t, 2)
	etcd, etcdPeer := "http://"+harness.Addr(ports[0]), "http://"+harness.Addr(ports[1])
	dataDir := t.TempDir()
	args := []string{"local", "--data-dir", dataDir,
		"--embed-client-url", etcd, "--embed-peer-url", etcdPeer,
		"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
		"--worker-listen", "127.0.0.1:0", "--worker-data-listen", "127.0.0.1:0", "--worker-memory", "128MiB"}
	p := harness.Start(t, "strata-local", []string{"STRATA_S3_LISTEN=127.0.0.1:0", "STRATA_HDFS_LISTEN=127.0.0.1:0"}, binary, args...)
	p.WaitReady(t, 60*time.Second, func(ctx context.Context) error {
		b, _ := os.ReadFile(p.Log)
		if !bytes.Contains(b, []byte("Strata is running")) {
			return fmt.Errorf("not started yet")
		}
		return nil
	})
	return &local{proc: p, etcd: strings.Replace(etcd, "http://", "https://", 1), certs: filepath.Join(dataDir, "certs")}
}

// run runs a client command and returns stdout, stderr and the exit code.
func (l *local) run(t *testing.T, stdin []byte, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"--etcd-endpoints", l.etcd, "--certs-dir", l.certs}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), code
}

func (l *local) ok(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := l.run(t, nil, args...)
	if code != 0 {
		t.Fatalf("strata %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

func (l *local) fails(t *testing.T, want string, args ...string) {
	t.Helper()
	_, errOut, code := l.run(t, nil, args...)
	if code == 0 {
		t.Fatalf("strata %s succeeded, want an error mentioning %q", strings.Join(args, " "), want)
	}
	if !strings.Contains(errOut, want) {
		t.Errorf("strata %s: stderr %q does not mention %q", strings.Join(args, " "), errOut, want)
	}
}

func TestTour(t *testing.T) {
	l := startLocal(t)
	bucket := minio.NewBucket(t, "tour")
	ctx := context.Background()
	s3c := minio.S3Client(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 300_000) // 4.8 MB
	for key, body := range map[string][]byte{"mnist/README": []byte("MNIST\n"), "mnist/train/big.bin": big, "mnist/test/a.txt": []byte("a\n")} {
		if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	o := minio.S3Options()
	out := l.ok(t, "fs", "mount", "/datasets/mnist", "s3://"+bucket+"/mnist",
		"--option", "s3.endpoint="+o["s3.endpoint"], "--option", "s3.access_key_id="+o["s3.access_key_id"],
		"--option", "s3.secret_access_key="+o["s3.secret_access_key"])
	if !strings.Contains(out, "mounted") {
		t.Errorf("mount said %q", out)
	}
	out = l.ok(t, "fs", "mounts")
	if !strings.Contains(out, "/datasets/mnist") || strings.Contains(out, minio.SecretKey) || !strings.Contains(out, "s3.secret_access_key=****") {
		t.Errorf("fs mounts must list the mount with its secret masked:\n%s", out)
	}
	if out := l.ok(t, "fs", "ls", "/"); strings.TrimSpace(out) != "datasets/" {
		t.Errorf("ls / = %q", out)
	}
	out = l.ok(t, "fs", "ls", "-l", "/datasets/mnist")
	if !strings.Contains(out, "README") || !strings.Contains(out, "train/") || !strings.HasPrefix(strings.TrimSpace(out), "-") && !strings.HasPrefix(strings.TrimSpace(out), "d") {
		t.Errorf("ls -l:\n%s", out)
	}
	out = l.ok(t, "fs", "ls", "-R", "/datasets/mnist")
	for _, want := range []string{"/datasets/mnist/train:", "big.bin", "/datasets/mnist/test:", "a.txt"} {
		if !strings.Contains(out, want) {
			t.Errorf("ls -R lacks %q:\n%s", want, out)
		}
	}
	out = l.ok(t, "fs", "stat", "/datasets/mnist/train/big.bin")
	if !strings.Contains(out, fmt.Sprintf("Size:     %d", len(big))) || !strings.Contains(out, "s3://"+bucket) {
		t.Errorf("stat:\n%s", out)
	}
	if out := l.ok(t, "fs", "cat", "/datasets/mnist/README"); out != "MNIST\n" {
		t.Errorf("cat = %q", out)
	}
	for range 2 { // cold, then from the cache
		if out := l.ok(t, "fs", "cat", "/datasets/mnist/train/big.bin"); sha256.Sum256([]byte(out)) != sha256.Sum256(big) {
			t.Fatal("cat of big.bin returned other bytes")
		}
	}
	if out := l.ok(t, "fs", "head", "-c", "10", "/datasets/mnist/train/big.bin"); out != "0123456789" {
		t.Errorf("head -c 10 = %q", out)
	}
	dir := t.TempDir()
	l.ok(t, "fs", "cp", "/datasets/mnist/train/big.bin", "file:"+dir)
	if got, _ := os.ReadFile(filepath.Join(dir, "big.bin")); !bytes.Equal(got, big) {
		t.Error("cp to a local dir: wrong content")
	}
	up := filepath.Join(dir, "model.pt")
	_ = os.WriteFile(up, []byte("weights"), 0o644)
	l.ok(t, "fs", "mkdir", "/datasets/mnist/ckpt")
	l.ok(t, "fs", "cp", "file:"+up, "/datasets/mnist/ckpt/model.pt")
	if out := l.ok(t, "fs", "cat", "/datasets/mnist/ckpt/model.pt"); out != "weights" {
		t.Errorf("read back the upload: %q", out)
	}
	if _, errOut, code := l.run(t, []byte("from stdin"), "fs", "cp", "-", "/datasets/mnist/ckpt/stdin.txt"); code != 0 {
		t.Fatalf("cp from stdin: %s", errOut)
	}
	l.ok(t, "fs", "mv", "/datasets/mnist/ckpt/stdin.txt", "/datasets/mnist/ckpt/moved.txt")
	if out := l.ok(t, "fs", "cat", "/datasets/mnist/ckpt/moved.txt"); out != "from stdin" {
		t.Errorf("after mv: %q", out)
	}
	l.ok(t, "fs", "rm", "-r", "/datasets/mnist/ckpt")
	l.fails(t, "not found", "fs", "stat", "/datasets/mnist/ckpt/model.pt")

	out = l.ok(t, "report")
	for _, want := range []string{"Workers: 1", "serving", "HIT RATIO", "mem", "memory"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}

	// Bad input: clear errors, exit status 1, nothing stored.
	l.fails(t, "unknown scheme", "fs", "mount", "/x", "ftp://host/dir")
	l.fails(t, "no scheme", "fs", "mount", "/x", "just-a-bucket")
	l.fails(t, "'..'", "fs", "mount", "/a/../b", "file:///tmp")
	l.fails(t, "not absolute", "fs", "mount", "relative", "file:///tmp")
	l.fails(t, "inside the mount", "fs", "mount", "/datasets/mnist/sub", "file:///tmp")
	l.fails(t, "above the mount", "fs", "mount", "/datasets", "file:///tmp")
	l.fails(t, `bucket "no-such-bucket-xyz" does not exist`, "fs", "mount", "/x", "s3://no-such-bucket-xyz",
		"--option", "s3.endpoint="+o["s3.endpoint"], "--option", "s3.access_key_id="+o["s3.access_key_id"],
		"--option", "s3.secret_access_key="+o["s3.secret_access_key"])
	l.fails(t, "permission denied", "fs", "mount", "/x", "s3://"+bucket,
		"--option", "s3.endpoint="+o["s3.endpoint"], "--option", "s3.access_key_id="+o["s3.access_key_id"],
		"--option", "s3.secret_access_key=wrong")
	l.fails(t, "is a directory", "fs", "cat", "/datasets/mnist/train")
	l.fails(t, "not found", "fs", "cat", "/datasets/mnist/nope")
	l.fails(t, "no mount holds it", "fs", "cat", "/elsewhere/file")
	if out := l.ok(t, "fs", "mounts"); strings.Count(out, "\n") != 2 {
		t.Errorf("refused mounts were stored:\n%s", out)
	}

	l.ok(t, "fs", "unmount", "/datasets/mnist")
	l.fails(t, "not a mount point", "fs", "unmount", "/datasets/mnist")

	// SIGTERM shuts down cleanly.
	l.proc.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(20 * time.Second)
	for !l.proc.Exited() {
		if time.Now().After(deadline) {
			t.Fatalf("strata local did not stop on SIGTERM:\n%s", l.proc.Tail(2000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := l.proc.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("strata local exit code %d after SIGTERM:\n%s", code, l.proc.Tail(2000))
	}
}

func TestHelpExplainsEveryCommand(t *testing.T) {
	cmds := [][]string{{}, {"local"}, {"coordinator"}, {"worker"}, {"report"}, {"fs"}, {"fs", "mount"}, {"fs", "unmount"},
		{"fs", "mounts"}, {"fs", "ls"}, {"fs", "stat"}, {"fs", "cat"}, {"fs", "head"}, {"fs", "cp"}, {"fs", "mkdir"}, {"fs", "rm"}, {"fs", "mv"},
		{"worker", "drain"}, {"worker", "undrain"}, {"fuse", "mount"}, {"fuse", "unmount"}, {"s3"}, {"s3", "serve"},
		{"load"}, {"load", "status"}, {"load", "stop"}, {"load", "list"}, {"free"}, {"fs", "pin"}, {"fs", "unpin"}, {"fs", "pins"}}
	for _, c := range cmds {
		out, err := exec.Command(binary, append(c, "--help")...).CombinedOutput()
		if err != nil {
			t.Errorf("strata %v --help: %v", c, err)
			continue
		}
		if len(c) > 0 && c[len(c)-1] != "fs" && !strings.Contains(string(out), "Examples:") {
			t.Errorf("strata %v --help has no example:\n%s", c, out)
		}
	}
}

func TestNoEtcdSaysWhatToDo(t *testing.T) {
	cmd := exec.Command(binary, "--etcd-endpoints", "http://"+harness.Addr(harness.FreePort(t)), "fs", "ls", "/")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("fs ls without etcd succeeded")
	}
	if !strings.Contains(string(out), "strata local") {
		t.Errorf("error does not say what to do:\n%s", out)
	}
}

func TestBadConfigIsReported(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yaml")
	_ = os.WriteFile(p, []byte("worker:\n  page_size: 3000\n  block_size: 1000\nlog:\n  level: loud\n"), 0o644)
	out, err := exec.Command(binary, "local", "--config", p).CombinedOutput()
	if err == nil {
		t.Fatal("local with a bad config started")
	}
	for _, want := range []string{"worker.page_size", "worker.block_size", "log.level"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("error lacks %s:\n%s", want, out)
		}
	}
}
