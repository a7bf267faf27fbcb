package tier

import (
	"encoding/binary"
	"math/bits"
	"os"
	"path/filepath"
)

// crcChunk is how many per-page CRCs are allocated together in memory, so a huge
// file with few cached pages does not cost 4 bytes per page of the whole file.
const crcChunk = 1024

func (f *diskFile) isSet(i int64) bool {
	return i >= 0 && i < f.npages && f.bits[i>>6]&(1<<(uint(i)&63)) != 0
}

func (f *diskFile) setBit(i int64, on bool) {
	if on {
		f.bits[i>>6] |= 1 << (uint(i) & 63)
	} else {
		f.bits[i>>6] &^= 1 << (uint(i) & 63)
	}
}

// bitmapByte is byte i/8 of the on-disk bitmap.
func (f *diskFile) bitmapByte(i int64) byte {
	return byte(f.bits[i>>6] >> (uint(i) & 56))
}

func (f *diskFile) crc(i int64) uint32 {
	c := f.crcs[i/crcChunk]
	if c == nil {
		return 0
	}
	return c[i%crcChunk]
}

func (f *diskFile) setCRC(i int64, v uint32) {
	ci := i / crcChunk
	if f.crcs[ci] == nil {
		n := min(crcChunk, f.npages-ci*crcChunk)
		f.crcs[ci] = make([]uint32, n)
	}
	f.crcs[ci][i%crcChunk] = v
}

func (f *diskFile) presentPages() []int64 {
	out := make([]int64, 0, f.count)
	for w, word := range f.bits {
		for word != 0 {
			b := int64(bits.TrailingZeros64(word))
			out = append(out, int64(w)*64+b)
			word &= word - 1
		}
	}
	return out
}

// create writes a new file's sidecar (through a temporary file and a rename) and
// its sparse data file of the file's size. f.mu is held.
func (d *DiskStore) create(f *diskFile) error {
	sub := filepath.Join(d.root, f.id[:2])
	if ix := hexByte(f.id); !d.madeDirs[ix].Load() {
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return err
		}
		d.madeDirs[ix].Store(true)
	}
	dataPath, sidePath := d.paths(f.id)
	hdr := encodeSidecarHeader(sidecarHeader{pageSize: d.pageSize, fileSize: f.meta.Size, expires: f.meta.Expires, path: f.meta.Path})
	tmp := sidePath + ".tmp"
	err := os.WriteFile(tmp, hdr, 0o644)
	if err == nil {
		// The CRC array and bitmap start as zeros: a sparse tail.
		err = os.Truncate(tmp, f.sideN)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, sidePath); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	data, err := os.OpenFile(dataPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err == nil {
		err = data.Truncate(f.meta.Size)
		if cerr := data.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		_ = os.Remove(sidePath)
		_ = os.Remove(dataPath)
		return err
	}
	f.onDisk, f.dirty, f.fresh = true, true, true
	f.modTime = d.now()
	return nil
}

func hexByte(id string) int {
	v := func(c byte) int {
		if c <= '9' {
			return int(c - '0')
		}
		return int(c-'a') + 10
	}
	return v(id[0])<<4 | v(id[1])
}

// markDirtyLocked sets the sidecar's dirty flag before the first change of the
// file in this session; for a file recovered clean it is synced, so that a
// later crash cannot leave changed pages behind a clean flag. f.mu is held.
func (d *DiskStore) markDirtyLocked(f *diskFile) error {
	f.muts++
	if f.dirty {
		return nil
	}
	if _, err := f.side.WriteAt([]byte{1}, dirtyOff); err != nil {
		return err
	}
	if !f.fresh {
		if err := fdatasync(f.side); err != nil {
			return err
		}
	}
	f.dirty = true
	return nil
}

// recordLocked writes a page's CRC, then its presence bit, to the sidecar and
// the in-memory index. f.mu is held.
func (d *DiskStore) recordLocked(f *diskFile, i int64, crc uint32) error {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], crc)
	if _, err := f.side.WriteAt(b[:], f.crcOff+4*i); err != nil {
		return err
	}
	f.setCRC(i, crc)
	f.setBit(i, true)
	if _, err := f.side.WriteAt([]byte{f.bitmapByte(i)}, f.bmOff+i/8); err != nil {
		f.setBit(i, false)
		return err
	}
	return nil
}
