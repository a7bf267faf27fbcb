package namespace

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stratafs/strata/ufs"
)

// checkCleanAbs asserts what every path Clean returns is: absolute, no
// empty, "." or ".." element, no trailing "/" (but "/"), no NUL, valid UTF-8,
// within MaxNamespacePathLen.
func checkCleanAbs(t *testing.T, in, c string) {
	t.Helper()
	if !strings.HasPrefix(c, "/") || (c != "/" && strings.HasSuffix(c, "/")) || strings.Contains(c, "//") {
		t.Fatalf("Clean(%q) = %q: not in clean form", in, c)
	}
	if c != "/" {
		for el := range strings.SplitSeq(c[1:], "/") {
			if el == "" || el == "." || el == ".." {
				t.Fatalf("Clean(%q) = %q: has the element %q", in, c, el)
			}
		}
	}
	if strings.ContainsRune(c, 0) || !utf8.ValidString(c) || len(c) > MaxNamespacePathLen || len(c) > len(in) {
		t.Fatalf("Clean(%q) = %q: NUL, invalid UTF-8 or too long", in, c)
	}
}

// FuzzClean checks namespace path cleaning: no panic; a cleaned path is
// absolute, canonical and never climbs (no ".." element, so it stays below
// "/" and below any directory it is joined to); cleaning is idempotent;
// CleanRel agrees with Clean and with ufs.CleanPath; a rejected path wraps
// the sentinel. `go test` runs the seeds in testdata/fuzz/FuzzClean;
// `make fuzz` explores.
func FuzzClean(f *testing.F) {
	for _, s := range []string{"/", "", "/a//b/./c/", "/a/../b", "relative", "/..", "/a/\x00b", "/a/\xff",
		"/" + strings.Repeat("x", 300), "/./.../..../.", "/a b/ü名前/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		c, err := Clean(p)
		if err != nil {
			if !errors.Is(err, ErrInvalidPath) {
				t.Fatalf("Clean(%q) error %v does not wrap ErrInvalidPath", p, err)
			}
		} else {
			checkCleanAbs(t, p, c)
			if c2, err := Clean(c); err != nil || c2 != c {
				t.Fatalf("Clean(Clean(%q)) = %q, %v; want %q", p, c2, err, c)
			}
			// A name joined to a clean directory stays below it.
			dir := "/mnt/data"
			j := Join(dir, strings.TrimPrefix(c, "/"))
			if c == "/" {
				j = dir
			}
			if !IsWithin(j, dir) {
				t.Fatalf("Join(%q, %q) = %q escapes it", dir, c, j)
			}
			if Parent(c) != "/" && !IsWithin(c, Parent(c)) || (c != "/" && Join(Parent(c), Base(c)) != c) {
				t.Fatalf("Parent/Base/Join disagree on %q", c)
			}
			if strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") {
				t.Fatalf("Clean(%q) accepted a '..' element", p)
			}
		}

		// The relative form: what requests to workers carry.
		r, rerr := CleanRel(p)
		if rerr != nil {
			if !errors.Is(rerr, ufs.ErrInvalidPath) {
				t.Fatalf("CleanRel(%q) error %v does not wrap ufs.ErrInvalidPath", p, rerr)
			}
			return
		}
		if r2, err := CleanRel(r); err != nil || r2 != r {
			t.Fatalf("CleanRel(CleanRel(%q)) = %q, %v; want %q", p, r2, err, r)
		}
		if u, err := ufs.CleanPath(p); err != nil || u != r {
			t.Fatalf("CleanRel(%q) = %q but ufs.CleanPath gives %q, %v", p, r, u, err)
		}
		a := "/" + r
		if len(a) <= MaxPathLen {
			if c, err := Clean(a); err != nil || c != a && !(r == "" && c == "/") {
				t.Fatalf("CleanRel(%q) = %q, but Clean of its absolute form gives %q, %v", p, r, c, err)
			}
		}
		if strings.HasPrefix(r, "/") || strings.HasSuffix(r, "/") {
			t.Fatalf("CleanRel(%q) = %q: not relative", p, r)
		}
		for el := range strings.SplitSeq(r, "/") {
			if el == ".." || el == "." || (el == "" && r != "") {
				t.Fatalf("CleanRel(%q) = %q: element %q", p, r, el)
			}
		}
		if strings.HasPrefix(p, "/") && len(p) <= MaxPathLen {
			if c, err := Clean(p); err != nil || c != a && !(r == "" && c == "/") {
				t.Fatalf("Clean(%q) = %q, %v; CleanRel agrees on %q", p, c, err, a)
			}
		}
	})
}

// FuzzResolve checks mount resolution against a fixed table: a path lies in
// the mount Resolve names (the longest mount point above it), the relative
// path rebuilds it and is in UFS clean form, and a path in no mount is
// ErrNoMount. A fuzzed mount point is accepted by CheckNew exactly when
// NewTable can add it.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"/data/a/b", "/", "/data", "/datasets/mnist/x", "/dat", "/a/b/c/d", "/x//y/"} {
		f.Add(s, "/new")
	}
	f.Add("/data-other/f", "/data/inner")
	f.Add("/a/b", "/a")
	f.Fuzz(func(t *testing.T, p, newMount string) {
		mounts := []string{"/data", "/datasets/mnist", "/a/b/c", "/z"}
		tb := mustTable(t, mounts...)
		c, err := Clean(p)
		if err != nil {
			return
		}
		m, rel, err := tb.Resolve(c)
		if err != nil {
			if !errors.Is(err, ErrNoMount) {
				t.Fatalf("Resolve(%q): %v", c, err)
			}
			for _, mp := range mounts {
				if IsWithin(c, mp) {
					t.Fatalf("Resolve(%q) found no mount, but it lies in %s", c, mp)
				}
			}
			return
		}
		if !IsWithin(c, m.Path) {
			t.Fatalf("Resolve(%q) = mount %s, which is not above it", c, m.Path)
		}
		if u, err := ufs.CleanPath(rel); err != nil || u != rel {
			t.Fatalf("Resolve(%q) rel %q is not in UFS clean form", c, rel)
		}
		if rel == "" && c != m.Path || rel != "" && Join(m.Path, rel) != c {
			t.Fatalf("Resolve(%q) = %s + %q does not rebuild the path", c, m.Path, rel)
		}
		for _, mp := range mounts {
			if IsWithin(c, mp) && len(mp) > len(m.Path) {
				t.Fatalf("Resolve(%q) = %s, but %s is longer", c, m.Path, mp)
			}
		}

		names, virtual := tb.VirtualChildren(c)
		for _, n := range names {
			if n == "" || strings.Contains(n, "/") {
				t.Fatalf("VirtualChildren(%q) has the name %q", c, n)
			}
		}
		if c == "/" && !virtual {
			t.Fatal("/ is not virtual")
		}

		cerr := tb.CheckNew(newMount)
		all := append([]Mount(nil), tb.All()...)
		all = append(all, Mount{ID: "new", Path: newMount, URI: "file:///tmp/x"})
		_, nerr := NewTable(all)
		if (cerr == nil) != (nerr == nil) {
			t.Fatalf("CheckNew(%q) = %v but NewTable = %v", newMount, cerr, nerr)
		}
	})
}

func TestCleanRel(t *testing.T) {
	long := strings.Repeat("n", 1000) // object stores hold keys with elements over NAME_MAX
	good := map[string]string{
		"":            "",
		"/":           "",
		"a":           "a",
		"a//b/./c/":   "a/b/c",
		"/a/b":        "a/b",
		"x/.hidden/":  "x/.hidden",
		"d/" + long:   "d/" + long,
		"a b/ü名前/...": "a b/ü名前/...",
	}
	for in, want := range good {
		if got, err := CleanRel(in); err != nil || got != want {
			t.Errorf("CleanRel(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"..", "../x", "a/../b", "a/..", "a/\x00b", "a/\xff",
		strings.Repeat("abcdefg/", 512) + "x"} {
		if _, err := CleanRel(in); !errors.Is(err, ufs.ErrInvalidPath) {
			t.Errorf("CleanRel(%.40q) error = %v, want ufs.ErrInvalidPath", in, err)
		}
	}
}
