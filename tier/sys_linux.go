//go:build linux

package tier

import (
	"errors"
	"os"
	"syscall"
)

const (
	fallocKeepSize  = 0x01 // FALLOC_FL_KEEP_SIZE
	fallocPunchHole = 0x02 // FALLOC_FL_PUNCH_HOLE
)

// punchHole frees the byte range [off, off+n) of f, keeping its size.
func punchHole(f *os.File, off, n int64) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var perr error
	if err := rc.Control(func(fd uintptr) {
		for {
			perr = syscall.Fallocate(int(fd), fallocPunchHole|fallocKeepSize, off, n)
			if !errors.Is(perr, syscall.EINTR) {
				return
			}
		}
	}); err != nil {
		return err
	}
	if perr != nil {
		return &os.PathError{Op: "fallocate punch_hole", Path: f.Name(), Err: perr}
	}
	return nil
}

// lockDir takes an exclusive, non-blocking flock on f.
func lockDir(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) { lerr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB) }); err != nil {
		return err
	}
	return lerr
}

// fsInfo returns the block size and total bytes of the file system holding dir.
func fsInfo(dir string) (blk, total int64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	blk = int64(st.Bsize)
	if blk <= 0 || blk > 1<<20 {
		blk = 4096
	}
	return blk, int64(st.Blocks) * int64(st.Bsize), nil
}

// fdatasync flushes f's data.
func fdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.Fdatasync(int(fd)) }); err != nil {
		return err
	}
	return serr
}
