package tier

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// memPageOverhead is what one page costs beyond its bytes in a memory tier
// (store index, page header, eviction policy, file table share), charged against
// the tier's budget so that Size bounds the real memory use. Measured by
// BenchmarkIndexOverhead.
const memPageOverhead = 192

// MemStore keeps pages in memory. It is safe for concurrent use; its index is
// sharded by file id, and Get takes only a shard read lock.
type MemStore struct {
	capacity int64
	pageSize int64
	verify   bool
	pool     *sync.Pool // *[]byte of pageSize

	used   atomic.Int64
	pages  atomic.Int64
	files  atomic.Int64
	closed atomic.Bool
	shards [shardCount]memShard
}

type memShard struct {
	mu    sync.RWMutex
	files map[string]*memFile
	_     [40]byte // keep shards on separate cache lines
}

// memFile holds the pages of one file: chunks of memChunk page pointers,
// allocated when a page in them is stored (8 bytes per page of a dense file,
// no hashing). Files of more than memMaxDirect chunks find their chunks
// through a map instead of a slice, so a huge, sparsely cached file costs
// nothing for its absent chunks.
type memFile struct {
	chunks [][]*memPage         // files of up to memMaxDirect chunks
	big    map[int64][]*memPage // larger files
	npages int64
	count  int64
}

const (
	memChunk     = 1024
	memMaxDirect = 64
)

func newMemFile(size, pageSize int64) *memFile {
	n := npagesOf(size, pageSize)
	f := &memFile{npages: n}
	if nc := (n + memChunk - 1) / memChunk; nc <= memMaxDirect {
		f.chunks = make([][]*memPage, nc)
	} else {
		f.big = map[int64][]*memPage{}
	}
	return f
}

func (f *memFile) chunk(ci int64) []*memPage {
	if f.big != nil {
		return f.big[ci]
	}
	return f.chunks[ci]
}

func (f *memFile) get(i int64) *memPage {
	if i < 0 || i >= f.npages {
		return nil
	}
	if c := f.chunk(i / memChunk); c != nil {
		return c[i%memChunk]
	}
	return nil
}

// set stores p (nil: removes) at i, which must be a page of the file.
func (f *memFile) set(i int64, p *memPage) {
	ci := i / memChunk
	c := f.chunk(ci)
	if c == nil {
		if p == nil {
			return
		}
		c = make([]*memPage, min(memChunk, f.npages-ci*memChunk))
		if f.big != nil {
			f.big[ci] = c
		} else {
			f.chunks[ci] = c
		}
	}
	old := c[i%memChunk]
	c[i%memChunk] = p
	switch {
	case old == nil && p != nil:
		f.count++
	case old != nil && p == nil:
		f.count--
	}
}

func (f *memFile) each(fn func(i int64, p *memPage)) {
	visit := func(ci int64, c []*memPage) {
		for j, p := range c {
			if p != nil {
				fn(ci*memChunk+int64(j), p)
			}
		}
	}
	for ci, c := range f.chunks {
		visit(int64(ci), c)
	}
	for ci, c := range f.big {
		visit(ci, c)
	}
}

// memPage states: reader count in the low bits, removed and freed flags.
const (
	memRefMask = 1<<30 - 1
	memRemoved = 1 << 30
	memFreed   = 1 << 31
)

type memPage struct {
	data  []byte
	crc   uint32
	state atomic.Uint32
}

// NewMemStore returns a memory store of capacity bytes for pages of pageSize
// bytes. With verify, every Get checks the page's CRC32C.
func NewMemStore(capacity, pageSize int64, verify bool) *MemStore {
	s := &MemStore{capacity: capacity, pageSize: pageSize, verify: verify}
	s.pool = &sync.Pool{New: func() any { b := make([]byte, pageSize); return &b }}
	for i := range s.shards {
		s.shards[i].files = map[string]*memFile{}
	}
	return s
}

// charge is the budget one page of n bytes uses.
func (s *MemStore) charge(n int) int64 { return int64(n) + memPageOverhead }

// need is the budget a Put of key would take (0 when already present).
func (s *MemStore) need(key PageKey, _ FileMeta, n int) int64 {
	if s.has(key) {
		return 0
	}
	return s.charge(n)
}

// Get implements Store. The returned Handle shares the stored bytes (no copy).
func (s *MemStore) Get(_ context.Context, key PageKey) (Handle, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	sh := &s.shards[shardOf(key.File)]
	sh.mu.RLock()
	var p *memPage
	if f := sh.files[key.File]; f != nil {
		p = f.get(key.Index)
	}
	if p == nil {
		sh.mu.RUnlock()
		return nil, ErrNotCached
	}
	p.state.Add(1)
	sh.mu.RUnlock()
	if s.verify && checksum(p.data) != p.crc {
		s.release(p)
		_ = s.Delete(key)
		return nil, fmt.Errorf("%w: %w: %s in memory", ErrNotCached, ErrChecksum, key)
	}
	return &memHandle{s: s, p: p}, nil
}

// Put implements Store.
func (s *MemStore) Put(_ context.Context, key PageKey, meta FileMeta, data []byte) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := checkPut(key, meta, len(data), s.pageSize); err != nil {
		return err
	}
	if s.has(key) {
		return nil
	}
	c := s.charge(len(data))
	for {
		u := s.used.Load()
		if u+c > s.capacity {
			return ErrNoSpace // the common case under eviction: no allocation
		}
		if s.used.CompareAndSwap(u, u+c) {
			break
		}
	}
	var buf []byte
	if int64(len(data)) == s.pageSize {
		buf = *(s.pool.Get().(*[]byte))
	} else {
		buf = make([]byte, len(data))
	}
	copy(buf, data)
	p := &memPage{data: buf}
	if s.verify {
		p.crc = checksum(buf)
	}
	sh := &s.shards[shardOf(key.File)]
	sh.mu.Lock()
	f := sh.files[key.File]
	if f == nil {
		f = newMemFile(meta.Size, s.pageSize)
		sh.files[key.File] = f
		s.files.Add(1)
	}
	// Both conditions are read under the shard lock: once it is released a
	// concurrent Delete may empty the slot, and a duplicate Put must not then
	// look like a size mismatch.
	sizeDiffers := f.npages != npagesOf(meta.Size, s.pageSize)
	if sizeDiffers || f.get(key.Index) != nil {
		sh.mu.Unlock()
		s.used.Add(-c)
		s.recycle(buf)
		if sizeDiffers {
			return fmt.Errorf("%w: %s: file size %d differs from the cached file's", ErrInvalid, key, meta.Size)
		}
		return nil
	}
	f.set(key.Index, p)
	s.pages.Add(1)
	sh.mu.Unlock()
	return nil
}

// Delete implements Store.
func (s *MemStore) Delete(key PageKey) error {
	if s.closed.Load() {
		return ErrClosed
	}
	sh := &s.shards[shardOf(key.File)]
	sh.mu.Lock()
	f := sh.files[key.File]
	var p *memPage
	if f != nil {
		p = f.get(key.Index)
	}
	if p == nil {
		sh.mu.Unlock()
		return ErrNotCached
	}
	f.set(key.Index, nil)
	if f.count == 0 {
		delete(sh.files, key.File)
		s.files.Add(-1)
	}
	s.pages.Add(-1)
	sh.mu.Unlock()
	s.drop(p)
	return nil
}

// removeFile drops every page of a file and returns their indexes.
func (s *MemStore) removeFile(file string) []int64 {
	sh := &s.shards[shardOf(file)]
	sh.mu.Lock()
	f := sh.files[file]
	if f == nil {
		sh.mu.Unlock()
		return nil
	}
	delete(sh.files, file)
	s.files.Add(-1)
	s.pages.Add(-f.count)
	sh.mu.Unlock()
	idx := make([]int64, 0, f.count)
	f.each(func(i int64, p *memPage) {
		idx = append(idx, i)
		s.drop(p)
	})
	return idx
}

// drop marks a removed page and frees it unless a reader holds it.
func (s *MemStore) drop(p *memPage) {
	if old := p.state.Or(memRemoved); old&memRefMask == 0 {
		s.free(p)
	}
}

func (s *MemStore) release(p *memPage) {
	if v := p.state.Add(^uint32(0)); v&memRefMask == 0 && v&memRemoved != 0 {
		s.free(p)
	}
}

// free returns a removed, unreferenced page's budget (once).
func (s *MemStore) free(p *memPage) {
	for {
		v := p.state.Load()
		if v&memFreed != 0 {
			return
		}
		if p.state.CompareAndSwap(v, v|memFreed) {
			break
		}
	}
	s.used.Add(-s.charge(len(p.data)))
	s.recycle(p.data)
	p.data = nil
}

func (s *MemStore) recycle(b []byte) {
	if int64(cap(b)) == s.pageSize {
		b = b[:s.pageSize]
		s.pool.Put(&b)
	}
}

func (s *MemStore) has(key PageKey) bool {
	sh := &s.shards[shardOf(key.File)]
	sh.mu.RLock()
	f := sh.files[key.File]
	ok := f != nil && f.get(key.Index) != nil
	sh.mu.RUnlock()
	return ok
}

func (s *MemStore) hasFile(file string) bool {
	sh := &s.shards[shardOf(file)]
	sh.mu.RLock()
	ok := sh.files[file] != nil
	sh.mu.RUnlock()
	return ok
}

// Usage implements Store.
func (s *MemStore) Usage() Usage {
	return Usage{Capacity: s.capacity, Used: s.used.Load(), Pages: s.pages.Load(), Files: s.files.Load()}
}

// Close drops every page; later calls return ErrClosed. Pages held by open
// Handles stay readable until those close.
func (s *MemStore) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		files := sh.files
		sh.files = map[string]*memFile{}
		sh.mu.Unlock()
		for _, f := range files {
			f.each(func(_ int64, p *memPage) { s.drop(p) })
		}
	}
	s.pages.Store(0)
	s.files.Store(0)
	return nil
}

type memHandle struct {
	s      *MemStore
	p      *memPage
	closed atomic.Bool
}

// Bytes implements Handle.
func (h *memHandle) Bytes() []byte { return h.p.data }

// Close implements Handle: the last Close of a removed page frees it.
func (h *memHandle) Close() error {
	if !h.closed.Swap(true) {
		h.s.release(h.p)
	}
	return nil
}
