package tier

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// pk is a page key of file "p" for a one-letter page name.
func pk(name string) PageKey { return PageKey{File: "aaaaaaaaaaaaaaaa", Index: int64(name[0])} }

func keyName(k PageKey) string { return string(rune(k.Index)) }

// runOps applies "+a" (Add), "a" (Touch), "-a" (Remove) to a policy.
func runOps(p Policy, ops string) {
	for _, op := range strings.Fields(ops) {
		switch op[0] {
		case '+':
			p.Add(pk(op[1:]), 1)
		case '-':
			p.Remove(pk(op[1:]))
		default:
			p.Touch(pk(op))
		}
	}
}

// drain pops every victim in order.
func drain(p Policy) string {
	var out []string
	for {
		k, ok := p.Victim()
		if !ok {
			break
		}
		out = append(out, keyName(k))
		p.Remove(k)
	}
	return strings.Join(out, " ")
}

func TestLRUOrder(t *testing.T) {
	cases := []struct{ name, ops, want string }{
		{"insertion order", "+a +b +c", "a b c"},
		{"touch moves to the back", "+a +b +c a", "b c a"},
		{"re-add is a touch", "+a +b +c +a", "b c a"},
		{"remove", "+a +b +c -b", "a c"},
		{"touch of a missing key", "+a +b z", "a b"},
		{"slots are reused", "+a +b -a +c +d b", "c d b"},
		{"touch of the newest", "+a +b b", "a b"},
		{"empty", "+a -a", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := NewLRU()
			runOps(p, c.ops)
			if p.Len() != len(strings.Fields(c.want)) {
				t.Errorf("Len = %d", p.Len())
			}
			if got := drain(p); got != c.want {
				t.Fatalf("eviction order %q, want %q", got, c.want)
			}
		})
	}
}

func TestLRFUOrder(t *testing.T) {
	cases := []struct {
		name        string
		step, atten float64
		ops, want   string
	}{
		// With step 1 and attenuation 2 an access is worth half the next one:
		// a page touched twice long ago (0.5^3+0.5^2) loses to one touched once
		// recently.
		{"frequency decays", 1, 2, "+a a +b +c", "a b c"},
		// Step 0.01 (nearly LFU): the often used page stays although it is the
		// oldest.
		{"near LFU keeps frequent pages", 0.01, 2, "+a a a a +b +c +d", "b c d a"},
		// Step 1 with a big attenuation is LRU: frequency no longer helps.
		{"near LRU", 1, 1000, "+a a a a +b +c +d", "a b c d"},
		{"near LRU 2", 1, 1000, "+a +b +c +d a", "b c d a"},
		{"remove", 0.25, 2, "+a +b +c -a", "b c"},
		{"defaults are Alluxio's", 0, 0, "+a +b +c b", "a c b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := NewLRFU(c.step, c.atten)
			if err != nil {
				t.Fatal(err)
			}
			runOps(p, c.ops)
			if got := drain(p); got != c.want {
				t.Fatalf("eviction order %q, want %q", got, c.want)
			}
		})
	}
	for _, bad := range [][2]float64{{-1, 2}, {1.5, 2}, {0.5, 1.5}, {math.NaN(), 2}, {0.5, math.Inf(1)}} {
		if _, err := NewLRFU(bad[0], bad[1]); err == nil {
			t.Errorf("NewLRFU(%v, %v) accepted", bad[0], bad[1])
		}
	}
}

// TestLRFUMatchesDefinition checks the heap against the definition
// CRF = Σ F(now - t) computed by brute force, over a random access sequence.
func TestLRFUMatchesDefinition(t *testing.T) {
	for _, f := range [][2]float64{{0.25, 2}, {0.5, 3}, {1, 2}, {0.05, 10}} {
		step, atten := f[0], f[1]
		p, _ := NewLRFU(step, atten)
		hist := map[PageKey][]float64{} // access times
		now := 0.0
		rng := rand.New(rand.NewPCG(1, 2))
		for range 3000 {
			k := PageKey{File: "bbbbbbbbbbbbbbbb", Index: int64(rng.IntN(60))}
			switch r := rng.IntN(10); {
			case r < 6:
				now++
				p.Add(k, 1)
				hist[k] = append(hist[k], now)
			case r < 9:
				if _, ok := hist[k]; ok {
					now++
					hist[k] = append(hist[k], now)
				}
				p.Touch(k)
			default:
				p.Remove(k)
				delete(hist, k)
			}
		}
		crf := func(k PageKey) float64 {
			s := 0.0
			for _, ta := range hist[k] {
				s += math.Pow(1/atten, step*(now-ta))
			}
			return s
		}
		if p.Len() != len(hist) {
			t.Fatalf("Len %d, want %d", p.Len(), len(hist))
		}
		for k := range hist {
			got, _ := p.score(k)
			if want := crf(k); math.Abs(got-want) > 1e-9*max(1, want) {
				t.Fatalf("step %v atten %v: score of %v = %v, want %v", step, atten, k, got, want)
			}
		}
		// Victims come out in ascending CRF.
		keys := make([]PageKey, 0, len(hist))
		for k := range hist {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b PageKey) int {
			ca, cb := crf(a), crf(b)
			switch {
			case ca < cb:
				return -1
			case ca > cb:
				return 1
			}
			return 0
		})
		for _, want := range keys {
			v, ok := p.Victim()
			if !ok {
				t.Fatal("policy ran dry")
			}
			if v != want && math.Abs(crf(v)-crf(want)) > 1e-12 {
				t.Fatalf("victim %v (crf %v), want %v (crf %v)", v, crf(v), want, crf(want))
			}
			p.Remove(v)
		}
	}
}

func TestNewPolicy(t *testing.T) {
	if p, err := NewPolicy("lru", 0, 0); err != nil || p == nil {
		t.Fatal(err)
	}
	if p, err := NewPolicy("lrfu", 0.5, 4); err != nil || p == nil {
		t.Fatal(err)
	}
	if _, err := NewPolicy("fifo", 0, 0); err == nil {
		t.Fatal("unknown policy accepted")
	}
}
