package ufstest

import (
	"bytes"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stratafs/strata/ufs"
)

// putIf is PutIf of the pattern with seed, size bytes.
func putIf(t *testing.T, cp ufs.ConditionalPutter, p string, seed uint64, size int64, cond ufs.Condition) (ufs.FileInfo, error) {
	t.Helper()
	return cp.PutIf(t.Context(), p, newPatternReader(seed, size), size, cond)
}

// checkVersion checks that p is still the version fi holds, with the bytes
// of seed.
func checkVersion(t *testing.T, fs ufs.FS, p string, fi ufs.FileInfo, seed uint64, what string) {
	t.Helper()
	st, err := fs.Stat(t.Context(), p)
	if err != nil || st.Fingerprint() != fi.Fingerprint() {
		t.Errorf("%s: Stat(%q) = %+v, %v; want the version %+v untouched", what, p, st, err, fi)
		return
	}
	checkContent(t, fs, p, seed, fi.Size)
}

func testConditionalPut(t *testing.T, fs ufs.FS, o Options) {
	cp, ok := fs.(ufs.ConditionalPutter)
	if !ok {
		t.Skip("the FS does not implement ufs.ConditionalPutter")
	}
	ctx := t.Context()
	const p = "cond/file"

	v1, err := putIf(t, cp, p, 1, 1000, ufs.Condition{NoneMatch: true})
	if err != nil {
		t.Fatalf("PutIf(NoneMatch) of a new file: %v", err)
	}
	if st, err := fs.Stat(ctx, p); err != nil || st.Fingerprint() != v1.Fingerprint() || v1.Size != 1000 {
		t.Errorf("PutIf returned %+v, Stat says %+v, %v: fingerprints must match", v1, st, err)
	}
	checkContent(t, fs, p, 1, 1000)

	_, err = putIf(t, cp, p, 2, 1000, ufs.Condition{NoneMatch: true})
	wantErr(t, err, ufs.ErrPrecondition, "PutIf(NoneMatch) over an existing file")
	if errors.Is(err, ufs.ErrNotFound) {
		t.Errorf("PutIf(NoneMatch) over an existing file: %v also wraps ErrNotFound", err)
	}
	checkVersion(t, fs, p, v1, 1, "after a refused create-only write")

	v2, err := putIf(t, cp, p, 3, 1000, ufs.Condition{Match: v1.ETag})
	if err != nil {
		t.Fatalf("PutIf(Match current ETag): %v", err)
	}
	if v2.Fingerprint() == v1.Fingerprint() {
		t.Errorf("PutIf(Match) kept the fingerprint %q", v1.Fingerprint())
	}
	checkVersion(t, fs, p, v2, 3, "after PutIf(Match)")

	// A writer that went around the condition: the version the caller
	// read is gone, so its write must fail.
	v3 := put(t, fs, p, 4, 1000)
	_, err = putIf(t, cp, p, 5, 1000, ufs.Condition{Match: v2.ETag})
	wantErr(t, err, ufs.ErrPrecondition, "PutIf(Match an old ETag)")
	checkVersion(t, fs, p, v3, 4, "after a refused If-Match write")

	_, err = putIf(t, cp, "cond/missing", 6, 10, ufs.Condition{Match: v3.ETag})
	wantErr(t, err, ufs.ErrPrecondition, "PutIf(Match) of a missing file")
	wantErr(t, err, ufs.ErrNotFound, "PutIf(Match) of a missing file")
	_, err = fs.Stat(ctx, "cond/missing")
	wantErr(t, err, ufs.ErrNotFound, "Stat after a refused If-Match write of a missing file")

	_, err = putIf(t, cp, "cond/both", 7, 10, ufs.Condition{NoneMatch: true, Match: v3.ETag})
	wantErr(t, err, ufs.ErrPrecondition, "PutIf(NoneMatch and Match)")

	// An empty file, created only once.
	if _, err := putIf(t, cp, "cond/empty", 8, 0, ufs.Condition{NoneMatch: true}); err != nil {
		t.Errorf("PutIf(NoneMatch) of an empty file: %v", err)
	}
	_, err = putIf(t, cp, "cond/empty", 8, 0, ufs.Condition{NoneMatch: true})
	wantErr(t, err, ufs.ErrPrecondition, "second PutIf(NoneMatch) of an empty file")

	// After a delete, create-only succeeds again.
	if err := fs.Delete(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := putIf(t, cp, p, 9, 10, ufs.Condition{NoneMatch: true}); err != nil {
		t.Errorf("PutIf(NoneMatch) after Delete: %v", err)
	}
	checkContent(t, fs, p, 9, 10)

	// A failing reader under a condition changes nothing either.
	cur, _ := fs.Stat(ctx, p)
	_, err = cp.PutIf(ctx, p, &failingReader{r: newPatternReader(10, 1<<20), failAt: 100}, -1, ufs.Condition{Match: cur.ETag})
	if err == nil {
		t.Errorf("PutIf with a failing reader succeeded")
	}
	checkVersion(t, fs, p, cur, 9, "after a failed conditional write")
}

// testConditionalPutLarge checks conditions on uploads of several parts:
// object stores check them on the multipart completion.
func testConditionalPutLarge(t *testing.T, fs ufs.FS, o Options) {
	cp, ok := fs.(ufs.ConditionalPutter)
	if !ok {
		t.Skip("the FS does not implement ufs.ConditionalPutter")
	}
	const p = "condlarge/file"
	size := o.PartSize + 4321
	v1, err := putIf(t, cp, p, 1, size, ufs.Condition{NoneMatch: true})
	if err != nil {
		t.Fatalf("PutIf(NoneMatch) of %d bytes: %v", size, err)
	}
	_, err = putIf(t, cp, p, 2, size, ufs.Condition{NoneMatch: true})
	wantErr(t, err, ufs.ErrPrecondition, "large PutIf(NoneMatch) over an existing file")
	_, err = cp.PutIf(t.Context(), p, newPatternReader(2, size), -1, ufs.Condition{NoneMatch: true})
	wantErr(t, err, ufs.ErrPrecondition, "large PutIf(NoneMatch) of unknown size over an existing file")
	checkVersion(t, fs, p, v1, 1, "after refused large writes")
	v2, err := putIf(t, cp, p, 3, size, ufs.Condition{Match: v1.ETag})
	if err != nil {
		t.Fatalf("large PutIf(Match): %v", err)
	}
	checkVersion(t, fs, p, v2, 3, "after a large PutIf(Match)")
	_, err = putIf(t, cp, p, 4, size, ufs.Condition{Match: v1.ETag})
	wantErr(t, err, ufs.ErrPrecondition, "large PutIf(Match an old ETag)")
	checkVersion(t, fs, p, v2, 3, "after a refused large If-Match write")
}

// testConditionalPutRace starts create-only writers of one path at once:
// exactly one wins, and the file holds its bytes.
func testConditionalPutRace(t *testing.T, fs ufs.FS, o Options) {
	cp, ok := fs.(ufs.ConditionalPutter)
	if !ok {
		t.Skip("the FS does not implement ufs.ConditionalPutter")
	}
	const p = "race/lock"
	const writers = 8
	var (
		wg     sync.WaitGroup
		wins   atomic.Int32
		winner atomic.Uint64
		start  = make(chan struct{})
	)
	for w := range writers {
		wg.Go(func() {
			<-start
			_, err := putIf(t, cp, p, uint64(100+w), 5000, ufs.Condition{NoneMatch: true})
			switch {
			case err == nil:
				wins.Add(1)
				winner.Store(uint64(100 + w))
			case !errors.Is(err, ufs.ErrPrecondition):
				t.Errorf("writer %d: %v, want success or ErrPrecondition", w, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if n := wins.Load(); n != 1 {
		t.Fatalf("%d create-only writers succeeded, want exactly 1", n)
	}
	checkContent(t, fs, p, winner.Load(), 5000)

	// Compare-and-swap from one version: again one winner.
	cur, err := fs.Stat(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	wins.Store(0)
	start = make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			<-start
			_, err := putIf(t, cp, p, uint64(200+w), 5000, ufs.Condition{Match: cur.ETag})
			switch {
			case err == nil:
				wins.Add(1)
				winner.Store(uint64(200 + w))
			case !errors.Is(err, ufs.ErrPrecondition):
				t.Errorf("writer %d: %v, want success or ErrPrecondition", w, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if n := wins.Load(); n != 1 {
		t.Fatalf("%d If-Match writers of one version succeeded, want exactly 1", n)
	}
	checkContent(t, fs, p, winner.Load(), 5000)
}

func testAttrs(t *testing.T, fs ufs.FS, o Options) {
	as, ok := fs.(ufs.AttrStore)
	if !ok {
		t.Skip("the FS does not implement ufs.AttrStore")
	}
	ctx := t.Context()
	const p = "attrs/obj.bin"
	want := ufs.Attrs{
		ContentType: "text/x-strata; charset=utf-8", ContentEncoding: "gzip", ContentDisposition: `attachment; filename="a b.txt"`,
		ContentLanguage: "de-CH", CacheControl: "max-age=3600, public", Expires: "Thu, 01 Dec 2033 16:00:00 GMT",
		Meta: map[string]string{"color": "blue", "content-sha": "x_y=z", "under_score": "1", "s3x_tricky": "2", "9lives": "cat"},
	}
	fi, err := as.PutAttrs(ctx, p, bytes.NewReader([]byte("hello attrs")), 11, ufs.Condition{}, want)
	if err != nil {
		t.Fatalf("PutAttrs: %v", err)
	}
	sfi, got, err := as.StatAttrs(ctx, p)
	if err != nil {
		t.Fatalf("StatAttrs: %v", err)
	}
	if sfi.Fingerprint() != fi.Fingerprint() {
		t.Errorf("StatAttrs = %+v, PutAttrs returned %+v: fingerprints must match", sfi, fi)
	}
	checkAttrs(t, got, want, "StatAttrs after PutAttrs")
	if st, err := fs.Stat(ctx, p); err != nil || st.Fingerprint() != fi.Fingerprint() {
		t.Errorf("Stat = %+v, %v; want the fingerprint of %+v", st, err, fi)
	}

	// A plain Put is a new object: the attributes go with the old one.
	put(t, fs, p, 1, 100)
	_, got, err = as.StatAttrs(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Meta) != 0 || got.CacheControl != "" || got.ContentEncoding != "" || got.Expires != "" {
		t.Errorf("StatAttrs after a plain Put = %+v; want no metadata", got)
	}

	// With a condition, and in several parts.
	big := o.PartSize + 1000
	cur, _ := fs.Stat(ctx, p)
	if _, err := as.PutAttrs(ctx, p, newPatternReader(2, big), big, ufs.Condition{Match: cur.ETag}, want); err != nil {
		t.Fatalf("large PutAttrs with If-Match: %v", err)
	}
	_, got, err = as.StatAttrs(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	checkAttrs(t, got, want, "StatAttrs after a large PutAttrs")
	checkContent(t, fs, p, 2, big)
	_, err = as.PutAttrs(ctx, p, newPatternReader(3, 10), 10, ufs.Condition{NoneMatch: true}, want)
	wantErr(t, err, ufs.ErrPrecondition, "PutAttrs(NoneMatch) over an existing file")

	// Content-Type alone.
	if _, err := as.PutAttrs(ctx, "attrs/typed", bytes.NewReader(nil), 0, ufs.Condition{}, ufs.Attrs{ContentType: "image/png"}); err != nil {
		t.Fatalf("PutAttrs(ContentType): %v", err)
	}
	if _, got, err := as.StatAttrs(ctx, "attrs/typed"); err != nil || (got.ContentType != "image/png" && got.ContentType != "") {
		t.Errorf("StatAttrs(typed) = %+v, %v", got, err)
	}

	_, _, err = as.StatAttrs(ctx, "attrs/missing")
	wantErr(t, err, ufs.ErrNotFound, "StatAttrs of a missing file")
	_, _, err = as.StatAttrs(ctx, "attrs")
	wantErr(t, err, ufs.ErrIsDir, "StatAttrs of a directory")
}

// checkAttrs compares attributes; Expires is compared as a time (stores may
// reformat it).
func checkAttrs(t *testing.T, got, want ufs.Attrs, what string) {
	t.Helper()
	ge, gerr := http.ParseTime(got.Expires)
	we, _ := http.ParseTime(want.Expires)
	if gerr != nil || !ge.Equal(we) {
		t.Errorf("%s: Expires %q, want %q", what, got.Expires, want.Expires)
	}
	got.Expires, want.Expires = "", ""
	if !got.Equal(want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}
