package csi

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// mountEntry is one line of /proc/self/mountinfo.
type mountEntry struct {
	id, parent int
	dev        string // major:minor
	point      string
	fstype     string
}

// readMountinfo parses a mountinfo table.
func readMountinfo(r io.Reader) ([]mountEntry, error) {
	var out []mountEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, after := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(after) < 1 {
			continue
		}
		id, err1 := strconv.Atoi(fields[0])
		parent, err2 := strconv.Atoi(fields[1])
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, mountEntry{id: id, parent: parent, dev: fields[2], point: unescapeMountinfo(fields[4]), fstype: after[0]})
	}
	return out, sc.Err()
}

// mounts returns this process's mount table.
func mounts() ([]mountEntry, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readMountinfo(f)
}

// unescapeMountinfo decodes the \ooo escapes of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// layersAt counts the mounts stacked at path (0: not a mount point).
func layersAt(path string) (int, error) {
	ms, err := mounts()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range ms {
		if m.point == path {
			n++
		}
	}
	return n, nil
}

// realPath resolves symbolic links in the parent of p (the last element may
// be a broken mount point, which cannot be resolved) so that p compares
// equal to mountinfo's mount points.
func realPath(p string) string {
	p = filepath.Clean(p)
	dir, base := filepath.Split(p)
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		return filepath.Join(d, base)
	}
	return p
}

// pathState is what is found at a mount target.
type pathState int

const (
	pathMissing pathState = iota // nothing there
	pathDir                      // a directory, not a mount point
	pathLive                     // a mount point that answers
	pathBroken                   // a mount point whose FUSE server is gone
)

func (s pathState) String() string {
	return [...]string{"missing", "directory", "live mount", "broken mount"}[s]
}

// stateOf probes path. statfs always reaches a FUSE server (stat may be
// answered from the kernel's attribute cache of a dead one).
func stateOf(path string) (pathState, error) {
	n, err := layersAt(path)
	if err != nil {
		return pathMissing, err
	}
	var st unix.Statfs_t
	err = unix.Statfs(path, &st)
	switch {
	case err == nil && n > 0:
		return pathLive, nil
	case err == nil:
		return pathDir, nil
	case errors.Is(err, syscall.ENOTCONN) || errors.Is(err, syscall.ECONNABORTED):
		return pathBroken, nil
	case errors.Is(err, os.ErrNotExist) && n == 0:
		return pathMissing, nil
	}
	return pathMissing, fmt.Errorf("csi: probe %s: %w", path, err)
}

// bindMount binds src at dst (over whatever is mounted there), makes the new
// mount shared so that a later mount over it reaches the mount namespaces
// that copied it as slaves (containers with HostToContainer propagation),
// and makes it read-only when ro.
func bindMount(src, dst string, ro bool) error {
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("csi: bind %s at %s: %w", src, dst, err)
	}
	if err := unix.Mount("", dst, "", unix.MS_SHARED, ""); err != nil {
		_ = unix.Unmount(dst, unix.MNT_DETACH)
		return fmt.Errorf("csi: make %s shared: %w", dst, err)
	}
	if ro {
		if err := unix.Mount("", dst, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
			_ = unix.Unmount(dst, unix.MNT_DETACH)
			return fmt.Errorf("csi: make %s read-only: %w", dst, err)
		}
	}
	return nil
}

// unmountAll removes every mount stacked at path: a plain unmount first, a
// lazy one (MNT_DETACH) when busy or broken. It stops after 64 layers.
func unmountAll(path string) error {
	for range 64 {
		n, err := layersAt(path)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if err := unix.Unmount(path, 0); err != nil {
			if derr := unix.Unmount(path, unix.MNT_DETACH); derr != nil && !errors.Is(derr, syscall.EINVAL) {
				return fmt.Errorf("csi: unmount %s: %w (lazy: %v)", path, err, derr)
			}
		}
	}
	return fmt.Errorf("csi: unmount %s: more than 64 mounts stacked there", path)
}

// readOnlyMount reports whether the top mount at path is read-only.
func readOnlyMount(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Flags&unix.ST_RDONLY != 0
}

// abortConnection aborts the FUSE connection of the file system whose device
// is dev (from stat), as umount would do if the kernel could: every request
// then fails and the server's loop ends. It mounts fusectl when it is not.
func abortConnection(dev uint64) error {
	const ctl = "/sys/fs/fuse/connections"
	abort := fmt.Sprintf("%s/%d/abort", ctl, dev)
	if _, err := os.Stat(abort); errors.Is(err, os.ErrNotExist) {
		_ = unix.Mount("fusectl", ctl, "fusectl", 0, "")
	}
	return os.WriteFile(abort, []byte("1"), 0o200)
}

// deviceOf is the st_dev of path, as fusectl names the connection.
func deviceOf(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	return uint64(unix.Major(st.Dev))<<20 | uint64(unix.Minor(st.Dev)), nil
}
