//go:build !linux

package tier

import "os"

// punchHole cannot free space here; the page's presence bit is already clear, so
// its bytes are never served. The range is zeroed so no stale data lingers.
func punchHole(f *os.File, off, n int64) error {
	_, err := f.WriteAt(make([]byte, n), off)
	return err
}

// lockDir is a no-op off Linux.
func lockDir(*os.File) error { return nil }

// fsInfo returns a 4 KiB block size and an unknown total.
func fsInfo(string) (blk, total int64, err error) { return 4096, 0, nil }

func fdatasync(f *os.File) error { return f.Sync() }
