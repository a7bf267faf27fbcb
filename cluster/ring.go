package cluster

import (
	"math"
	"slices"
	"sort"
)

// Member is one worker as placement sees it.
type Member struct {
	ID     string
	Weight float64 // relative capacity; <= 0 counts as 1
}

// Ring places keys on members by weighted rendezvous (highest random weight)
// hashing: every client with the same membership computes the same owners, and
// a membership change moves only the keys of the member that came or went
// (about 1/N of them). A Ring is immutable and safe for concurrent use.
type Ring struct {
	members []Member
}

// NewRing builds a ring over members (order does not matter).
func NewRing(members []Member) *Ring {
	ms := slices.Clone(members)
	sort.Slice(ms, func(i, j int) bool { return ms[i].ID < ms[j].ID })
	return &Ring{members: ms}
}

// Len is the number of members.
func (r *Ring) Len() int {
	if r == nil {
		return 0
	}
	return len(r.members)
}

// Members returns the members sorted by ID (do not modify).
func (r *Ring) Members() []Member {
	if r == nil {
		return nil
	}
	return r.members
}

// Owners returns up to n member IDs for key, best first: the owner, then the
// replicas and fallbacks in order.
func (r *Ring) Owners(key string, n int) []string {
	if r.Len() == 0 || n <= 0 {
		return nil
	}
	if n > len(r.members) {
		n = len(r.members)
	}
	type scored struct {
		id    string
		score float64
	}
	kh := fnv64a(key)
	best := make([]scored, 0, n+1)
	for _, m := range r.members {
		s := score(kh, fnv64a(m.ID), m.Weight)
		if len(best) == n && s <= best[n-1].score {
			continue
		}
		i := sort.Search(len(best), func(i int) bool { return best[i].score < s })
		best = slices.Insert(best, i, scored{m.ID, s})
		if len(best) > n {
			best = best[:n]
		}
	}
	out := make([]string, len(best))
	for i, b := range best {
		out[i] = b.id
	}
	return out
}

// Owner returns the first owner of key ("" for an empty ring).
func (r *Ring) Owner(key string) string {
	o := r.Owners(key, 1)
	if len(o) == 0 {
		return ""
	}
	return o[0]
}

// score is the weighted rendezvous score -w / ln(u), u uniform in (0,1) from
// the mixed hashes of key and member.
func score(keyHash, memberHash uint64, w float64) float64 {
	if w <= 0 {
		w = 1
	}
	h := mix64(keyHash ^ mix64(memberHash))
	u := (float64(h>>11) + 0.5) / (1 << 53)
	return -w / math.Log(u)
}

func fnv64a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// mix64 is the splitmix64 finalizer.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
