package cluster

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

func members(n int) []Member {
	var ms []Member
	for i := range n {
		ms = append(ms, Member{ID: fmt.Sprintf("w-%02d", i), Weight: 1})
	}
	return ms
}

func TestRingIsDeterministicAndOrderFree(t *testing.T) {
	ms := members(5)
	a := NewRing(ms)
	slices.Reverse(ms)
	b := NewRing(ms)
	for i := range 1000 {
		k := fmt.Sprintf("key-%d", i)
		if !slices.Equal(a.Owners(k, 3), b.Owners(k, 3)) {
			t.Fatalf("owners of %s differ with member order", k)
		}
		o := a.Owners(k, 5)
		if len(o) != 5 || o[0] != a.Owner(k) {
			t.Fatalf("Owners(%s, 5) = %v", k, o)
		}
		seen := map[string]bool{}
		for _, id := range o {
			if seen[id] {
				t.Fatalf("duplicate owner in %v", o)
			}
			seen[id] = true
		}
	}
	if NewRing(nil).Owner("x") != "" || len(NewRing(members(2)).Owners("x", 9)) != 2 {
		t.Error("edge cases")
	}
}

func TestRingBalanceAndMinimalMovement(t *testing.T) {
	const keys = 60000
	before := NewRing(members(4))
	after := NewRing(members(5))
	counts := map[string]int{}
	moved := 0
	for i := range keys {
		k := fmt.Sprintf("b/%d", i)
		o1, o2 := before.Owner(k), after.Owner(k)
		counts[o2]++
		if o1 != o2 {
			moved++
			if o2 != "w-04" {
				t.Fatalf("key %s moved between old members %s -> %s", k, o1, o2)
			}
		}
	}
	frac := float64(moved) / keys
	if math.Abs(frac-0.2) > 0.02 {
		t.Errorf("adding a 5th member moved %.3f of keys, want about 0.2", frac)
	}
	for id, n := range counts {
		if share := float64(n) / keys; math.Abs(share-0.2) > 0.02 {
			t.Errorf("%s owns %.3f of keys, want about 0.2", id, share)
		}
	}
}

func TestRingWeights(t *testing.T) {
	r := NewRing([]Member{{ID: "big", Weight: 3}, {ID: "small", Weight: 1}})
	n := 0
	const keys = 40000
	for i := range keys {
		if r.Owner(fmt.Sprintf("k%d", i)) == "big" {
			n++
		}
	}
	if share := float64(n) / keys; math.Abs(share-0.75) > 0.02 {
		t.Errorf("weight 3 of 4 owns %.3f, want 0.75", share)
	}
}

// The placement keys are part of the cache layout: a change would move every
// cached block and metadata entry to other workers.
func TestPlacementKeysAreStable(t *testing.T) {
	if got := BlockKey("m1", "a/b.bin", 12); got != "b\x00m1\x00a/b.bin\x0012" {
		t.Errorf("BlockKey = %q", got)
	}
	if got := MetaKey("m1", "a"); got != "m\x00m1\x00a" {
		t.Errorf("MetaKey = %q", got)
	}
}

// A draining member takes no new placements but stays in the read order,
// after the serving owners, for every key it held while it served.
func TestRingKeepsDrainingMembersAsReadFallbacks(t *testing.T) {
	all := members(4)
	full := NewRing(all)
	drained := all[1]
	var serving []Member
	for _, m := range all {
		if m.ID != drained.ID {
			serving = append(serving, m)
		}
	}
	r := NewRingDraining(serving, []Member{drained})
	if r.Len() != 3 || len(r.Members()) != 3 || len(r.Draining()) != 1 || r.Weight(drained.ID) != 0 {
		t.Fatalf("ring with one draining member: len %d, draining %v, weight %v", r.Len(), r.Draining(), r.Weight(drained.ID))
	}
	if _, ok := r.KeyShares(1000)[drained.ID]; ok {
		t.Error("a draining member has a key share")
	}
	held, read := 0, 0
	for i := range 20_000 {
		k := fmt.Sprintf("b/%d", i)
		for n := 1; n <= 3; n++ {
			place := r.Placement(k, n)
			if slices.Contains(place, drained.ID) {
				t.Fatalf("Placement(%s, %d) = %v places on a draining member", k, n, place)
			}
			if want := NewRing(serving).Owners(k, n); !slices.Equal(place, want) {
				t.Fatalf("Placement(%s, %d) = %v, want the serving ring's %v", k, n, place, want)
			}
			owners := r.Owners(k, n)
			if !slices.Equal(owners[:len(place)], place) {
				t.Fatalf("Owners(%s, %d) = %v does not start with the placement %v", k, n, owners, place)
			}
			// It held the key if it was among the first n owners (n-1
			// replicas and the fallback) while it served.
			wasOwner := slices.Contains(full.Owners(k, n), drained.ID)
			if has := slices.Contains(owners, drained.ID); has != wasOwner {
				t.Fatalf("Owners(%s, %d) = %v; the drained member was among the first %d before: %v", k, n, owners, n, wasOwner)
			}
			if n == 1 && wasOwner {
				held++
				if len(owners) == 2 {
					read++
				}
			}
		}
		if r.Owner(k) == drained.ID {
			t.Fatalf("Owner(%s) is the draining member", k)
		}
	}
	if held == 0 || read != held {
		t.Errorf("the drained member owned %d keys, is read for %d", held, read)
	}
	// With fewer serving members than n every draining member is listed.
	two := NewRingDraining(serving[:1], []Member{drained})
	if o := two.Owners("x", 3); len(o) != 2 {
		t.Errorf("Owners with 1 serving and 1 draining member = %v", o)
	}
	if NewRingDraining(nil, []Member{drained}).Owner("x") != "" {
		t.Error("a ring of draining members only has an owner")
	}
}
