package csi

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestReadMountinfo(t *testing.T) {
	const table = `22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda rw
85 22 0:50 / /var/lib/kubelet/pods/x/volumes/kubernetes.io~csi/pv\040one/mount rw,nosuid,nodev shared:40 - fuse.strata strata rw,user_id=0
86 85 0:51 / /var/lib/kubelet/pods/x/volumes/kubernetes.io~csi/pv\040one/mount ro,nosuid,nodev shared:41 - fuse.strata strata rw
garbage line
`
	ms, err := readMountinfo(strings.NewReader(table))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 {
		t.Fatalf("entries: %+v", ms)
	}
	m := ms[2]
	if m.id != 86 || m.parent != 85 || m.dev != "0:51" || m.fstype != "fuse.strata" ||
		m.point != "/var/lib/kubelet/pods/x/volumes/kubernetes.io~csi/pv one/mount" {
		t.Errorf("entry %+v", m)
	}
}

// TestBindAndUnmount binds a directory at a target twice (as a recovery
// stacks a new mount over a dead one), read-only, and unmounts every layer.
// It needs root.
func TestBindAndUnmount(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("STRATA_ALLOW_SKIP") == "1" {
			t.Skip("needs root")
		}
		t.Fatal("needs root (STRATA_ALLOW_SKIP=1 skips)")
	}
	dir := t.TempDir()
	src, target := filepath.Join(dir, "src"), filepath.Join(dir, "target")
	for _, d := range []string{src, target} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unmountAll(target) })
	if st, err := stateOf(target); err != nil || st != pathDir {
		t.Fatalf("before: %v %v", st, err)
	}
	if err := bindMount(src, target, false); err != nil {
		t.Fatal(err)
	}
	if err := bindMount(src, target, true); err != nil {
		t.Fatal(err)
	}
	if n, err := layersAt(target); err != nil || n != 2 {
		t.Fatalf("layers: %d %v", n, err)
	}
	if st, err := stateOf(target); err != nil || st != pathLive {
		t.Fatalf("bound: %v %v", st, err)
	}
	if !readOnlyMount(target) {
		t.Error("the top layer is not read-only")
	}
	if err := os.WriteFile(filepath.Join(target, "g"), []byte("y"), 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("write through the read-only bind: %v", err)
	}
	if err := unmountAll(target); err != nil {
		t.Fatal(err)
	}
	if n, _ := layersAt(target); n != 0 {
		t.Errorf("%d layers left", n)
	}
	if st, err := stateOf(filepath.Join(dir, "nothing")); err != nil || st != pathMissing {
		t.Errorf("missing: %v %v", st, err)
	}
	if err := unix.Access(target, unix.W_OK); err != nil {
		t.Errorf("target after unmount: %v", err)
	}
}

func TestToStatus(t *testing.T) {
	for err, want := range map[error]string{
		invalid("x"):                 "InvalidArgument",
		ErrNotStaged:                 "FailedPrecondition",
		ErrVolumeNotFound:            "NotFound",
		ErrConflict:                  "AlreadyExists",
		errors.New("something else"): "Internal",
		ErrBroken:                    "Unavailable",
		ErrNotReady:                  "Unavailable",
		ErrNotManaged:                "FailedPrecondition",
	} {
		if got := toStatus(err).Error(); !strings.HasPrefix(got, "rpc error: code = "+want) {
			t.Errorf("toStatus(%v) = %s, want %s", err, got, want)
		}
	}
	if toStatus(nil) != nil {
		t.Error("toStatus(nil)")
	}
}
