package rpcpb

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/ufs"
)

// checkDataRequest asserts what every request ParseDataRequest accepts is:
// a mount, a clean path that cannot leave the mount root, and a range
// within the size.
func checkDataRequest(t *testing.T, in string, r DataRequest) {
	t.Helper()
	if r.MountID == "" {
		t.Fatalf("%s: accepted without a mount", in)
	}
	if c, err := namespace.CleanRel(r.Path); err != nil || c != r.Path {
		t.Fatalf("%s: path %q is not clean (%q, %v)", in, r.Path, c, err)
	}
	for el := range strings.SplitSeq(r.Path, "/") {
		if el == ".." {
			t.Fatalf("%s: path %q climbs", in, r.Path)
		}
	}
	if r.Info.Path != r.Path {
		t.Fatalf("%s: Info.Path %q != Path %q", in, r.Info.Path, r.Path)
	}
	if r.Info.Size < 0 || r.Off < 0 || r.N < 0 || r.N > r.Info.Size-r.Off && r.N != 0 {
		t.Fatalf("%s: size %d, off %d, len %d: the range is not within the file", in, r.Info.Size, r.Off, r.N)
	}
}

func sameRequest(a, b DataRequest) bool {
	return a.MountID == b.MountID && a.Path == b.Path && a.Off == b.Off && a.N == b.N &&
		a.Info.Path == b.Info.Path && a.Info.Size == b.Info.Size && a.Info.ETag == b.Info.ETag &&
		a.Info.IsDir == b.Info.IsDir && a.Info.ModTime.Equal(b.Info.ModTime) && a.Info.ModTime.IsZero() == b.Info.ModTime.IsZero()
}

// FuzzParseDataRequest checks the worker data port's request parser, on a
// raw query string and on a request built from fields: no panic; what it
// accepts is well-formed (checkDataRequest); what it refuses wraps
// ufs.ErrInvalidPath; an accepted request survives Query and
// ParseDataRequest unchanged, and a request built from valid fields is
// parsed back to itself. `go test` runs the seeds in
// testdata/fuzz/FuzzParseDataRequest; `make fuzz` explores.
func FuzzParseDataRequest(f *testing.F) {
	f.Add("mount=m&path=a%2Fb&size=10&off=0&len=-1&etag=e", "m", "a/b", int64(10), int64(0), "e", int64(0), int64(-1))
	f.Add("mount=m&path=..%2Fx&size=1", "m", "../x", int64(1), int64(0), "", int64(0), int64(1))
	f.Add("mount=m&size=9223372036854775807&off=1&len=9223372036854775807", "m", "", int64(1<<62), int64(123), "\x00", int64(1), int64(1<<63-1))
	f.Add("mount=&path=%00&size=x&off=-1", "", "a\x00b", int64(-1), int64(0), "", int64(-5), int64(0))
	f.Fuzz(func(t *testing.T, raw, mount, path string, size, mtime int64, etag string, off, n int64) {
		if q, err := url.ParseQuery(raw); err == nil {
			r, err := ParseDataRequest(q)
			if err != nil {
				if !errors.Is(err, ufs.ErrInvalidPath) {
					t.Fatalf("%q: error %v does not wrap ufs.ErrInvalidPath", raw, err)
				}
			} else {
				checkDataRequest(t, raw, r)
				r2, err := ParseDataRequest(r.Query())
				if err != nil || !sameRequest(r, r2) {
					t.Fatalf("%q: parsed %+v; its Query %q parses to %+v, %v", raw, r, r.Query().Encode(), r2, err)
				}
			}
		}

		// From fields, as a client builds it.
		in := DataRequest{MountID: mount, Path: path, Off: off, N: n,
			Info: ufs.FileInfo{Path: path, Size: size, ETag: etag}}
		if mtime != 0 {
			in.Info.ModTime = time.Unix(0, mtime)
		}
		enc := in.Query().Encode()
		q, err := url.ParseQuery(enc)
		if err != nil {
			t.Fatalf("%+v: Query %q does not parse: %v", in, enc, err)
		}
		r, err := ParseDataRequest(q)
		cleanPath, perr := namespace.CleanRel(path)
		valid := mount != "" && perr == nil && size >= 0 && off >= 0
		if valid != (err == nil) {
			t.Fatalf("%+v: ParseDataRequest error %v; want valid=%v (path: %v)", in, err, valid, perr)
		}
		if err != nil {
			return
		}
		checkDataRequest(t, enc, r)
		want := in
		want.Path, want.Info.Path = cleanPath, cleanPath
		if n < 0 || n > size-off {
			want.N = max(size-off, 0)
		}
		if !sameRequest(r, want) {
			t.Fatalf("%+v: parsed back as %+v; want %+v", in, r, want)
		}
	})
}
