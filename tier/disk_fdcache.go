package tier

import (
	"os"
)

// openLocked opens the file's descriptors. f.mu is held (write).
func (d *DiskStore) openLocked(f *diskFile) error {
	if f.data != nil {
		return nil
	}
	dataPath, sidePath := d.paths(f.id)
	data, err := os.OpenFile(dataPath, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	side, err := os.OpenFile(sidePath, os.O_RDWR, 0)
	if err != nil {
		_ = data.Close()
		return err
	}
	f.data, f.side = data, side
	f.recent.Store(true)
	d.fdMu.Lock()
	if len(d.ring) >= d.maxOpen {
		d.shedLocked(f)
	}
	if !f.inRing {
		f.inRing = true
		d.ring = append(d.ring, f)
	}
	d.fdMu.Unlock()
	return nil
}

// shedLocked closes descriptors of idle files (clock algorithm) until the ring
// is below its bound or nothing more can be closed. d.fdMu is held; self is the
// file being opened (its lock is held by the caller).
func (d *DiskStore) shedLocked(self *diskFile) {
	for steps := 2 * len(d.ring); steps > 0 && len(d.ring) >= d.maxOpen; steps-- {
		if d.hand >= len(d.ring) {
			d.hand = 0
		}
		g := d.ring[d.hand]
		if g == self || g.recent.Swap(false) || !g.mu.TryLock() {
			d.hand++
			continue
		}
		if g.fdRefs == 0 {
			closeFDs(g)
		}
		if g.data == nil {
			g.inRing = false
			last := len(d.ring) - 1
			d.ring[d.hand] = d.ring[last]
			d.ring[last] = nil
			d.ring = d.ring[:last]
		} else {
			d.hand++
		}
		g.mu.Unlock()
	}
}

func closeFDs(f *diskFile) {
	if f.data != nil {
		_ = f.data.Close()
		f.data = nil
	}
	if f.side != nil {
		_ = f.side.Close()
		f.side = nil
	}
}
