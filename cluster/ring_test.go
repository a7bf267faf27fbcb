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
