package robustness

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// The checker: every read gets the first class that applies (the classes of
// ../shared/staleness/check.py, plus BADSIZE and SWITCHED):
//
//	ESTALE    the read failed with the front-end's "changed since opened"
//	          error (errChanged): allowed, neither passed nor failed
//	ERROR     any other failure
//	CORRUPT   no intact cell of this key, a version never written, or zeros
//	          or garbage inside the claimed version's byte range
//	MIXED     intact cells of two or more versions
//	FUTURE    a version whose PUT started after the read ended
//	TRUNCATED one version, fewer bytes than its size (or nothing)
//	PADDED    one version, all of it, then more bytes
//	BADSIZE   one whole version, but fstat gave another size than the bytes
//	          the read returned (the kernel held another version's size)
//	SWITCHED  a held handle returned another version than its first read:
//	          a handle keeps the version it opened until it is closed or
//	          gets ESTALE (DESIGN.md, "Trust and consistency")
//	STALE     one whole version v, but a newer version had been acknowledged
//	          by MinIO more than the bound before the read started (a held
//	          handle: before it was opened, as it may keep its version)
//	OK        one whole version, exactly its size, fresh enough
//
// passed = OK; failed = everything but OK and ESTALE.

const (
	classOK        = "OK"
	classStale     = "STALE"
	classTruncated = "TRUNCATED"
	classPadded    = "PADDED"
	classMixed     = "MIXED"
	classCorrupt   = "CORRUPT"
	classFuture    = "FUTURE"
	classBadSize   = "BADSIZE"
	classSwitched  = "SWITCHED"
	classError     = "ERROR"
	classEstale    = "ESTALE"
)

var classes = []string{classOK, classStale, classTruncated, classPadded, classMixed, classCorrupt,
	classFuture, classBadSize, classSwitched, classError, classEstale}

// failing reports whether a read of class c fails the run.
func failing(c string) bool { return c != classOK && c != classEstale }

// verdict is the checker's account of one read.
type verdict struct {
	class, why string
	// claimed is the one version the read returned (0 when none).
	claimed int
	// stale is the read's staleness (read start − first acknowledgement
	// of a newer version, or 0); staleOpen the same from a held handle's
	// open. Both -1 when the read names no version.
	stale, staleOpen time.Duration
}

// report is the checked history.
type report struct {
	bound    time.Duration
	writes   []writeRec
	reads    []readRec
	verdicts []verdict
	table    map[string]map[string]int // path (or "ALL") -> class -> reads
	failed   int
	passed   int
}

// checker holds what classification needs from the writes.
type checker struct {
	bound time.Duration
	// byKey[key][version] is the PUT of that version.
	byKey map[int]map[int]writeRec
	// newerAck[key][version] is the earliest acknowledgement of any
	// version > version (math.MaxInt64 when none).
	newerAck map[int]map[int]time.Duration
	// handleVersion is the version a held handle's first read returned.
	handleVersion map[int]int
}

func newChecker(writes []writeRec, bound time.Duration) *checker {
	c := &checker{bound: bound, byKey: map[int]map[int]writeRec{}, newerAck: map[int]map[int]time.Duration{}, handleVersion: map[int]int{}}
	for _, w := range writes {
		if c.byKey[w.key] == nil {
			c.byKey[w.key] = map[int]writeRec{}
		}
		c.byKey[w.key][w.version] = w
	}
	for k, vs := range c.byKey {
		order := make([]int, 0, len(vs))
		for v := range vs {
			order = append(order, v)
		}
		slices.Sort(order)
		best := time.Duration(math.MaxInt64)
		m := make(map[int]time.Duration, len(order))
		for i := len(order) - 1; i >= 0; i-- {
			v := order[i]
			m[v] = best
			if w := vs[v]; w.ok {
				best = min(best, w.ack)
			}
		}
		c.newerAck[k] = m
	}
	return c
}

// staleness is t − the earliest acknowledgement of a version of key newer
// than v, or 0.
func (c *checker) staleness(key, v int, t time.Duration) time.Duration {
	a, ok := c.newerAck[key][v]
	if !ok || a == math.MaxInt64 || t <= a {
		return 0
	}
	return t - a
}

// newestAckedBefore is the newest version of key acknowledged by t.
func (c *checker) newestAckedBefore(key int, t time.Duration) int {
	best := 0
	for v, w := range c.byKey[key] {
		if w.ok && w.ack <= t && v > best {
			best = v
		}
	}
	return best
}

// classify judges one read. Reads of one held handle must come in the order
// they were made.
func (c *checker) classify(r readRec) verdict {
	vd := verdict{stale: -1, staleOpen: -1}
	set := func(class, format string, args ...any) verdict {
		vd.class, vd.why = class, fmt.Sprintf(format, args...)
		return vd
	}
	if r.err != "" {
		if r.err == errChanged {
			return set(classEstale, "%s %s", r.err, r.detail)
		}
		return set(classError, "%s %s", r.err, r.detail)
	}
	L := r.dec.length
	if L == 0 {
		return set(classTruncated, "empty read")
	}
	vs := r.dec.versions()
	switch {
	case len(vs) == 0:
		return set(classCorrupt, "no intact cell: %s", r.dec)
	case len(vs) > 1:
		return set(classMixed, "versions %v: %s", vs, r.dec)
	}
	v := vs[0]
	w, ok := c.byKey[r.key][v]
	if !ok {
		return set(classCorrupt, "v%d was never written: %s", v, r.dec)
	}
	S := w.size
	vd.claimed = v
	vd.stale = c.staleness(r.key, v, r.start)
	if r.handle > 0 {
		vd.staleOpen = c.staleness(r.key, v, r.open)
	}
	for _, s := range r.dec.segs {
		if s.label <= 0 && s.start < min(L, S) {
			return set(classCorrupt, "v%d (size %d) with zeros or garbage inside: %s", v, S, r.dec)
		}
	}
	if w.start > r.end {
		return set(classFuture, "v%d's PUT started at %s, the read ended at %s", v, secs(w.start), secs(r.end))
	}
	if L < S {
		return set(classTruncated, "v%d: got %d of %d bytes%s", v, L, S, stSizeNote(r))
	}
	if L > S {
		var after []segment
		for _, s := range r.dec.segs {
			if s.end > S {
				after = append(after, s)
			}
		}
		return set(classPadded, "v%d: got %d bytes, the version has %d; after it: %s%s", v, L, S, decoded{segs: after}, stSizeNote(r))
	}
	if r.stSize >= 0 && r.stSize != int64(L) {
		return set(classBadSize, "v%d: read all %d bytes, but fstat said %d", v, L, r.stSize)
	}
	if r.handle > 0 {
		first, seen := c.handleVersion[r.handle]
		if !seen {
			c.handleVersion[r.handle] = v
		} else if first != v {
			return set(classSwitched, "v%d, but the handle's first read returned v%d", v, first)
		}
		if vd.staleOpen > c.bound {
			return set(classStale, "v%d, but v%d was acknowledged %s before the handle was opened",
				v, c.newestAckedBefore(r.key, r.open), secs(vd.staleOpen))
		}
	} else if vd.stale > c.bound {
		return set(classStale, "v%d, but v%d was acknowledged %s before the read started",
			v, c.newestAckedBefore(r.key, r.start), secs(vd.stale))
	}
	return set(classOK, "")
}

func stSizeNote(r readRec) string {
	if r.stSize < 0 {
		return ""
	}
	return fmt.Sprintf(" (fstat size %d)", r.stSize)
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3fs", d.Seconds()) }

// check classifies every read of a history.
func check(writes []writeRec, reads []readRec, bound time.Duration) *report {
	c := newChecker(writes, bound)
	rp := &report{bound: bound, writes: writes, reads: reads, table: map[string]map[string]int{"ALL": {}}}
	for _, r := range reads {
		vd := c.classify(r)
		rp.verdicts = append(rp.verdicts, vd)
		if rp.table[r.path] == nil {
			rp.table[r.path] = map[string]int{}
		}
		rp.table[r.path][vd.class]++
		rp.table["ALL"][vd.class]++
		switch {
		case vd.class == classOK:
			rp.passed++
		case failing(vd.class):
			rp.failed++
		}
	}
	return rp
}

// tableString renders the per-path table of classes.
func (rp *report) tableString() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-11s%9s", "path", "reads")
	for _, c := range classes {
		fmt.Fprintf(&b, "%*s", colWidth(c), c)
	}
	b.WriteByte('\n')
	for _, p := range append(slices.Clone(paths), "ALL") {
		t := rp.table[p]
		if t == nil {
			continue
		}
		n := 0
		for _, v := range t {
			n += v
		}
		fmt.Fprintf(&b, "%-11s%9d", p, n)
		for _, c := range classes {
			fmt.Fprintf(&b, "%*d", colWidth(c), t[c])
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// colWidth is the width of a class's column: room for a million reads.
func colWidth(class string) int { return max(len(class)+1, 8) }

// stalenessString summarises the staleness of the reads that returned one
// version (any class), per path: how many, the largest, p50, p99, and how
// many lay beyond 1 s, 2 s and the bound.
func (rp *report) stalenessString() string {
	var b strings.Builder
	limits := []time.Duration{time.Second, 2 * time.Second, rp.bound}
	fmt.Fprintf(&b, "%-11s%9s%9s%9s%9s", "path", "n", "max", "p50", "p99")
	for _, l := range limits {
		fmt.Fprintf(&b, "%9s", fmt.Sprintf(">%gs", l.Seconds()))
	}
	b.WriteString("   (held handles: from their open)\n")
	for _, p := range append(slices.Clone(paths), "ALL") {
		var xs []time.Duration
		for i, r := range rp.reads {
			vd := rp.verdicts[i]
			if vd.stale < 0 || (p != "ALL" && r.path != p) {
				continue
			}
			x := vd.stale
			if r.handle > 0 {
				x = vd.staleOpen
			}
			xs = append(xs, x)
		}
		if len(xs) == 0 {
			continue
		}
		slices.Sort(xs)
		q := func(f float64) time.Duration { return xs[min(len(xs)-1, int(f*float64(len(xs))))] }
		fmt.Fprintf(&b, "%-11s%9d%9s%9s%9s", p, len(xs), secs(xs[len(xs)-1]), secs(q(.5)), secs(q(.99)))
		for _, l := range limits {
			n := 0
			for _, x := range xs {
				if x > l {
					n++
				}
			}
			fmt.Fprintf(&b, "%9d", n)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// examples returns up to n lines per (path, class) of the reads whose
// class passes the filter.
func (rp *report) examples(n int, filter func(class string) bool) []string {
	seen := map[string]int{}
	var out []string
	for i, r := range rp.reads {
		vd := rp.verdicts[i]
		if !filter(vd.class) {
			continue
		}
		k := r.path + "/" + vd.class
		if seen[k] >= n {
			continue
		}
		seen[k]++
		h := ""
		if r.handle > 0 {
			h = fmt.Sprintf(" handle %d opened@%s", r.handle, secs(r.open))
		}
		out = append(out, fmt.Sprintf("%-10s %-9s k%03d t=%s-%s%s: %s", r.path, vd.class, r.key, secs(r.start), secs(r.end), h, vd.why))
	}
	return out
}
