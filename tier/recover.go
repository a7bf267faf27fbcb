package tier

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
)

// recoverStats counts what recovery did, for its log line.
type recoverStats struct {
	files, pages, verified, badPages, dropped, leftovers, truncated atomic.Int64
}

// recover rebuilds the index from the directory; see OpenDiskStore.
func (d *DiskStore) recover() ([]RecoveredFile, error) {
	entries, err := os.ReadDir(d.root)
	if err != nil {
		return nil, fmt.Errorf("tier: disk dir %s: %w", d.dir, err)
	}
	var st recoverStats
	var subs []string
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == "LOCK", name == countersFile:
		case e.IsDir() && len(name) == 2 && isLowerHex(name):
			subs = append(subs, name)
			d.madeDirs[hexByte(name)].Store(true)
		case strings.HasSuffix(name, ".tmp") && e.Type().IsRegular():
			d.removeLeftover(filepath.Join(d.root, name), &st)
		default:
			d.log.Warn("unknown entry in the cache directory left alone", "path", filepath.Join(d.root, name))
		}
	}
	var (
		mu   sync.Mutex
		out  []RecoveredFile
		wg   sync.WaitGroup
		next atomic.Int64
	)
	workers := min(len(subs), max(2, runtime.GOMAXPROCS(0)))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1)) - 1
				if k >= len(subs) {
					return
				}
				rec := d.recoverSub(subs[k], &st)
				mu.Lock()
				out = append(out, rec...)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	d.log.Info("disk tier directory recovered",
		"files", st.files.Load(), "pages", st.pages.Load(), "used", d.used.Load(), "quota", d.quota,
		"verified_pages", st.verified.Load(), "bad_pages", st.badPages.Load(),
		"dropped_files", st.dropped.Load(), "truncated_files", st.truncated.Load(), "leftovers_removed", st.leftovers.Load())
	return out, nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (d *DiskStore) removeLeftover(p string, st *recoverStats) {
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		d.log.Warn("cannot remove a leftover in the cache directory", "path", p, "err", err)
		return
	}
	st.leftovers.Add(1)
}

func (d *DiskStore) recoverSub(sub string, st *recoverStats) []RecoveredFile {
	dir := filepath.Join(d.root, sub)
	entries, err := os.ReadDir(dir)
	if err != nil {
		d.log.Warn("cannot list a cache subdirectory; its files are ignored", "path", dir, "err", err)
		return nil
	}
	metas, datas := map[string]bool{}, map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		p := filepath.Join(dir, name)
		if !e.Type().IsRegular() {
			d.log.Warn("unknown entry in the cache directory left alone", "path", p)
			continue
		}
		id, ext, _ := strings.Cut(name, ".")
		ok := validFileID(id) && strings.HasPrefix(id, sub)
		switch {
		case ok && ext == "meta":
			metas[id] = true
		case ok && ext == "data":
			datas[id] = true
		default: // temporary sidecars and anything else we did not finish
			d.removeLeftover(p, st)
		}
	}
	var out []RecoveredFile
	for id := range metas {
		dataPath, sidePath := d.paths(id)
		if !datas[id] {
			d.removeLeftover(sidePath, st)
			continue
		}
		r, err := d.recoverFile(id, st)
		if err != nil {
			d.log.Info("cached file dropped on recovery", "id", id, "reason", err)
			d.removeLeftover(sidePath, st)
			d.removeLeftover(dataPath, st)
			st.dropped.Add(1)
			continue
		}
		out = append(out, r)
	}
	for id := range datas {
		if !metas[id] {
			dataPath, _ := d.paths(id)
			d.removeLeftover(dataPath, st)
		}
	}
	return out
}

// recoverFile loads one cached file; an error means it must be removed.
func (d *DiskStore) recoverFile(id string, st *recoverStats) (RecoveredFile, error) {
	dataPath, sidePath := d.paths(id)
	b, err := os.ReadFile(sidePath)
	if err != nil {
		return RecoveredFile{}, err
	}
	h, crcs, bm, err := decodeSidecar(b)
	if err != nil {
		return RecoveredFile{}, err
	}
	if h.pageSize != d.pageSize {
		return RecoveredFile{}, fmt.Errorf("cached with page size %d, now %d", h.pageSize, d.pageSize)
	}
	if err := checkPath(h.path); err != nil {
		return RecoveredFile{}, err
	}
	dst, err := os.Stat(dataPath)
	if err != nil {
		return RecoveredFile{}, err
	}
	if dst.Size() != h.fileSize {
		if dst.Size() < h.fileSize {
			st.truncated.Add(1)
			d.counters.truncated.Add(1)
		}
		return RecoveredFile{}, fmt.Errorf("data file has %d bytes, want %d", dst.Size(), h.fileSize)
	}
	f := newDiskFile(id, FileMeta{Path: h.path, Size: h.fileSize, Expires: h.expires}, d.pageSize)
	for i := int64(0); i < f.npages; i++ {
		if bm[i/8]&(1<<(i%8)) != 0 {
			f.setBit(i, true)
			f.setCRC(i, binary.LittleEndian.Uint32(crcs[4*i:]))
			f.count++
		}
	}
	if h.dirty && f.count > 0 {
		if err := d.verifyFile(f, dataPath, sidePath, st); err != nil {
			return RecoveredFile{}, err
		}
	}
	if f.count == 0 {
		return RecoveredFile{}, errors.New("no valid page")
	}
	f.onDisk = true
	f.modTime = dst.ModTime()
	pages := f.presentPages()
	var used int64 = d.fileCharge(f)
	for _, i := range pages {
		used += d.pageCharge(pageLen(f.meta.Size, d.pageSize, i))
	}
	sh := &d.shards[shardOf(id)]
	sh.mu.Lock()
	sh.files[id] = f
	sh.mu.Unlock()
	d.files.Add(1)
	d.pages.Add(f.count)
	d.used.Add(used)
	st.files.Add(1)
	st.pages.Add(f.count)
	return RecoveredFile{ID: id, Meta: f.meta, Pages: pages, ModTime: f.modTime}, nil
}

// verifyFile checks every present page of a file that was being changed when
// the process stopped, drops the bad ones, punches the bytes of absent pages,
// makes the result durable and marks the file clean.
func (d *DiskStore) verifyFile(f *diskFile, dataPath, sidePath string, st *recoverStats) error {
	data, err := os.OpenFile(dataPath, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer data.Close()
	side, err := os.OpenFile(sidePath, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer side.Close()
	bp := d.bufPool.Get().(*[]byte)
	defer d.bufPool.Put(bp)
	for _, i := range f.presentPages() {
		n := pageLen(f.meta.Size, d.pageSize, i)
		buf := (*bp)[:n]
		st.verified.Add(1)
		if _, err := data.ReadAt(buf, i*d.pageSize); err != nil || checksum(buf) != f.crc(i) {
			f.setBit(i, false)
			f.count--
			st.badPages.Add(1)
			d.counters.checksum.Add(1)
		}
	}
	if f.count == 0 {
		return errors.New("no valid page")
	}
	// Punch every run of absent pages: torn writes and removals cut short.
	for i := int64(0); i < f.npages; {
		if f.isSet(i) {
			i++
			continue
		}
		j := i
		for j < f.npages && !f.isSet(j) {
			j++
		}
		if err := punchHole(data, i*d.pageSize, min(j*d.pageSize, roundUp(f.meta.Size, d.blk))-i*d.pageSize); err != nil && !d.punchWarned.Swap(true) {
			d.log.Warn("cannot punch holes in cached files", "err", err)
		}
		i = j
	}
	bm := make([]byte, (f.npages+7)/8)
	for j := range bm {
		bm[j] = f.bitmapByte(int64(j) * 8)
	}
	if _, err := side.WriteAt(bm, f.bmOff); err != nil {
		return err
	}
	if err := errors.Join(fdatasync(data), fdatasync(side)); err != nil {
		return err
	}
	_, err = side.WriteAt([]byte{0}, dirtyOff)
	return err
}
