// Package csie2e tests the CSI driver end to end: kubernetes-csi/csi-test's
// sanity suite and recovery scenarios against the real driver, over real FUSE
// mounts (root, /dev/fuse) of a real Strata (in-process cluster, MinIO).
package csie2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/csi"
	"github.com/stratafs/strata/tests/harness"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

var minio *harness.MinIO

func TestMain(m *testing.M) {
	harness.Main(m, func(t harness.TB) {
		if reason := fuseUnavailable(); reason != "" {
			if os.Getenv("STRATA_ALLOW_SKIP") == "1" {
				t.Skipf("CSI tests: %s", reason)
			}
			t.Fatalf("CSI tests need root and /dev/fuse: %s (STRATA_ALLOW_SKIP=1 skips them)", reason)
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

// testLogger logs warnings, or everything with STRATA_TEST_DEBUG set.
func testLogger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("STRATA_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// workDir is a temp dir for mount points; every mount left under it is
// detached when the test ends, before the directory is removed.
func workDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Cleanup(func() { detachUnder(t, dir) })
	return dir
}

// detachUnder lazily unmounts every mount at or below dir, deepest first.
func detachUnder(t *testing.T, dir string) {
	for range 64 {
		pts := mountPointsUnder(dir)
		if len(pts) == 0 {
			return
		}
		slices.SortFunc(pts, func(a, b string) int { return len(b) - len(a) })
		t.Logf("detaching a mount the test left: %s", pts[0])
		_ = unix.Unmount(pts[0], unix.MNT_DETACH)
	}
}

// mountPointsUnder lists the mount points (one per layer) at or below dir.
func mountPointsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		p := strings.ReplaceAll(f[4], `\040`, " ")
		if p == dir || strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	return out
}

// putObjects writes files into a bucket.
func putObjects(t *testing.T, bucket string, files map[string]string) {
	t.Helper()
	cli := minio.S3Client(t)
	for k, v := range files {
		_, err := cli.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: strings.NewReader(v)})
		if err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
}

// inProcessDriver serves a driver with c on dir/csi.sock; it unmounts
// everything when the test ends.
func inProcessDriver(t *testing.T, c *client.Client, dir string, tune func(*csi.Options)) (*csi.Driver, string) {
	t.Helper()
	fcfg := conf.DefaultFUSE()
	fcfg.StagingDir = filepath.Join(dir, "fuse-staging")
	fcfg.AllowOther = true
	opts := csi.Options{Version: "test", NodeID: "node-1", Client: c, Node: true, Controller: true, FUSE: fcfg,
		StateDir: filepath.Join(dir, "state"), Logger: testLogger()}
	if tune != nil {
		tune(&opts)
	}
	d, err := csi.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "csi.sock")
	l, err := csi.Listen("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- d.Serve(l) }()
	t.Cleanup(func() {
		d.Close()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		if err := d.UnmountAll(); err != nil {
			t.Errorf("unmount all: %v", err)
		}
	})
	return d, sock
}

// dialCSI connects to a driver's socket.
func dialCSI(t *testing.T, sock string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// mountCap is a mount capability with an access mode.
func mountCap(mode csipb.VolumeCapability_AccessMode_Mode) *csipb.VolumeCapability {
	return &csipb.VolumeCapability{
		AccessType: &csipb.VolumeCapability_Mount{Mount: &csipb.VolumeCapability_MountVolume{}},
		AccessMode: &csipb.VolumeCapability_AccessMode{Mode: mode},
	}
}

// stageAndPublish stages volumeID at staging and publishes it at each
// target (read-only where ro says so).
func stageAndPublish(t *testing.T, n csipb.NodeClient, volumeID string, volCtx map[string]string, staging string, targets map[string]bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rwx := mountCap(csipb.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)
	if _, err := n.NodeStageVolume(ctx, &csipb.NodeStageVolumeRequest{VolumeId: volumeID, StagingTargetPath: staging,
		VolumeCapability: rwx, VolumeContext: volCtx}); err != nil {
		t.Fatalf("stage %s: %v", volumeID, err)
	}
	for target, ro := range targets {
		if _, err := n.NodePublishVolume(ctx, &csipb.NodePublishVolumeRequest{VolumeId: volumeID, StagingTargetPath: staging,
			TargetPath: target, VolumeCapability: rwx, Readonly: ro, VolumeContext: volCtx}); err != nil {
			t.Fatalf("publish %s at %s: %v", volumeID, target, err)
		}
	}
}

// unpublishAndUnstage undoes stageAndPublish.
func unpublishAndUnstage(t *testing.T, n csipb.NodeClient, volumeID, staging string, targets []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, target := range targets {
		if _, err := n.NodeUnpublishVolume(ctx, &csipb.NodeUnpublishVolumeRequest{VolumeId: volumeID, TargetPath: target}); err != nil {
			t.Errorf("unpublish %s: %v", target, err)
		}
		if _, err := os.Stat(target); !os.IsNotExist(err) {
			t.Errorf("target %s still exists after unpublish (%v)", target, err)
		}
	}
	if _, err := n.NodeUnstageVolume(ctx, &csipb.NodeUnstageVolumeRequest{VolumeId: volumeID, StagingTargetPath: staging}); err != nil {
		t.Errorf("unstage: %v", err)
	}
}

// pod is a process in a mount namespace of its own that bind-mounts a
// volume's target path as a container runtime does, with the propagation of
// the pod's volumeMount (slave: HostToContainer; private: None).
type pod struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

// startPod starts a pod that shows target at its own directory.
func startPod(t *testing.T, target, propagation string) *pod {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pod-"+propagation)
	script := fmt.Sprintf(`set -e; mkdir -p %[1]q; mount --bind %[2]q %[1]q; echo ready
while read -r name; do cat %[1]q/"$name" 2>&1 || true; echo; echo END; done`, dir, target)
	cmd := exec.Command("unshare", "--mount", "--propagation", propagation, "sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start pod: %v", err)
	}
	p := &pod{cmd: cmd, in: in, out: bufio.NewReader(outPipe)}
	t.Cleanup(p.stop)
	line, err := p.out.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("pod (%s) did not start: %q %v", propagation, line, err)
	}
	return p
}

// read returns what the pod's cat of name printed (the content or the error).
func (p *pod) read(t *testing.T, name string) string {
	t.Helper()
	if _, err := fmt.Fprintln(p.in, name); err != nil {
		t.Fatalf("pod: %v", err)
	}
	var b strings.Builder
	for {
		line, err := p.out.ReadString('\n')
		if err != nil {
			t.Fatalf("pod: %v", err)
		}
		if line == "END\n" {
			return strings.TrimSuffix(b.String(), "\n")
		}
		b.WriteString(line)
	}
}

func (p *pod) stop() {
	_ = p.in.Close()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// waitHTTP polls url until it answers 200, or fails the test.
func waitHTTP(t *testing.T, url string, timeout time.Duration, proc *harness.Process) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if proc != nil && proc.Exited() {
			t.Fatalf("%s exited:\n%s", proc.Name, proc.Tail(4000))
		}
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return string(b)
			}
			last = fmt.Sprintf("%s: %s", resp.Status, b)
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	if proc != nil {
		t.Fatalf("%s not ready after %s: %s\n%s", url, timeout, last, proc.Tail(4000))
	}
	t.Fatalf("%s not ready after %s: %s", url, timeout, last)
	return ""
}
