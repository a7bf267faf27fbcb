// Package ufstest is the conformance suite that every ufs.FS backend runs.
//
// A backend's test calls Run with a function that returns an FS rooted at a
// fresh, empty location (a new temp dir, a new bucket or a new prefix):
//
//	func TestConformance(t *testing.T) {
//		ufstest.Run(t, func(t *testing.T) ufs.FS { return newFS(t) }, ufstest.Options{})
//	}
//
// The suite checks the contract written on ufs.FS, ufs.Renamer,
// ufs.ConditionalPutter, ufs.AttrStore and ufs.SortedLister (the optional
// ones when the FS has them): sentinel errors (tested with errors.Is), directory semantics, ranged
// reads at the edges, large streamed uploads, listing with pagination,
// unicode names, atomic puts, change detection with ReadOptions.IfMatch,
// concurrent readers, conditional writes (create-only races, If-Match
// against a writer that went around it, multipart sizes) and attributes kept
// with a file. Beyond the interface comments it expects what callers rely on:
//
//   - the FileInfo returned by Put, by Stat and by List for one file version
//     have the same Fingerprint (cached pages are keyed by it);
//   - a new version of a file has a new Fingerprint, even with the same size;
//   - OpenRange with IfMatch of a deleted object returns ErrChanged;
//   - an operation on a cancelled context returns an error that wraps
//     context.Canceled, so callers can tell cancellation from failure.
//
// Subtests run in parallel, each on its own FS. With -short the big cases
// shrink (ListKeys 1000, LargeSize two parts and a bit).
package ufstest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stratafs/strata/ufs"
)

// Options tune the suite to a backend. Zero values take the defaults.
type Options struct {
	// ListKeys is how many files the listing test puts in one directory
	// (default 10000); choose it above the backend's list page size.
	ListKeys int
	// LargeSize is the size of the large-object tests (default 100 MiB).
	LargeSize int64
	// PartSize is the backend's multipart part size (default 16 MiB): reads
	// are checked across part boundaries and failed uploads fail after more
	// than one part.
	PartSize int64
	// Writers bounds the concurrency of bulk creates (default 32).
	Writers int
	// Readers is the number of concurrent readers of one object (default 16).
	Readers int
}

func (o Options) withDefaults() Options {
	if o.ListKeys <= 0 {
		o.ListKeys = 10000
	}
	if o.PartSize <= 0 {
		o.PartSize = 16 << 20
	}
	if o.LargeSize <= 0 {
		o.LargeSize = 100 << 20
	}
	if o.Writers <= 0 {
		o.Writers = 32
	}
	if o.Readers <= 0 {
		o.Readers = 16
	}
	if testing.Short() {
		o.ListKeys = min(o.ListKeys, 1000)
		o.LargeSize = min(o.LargeSize, 2*o.PartSize+12345)
	}
	return o
}

// Run runs the conformance suite. newFS must return an FS rooted at a fresh,
// empty location each time it is called; Run closes it when the subtest ends.
func Run(t *testing.T, newFS func(t *testing.T) ufs.FS, opts Options) {
	o := opts.withDefaults()
	cases := []struct {
		name string
		fn   func(t *testing.T, fs ufs.FS, o Options)
	}{
		{"Missing", testMissing},
		{"Root", testRoot},
		{"EmptyFile", testEmptyFile},
		{"LargeKnownSize", func(t *testing.T, fs ufs.FS, o Options) { testLarge(t, fs, o, false) }},
		{"LargeUnknownSize", func(t *testing.T, fs ufs.FS, o Options) { testLarge(t, fs, o, true) }},
		{"Ranges", testRanges},
		{"ListMany", testListMany},
		{"Nested", testNested},
		{"Mkdir", testMkdir},
		{"DeleteNonEmptyDir", testDeleteNonEmpty},
		{"MkdirOverFile", testMkdirOverFile},
		{"ListFile", testListFile},
		{"UnicodeNames", testUnicode},
		{"Overwrite", testOverwrite},
		{"FailedPut", testFailedPut},
		{"Rename", testRename},
		{"ConcurrentReaders", testConcurrentReaders},
		{"CancelledContext", testCancelled},
		{"ConditionalPut", testConditionalPut},
		{"ConditionalPutLarge", testConditionalPutLarge},
		{"ConditionalPutRace", testConditionalPutRace},
		{"Attrs", testAttrs},
		{"SortedList", testSortedList},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fs := newFS(t)
			t.Cleanup(func() {
				if err := fs.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			c.fn(t, fs, o)
		})
	}
}

// ---- helpers ----

func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want one wrapping %v", what, err, target)
	}
}

// put stores size bytes of the pattern with seed at p (size known) and checks
// that the returned FileInfo matches Stat.
func put(t *testing.T, fs ufs.FS, p string, seed uint64, size int64) ufs.FileInfo {
	t.Helper()
	return putReader(t, fs, p, newPatternReader(seed, size), size, size)
}

func putReader(t *testing.T, fs ufs.FS, p string, r io.Reader, declared, size int64) ufs.FileInfo {
	t.Helper()
	ctx := t.Context()
	fi, err := fs.Put(ctx, p, r, declared)
	if err != nil {
		t.Fatalf("Put(%q, size %d): %v", p, declared, err)
	}
	if fi.Path != p || fi.Size != size || fi.IsDir || fi.ETag == "" || fi.ModTime.IsZero() {
		t.Errorf("Put(%q) returned %+v, want a file of %d bytes with an ETag and a ModTime", p, fi, size)
	}
	st, err := fs.Stat(ctx, p)
	if err != nil {
		t.Fatalf("Stat(%q) after Put: %v", p, err)
	}
	if st.Fingerprint() != fi.Fingerprint() || st.Path != p || st.IsDir {
		t.Errorf("Stat(%q) = %+v, Put returned %+v: fingerprints must match", p, st, fi)
	}
	return fi
}

func putBytes(t *testing.T, fs ufs.FS, p string, data []byte) ufs.FileInfo {
	t.Helper()
	return putReader(t, fs, p, bytes.NewReader(data), int64(len(data)), int64(len(data)))
}

func read(ctx context.Context, fs ufs.FS, p string, off, n int64, ro ufs.ReadOptions) ([]byte, error) {
	rc, err := fs.OpenRange(ctx, p, off, n, ro)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	return b, err
}

func mustRead(t *testing.T, fs ufs.FS, p string, off, n int64) []byte {
	t.Helper()
	b, err := read(t.Context(), fs, p, off, n, ufs.ReadOptions{})
	if err != nil {
		t.Fatalf("OpenRange(%q, %d, %d): %v", p, off, n, err)
	}
	return b
}

func checkContent(t *testing.T, fs ufs.FS, p string, seed uint64, size int64) {
	t.Helper()
	b := mustRead(t, fs, p, 0, -1)
	if int64(len(b)) != size {
		t.Errorf("%q: read %d bytes, want %d", p, len(b), size)
		return
	}
	if err := compareAt(seed, 0, b); err != nil {
		t.Errorf("%q: %v", p, err)
	}
}

// list collects the children of dir, stopping at the first error.
func list(ctx context.Context, fs ufs.FS, dir string) ([]ufs.FileInfo, error) {
	var out []ufs.FileInfo
	for fi, err := range fs.List(ctx, dir) {
		if err != nil {
			return out, err
		}
		out = append(out, fi)
	}
	return out, nil
}

// listing maps each child name of dir to whether it is a directory, failing
// on duplicates and on entries whose Path is not dir/name.
func listing(t *testing.T, fs ufs.FS, dir string) map[string]bool {
	t.Helper()
	fis, err := list(t.Context(), fs, dir)
	if err != nil {
		t.Fatalf("List(%q): %v", dir, err)
	}
	m := map[string]bool{}
	for _, fi := range fis {
		name := fi.Name()
		if fi.Path != ufs.Join(dir, name) || name == "" {
			t.Errorf("List(%q) yielded Path %q, want a child of the directory", dir, fi.Path)
		}
		if _, dup := m[name]; dup {
			t.Errorf("List(%q) yielded %q twice", dir, name)
		}
		m[name] = fi.IsDir
	}
	return m
}

func wantListing(t *testing.T, fs ufs.FS, dir string, want map[string]bool) {
	t.Helper()
	got := listing(t, fs, dir)
	if !maps.Equal(got, want) {
		t.Errorf("List(%q) = %v (name: isDir), want %v", dir, got, want)
	}
}

func wantDir(t *testing.T, fs ufs.FS, p string) {
	t.Helper()
	fi, err := fs.Stat(t.Context(), p)
	if err != nil {
		t.Errorf("Stat(%q): %v, want a directory", p, err)
		return
	}
	if !fi.IsDir || fi.Size != 0 || fi.Path != p {
		t.Errorf("Stat(%q) = %+v, want a directory with size 0", p, fi)
	}
}

// ---- cases ----

func testMissing(t *testing.T, fs ufs.FS, o Options) {
	ctx := t.Context()
	for _, p := range []string{"missing", "no/such/deep/path.bin"} {
		_, err := fs.Stat(ctx, p)
		wantErr(t, err, ufs.ErrNotFound, fmt.Sprintf("Stat(%q)", p))
		_, err = fs.OpenRange(ctx, p, 0, -1, ufs.ReadOptions{})
		wantErr(t, err, ufs.ErrNotFound, fmt.Sprintf("OpenRange(%q)", p))
		_, err = fs.OpenRange(ctx, p, 10, 5, ufs.ReadOptions{})
		wantErr(t, err, ufs.ErrNotFound, fmt.Sprintf("OpenRange(%q, 10, 5)", p))
		err = fs.Delete(ctx, p)
		wantErr(t, err, ufs.ErrNotFound, fmt.Sprintf("Delete(%q)", p))
		fis, err := list(ctx, fs, p)
		wantErr(t, err, ufs.ErrNotFound, fmt.Sprintf("List(%q)", p))
		if len(fis) != 0 {
			t.Errorf("List(%q) of a missing dir yielded %v", p, fis)
		}
		if r, ok := fs.(ufs.Renamer); ok {
			err = r.Rename(ctx, p, "renamed")
			wantErr(t, err, ufs.ErrNotFound, fmt.Sprintf("Rename(%q)", p))
		}
	}
	// A missing file under an existing directory.
	put(t, fs, "present/file", 1, 10)
	_, err := fs.Stat(ctx, "present/other")
	wantErr(t, err, ufs.ErrNotFound, `Stat("present/other")`)
	_, err = list(ctx, fs, "present/sub")
	wantErr(t, err, ufs.ErrNotFound, `List("present/sub")`)
}

func testRoot(t *testing.T, fs ufs.FS, o Options) {
	ctx := t.Context()
	fi, err := fs.Stat(ctx, "")
	if err != nil {
		t.Fatalf("Stat(root): %v", err)
	}
	if !fi.IsDir || fi.Path != "" || fi.Name() != "" {
		t.Errorf("Stat(root) = %+v, want a directory with Path \"\"", fi)
	}
	if err := ufs.Check(ctx, fs); err != nil {
		t.Errorf("ufs.Check: %v", err)
	}
	wantListing(t, fs, "", map[string]bool{})
	_, err = fs.OpenRange(ctx, "", 0, -1, ufs.ReadOptions{})
	wantErr(t, err, ufs.ErrIsDir, "OpenRange(root)")
	if err := fs.Mkdir(ctx, ""); err != nil {
		t.Errorf("Mkdir(root): %v, want nil (the root exists)", err)
	}
	if err := fs.Delete(ctx, ""); err == nil {
		t.Errorf("Delete(root) succeeded, want an error")
	}
	put(t, fs, "top", 2, 3)
	wantListing(t, fs, "", map[string]bool{"top": false})
}

func testEmptyFile(t *testing.T, fs ufs.FS, o Options) {
	ctx := t.Context()
	putReader(t, fs, "empty-known", bytes.NewReader(nil), 0, 0)
	putReader(t, fs, "empty-unknown", bytes.NewReader(nil), -1, 0)
	for _, p := range []string{"empty-known", "empty-unknown"} {
		fi, err := fs.Stat(ctx, p)
		if err != nil || fi.Size != 0 || fi.IsDir {
			t.Errorf("Stat(%q) = %+v, %v; want an empty file", p, fi, err)
		}
		for _, r := range [][2]int64{{0, -1}, {0, 10}, {0, 0}, {5, -1}, {5, 1}} {
			b, err := read(ctx, fs, p, r[0], r[1], ufs.ReadOptions{})
			if err != nil || len(b) != 0 {
				t.Errorf("OpenRange(%q, %d, %d) = %d bytes, %v; want an empty read", p, r[0], r[1], len(b), err)
			}
		}
		b, err := read(ctx, fs, p, 0, -1, ufs.ReadOptions{IfMatch: fi.ETag})
		if err != nil || len(b) != 0 {
			t.Errorf("OpenRange(%q, IfMatch current) = %d bytes, %v; want an empty read", p, len(b), err)
		}
	}
	wantListing(t, fs, "", map[string]bool{"empty-known": false, "empty-unknown": false})
	fis, _ := list(ctx, fs, "")
	for _, fi := range fis {
		if fi.Size != 0 {
			t.Errorf("List: %q has size %d, want 0", fi.Path, fi.Size)
		}
	}
	if err := fs.Delete(ctx, "empty-known"); err != nil {
		t.Errorf("Delete(empty-known): %v", err)
	}
	_, err := fs.Stat(ctx, "empty-known")
	wantErr(t, err, ufs.ErrNotFound, "Stat after Delete")
}

func testLarge(t *testing.T, fs ufs.FS, o Options, unknown bool) {
	ctx := t.Context()
	const seed = 42
	size := o.LargeSize
	declared := size
	if unknown {
		declared = -1
	}
	p := "big/large.bin"
	h := sha256.New()
	src := io.TeeReader(newPatternReader(seed, size), h)
	fi := putReader(t, fs, p, src, declared, size)
	want := h.Sum(nil)
	if fi.Size != size {
		t.Fatalf("Put size %d, want %d", fi.Size, size)
	}

	rc, err := fs.OpenRange(ctx, p, 0, -1, ufs.ReadOptions{IfMatch: fi.ETag})
	if err != nil {
		t.Fatalf("OpenRange(whole): %v", err)
	}
	h.Reset()
	n, err := io.Copy(h, rc)
	rc.Close()
	if err != nil || n != size {
		t.Fatalf("read back %d bytes, %v; want %d bytes", n, err, size)
	}
	if !bytes.Equal(h.Sum(nil), want) {
		t.Fatalf("sha256 of the object read back differs from what was put")
	}

	// Reads across part boundaries and at the tail.
	var offs []int64
	for off := o.PartSize - 7; off < size; off += o.PartSize {
		offs = append(offs, off)
	}
	offs = append(offs, size/2-3, size-9)
	for _, off := range offs {
		b := mustRead(t, fs, p, off, 14)
		if wantN := min(14, size-off); int64(len(b)) != wantN {
			t.Errorf("OpenRange(%d, 14) = %d bytes, want %d", off, len(b), wantN)
			continue
		}
		if err := compareAt(seed, off, b); err != nil {
			t.Errorf("OpenRange(%d, 14): %v", off, err)
		}
	}
}

func testRanges(t *testing.T, fs ufs.FS, o Options) {
	ctx := t.Context()
	const seed = 7
	const size int64 = 100_003
	fi := put(t, fs, "ranges.bin", seed, size)
	cases := [][2]int64{
		{0, 1}, {0, -1}, {0, 0}, {500, 0}, {1, 10}, {size - 1, 1}, {size - 1, -1},
		{size - 1, 1000}, {size - 10, 100}, {1234, 5678}, {0, size}, {0, size + 1},
		{patternBlock - 1, 2}, {size, 0}, {size, 10}, {size, -1}, {size + 5, 10},
		{size + 5, -1}, {1 << 40, 1},
	}
	for _, c := range cases {
		off, n := c[0], c[1]
		b, err := read(ctx, fs, "ranges.bin", off, n, ufs.ReadOptions{IfMatch: fi.ETag})
		if err != nil {
			t.Errorf("OpenRange(%d, %d): %v", off, n, err)
			continue
		}
		end := size
		if n >= 0 {
			end = min(size, off+n)
		}
		wantN := max(0, end-off)
		if int64(len(b)) != wantN {
			t.Errorf("OpenRange(%d, %d) = %d bytes, want %d", off, n, len(b), wantN)
			continue
		}
		if err := compareAt(seed, off, b); err != nil {
			t.Errorf("OpenRange(%d, %d): %v", off, n, err)
		}
	}
}

func testListMany(t *testing.T, fs ufs.FS, o Options) {
	ctx := t.Context()
	names := make([]string, o.ListKeys)
	for i := range names {
		names[i] = fmt.Sprintf("k%06d.txt", i)
	}
	var (
		next   atomic.Int64
		failed atomic.Bool
		wg     sync.WaitGroup
	)
	for range o.Writers {
		wg.Go(func() {
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= len(names) {
					return
				}
				p := "many/" + names[i]
				if _, err := fs.Put(ctx, p, strings.NewReader(names[i]), int64(len(names[i]))); err != nil {
					t.Errorf("Put(%q): %v", p, err)
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() {
		t.FailNow()
	}
	put(t, fs, "many/zz-sub/inner", 3, 5)
	if err := fs.Mkdir(ctx, "many/aa-empty"); err != nil {
		t.Fatalf("Mkdir: %v", err)
	}

	seen := make(map[string]int, len(names))
	fis, err := list(ctx, fs, "many")
	if err != nil {
		t.Fatalf("List(many): %v", err)
	}
	for _, fi := range fis {
		name := fi.Name()
		seen[name]++
		if fi.Path != "many/"+name {
			t.Errorf("List(many) yielded Path %q", fi.Path)
		}
		switch name {
		case "zz-sub", "aa-empty":
			if !fi.IsDir {
				t.Errorf("List(many): %q is not a directory", name)
			}
		default:
			if fi.IsDir || fi.Size != int64(len(name)) || fi.ETag == "" || fi.ModTime.IsZero() {
				t.Errorf("List(many): %+v, want a file of %d bytes with an ETag and ModTime", fi, len(name))
			}
		}
	}
	for _, n := range append(names, "zz-sub", "aa-empty") {
		if seen[n] != 1 {
			t.Errorf("List(many): %q seen %d times, want once", n, seen[n])
		}
	}
	if len(seen) != len(names)+2 {
		t.Errorf("List(many): %d distinct names, want %d", len(seen), len(names)+2)
	}
	wantListing(t, fs, "", map[string]bool{"many": true})

	// Stopping early must end the iteration cleanly (a range-over-func
	// iterator that keeps yielding after break panics).
	count := 0
	for _, err := range fs.List(ctx, "many") {
		if err != nil {
			t.Fatalf("List(many): %v", err)
		}
		if count++; count == 3 {
			break
		}
	}
	if count != 3 {
		t.Errorf("early break after %d entries", count)
	}
}

func testNested(t *testing.T, fs ufs.FS, o Options) {
	ctx := t.Context()
	put(t, fs, "a/b/c/f", 1, 100)
	put(t, fs, "a/b/g", 2, 200)
	put(t, fs, "a/x.txt", 3, 300)
	put(t, fs, "a/b/c/d/e.bin", 4, 400)
	for _, d := range []string{"a", "a/b", "a/b/c", "a/b/c/d"} {
		wantDir(t, fs, d)
	}
	fi, err := fs.Stat(ctx, "a/b/c/f")
	if err != nil || fi.IsDir || fi.Size != 100 {
		t.Errorf("Stat(a/b/c/f) = %+v, %v; want a 100-byte file", fi, err)
	}
	wantListing(t, fs, "", map[string]bool{"a": true})
	wantListing(t, fs, "a", map[string]bool{"b": true, "x.txt": false})
	wantListing(t, fs, "a/b", map[string]bool{"c": true, "g": false})
	wantListing(t, fs, "a/b/c", map[string]bool{"d": true, "f": false})
	wantListing(t, fs, "a/b/c/d", map[string]bool{"e.bin": false})
	checkContent(t, fs, "a/b/c/d/e.bin", 4, 400)

	// What List says about a file is what Stat says.
	fis, err := list(ctx, fs, "a/b")
	if err != nil {
		t.Fatalf("List(a/b): %v", err)
	}
	for _, lfi := range fis {
		if lfi.IsDir {
			continue
		}
		sfi, err := fs.Stat(ctx, lfi.Path)
		if err != nil {
			t.Fatalf("Stat(%q): %v", lfi.Path, err)
		}
		if lfi.Fingerprint() != sfi.Fingerprint() || lfi.Size != sfi.Size {
			t.Errorf("List gave %+v, Stat gave %+v: fingerprints must match", lfi, sfi)
		}
	}

	_, err = fs.OpenRange(ctx, "a/b", 0, -1, ufs.ReadOptions{})
	wantErr(t, err, ufs.ErrIsDir, "OpenRange(a/b)")
	_, err = fs.Stat(ctx, "a/b/c/f/below-a-file")
	if !errors.Is(err, ufs.ErrNotFound) && !errors.Is(err, ufs.ErrNotDir) {
		t.Errorf("Stat below a file: %v, want ErrNotFound or ErrNotDir", err)
	}
}

func testMkdir(t *testing.T, fs ufs.FS, o Options) {
	ctx := t.Context()
	if err := fs.Mkdir(ctx, "m"); err != nil {
		t.Fatalf("Mkdir(m): %v", err)
	}
	wantDir(t, fs, "m")
	wantListing(t, fs, "m", map[string]bool{})
	wantListing(t, fs, "", map[string]bool{"m": true})
	if err := fs.Mkdir(ctx, "m"); err != nil {
		t.Errorf("Mkdir(m) again: %v, want nil", err)
	}
	if err := fs.Delete(ctx, "m"); err != nil {
		t.Fatalf("Delete(m): %v", err)
	}
	_, err := fs.Stat(ctx, "m")
	wantErr(t, err, ufs.ErrNotFound, "Stat(m) after Delete")
	_, err = list(ctx, fs, "m")
	wantErr(t, err, ufs.ErrNotFound, "List(m) after Delete")

	if err := fs.Mkdir(ctx, "p/q/r"); err != nil {
		t.Fatalf("Mkdir(p/q/r): %v", err)
	}
	for _, d := range []string{"p", "p/q", "p/q/r"} {
		wantDir(t, fs, d)
	}
	wantListing(t, fs, "p", map[string]bool{"q": true})
	put(t, fs, "p/q/file", 5, 50)
	wantListing(t, fs, "p/q", map[string]bool{"r": true, "file": false})
	wantListing(t, fs, "p/q/r", map[string]bool{})
	if err := fs.Delete(ctx, "p/q/r"); err != nil {
		t.Errorf("Delete(p/q/r): %v", err)
	}
	wantListing(t, fs, "p/q", map[string]bool{"file": false})

	// Mkdir of a directory that exists only through its children.
	put(t, fs, "implicit/f", 6, 10)
	if err := fs.Mkdir(ctx, "implicit"); err != nil {
		t.Errorf("Mkdir(implicit): %v, want nil", err)
	}
	wantListing(t, fs, "implicit", map[string]bool{"f": false})
}

func testDeleteNonEmpty(t *testing.T, fs ufs.FS, o Options) {
	ctx := t.Context()
	put(t, fs, "d/f", 1, 10)
	err := fs.Delete(ctx, "d")
	wantErr(t, err, ufs.ErrNotEmpty, "Delete(d) with a child")
	checkContent(t, fs, "d/f", 1, 10)

	if err := fs.Mkdir(ctx, "d2/sub"); err != nil {
		t.Fatalf("Mkdir: %v", err)
	}
	err = fs.Delete(ctx, "d2")
	wantErr(t, err, ufs.ErrNotEmpty, "Delete(d2) with an empty subdirectory")
	wantDir(t, fs, "d2/sub")

	if err := fs.Delete(ctx, "d/f"); err != nil {
		t.Fatalf("Delete(d/f): %v", err)
	}
	// Object stores forget a directory with its last child; file systems keep it.
	if err := fs.Delete(ctx, "d"); err != nil && !errors.Is(err, ufs.ErrNotFound) {
		t.Errorf("Delete(d) once empty: %v", err)
	}
	_, err = fs.Stat(ctx, "d")
	wantErr(t, err, ufs.ErrNotFound, "Stat(d) after deleting it")
	_, err = fs.Stat(ctx, "d/f")
	wantErr(t, err, ufs.ErrNotFound, "Stat(d/f) after Delete")
}

func testMkdirOverFile(t *testing.T, fs ufs.FS, o Options) {
	ctx := t.Context()
	fi := put(t, fs, "f", 1, 64)
	err := fs.Mkdir(ctx, "f")
	wantErr(t, err, ufs.ErrExist, "Mkdir over a file")
	st, err := fs.Stat(ctx, "f")
	if err != nil || st.IsDir || st.Fingerprint() != fi.Fingerprint() {
		t.Errorf("Stat(f) after Mkdir = %+v, %v; want the file unchanged", st, err)
	}
	checkContent(t, fs, "f", 1, 64)
}

func testListFile(t *testing.T, fs ufs.FS, o Options) {
	ctx := t.Context()
	put(t, fs, "dir/file", 1, 10)
	fis, err := list(ctx, fs, "dir/file")
	wantErr(t, err, ufs.ErrNotDir, "List of a file")
	if len(fis) != 0 {
		t.Errorf("List of a file yielded %v", fis)
	}
}

func testUnicode(t *testing.T, fs ufs.FS, o Options) {
	ctx := t.Context()
	names := []string{
		"dir with space/файл 名前 ü.txt",
		"dir with space/plus+percent%20amp&eq=semi;comma,'quote'.txt",
		"dir with space/question? hash#.txt",
		"dir with space/emoji 😀.bin",
		"日本語/ñandú/x y.dat",
	}
	for i, p := range names {
		put(t, fs, p, uint64(100+i), int64(100+i))
	}
	for i, p := range names {
		checkContent(t, fs, p, uint64(100+i), int64(100+i))
	}
	wantListing(t, fs, "", map[string]bool{"dir with space": true, "日本語": true})
	wantListing(t, fs, "dir with space", map[string]bool{
		"файл 名前 ü.txt":                                false,
		"plus+percent%20amp&eq=semi;comma,'quote'.txt": false,
		"question? hash#.txt":                          false,
		"emoji 😀.bin":                                  false,
	})
	wantDir(t, fs, "日本語/ñandú")
	wantListing(t, fs, "日本語/ñandú", map[string]bool{"x y.dat": false})
	if err := fs.Delete(ctx, names[0]); err != nil {
		t.Errorf("Delete(%q): %v", names[0], err)
	}
	_, err := fs.Stat(ctx, names[0])
	wantErr(t, err, ufs.ErrNotFound, "Stat after Delete")
}

func testOverwrite(t *testing.T, fs ufs.FS, o Options) {
	ctx := t.Context()
	const p = "over/write.bin"
	v1 := put(t, fs, p, 1, 1000)
	v2 := put(t, fs, p, 2, 1000) // same size, other bytes
	checkContent(t, fs, p, 2, 1000)
	if v1.Fingerprint() == v2.Fingerprint() {
		t.Errorf("overwrite kept the Fingerprint %q", v1.Fingerprint())
	}
	_, err := read(ctx, fs, p, 0, -1, ufs.ReadOptions{IfMatch: v1.ETag})
	wantErr(t, err, ufs.ErrChanged, "OpenRange with the old ETag")
	_, err = read(ctx, fs, p, 10, 10, ufs.ReadOptions{IfMatch: v1.ETag})
	wantErr(t, err, ufs.ErrChanged, "OpenRange(10, 10) with the old ETag")
	b, err := read(ctx, fs, p, 0, -1, ufs.ReadOptions{IfMatch: v2.ETag})
	if err != nil || compareAt(2, 0, b) != nil || len(b) != 1000 {
		t.Errorf("OpenRange with the current ETag: %d bytes, %v", len(b), err)
	}

	v3 := put(t, fs, p, 3, 10) // shrink
	checkContent(t, fs, p, 3, 10)
	if v3.Fingerprint() == v2.Fingerprint() {
		t.Errorf("overwrite kept the Fingerprint %q", v3.Fingerprint())
	}

	if err := fs.Delete(ctx, p); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err = read(ctx, fs, p, 0, -1, ufs.ReadOptions{IfMatch: v3.ETag})
	wantErr(t, err, ufs.ErrChanged, "OpenRange of a deleted object with IfMatch")
}

func testFailedPut(t *testing.T, fs ufs.FS, o Options) {
	multi := o.PartSize + o.PartSize/2
	cases := []struct {
		name            string
		failAt, decl    int64
		short           bool
		existingVersion bool
	}{
		{"SmallKnown", 1000, 5000, false, false},
		{"SmallUnknown", 1000, -1, false, false},
		{"ShortStream", 1000, 5000, true, false},
		{"FirstByte", 0, -1, false, false},
		{"MultipartKnown", multi, 3 * o.PartSize, false, false},
		{"MultipartUnknown", multi, -1, false, false},
		{"OverExisting", 1000, -1, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			p := "failed/" + c.name
			var old ufs.FileInfo
			if c.existingVersion {
				old = put(t, fs, p, 9, 333)
			}
			r := &failingReader{r: newPatternReader(5, 1<<62), failAt: c.failAt, short: c.short}
			fi, err := fs.Put(ctx, p, r, c.decl)
			if err == nil {
				t.Fatalf("Put with a reader that fails after %d bytes succeeded: %+v", c.failAt, fi)
			}
			st, err := fs.Stat(ctx, p)
			if c.existingVersion {
				if err != nil || st.Fingerprint() != old.Fingerprint() {
					t.Errorf("Stat after a failed overwrite = %+v, %v; want the old version %+v", st, err, old)
				}
				checkContent(t, fs, p, 9, 333)
				return
			}
			wantErr(t, err, ufs.ErrNotFound, "Stat after a failed Put")
			for fi, err := range fs.List(ctx, "failed") {
				if err == nil && fi.Path == p {
					t.Errorf("List shows %q after a failed Put", p)
				}
			}
		})
	}
}

func testRename(t *testing.T, fs ufs.FS, o Options) {
	r, ok := fs.(ufs.Renamer)
	if !ok {
		t.Skip("the FS does not implement ufs.Renamer")
	}
	ctx := t.Context()
	put(t, fs, "ren/src", 1, 1234)
	if err := r.Rename(ctx, "ren/src", "ren2/deep/dst"); err != nil {
		t.Fatalf("Rename: %v", err)
	}
	_, err := fs.Stat(ctx, "ren/src")
	wantErr(t, err, ufs.ErrNotFound, "Stat(src) after Rename")
	checkContent(t, fs, "ren2/deep/dst", 1, 1234)
	wantListing(t, fs, "ren2/deep", map[string]bool{"dst": false})

	put(t, fs, "ren/a", 2, 300)
	put(t, fs, "ren/b", 3, 500)
	if err := r.Rename(ctx, "ren/a", "ren/b"); err != nil {
		t.Fatalf("Rename over an existing file: %v", err)
	}
	_, err = fs.Stat(ctx, "ren/a")
	wantErr(t, err, ufs.ErrNotFound, "Stat(a) after Rename")
	checkContent(t, fs, "ren/b", 2, 300)

	put(t, fs, "ren/ü ñ 名.txt", 4, 77)
	if err := r.Rename(ctx, "ren/ü ñ 名.txt", "ren/+%20 é.txt"); err != nil {
		t.Fatalf("Rename of a unicode name: %v", err)
	}
	checkContent(t, fs, "ren/+%20 é.txt", 4, 77)

	err = r.Rename(ctx, "ren/missing", "ren/x")
	wantErr(t, err, ufs.ErrNotFound, "Rename of a missing file")

	put(t, fs, "rdir/f", 5, 10)
	switch err := r.Rename(ctx, "rdir", "rdir2"); {
	case err == nil:
		checkContent(t, fs, "rdir2/f", 5, 10)
		_, err = fs.Stat(ctx, "rdir")
		wantErr(t, err, ufs.ErrNotFound, "Stat(rdir) after renaming it")
	default:
		wantErr(t, err, ufs.ErrIsDir, "Rename of a directory")
		checkContent(t, fs, "rdir/f", 5, 10)
	}
}

func testConcurrentReaders(t *testing.T, fs ufs.FS, o Options) {
	ctx := t.Context()
	const seed = 99
	size := int64(4<<20 + 17)
	fi := put(t, fs, "shared.bin", seed, size)
	var wg sync.WaitGroup
	for w := range o.Readers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range 16 {
				off := rng.Int64N(size + 100)
				n := rng.Int64N(256 << 10)
				if i == 0 {
					off, n = 0, -1
				} else if i%5 == 0 {
					n = -1
				}
				b, err := read(ctx, fs, "shared.bin", off, n, ufs.ReadOptions{IfMatch: fi.ETag})
				if err != nil {
					t.Errorf("reader %d: OpenRange(%d, %d): %v", w, off, n, err)
					return
				}
				end := size
				if n >= 0 {
					end = min(size, off+n)
				}
				if int64(len(b)) != max(0, end-off) {
					t.Errorf("reader %d: OpenRange(%d, %d) = %d bytes, want %d", w, off, n, len(b), max(0, end-off))
					return
				}
				if err := compareAt(seed, off, b); err != nil {
					t.Errorf("reader %d: OpenRange(%d, %d): %v", w, off, n, err)
					return
				}
				if _, err := fs.Stat(ctx, "shared.bin"); err != nil {
					t.Errorf("reader %d: Stat: %v", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func testCancelled(t *testing.T, fs ufs.FS, o Options) {
	put(t, fs, "c/file", 1, 10)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s on a cancelled context: %v, want an error wrapping context.Canceled", what, err)
		}
	}
	_, err := fs.Stat(ctx, "c/file")
	check("Stat", err)
	_, err = fs.OpenRange(ctx, "c/file", 0, -1, ufs.ReadOptions{})
	check("OpenRange", err)
	_, err = list(ctx, fs, "c")
	check("List", err)
	_, err = fs.Put(ctx, "c/new", strings.NewReader("data"), 4)
	check("Put", err)
	check("Delete", fs.Delete(ctx, "c/file"))
	check("Mkdir", fs.Mkdir(ctx, "c/dir"))

	// Nothing happened.
	names := slices.Sorted(maps.Keys(listing(t, fs, "c")))
	if !slices.Equal(names, []string{"file"}) {
		t.Errorf("List(c) after cancelled calls = %v, want [file]", names)
	}
}
