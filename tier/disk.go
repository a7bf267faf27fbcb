package tier

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// layoutDir is the directory a DiskStore owns inside its configured directory.
const layoutDir = "strata-pages-v1"

// DiskOptions configure one directory of a disk tier.
type DiskOptions struct {
	// Dir is the directory; the store keeps everything under Dir/strata-pages-v1.
	Dir string
	// Quota is the byte budget, sidecars and block rounding included.
	Quota int64
	// PageSize must match the page size of the files found on disk; files cached
	// with another page size are removed on open.
	PageSize int64
	// MaxOpenFiles bounds the cached files kept open (0: 1024).
	MaxOpenFiles int
	// UnhealthyFor is how long the directory is skipped after a write error
	// (0: one minute).
	UnhealthyFor time.Duration
	Logger       *slog.Logger
	Now          func() time.Time
}

// RecoveredFile is a cached file found on disk when a DiskStore opens.
type RecoveredFile struct {
	ID      string
	Meta    FileMeta // Path, Size, Expires
	Pages   []int64  // indexes of the valid pages
	ModTime time.Time
}

// DiskStore is one directory of a disk tier: one sparse data file per cached
// file (pages at their file offsets) and a sidecar with a CRC32C per page and a
// presence bitmap; see docs/tier-layout.md. It is safe for concurrent use: the
// index is sharded by file id, reads of one file proceed in parallel, and writes
// of different pages of one file overlap.
//
// A page is written to the data file first, then its CRC and presence bit to the
// sidecar, so after a crash a page is either absent or checked: every read
// verifies the CRC, and files that were being modified when the process died
// (their sidecar's dirty flag is set) have every page verified on open.
type DiskStore struct {
	dir, root    string
	quota        int64
	pageSize     int64
	blk          int64
	maxOpen      int
	unhealthyFor time.Duration
	log          *slog.Logger
	now          func() time.Time
	lock         *os.File

	used, pages, files atomic.Int64
	writeErrors        atomic.Uint64
	noSpaceErrors      atomic.Uint64
	lastErr            atomic.Pointer[writeError] // the last failed write
	counters           dirCounters                // lifetime, kept in COUNTERS
	scrubbed           atomic.Int64               // pages the startup scrub verified
	scrubDone          atomic.Bool
	badUntil           atomic.Int64 // Unix nanoseconds
	reported           atomic.Bool
	punchWarned        atomic.Bool
	counterWarned      atomic.Bool
	closed             atomic.Bool
	bufPool            sync.Pool
	madeDirs           [256]atomic.Bool

	shards [shardCount]diskShard

	fdMu sync.Mutex
	ring []*diskFile // files with open descriptors
	hand int
}

type diskShard struct {
	mu    sync.RWMutex
	files map[string]*diskFile
	_     [40]byte
}

// diskFile is the in-memory state of one cached file in one directory.
type diskFile struct {
	id     string
	meta   FileMeta
	npages int64
	crcOff int64
	bmOff  int64
	sideN  int64 // sidecar length

	mu       sync.RWMutex
	bits     []uint64
	crcs     [][]uint32
	count    int64
	writing  map[int64]struct{}
	deferred map[int64]struct{} // removed while a FullHandle is open: punch later
	data     *os.File
	side     *os.File
	fdRefs   int // writers using data/side without holding mu
	fullRefs int
	onDisk   bool
	dirty    bool   // the sidecar's dirty flag is set on disk
	fresh    bool   // created in this session (dirty without a sync)
	muts     uint64 // mutations, for checkpoints
	ckptSeen uint64
	removed  bool
	modTime  time.Time

	recent    atomic.Bool // clock bit for descriptor eviction
	truncated atomic.Bool // a read found the data file cut short (counted once)
	inRing    bool        // guarded by DiskStore.fdMu
}

func newDiskFile(id string, meta FileMeta, pageSize int64) *diskFile {
	n := npagesOf(meta.Size, pageSize)
	_, crcOff, bmOff, total := sidecarLayout(meta.Path, n)
	return &diskFile{
		id: id, meta: meta, npages: n, crcOff: crcOff, bmOff: bmOff, sideN: total,
		bits: make([]uint64, (n+63)/64),
		crcs: make([][]uint32, (n+crcChunk-1)/crcChunk),
	}
}

// OpenDiskStore opens (creating it if needed) and recovers a disk directory: it
// keeps every complete, checksum-valid page, removes leftovers (temporary
// files, orphan data files or sidecars, files of another page size) and returns
// the files found. The directory is locked against a second user. Close
// releases it.
func OpenDiskStore(o DiskOptions) (*DiskStore, []RecoveredFile, error) {
	if o.Dir == "" || o.Quota <= 0 {
		return nil, nil, fmt.Errorf("%w: disk store needs a directory and a positive quota", ErrInvalid)
	}
	if o.PageSize <= 0 || o.PageSize&(o.PageSize-1) != 0 {
		return nil, nil, fmt.Errorf("%w: page size %d", ErrInvalid, o.PageSize)
	}
	if o.MaxOpenFiles <= 0 {
		o.MaxOpenFiles = 1024
	}
	if o.UnhealthyFor <= 0 {
		o.UnhealthyFor = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	d := &DiskStore{
		dir: o.Dir, root: filepath.Join(o.Dir, layoutDir), quota: o.Quota, pageSize: o.PageSize,
		maxOpen: o.MaxOpenFiles, unhealthyFor: o.UnhealthyFor, log: o.Logger, now: o.Now,
	}
	ps := o.PageSize
	d.bufPool.New = func() any { b := make([]byte, ps); return &b }
	for i := range d.shards {
		d.shards[i].files = map[string]*diskFile{}
	}
	if err := os.MkdirAll(d.root, 0o755); err != nil {
		return nil, nil, fmt.Errorf("tier: disk dir %s: %w", o.Dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(d.root, "LOCK"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("tier: disk dir %s: %w", o.Dir, err)
	}
	if err := lockDir(lock); err != nil {
		_ = lock.Close()
		return nil, nil, fmt.Errorf("tier: disk dir %s is in use by another process: %w", o.Dir, err)
	}
	d.lock = lock
	blk, total, err := fsInfo(d.root)
	if err != nil {
		_ = lock.Close()
		return nil, nil, fmt.Errorf("tier: disk dir %s: statfs: %w", o.Dir, err)
	}
	d.blk = blk
	if total > 0 && total < o.Quota {
		d.log.Warn("disk tier quota exceeds the file system size; the directory will be marked unhealthy when it fills up",
			"quota", o.Quota, "fs_size", total)
	}
	if err := d.counters.load(d.root); err != nil {
		d.log.Warn("integrity counters unreadable; counting from zero", "err", err)
	}
	rec, err := d.recover()
	if err != nil {
		_ = lock.Close()
		return nil, nil, err
	}
	d.saveCounters()
	return d, rec, nil
}

func roundUp(n, m int64) int64 { return (n + m - 1) / m * m }

// pageCharge is what a page of n bytes costs: whole file-system blocks.
func (d *DiskStore) pageCharge(n int64) int64 { return roundUp(n, d.blk) }

// fileCharge is what a cached file costs besides its pages: its sidecar and a
// block for the two inodes and directory entries.
func (d *DiskStore) fileCharge(f *diskFile) int64 { return roundUp(f.sideN, d.blk) + d.blk }

func (d *DiskStore) reserve(n int64) bool {
	for {
		u := d.used.Load()
		if u+n > d.quota {
			return false
		}
		if d.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

func (d *DiskStore) paths(id string) (data, side string) {
	base := filepath.Join(d.root, id[:2], id)
	return base + ".data", base + ".meta"
}

func (d *DiskStore) lookup(file string) *diskFile {
	sh := &d.shards[shardOf(file)]
	sh.mu.RLock()
	f := sh.files[file]
	sh.mu.RUnlock()
	return f
}

// fileFor returns the file's state, creating it (in memory only) if needed.
func (d *DiskStore) fileFor(id string, meta FileMeta) (*diskFile, error) {
	sh := &d.shards[shardOf(id)]
	sh.mu.RLock()
	f := sh.files[id]
	sh.mu.RUnlock()
	if f == nil {
		sh.mu.Lock()
		if f = sh.files[id]; f == nil {
			m := FileMeta{Path: meta.Path, Size: meta.Size, Expires: meta.Expires}
			f = newDiskFile(id, m, d.pageSize)
			sh.files[id] = f
			d.files.Add(1)
		}
		sh.mu.Unlock()
	}
	if f.meta.Size != meta.Size {
		return nil, fmt.Errorf("%w: file %s: size %d, but it is cached with size %d", ErrInvalid, id, meta.Size, f.meta.Size)
	}
	return f, nil
}

func (d *DiskStore) has(key PageKey) bool {
	f := d.lookup(key.File)
	if f == nil {
		return false
	}
	f.mu.RLock()
	ok := !f.removed && f.isSet(key.Index)
	f.mu.RUnlock()
	return ok
}

func (d *DiskStore) hasFile(file string) bool { return d.lookup(file) != nil }

func (d *DiskStore) need(key PageKey, meta FileMeta, n int) int64 {
	f := d.lookup(key.File)
	if f == nil {
		_, _, _, sideN := sidecarLayout(meta.Path, npagesOf(meta.Size, d.pageSize))
		return d.pageCharge(int64(n)) + roundUp(sideN, d.blk) + d.blk
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.isSet(key.Index) {
		return 0
	}
	c := d.pageCharge(int64(n))
	if !f.onDisk {
		c += d.fileCharge(f)
	}
	return c
}

// Usage implements Store.
func (d *DiskStore) Usage() Usage {
	return Usage{Capacity: d.quota, Used: d.used.Load(), Pages: d.pages.Load(), Files: d.files.Load()}
}

// Dir returns the configured directory.
func (d *DiskStore) Dir() string { return d.dir }

// Put implements Store.
func (d *DiskStore) Put(ctx context.Context, key PageKey, meta FileMeta, data []byte) error {
	if d.closed.Load() {
		return ErrClosed
	}
	if err := checkPut(key, meta, len(data), d.pageSize); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if !d.Healthy() {
		return fmt.Errorf("%w: %w: %s", ErrNoSpace, ErrUnhealthy, d.dir)
	}
	var f *diskFile
	for {
		var err error
		if f, err = d.fileFor(key.File, meta); err != nil {
			return err
		}
		f.mu.Lock()
		if !f.removed {
			break
		}
		f.mu.Unlock()
	}
	i := key.Index
	if _, busy := f.writing[i]; busy || f.isSet(i) {
		f.mu.Unlock()
		return nil
	}
	_, redo := f.deferred[i]
	var pc int64
	if !redo {
		pc = d.pageCharge(int64(len(data)))
	}
	charge := pc
	if !f.onDisk {
		charge += d.fileCharge(f)
	}
	if !d.reserve(charge) {
		f.mu.Unlock()
		d.dropIfEmpty(f)
		return ErrNoSpace // the common case under eviction: no allocation
	}
	fail := func(err error) error {
		d.used.Add(-pc)
		f.mu.Unlock()
		d.dropIfEmpty(f)
		return d.writeFailed(err)
	}
	if !f.onDisk {
		if err := d.create(f); err != nil {
			d.used.Add(-(charge - pc))
			return fail(err)
		}
	}
	if err := d.openLocked(f); err != nil {
		return fail(err)
	}
	if err := d.markDirtyLocked(f); err != nil {
		return fail(err)
	}
	if f.writing == nil {
		f.writing = map[int64]struct{}{}
	}
	f.writing[i] = struct{}{}
	f.fdRefs++
	file := f.data
	f.mu.Unlock()

	_, werr := file.WriteAt(data, i*d.pageSize)
	crc := checksum(data)

	f.mu.Lock()
	f.fdRefs--
	delete(f.writing, i)
	if f.removed {
		if f.fdRefs == 0 {
			closeFDs(f)
		}
		f.mu.Unlock()
		return nil
	}
	if werr == nil {
		werr = d.recordLocked(f, i, crc)
	}
	if werr != nil {
		if !redo {
			d.punchLocked(f, i, int64(len(data)))
		}
		return fail(werr)
	}
	delete(f.deferred, i)
	f.count++
	d.pages.Add(1)
	f.mu.Unlock()
	return nil
}

// punchLocked frees a page's bytes (best effort: a page whose presence bit is
// clear is never served, whatever the data file holds). f.mu is held.
func (d *DiskStore) punchLocked(f *diskFile, i, n int64) {
	if f.data == nil {
		if err := d.openLocked(f); err != nil {
			return
		}
	}
	if err := punchHole(f.data, i*d.pageSize, roundUp(n, d.blk)); err != nil && !d.punchWarned.Swap(true) {
		d.log.Warn("cannot punch holes in cached files; evicted pages keep using disk space until their file is removed", "err", err)
	}
}

// Get implements Store: it reads the page into a pooled buffer and verifies its
// CRC32C. A page that fails is removed and ErrNotCached with ErrChecksum is
// returned; a read error is returned as is (the Cache drops the page).
func (d *DiskStore) Get(ctx context.Context, key PageKey) (Handle, error) {
	if d.closed.Load() {
		return nil, ErrClosed
	}
	f := d.lookup(key.File)
	if f == nil {
		return nil, ErrNotCached
	}
	n := pageLen(f.meta.Size, d.pageSize, key.Index)
	if n < 0 {
		return nil, ErrNotCached
	}
	f.mu.RLock()
	for f.data == nil && !f.removed && f.isSet(key.Index) {
		f.mu.RUnlock()
		f.mu.Lock()
		err := d.openLocked(f)
		f.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("tier: open %s in %s: %w", key, d.dir, err)
		}
		f.mu.RLock()
	}
	if f.removed || !f.isSet(key.Index) {
		f.mu.RUnlock()
		return nil, ErrNotCached
	}
	want := f.crc(key.Index)
	bp := d.bufPool.Get().(*[]byte)
	buf := (*bp)[:n]
	_, err := f.data.ReadAt(buf, key.Index*d.pageSize)
	f.mu.RUnlock()
	f.recent.Store(true)
	if err != nil {
		d.bufPool.Put(bp)
		if errors.Is(err, io.EOF) && !f.truncated.Swap(true) {
			// Cut short under us: counted once per file.
			d.counters.truncated.Add(1)
		}
		return nil, fmt.Errorf("tier: read %s in %s: %w", key, d.dir, err)
	}
	if checksum(buf) != want {
		d.bufPool.Put(bp)
		d.counters.checksum.Add(1)
		_ = d.Delete(key)
		return nil, fmt.Errorf("%w: %w: %s in %s", ErrNotCached, ErrChecksum, key, d.dir)
	}
	return &diskHandle{d: d, bp: bp, b: buf}, nil
}

// Delete implements Store. The page's bytes are punched out of the data file
// at once, or when the last FullHandle on the file closes; the last page of a
// file takes the file (data and sidecar) with it.
func (d *DiskStore) Delete(key PageKey) error {
	if d.closed.Load() {
		return ErrClosed
	}
	f := d.lookup(key.File)
	if f == nil {
		return ErrNotCached
	}
	i := key.Index
	for {
		f.mu.Lock()
		if f.removed || !f.isSet(i) {
			f.mu.Unlock()
			return ErrNotCached
		}
		if f.count == 1 && len(f.writing) == 0 && f.fullRefs == 0 && len(f.deferred) == 0 {
			f.mu.Unlock()
			if d.removeIfOnly(f, i) {
				return nil
			}
			continue // the file changed meanwhile: look again
		}
		break
	}
	defer f.mu.Unlock()
	n := pageLen(f.meta.Size, d.pageSize, i)
	if err := d.openLocked(f); err != nil {
		return d.writeFailed(err)
	}
	if err := d.markDirtyLocked(f); err != nil {
		return d.writeFailed(err)
	}
	// Clear the presence bit on disk first, then punch: a crash in between
	// leaves an absent page whose bytes recovery punches.
	f.setBit(i, false)
	if _, err := f.side.WriteAt([]byte{f.bitmapByte(i)}, f.bmOff+i/8); err != nil {
		f.setBit(i, true)
		return d.writeFailed(err)
	}
	f.count--
	d.pages.Add(-1)
	if f.fullRefs > 0 {
		if f.deferred == nil {
			f.deferred = map[int64]struct{}{}
		}
		f.deferred[i] = struct{}{}
		return nil
	}
	d.punchLocked(f, i, n)
	d.used.Add(-d.pageCharge(n))
	return nil
}

// removeIfOnly removes the file when page i is its only page (and nothing else
// holds it); false when that is no longer the case.
func (d *DiskStore) removeIfOnly(f *diskFile, i int64) bool {
	sh := &d.shards[shardOf(f.id)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.removed || !f.isSet(i) || f.count != 1 || len(f.writing) > 0 || f.fullRefs > 0 || len(f.deferred) > 0 || sh.files[f.id] != f {
		return false
	}
	delete(sh.files, f.id)
	d.files.Add(-1)
	f.setBit(i, false)
	f.count = 0
	d.pages.Add(-1)
	d.used.Add(-d.pageCharge(pageLen(f.meta.Size, d.pageSize, i)))
	d.unlinkLocked(f)
	return true
}

// dropIfEmpty removes a file without pages (and without writers or open
// FullHandles) from the index and the disk.
func (d *DiskStore) dropIfEmpty(f *diskFile) {
	sh := &d.shards[shardOf(f.id)]
	sh.mu.Lock()
	f.mu.Lock()
	if !f.removed && f.count == 0 && len(f.writing) == 0 && f.fullRefs == 0 && len(f.deferred) == 0 && sh.files[f.id] == f {
		delete(sh.files, f.id)
		d.files.Add(-1)
		d.unlinkLocked(f)
	}
	f.mu.Unlock()
	sh.mu.Unlock()
}

// unlinkLocked removes the file from disk and returns its charge. f.mu is held.
func (d *DiskStore) unlinkLocked(f *diskFile) {
	f.removed = true
	if f.onDisk {
		dataPath, sidePath := d.paths(f.id)
		// Sidecar first: a data file without its sidecar is an orphan that
		// recovery removes; a sidecar without data is one too.
		if err := os.Remove(sidePath); err != nil && !errors.Is(err, os.ErrNotExist) {
			d.log.Warn("cannot remove a cached file's sidecar", "path", sidePath, "err", err)
		}
		if err := os.Remove(dataPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			d.log.Warn("cannot remove a cached file", "path", dataPath, "err", err)
		}
		d.used.Add(-d.fileCharge(f))
		f.onDisk = false
	}
	if f.fdRefs == 0 {
		closeFDs(f)
	}
}

// removeFile drops every page of a file and the file itself.
func (d *DiskStore) removeFile(file string) []int64 {
	sh := &d.shards[shardOf(file)]
	sh.mu.Lock()
	f := sh.files[file]
	if f != nil {
		delete(sh.files, file)
		d.files.Add(-1)
	}
	sh.mu.Unlock()
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.removed {
		return nil
	}
	idx := f.presentPages()
	var freed int64
	for _, i := range idx {
		freed += d.pageCharge(pageLen(f.meta.Size, d.pageSize, i))
	}
	for i := range f.deferred {
		freed += d.pageCharge(pageLen(f.meta.Size, d.pageSize, i))
	}
	f.deferred = nil
	d.used.Add(-freed)
	d.pages.Add(-f.count)
	f.count = 0
	clear(f.bits)
	d.unlinkLocked(f)
	return idx
}

// fullRange returns the data file path when every page in [first, end) (end < 0:
// to the end of the file) is present.
func (d *DiskStore) fullRange(file string, first, end int64) (string, bool) {
	f := d.lookup(file)
	if f == nil {
		return "", false
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.removed || !f.onDisk || !f.fullLocked(first, end) {
		return "", false
	}
	p, _ := d.paths(file)
	return p, true
}

func (f *diskFile) fullLocked(first, end int64) bool {
	if end < 0 || end > f.npages {
		end = f.npages
	}
	if first < 0 || first >= end {
		return false
	}
	if first == 0 && end == f.npages {
		return f.count == f.npages
	}
	for i := first; i < end; i++ {
		if !f.isSet(i) {
			return false
		}
	}
	return true
}

// openFull opens the data file of a fully cached file and defers punching its
// pages until the handle closes.
func (d *DiskStore) openFull(file string) (*FullHandle, error) {
	f := d.lookup(file)
	if f == nil {
		return nil, ErrNotCached
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.removed || !f.onDisk || !f.fullLocked(0, -1) {
		return nil, ErrNotCached
	}
	p, _ := d.paths(file)
	fh, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("tier: open %s: %w", p, err)
	}
	f.fullRefs++
	return &FullHandle{f: fh, release: func() { d.releaseFull(f) }}, nil
}

func (d *DiskStore) releaseFull(f *diskFile) {
	f.mu.Lock()
	f.fullRefs--
	if f.fullRefs > 0 || f.removed {
		f.mu.Unlock()
		return
	}
	for i := range f.deferred {
		n := pageLen(f.meta.Size, d.pageSize, i)
		if !f.isSet(i) {
			d.punchLocked(f, i, n)
		}
		d.used.Add(-d.pageCharge(n))
	}
	f.deferred = nil
	empty := f.count == 0
	f.mu.Unlock()
	if empty {
		d.dropIfEmpty(f)
	}
}

func (d *DiskStore) allFiles() []*diskFile {
	var out []*diskFile
	for i := range d.shards {
		sh := &d.shards[i]
		sh.mu.RLock()
		for _, f := range sh.files {
			out = append(out, f)
		}
		sh.mu.RUnlock()
	}
	return out
}

// Close syncs every changed file, marks it clean, closes the descriptors and
// unlocks the directory. Later calls return ErrClosed; Close is idempotent.
func (d *DiskStore) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	for _, f := range d.allFiles() {
		f.mu.Lock()
		if !f.removed && f.onDisk && f.dirty {
			d.syncClean(f)
		}
		if f.fdRefs == 0 {
			closeFDs(f)
		}
		f.mu.Unlock()
	}
	d.fdMu.Lock()
	d.ring = nil
	d.fdMu.Unlock()
	d.saveCounters()
	return d.lock.Close()
}

type diskHandle struct {
	d      *DiskStore
	bp     *[]byte
	b      []byte
	closed atomic.Bool
}

// Bytes implements Handle.
func (h *diskHandle) Bytes() []byte { return h.b }

// Close implements Handle: the buffer goes back to the pool.
func (h *diskHandle) Close() error {
	if !h.closed.Swap(true) {
		h.d.bufPool.Put(h.bp)
	}
	return nil
}
