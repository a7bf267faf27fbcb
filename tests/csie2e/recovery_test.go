package csie2e

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/stratafs/strata/pki"
	"github.com/stratafs/strata/tests/harness"
	"github.com/stratafs/strata/tests/testcluster"
	"golang.org/x/sys/unix"
)

const helloText = "hello from strata\n"

// clientCerts makes a certs dir for a plain (read) client of c's CA:
// ca.crt, client.crt, client.key and no cluster key, as the CSI node plugin
// gets in Kubernetes.
func clientCerts(t *testing.T, c *testcluster.Cluster) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "certs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{pki.CACertFile, pki.CAKeyFile} {
		b, err := os.ReadFile(filepath.Join(c.CertsDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pki.CreateClient(dir, "csi-node", pki.RoleClient, true, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, pki.CAKeyFile)); err != nil {
		t.Fatal(err)
	}
	return dir
}

// csiProcess runs `strata csi --mode node` as its own process.
type csiProcess struct {
	bin, sock, health string
	args              []string
	proc              *harness.Process
}

func startCSIProcess(t *testing.T, bin string, c *testcluster.Cluster, dir string) *csiProcess {
	t.Helper()
	p := &csiProcess{bin: bin, sock: filepath.Join(dir, "csi.sock"), health: harness.Addr(harness.FreePort(t))}
	p.args = []string{
		"--etcd-endpoints", strings.Join(c.Config.Etcd.Endpoints, ","), "--certs-dir", clientCerts(t, c),
		"--data-dir", filepath.Join(dir, "data"), "--log-level", "debug",
		"csi", "--mode", "node", "--endpoint", "unix://" + p.sock, "--node-id", "node-1",
		"--state-dir", filepath.Join(dir, "state"), "--health-listen", p.health,
	}
	p.start(t)
	return p
}

func (p *csiProcess) start(t *testing.T) {
	t.Helper()
	p.proc = harness.Start(t, "strata-csi", nil, p.bin, p.args...)
	waitHTTP(t, "http://"+p.health+"/readyz", time.Minute, p.proc)
}

// readErr reads name under dir and returns its content or the error.
func readErr(dir, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	return string(b), err
}

// TestRecoveryAfterKill kills the driver process (which serves the FUSE
// mounts) under published volumes and checks that the next driver process
// makes the target paths read again: on the host, and in a pod's mount
// namespace that copied the target as a slave (mountPropagation:
// HostToContainer). A pod whose copy is private keeps the dead mount, which
// is why docs/kubernetes.md asks for HostToContainer. It also checks
// read-only publishing and that writes fail without the cluster key.
func TestRecoveryAfterKill(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{TLS: true})
	bucket := minio.NewBucket(t, "csi-kill")
	putObjects(t, bucket, map[string]string{"hello.txt": helloText})
	c.MustMount(t, "/data", "s3://"+bucket, minio.S3Options())
	bin := harness.BuildStrata(t)
	dir := workDir(t)
	drv := startCSIProcess(t, bin, c, dir)
	n := csipb.NewNodeClient(dialCSI(t, drv.sock))

	staging := filepath.Join(dir, "kubelet", "staging", "data")
	rw := filepath.Join(dir, "kubelet", "pods", "a", "mount")
	ro := filepath.Join(dir, "kubelet", "pods", "b", "mount")
	stageAndPublish(t, n, "/data", nil, staging, map[string]bool{rw: false, ro: true})
	for _, target := range []string{rw, ro} {
		if got, err := readErr(target, "hello.txt"); err != nil || got != helloText {
			t.Fatalf("read %s before the kill: %q, %v", target, got, err)
		}
	}
	if err := os.WriteFile(filepath.Join(ro, "new.txt"), []byte("x"), 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("write to the read-only target: %v, want EROFS", err)
	}
	if err := os.WriteFile(filepath.Join(rw, "new.txt"), []byte("x"), 0o644); !errors.Is(err, syscall.EACCES) {
		t.Errorf("write through a node plugin without the cluster key: %v, want EACCES", err)
	}
	slave := startPod(t, rw, "slave")
	private := startPod(t, rw, "private")
	for name, p := range map[string]*pod{"slave": slave, "private": private} {
		if got := p.read(t, "hello.txt"); got != helloText {
			t.Fatalf("%s pod reads %q before the kill", name, got)
		}
	}

	drv.proc.Kill()
	if _, err := readErr(rw, "hello.txt"); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("read after the driver died: %v, want ENOTCONN (the test must see the broken mount)", err)
	}
	if got := slave.read(t, "hello.txt"); !strings.Contains(got, "not connected") {
		t.Fatalf("pod read after the driver died: %q, want 'Transport endpoint is not connected'", got)
	}

	drv.start(t) // same state dir: recovers
	body := waitHTTP(t, "http://"+drv.health+"/readyz", 30*time.Second, drv.proc)
	if !strings.Contains(body, `"recovered":1`) {
		t.Errorf("readyz after recovery: %s, want recovered 1", body)
	}
	for _, target := range []string{rw, ro} {
		if got, err := readErr(target, "hello.txt"); err != nil || got != helloText {
			t.Errorf("read %s after recovery: %q, %v", target, got, err)
		}
	}
	if err := os.WriteFile(filepath.Join(ro, "new.txt"), []byte("x"), 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("write to the read-only target after recovery: %v, want EROFS", err)
	}
	if got := slave.read(t, "hello.txt"); got != helloText {
		t.Errorf("pod with HostToContainer propagation after recovery reads %q, want the file", got)
	}
	if got := private.read(t, "hello.txt"); !strings.Contains(got, "not connected") {
		t.Errorf("pod with private propagation after recovery reads %q; docs/kubernetes.md says it keeps the dead mount", got)
	}
	slave.stop()
	private.stop()

	n = csipb.NewNodeClient(dialCSI(t, drv.sock))
	unpublishAndUnstage(t, n, "/data", staging, []string{rw, ro})
	if left := mountPointsUnder(dir); len(left) > 0 {
		t.Errorf("mounts left after unpublish and unstage: %v", left)
	}
	drv.proc.Stop(10 * time.Second)
}

// TestRemountWhileRunning aborts the FUSE connection of a staged volume
// while the driver runs (as a crash of the server would end it) and checks
// that the driver mounts it again by itself and the target reads again.
func TestRemountWhileRunning(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{TLS: true})
	bucket := minio.NewBucket(t, "csi-abort")
	putObjects(t, bucket, map[string]string{"hello.txt": helloText})
	c.MustMount(t, "/data", "s3://"+bucket, minio.S3Options())
	dir := workDir(t)
	d, sock := inProcessDriver(t, c.Client, dir, nil)
	n := csipb.NewNodeClient(dialCSI(t, sock))
	staging := filepath.Join(dir, "staging")
	target := filepath.Join(dir, "pods", "a", "mount")
	stageAndPublish(t, n, "/data", nil, staging, map[string]bool{target: false})
	if got, err := readErr(target, "hello.txt"); err != nil || got != helloText {
		t.Fatalf("read before the abort: %q, %v", got, err)
	}
	abortFUSE(t, staging)
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := readErr(target, "hello.txt")
		if err == nil && got == helloText {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("target after the abort: %q, %v; the driver did not mount it again", got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st := d.Status(); st.Recovered != 1 || len(st.Broken) != 0 {
		t.Errorf("status after recovery: %+v", st)
	}
	unpublishAndUnstage(t, n, "/data", staging, []string{target})
}

// abortFUSE aborts the FUSE connection mounted at dir through fusectl.
func abortFUSE(t *testing.T, dir string) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	const ctl = "/sys/fs/fuse/connections"
	dev := uint64(unix.Major(st.Dev))<<20 | uint64(unix.Minor(st.Dev))
	abort := filepath.Join(ctl, strconv.FormatUint(dev, 10), "abort")
	if _, err := os.Stat(abort); err != nil {
		if err := unix.Mount("fusectl", ctl, "fusectl", 0, ""); err != nil && !errors.Is(err, syscall.EBUSY) {
			t.Skipf("fusectl is not mounted and cannot be: %v", err)
		}
	}
	if err := os.WriteFile(abort, []byte("1"), 0o200); err != nil {
		t.Fatalf("abort the connection: %v", err)
	}
}
