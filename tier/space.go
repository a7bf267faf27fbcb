package tier

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
)

// medium is what the Cache needs from a store beyond Store.
type medium interface {
	Store
	// need is the budget a Put of key would take now (0 when present).
	need(key PageKey, meta FileMeta, n int) int64
	has(key PageKey) bool
	hasFile(file string) bool
	// removeFile drops every page of a file and returns their indexes.
	removeFile(file string) []int64
	Close() error
}

// touchShards and touchBatch size the per-space access buffers: a hit appends its
// key to one of touchShards small buffers (picked by file hash) and only every
// touchBatch-th hit of a buffer takes the space's lock to apply them to the
// policy, so the hit path has no global lock. Before any eviction decision the
// buffers are drained in access order (a sequence number per touch), so the
// policy sees exactly the order the accesses happened in.
const (
	touchShards = 16
	touchBatch  = 64
)

// space is one eviction domain: a store (the memory of a memory tier, or one
// directory of a disk tier) and its policy.
type space struct {
	t     *tierState
	store medium
	name  string // "memory" or the directory
	dirID uint64 // hash of the directory, for rendezvous placement
	disk  *DiskStore

	mu        sync.Mutex // guards policy, parked, parkedSeq
	policy    Policy
	parked    map[PageKey]uint64 // pinned pages taken out of the policy, in eviction order
	parkedSeq uint64

	seq     atomic.Uint64
	pending atomic.Int64
	bufs    [touchShards]touchBuf
	scratch []touchItem // drain buffer, guarded by mu
}

type touchBuf struct {
	mu    sync.Mutex
	items []touchItem
	_     [32]byte
}

type touchItem struct {
	seq uint64
	key PageKey
}

func newSpace(t *tierState, store medium, name string, p Policy) *space {
	s := &space{t: t, store: store, name: name, policy: p, parked: map[PageKey]uint64{}, dirID: mix64(fileHash(name))}
	if d, ok := store.(*DiskStore); ok {
		s.disk = d
	}
	return s
}

// touch records a hit.
func (s *space) touch(key PageKey) {
	b := &s.bufs[fileHash(key.File)%touchShards]
	seq := s.seq.Add(1)
	b.mu.Lock()
	b.items = append(b.items, touchItem{seq: seq, key: key})
	full := len(b.items) >= touchBatch
	b.mu.Unlock()
	s.pending.Add(1)
	if full {
		s.mu.Lock()
		s.drainLocked()
		s.mu.Unlock()
	}
}

// drainLocked applies the buffered touches in access order. s.mu is held.
func (s *space) drainLocked() {
	if s.pending.Load() == 0 {
		return
	}
	all := s.scratch[:0]
	for i := range s.bufs {
		b := &s.bufs[i]
		b.mu.Lock()
		all = append(all, b.items...)
		b.items = b.items[:0]
		b.mu.Unlock()
	}
	s.pending.Add(-int64(len(all)))
	slices.SortFunc(all, func(a, b touchItem) int { return cmp.Compare(a.seq, b.seq) })
	for _, it := range all {
		s.policy.Touch(it.key)
	}
	clear(all) // drop the file id references
	s.scratch = all[:0]
}

// add puts a stored page under the policy (or keeps it parked).
func (s *space) add(key PageKey, n int) {
	s.mu.Lock()
	s.drainLocked()
	if _, ok := s.parked[key]; !ok {
		s.policy.Add(key, int64(n))
	}
	s.mu.Unlock()
}

// forget removes pages from the policy and the parked set.
func (s *space) forget(file string, idx ...int64) {
	s.mu.Lock()
	for _, i := range idx {
		k := PageKey{File: file, Index: i}
		s.policy.Remove(k)
		delete(s.parked, k)
	}
	s.mu.Unlock()
}

// popVictim takes the next evictable page out of the policy; pages of pinned
// files are parked instead. False when nothing is evictable.
func (s *space) popVictim(pinned func(file string) bool) (PageKey, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drainLocked()
	for {
		k, ok := s.policy.Victim()
		if !ok {
			return k, false
		}
		s.policy.Remove(k)
		if pinned(k.File) {
			s.parkedSeq++
			s.parked[k] = s.parkedSeq
			continue
		}
		return k, true
	}
}

// unpark returns parked pages whose files are no longer pinned to the policy,
// in the order they were parked (the order they were due for eviction).
func (s *space) unpark(pinned func(file string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var back []touchItem
	for k, seq := range s.parked {
		if !pinned(k.File) {
			back = append(back, touchItem{seq: seq, key: k})
		}
	}
	slices.SortFunc(back, func(a, b touchItem) int { return cmp.Compare(a.seq, b.seq) })
	for _, it := range back {
		delete(s.parked, it.key)
		s.policy.Add(it.key, 0)
	}
}

// healthy reports whether writes may go to the space now.
func (s *space) healthy() bool {
	return s.disk == nil || s.disk.Healthy()
}

// checksumFailed counts a page of the space that failed its CRC: a disk
// directory counts its own (over its life, see DiskStore), a memory tier's
// are counted per process.
func (s *space) checksumFailed() {
	if s.disk == nil {
		s.t.checksumFailures.Add(1)
	}
}
