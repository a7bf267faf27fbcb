package tier

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

// saveCounters persists the integrity counters (logged on failure: they are
// figures, not data).
func (d *DiskStore) saveCounters() {
	if err := d.counters.save(d.root); err != nil && !d.counterWarned.Swap(true) {
		d.log.Warn("cannot save the integrity counters", "err", err)
	}
}

// ChecksumFailures is how many pages of the directory failed their CRC32C
// over its life (reads, the startup scrub, crash recovery); TruncatedFiles
// how many data files were found shorter than their sidecar says. Both
// survive restarts. Safe for concurrent use.
func (d *DiskStore) ChecksumFailures() uint64 { return d.counters.checksum.Load() }

// TruncatedFiles: see ChecksumFailures.
func (d *DiskStore) TruncatedFiles() uint64 { return d.counters.truncated.Load() }

// Healthy reports whether the directory takes writes now (false for a while
// after a write error). Safe for concurrent use.
func (d *DiskStore) Healthy() bool {
	until := d.badUntil.Load()
	if until == 0 {
		return true
	}
	if d.now().UnixNano() < until {
		return false
	}
	if d.reported.CompareAndSwap(true, false) {
		d.log.Info("disk tier directory back in use after its pause")
	}
	return true
}

func (d *DiskStore) unhealthyUntil() time.Time {
	if d.Healthy() {
		return time.Time{}
	}
	return time.Unix(0, d.badUntil.Load())
}

// writeError is a failed write of a directory, as Stats reports it.
type writeError struct {
	err     error
	at      time.Time
	noSpace bool
}

// isNoSpace reports whether err says the file system is full (or the
// user's disk quota is exhausted).
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// writeFailed marks the directory unhealthy and returns the error to report.
func (d *DiskStore) writeFailed(err error) error {
	d.writeErrors.Add(1)
	we := &writeError{err: err, at: d.now(), noSpace: isNoSpace(err)}
	if we.noSpace {
		d.noSpaceErrors.Add(1)
	}
	d.lastErr.Store(we)
	d.badUntil.Store(d.now().Add(d.unhealthyFor).UnixNano())
	if !d.reported.Swap(true) {
		d.log.Warn("disk tier directory failed a write; skipped for a while", "for", d.unhealthyFor, "err", err)
	}
	return fmt.Errorf("%w: %w: %s: %w", ErrNoSpace, ErrUnhealthy, d.dir, err)
}
