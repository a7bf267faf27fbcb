package robustness

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestContent checks the encoder against ../shared/staleness/content.py
// (hashes of its output) and the decoder against content.py's decode on
// reads that are torn in every way.
func TestContent(t *testing.T) {
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	b := makeContent(3, 7, 1000, 1234)
	if got, want := hex.EncodeToString(b[:64]), "535452540300000007000000e803000000000000d2040000e3595a591dff4513"+
		"535452540300000007000000e803000020000000d2040000e3595a59f0300b1f"; got != want {
		t.Fatalf("first cells: %s\nwant (content.py): %s", got, want)
	}
	if got, want := sum(b), "43515be5446266fe3993c0ab26708af13fbdff2fcf51b739e8d85fa035a283dd"; got != want {
		t.Errorf("make(3, 7, 1000, 1234): sha256 %s, content.py gives %s", got, want)
	}
	if got, want := sum(makeContent(11, 250, 3<<20+5, 0xdeadbeef)), "57e001179c1f1b079c3dfb4f4e8f2213a976ff503b2d45feb43d3de537bb7ff5"; got != want {
		t.Errorf("make(11, 250, 3 MiB + 5, 0xdeadbeef): sha256 %s, content.py gives %s", got, want)
	}

	big := makeContent(3, 7, 3<<20+5, 1234)
	v8 := makeContent(3, 8, 1000, 1234)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	// Expected segments: content.py's decode of the same reads.
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"whole", v8, "0-1000:v8"},
		{"mixed and padded", cat(v8[:500], big[500:1000], make([]byte, 77)), "0-480:v8 480-512:garbage 512-992:v7 992-1024:garbage 1024-1077:zeros"},
		{"prefix of a bigger version", big[:1001], "0-1001:v7"},
		{"zero padded", cat(v8, make([]byte, 10)), "0-1000:v8 1000-1010:zeros"},
		{"truncated in the last cell", v8[:990], "0-990:v8"},
		{"garbage padded", cat(v8, bytes.Repeat([]byte{1}, 100)), "0-1000:v8 1000-1100:garbage"},
		{"head of another version", cat(big[:64], v8[64:1000]), "0-64:v7 64-1000:v8"},
		{"tail of another version", cat(v8, big[1000:4096]), "0-992:v8 992-4096:v7"},
		{"zeros", make([]byte, 100), "0-100:zeros"},
		{"another key", makeContent(4, 8, 1000, 1234), "0-1000:garbage"},
		{"another run", makeContent(3, 8, 1000, 1235), "0-1000:garbage"},
		{"shifted", v8[32:], "0-968:garbage"},
		{"empty", nil, ""},
	} {
		if got := decode(tc.data, 3, 1234).String(); got != tc.want {
			t.Errorf("%s: decode = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestChecker classifies a small made-up history: one read of every class.
func TestChecker(t *testing.T) {
	const run = 77
	sec := func(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
	sizes := map[int]int{1: 5000, 2: 70000, 3: 1000, 4: 3000}
	var writes []writeRec
	for v := 1; v <= 4; v++ {
		writes = append(writes, writeRec{key: 0, version: v, size: sizes[v], start: sec(float64(v * 10)), ack: sec(float64(v*10) + 0.5), ok: true})
	}
	writes = append(writes, writeRec{key: 0, version: 5, size: 100, start: sec(50), ack: sec(51), err: "boom"})
	ver := func(v int) []byte { return makeContent(0, v, sizes[v], run) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	type rd struct {
		r    readRec
		data []byte
		want string
	}
	at := func(path string, start float64) readRec {
		return readRec{path: path, key: 0, start: sec(start), end: sec(start + 0.1), stSize: -1}
	}
	held := func(id int, open, start float64) readRec {
		r := at(pathHeld, start)
		r.handle, r.open = id, sec(open)
		return r
	}
	withSt := func(r readRec, st int64) readRec { r.stSize = st; return r }
	withErr := func(r readRec, err string) readRec { r.err = err; return r }
	bound := 2 * time.Second
	cases := []rd{
		{at(pathFresh, 21), ver(2), classOK},
		{at(pathFresh, 31), ver(2), classOK},               // v3 acked 0.5 s before: within the bound
		{at(pathS3, 33), ver(2), classStale},               // 2.5 s
		{at(pathClient, 25), ver(3), classFuture},          // v3's PUT began at 30
		{at(pathFresh, 21), ver(2)[:4096], classTruncated}, // a short read
		{at(pathFresh, 21), nil, classTruncated},
		{at(pathFresh, 21), cat(ver(1), make([]byte, 65000)), classPadded},
		{at(pathFresh, 31), cat(ver(3), ver(2)[1000:3000]), classMixed},
		{at(pathFresh, 31), cat(ver(2)[:4096], make([]byte, 4096), ver(2)[8192:]), classCorrupt},
		{at(pathFresh, 31), make([]byte, 4096), classCorrupt},
		{at(pathFresh, 31), makeContent(0, 9, 1000, run), classCorrupt}, // never written
		{withSt(at(pathFresh, 21), 5000), ver(2), classBadSize},
		{withSt(at(pathFresh, 21), 70000), ver(2), classOK},
		{withErr(at(pathFresh, 21), errChanged), nil, classEstale},
		{withErr(at(pathS3, 21), "InternalError"), nil, classError},
		{at(pathFresh, 52), makeContent(0, 5, 100, run), classOK}, // an unacknowledged version
		// A held handle opened at 21 keeps v2 for as long as it lives.
		{held(1, 21, 22), ver(2), classOK},
		{held(1, 21, 45), ver(2), classOK},
		{held(1, 21, 46), ver(4), classSwitched},
		{held(2, 34, 35), ver(2), classStale}, // v3 acked 3.5 s before the open
	}
	var reads []readRec
	for _, c := range cases {
		r := c.r
		if r.err == "" {
			r.dec = decode(c.data, 0, run)
		}
		reads = append(reads, r)
	}
	rp := check(writes, reads, bound)
	for i, c := range cases {
		if got := rp.verdicts[i].class; got != c.want {
			t.Errorf("read %d (%s at %s, %s): %s (%s), want %s", i, c.r.path, secs(c.r.start), reads[i].dec, got, rp.verdicts[i].why, c.want)
		}
	}
	wantFailed := 0
	for _, c := range cases {
		if failing(c.want) {
			wantFailed++
		}
	}
	if rp.failed != wantFailed {
		t.Errorf("failed = %d, want %d", rp.failed, wantFailed)
	}
	tab := rp.tableString()
	for _, p := range []string{pathFresh, pathHeld, pathS3, pathClient, "ALL"} {
		if !strings.Contains(tab, p) {
			t.Errorf("table lacks %s:\n%s", p, tab)
		}
	}
	if ex := rp.examples(1, failing); !slices.ContainsFunc(ex, func(s string) bool { return strings.Contains(s, "SWITCHED") }) {
		t.Errorf("examples lack the switched handle:\n%s", strings.Join(ex, "\n"))
	}
	if t.Failed() {
		t.Logf("\n%s\n%s\n%s", tab, rp.stalenessString(), strings.Join(rp.examples(1, failing), "\n"))
	}
}
