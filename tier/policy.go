package tier

import (
	"fmt"
	"math"
)

// Policy orders the pages of one store for eviction. Implementations are NOT
// safe for concurrent use: the owner (the Cache holds one lock per store) guards
// every call, as with golang-lru's simplelru.
type Policy interface {
	// Add inserts a page; adding a page already present counts as an access.
	Add(key PageKey, size int64)
	// Touch records an access; a page not present is ignored.
	Touch(key PageKey)
	// Remove forgets a page; a page not present is ignored.
	Remove(key PageKey)
	// Victim returns the page to evict next without removing it; false when
	// empty.
	Victim() (PageKey, bool)
	// Len is the number of pages.
	Len() int
}

// NewPolicy returns the policy named by a tier's configuration: "lru", or "lrfu"
// with its step and attenuation factors.
func NewPolicy(name string, step, attenuation float64) (Policy, error) {
	switch name {
	case "lru":
		return NewLRU(), nil
	case "lrfu":
		return NewLRFU(step, attenuation)
	}
	return nil, fmt.Errorf("%w: eviction policy %q is not one of lru, lrfu", ErrInvalid, name)
}

// nilIdx marks "no node" in the slab-linked structures below.
const nilIdx = -1

// LRU evicts the least recently added or touched page. It is an intrusive
// doubly linked list over a slab (int32 links, no per-page allocation), which
// keeps the index near 80 bytes per page where simplelru needs about 150.
type LRU struct {
	idx   map[PageKey]int32
	nodes []lruNode // nodes[0] is the sentinel: next = most recent, prev = least recent
	free  int32     // free list through next
}

type lruNode struct {
	key        PageKey
	prev, next int32
}

// NewLRU returns an empty LRU policy.
func NewLRU() *LRU {
	return &LRU{idx: map[PageKey]int32{}, nodes: []lruNode{{prev: 0, next: 0}}, free: nilIdx}
}

func (l *LRU) unlink(i int32) {
	n := &l.nodes[i]
	l.nodes[n.prev].next = n.next
	l.nodes[n.next].prev = n.prev
}

func (l *LRU) pushFront(i int32) {
	n := &l.nodes[i]
	n.prev = 0
	n.next = l.nodes[0].next
	l.nodes[n.next].prev = i
	l.nodes[0].next = i
}

// Add implements Policy.
func (l *LRU) Add(key PageKey, _ int64) {
	if i, ok := l.idx[key]; ok {
		l.unlink(i)
		l.pushFront(i)
		return
	}
	var i int32
	if l.free != nilIdx {
		i = l.free
		l.free = l.nodes[i].next
	} else {
		if len(l.nodes) == math.MaxInt32 {
			panic("tier: LRU holds more than 2^31 pages")
		}
		l.nodes = append(l.nodes, lruNode{})
		i = int32(len(l.nodes) - 1)
	}
	l.nodes[i].key = key
	l.idx[key] = i
	l.pushFront(i)
}

// Touch implements Policy.
func (l *LRU) Touch(key PageKey) {
	if i, ok := l.idx[key]; ok && l.nodes[0].next != i {
		l.unlink(i)
		l.pushFront(i)
	}
}

// Remove implements Policy.
func (l *LRU) Remove(key PageKey) {
	i, ok := l.idx[key]
	if !ok {
		return
	}
	delete(l.idx, key)
	l.unlink(i)
	l.nodes[i] = lruNode{next: l.free}
	l.free = i
}

// Victim implements Policy.
func (l *LRU) Victim() (PageKey, bool) {
	i := l.nodes[0].prev
	if i == 0 {
		return PageKey{}, false
	}
	return l.nodes[i].key, true
}

// Len implements Policy.
func (l *LRU) Len() int { return len(l.idx) }

// LRFU is Alluxio's Least Recently/Frequently Used policy. Each page has a
// combined recency and frequency score
//
//	CRF(now) = Σ over its accesses F(now - t_access),  F(x) = (1/attenuation)^(step·x)
//
// and the page with the smallest CRF is evicted. Time is logical: it advances by
// one on every Add or Touch of the policy, as in Alluxio. Step close to 0 makes
// it LFU-like, step 1 with a large attenuation LRU-like.
//
// Since every score decays by the same factor as time passes, the order of two
// pages never changes between their accesses: a page is kept in a min-heap on
// p = ln CRF(t_last) - t_last·ln w (w = F(1)), which only changes when the page
// is accessed, so Add, Touch and Remove are O(log n) and Victim O(1).
type LRFU struct {
	idx   map[PageKey]int32
	nodes []lrfuNode
	heap  []int32 // min-heap of node indices on prio
	free  []int32
	now   float64 // logical clock
	lnw   float64 // ln F(1) = -step·ln(attenuation), < 0
}

type lrfuNode struct {
	key  PageKey
	prio float64
	pos  int32 // index in heap
}

// NewLRFU returns an empty LRFU policy; step in (0, 1], attenuation ≥ 2 (0 for
// either means the default: 0.25 and 2, Alluxio's defaults). ErrInvalid for
// other values.
func NewLRFU(step, attenuation float64) (*LRFU, error) {
	if step == 0 {
		step = 0.25
	}
	if attenuation == 0 {
		attenuation = 2
	}
	if !(step > 0 && step <= 1) || !(attenuation >= 2) || math.IsInf(attenuation, 0) {
		return nil, fmt.Errorf("%w: LRFU step factor %v must be in (0, 1] and attenuation factor %v at least 2", ErrInvalid, step, attenuation)
	}
	return &LRFU{idx: map[PageKey]int32{}, lnw: -step * math.Log(attenuation)}, nil
}

// access records an access of node i at the current logical time.
func (f *LRFU) access(i int32) {
	n := &f.nodes[i]
	// ln CRF just before this access, decayed to now.
	lnPrev := n.prio + f.now*f.lnw
	// CRF(now) = CRF_prev·decay + F(0), with F(0) = 1.
	n.prio = math.Log1p(math.Exp(lnPrev)) - f.now*f.lnw
}

// Add implements Policy.
func (f *LRFU) Add(key PageKey, _ int64) {
	f.now++
	if i, ok := f.idx[key]; ok {
		f.access(i)
		f.fix(f.nodes[i].pos)
		return
	}
	var i int32
	if n := len(f.free); n > 0 {
		i = f.free[n-1]
		f.free = f.free[:n-1]
	} else {
		if len(f.nodes) == math.MaxInt32 {
			panic("tier: LRFU holds more than 2^31 pages")
		}
		f.nodes = append(f.nodes, lrfuNode{})
		i = int32(len(f.nodes) - 1)
	}
	// CRF = 1 at now: ln 1 - now·ln w.
	f.nodes[i] = lrfuNode{key: key, prio: -f.now * f.lnw, pos: int32(len(f.heap))}
	f.idx[key] = i
	f.heap = append(f.heap, i)
	f.up(int32(len(f.heap) - 1))
}

// Touch implements Policy.
func (f *LRFU) Touch(key PageKey) {
	i, ok := f.idx[key]
	if !ok {
		return
	}
	f.now++
	f.access(i)
	f.fix(f.nodes[i].pos)
}

// Remove implements Policy.
func (f *LRFU) Remove(key PageKey) {
	i, ok := f.idx[key]
	if !ok {
		return
	}
	delete(f.idx, key)
	pos := f.nodes[i].pos
	last := int32(len(f.heap) - 1)
	if pos != last {
		f.swap(pos, last)
	}
	f.heap = f.heap[:last]
	if pos != last {
		f.fix(pos)
	}
	f.nodes[i] = lrfuNode{}
	f.free = append(f.free, i)
}

// Victim implements Policy.
func (f *LRFU) Victim() (PageKey, bool) {
	if len(f.heap) == 0 {
		return PageKey{}, false
	}
	return f.nodes[f.heap[0]].key, true
}

// Len implements Policy.
func (f *LRFU) Len() int { return len(f.idx) }

// score returns CRF(now) of a page (for tests and reports).
func (f *LRFU) score(key PageKey) (float64, bool) {
	i, ok := f.idx[key]
	if !ok {
		return 0, false
	}
	return math.Exp(f.nodes[i].prio + f.now*f.lnw), true
}

func (f *LRFU) less(a, b int32) bool {
	return f.nodes[f.heap[a]].prio < f.nodes[f.heap[b]].prio
}

func (f *LRFU) swap(a, b int32) {
	f.heap[a], f.heap[b] = f.heap[b], f.heap[a]
	f.nodes[f.heap[a]].pos = a
	f.nodes[f.heap[b]].pos = b
}

func (f *LRFU) up(j int32) {
	for j > 0 {
		p := (j - 1) / 2
		if !f.less(j, p) {
			return
		}
		f.swap(j, p)
		j = p
	}
}

func (f *LRFU) down(j int32) bool {
	start, n := j, int32(len(f.heap))
	for {
		l := 2*j + 1
		if l >= n || l < 0 {
			break
		}
		m := l
		if r := l + 1; r < n && f.less(r, l) {
			m = r
		}
		if !f.less(m, j) {
			break
		}
		f.swap(j, m)
		j = m
	}
	return j > start
}

func (f *LRFU) fix(j int32) {
	if !f.down(j) {
		f.up(j)
	}
}
