package tier

import (
	"errors"
)

// Checkpoint syncs the files that changed before the previous checkpoint and
// have been idle since, and clears their dirty flags, so that recovery after a
// crash only verifies recently changed files. The Cache calls it every sweep.
// Safe for concurrent use.
func (d *DiskStore) Checkpoint() {
	if d.closed.Load() {
		return
	}
	d.saveCounters()
	for _, f := range d.allFiles() {
		f.mu.Lock()
		if f.removed || !f.onDisk || !f.dirty || len(f.writing) > 0 {
			f.mu.Unlock()
			continue
		}
		if f.muts != f.ckptSeen {
			f.ckptSeen = f.muts
			f.mu.Unlock()
			continue
		}
		if err := d.openLocked(f); err != nil {
			f.mu.Unlock()
			continue
		}
		f.fdRefs++
		data, side, muts := f.data, f.side, f.muts
		f.mu.Unlock()
		err := errors.Join(fdatasync(data), fdatasync(side))
		f.mu.Lock()
		f.fdRefs--
		if err == nil && !f.removed && f.muts == muts && len(f.writing) == 0 {
			if _, err := f.side.WriteAt([]byte{0}, dirtyOff); err == nil {
				f.dirty, f.fresh = false, false
			}
		}
		if f.removed && f.fdRefs == 0 {
			closeFDs(f)
		}
		f.mu.Unlock()
	}
}

// syncClean makes a dirty file durable and clears its dirty flag. f.mu is held.
func (d *DiskStore) syncClean(f *diskFile) {
	if err := d.openLocked(f); err != nil {
		return
	}
	if fdatasync(f.data) != nil || fdatasync(f.side) != nil {
		return
	}
	if _, err := f.side.WriteAt([]byte{0}, dirtyOff); err != nil {
		return
	}
	f.dirty, f.fresh = false, false
}
