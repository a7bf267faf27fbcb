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
//
// A ring may also know draining members (NewRingDraining): they take no new
// placements (Placement, Owner, Len, Members and KeyShares ignore them) but
// still hold what was placed on them while they served, so the read order
// (Owners) keeps them as fallbacks for the keys they held.
type Ring struct {
	members  []Member
	draining []Member
}

// NewRing builds a ring over members (order does not matter).
func NewRing(members []Member) *Ring { return NewRingDraining(members, nil) }

// NewRingDraining builds a ring over serving members that also knows the
// draining ones (see Ring). Order does not matter; a member listed in both is
// serving.
func NewRingDraining(serving, draining []Member) *Ring {
	ms := slices.Clone(serving)
	sort.Slice(ms, func(i, j int) bool { return ms[i].ID < ms[j].ID })
	var ds []Member
	for _, d := range draining {
		if !slices.ContainsFunc(ms, func(m Member) bool { return m.ID == d.ID }) {
			ds = append(ds, d)
		}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].ID < ds[j].ID })
	return &Ring{members: ms, draining: ds}
}

// Draining returns the draining members sorted by ID (do not modify).
func (r *Ring) Draining() []Member {
	if r == nil {
		return nil
	}
	return r.draining
}

// Len is the number of serving members.
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

// Placement returns up to n serving member IDs for key, best first: where a
// key is placed (its owner, then its replicas). Load jobs place with it.
func (r *Ring) Placement(key string, n int) []string {
	if r.Len() == 0 || n <= 0 {
		return nil
	}
	return rank(key, r.members, n)
}

// Owners returns the members to read key from, best first: up to n serving
// members in placement order (Placement), then the draining members that rank
// above the n-th of them in the ring they were placed with, in rank order.
// Those held the key's data when they were serving within the first n owners,
// and keep serving it while they drain: a reader tries them after the
// serving owners, so a drain loses no cached byte while the new owners have
// not filled it yet (from the under-storage, or a load). Without draining
// members Owners is Placement.
func (r *Ring) Owners(key string, n int) []string {
	out := r.Placement(key, n)
	if r == nil || len(r.draining) == 0 || n <= 0 {
		return out
	}
	all := make([]Member, 0, len(r.members)+len(r.draining))
	all = append(all, r.members...)
	all = append(all, r.draining...)
	serving := 0
	for _, id := range rank(key, all, len(all)) {
		if serving >= n {
			break
		}
		if slices.ContainsFunc(r.draining, func(m Member) bool { return m.ID == id }) {
			out = append(out, id)
		} else {
			serving++
		}
	}
	return out
}

// rank returns the n best members of ms for key by weighted rendezvous score.
func rank(key string, ms []Member, n int) []string {
	if n > len(ms) {
		n = len(ms)
	}
	type scored struct {
		id    string
		score float64
	}
	kh := fnv64a(key)
	best := make([]scored, 0, n+1)
	for _, m := range ms {
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

// Owner returns the first owner of key ("" for an empty ring): where it is
// placed.
func (r *Ring) Owner(key string) string {
	o := r.Placement(key, 1)
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
