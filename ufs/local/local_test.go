package local

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/stratafs/strata/ufs"
	"github.com/stratafs/strata/ufs/ufstest"
)

func open(t *testing.T, dir string, opts ufs.Options) *FS {
	t.Helper()
	loc, err := ufs.ParseURI("file://" + dir)
	if err != nil {
		t.Fatalf("ParseURI: %v", err)
	}
	f, err := New(t.Context(), loc, opts)
	if err != nil {
		t.Fatalf("New(%s): %v", loc, err)
	}
	return f
}

func TestConformance(t *testing.T) {
	ufstest.Run(t, func(t *testing.T) ufs.FS { return open(t, t.TempDir(), nil) }, ufstest.Options{})
}

func TestConformanceNoFsync(t *testing.T) {
	ufstest.Run(t, func(t *testing.T) ufs.FS {
		return open(t, t.TempDir(), ufs.Options{"local.fsync": "false"})
	}, ufstest.Options{ListKeys: 2000, LargeSize: 20 << 20, PartSize: 4 << 20})
}

func readAll(ctx context.Context, f *FS, p string) ([]byte, error) {
	rc, err := f.OpenRange(ctx, p, 0, -1, ufs.ReadOptions{})
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func names(t *testing.T, f *FS, dir string) []string {
	t.Helper()
	var out []string
	for fi, err := range f.List(t.Context(), dir) {
		if err != nil {
			t.Fatalf("List(%q): %v", dir, err)
		}
		out = append(out, fi.Name())
	}
	slices.Sort(out)
	return out
}

// TestSymlinkEscape: links that lead out of the root never give access to what
// is outside, whatever the operation.
func TestSymlinkEscape(t *testing.T) {
	ctx := t.Context()
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	rootDir := filepath.Join(base, "root")
	for _, d := range []string{outside, rootDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	secret := []byte("top secret, outside the mount")
	if err := os.WriteFile(filepath.Join(outside, "secret"), secret, 0o644); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"abs-file": filepath.Join(outside, "secret"),
		"abs-dir":  outside,
		"rel-file": "../outside/secret",
		"rel-dir":  "../outside",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(rootDir, name)); err != nil {
			t.Fatal(err)
		}
	}
	// A link that stays inside is followed.
	if err := os.WriteFile(filepath.Join(rootDir, "inside"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("inside", filepath.Join(rootDir, "good-link")); err != nil {
		t.Fatal(err)
	}
	f := open(t, rootDir, nil)
	defer f.Close()

	for _, p := range []string{"abs-file", "rel-file", "abs-dir/secret", "rel-dir/secret"} {
		if fi, err := f.Stat(ctx, p); err == nil {
			t.Errorf("Stat(%q) = %+v, want an error", p, fi)
		} else if !errors.Is(err, ufs.ErrPermission) {
			t.Errorf("Stat(%q): %v, want ErrPermission", p, err)
		}
		b, err := readAll(ctx, f, p)
		if err == nil || bytes.Contains(b, secret) {
			t.Errorf("OpenRange(%q) = %q, %v; want an error and no data", p, b, err)
		}
	}
	for _, d := range []string{"abs-dir", "rel-dir"} {
		for fi, err := range f.List(ctx, d) {
			if err == nil {
				t.Errorf("List(%q) yielded %+v, want an error", d, fi)
			}
		}
		if _, err := f.Put(ctx, d+"/planted", strings.NewReader("x"), 1); err == nil {
			t.Errorf("Put(%q/planted) succeeded", d)
		}
		if err := f.Mkdir(ctx, d+"/newdir"); err == nil {
			t.Errorf("Mkdir(%q/newdir) succeeded", d)
		}
		if err := f.Rename(ctx, "inside", d+"/moved"); err == nil {
			t.Errorf("Rename into %q succeeded", d)
		}
	}
	if err := f.Delete(ctx, "abs-dir/secret"); err == nil {
		t.Errorf("Delete through a link succeeded")
	}
	ents, _ := os.ReadDir(outside)
	if len(ents) != 1 {
		t.Errorf("the outside dir now holds %d entries, want only the secret", len(ents))
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "secret")); !bytes.Equal(b, secret) {
		t.Errorf("the outside file was changed")
	}

	// The escaping links are left out of listings; the good one is shown as
	// what it points to.
	if got, want := names(t, f, ""), []string{"good-link", "inside"}; !slices.Equal(got, want) {
		t.Errorf("List(root) = %v, want %v", got, want)
	}
	fi, err := f.Stat(ctx, "good-link")
	if err != nil || fi.IsDir || fi.Size != 5 {
		t.Errorf("Stat(good-link) = %+v, %v", fi, err)
	}
	if b, err := readAll(ctx, f, "good-link"); err != nil || string(b) != "hello" {
		t.Errorf("read good-link = %q, %v", b, err)
	}
	// Deleting a link removes the link, not its target.
	if err := f.Delete(ctx, "abs-file"); err != nil {
		t.Errorf("Delete(abs-file): %v", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "secret")); err != nil {
		t.Errorf("the link's target is gone: %v", err)
	}
}

func TestInvalidPaths(t *testing.T) {
	ctx := t.Context()
	f := open(t, t.TempDir(), nil)
	defer f.Close()
	for _, p := range []string{"..", "../x", "a/../../x", "/abs", "a//b", "a/", "./a", "nul\x00byte"} {
		_, err := f.Stat(ctx, p)
		if !errors.Is(err, ufs.ErrInvalidPath) {
			t.Errorf("Stat(%q): %v, want ErrInvalidPath", p, err)
		}
		_, err = f.Put(ctx, p, strings.NewReader("x"), 1)
		if !errors.Is(err, ufs.ErrInvalidPath) {
			t.Errorf("Put(%q): %v, want ErrInvalidPath", p, err)
		}
	}
}

func TestTempFiles(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	f := open(t, dir, nil)
	defer f.Close()
	// A leftover temp file (from a crash) is not shown.
	if err := os.WriteFile(filepath.Join(dir, TempPrefix+"leftover"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := names(t, f, ""); len(got) != 0 {
		t.Errorf("List shows %v, want nothing", got)
	}
	// A failed put leaves no temp file behind.
	if _, err := f.Put(ctx, "sub/x", io.MultiReader(strings.NewReader("abc"), errReader{}), -1); err == nil {
		t.Fatalf("Put with a failing reader succeeded")
	}
	if _, err := f.Put(ctx, "sub/y", strings.NewReader("abc"), 10); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Put of a short stream: %v, want io.ErrUnexpectedEOF", err)
	}
	if _, err := f.Put(ctx, "sub/z", strings.NewReader("abcdef"), 3); err == nil {
		t.Errorf("Put of a stream longer than declared succeeded")
	}
	ents, err := os.ReadDir(filepath.Join(dir, "sub"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Errorf("sub holds %d entries after failed puts, want none (first: %s)", len(ents), ents[0].Name())
	}
	// Put over a directory fails and leaves it alone.
	if err := f.Mkdir(ctx, "adir/child"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Put(ctx, "adir", strings.NewReader("x"), 1); !errors.Is(err, ufs.ErrIsDir) {
		t.Errorf("Put over a directory: %v, want ErrIsDir", err)
	}
	if got := names(t, f, "adir"); !slices.Equal(got, []string{"child"}) {
		t.Errorf("List(adir) = %v", got)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestSpecialFiles(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	f := open(t, dir, nil)
	defer f.Close()
	// Opening must not block on the FIFO.
	if _, err := f.OpenRange(ctx, "fifo", 0, -1, ufs.ReadOptions{}); !errors.Is(err, ufs.ErrNotSupported) {
		t.Errorf("OpenRange(fifo): %v, want ErrNotSupported", err)
	}
	if _, err := f.Stat(ctx, "fifo"); !errors.Is(err, ufs.ErrNotSupported) {
		t.Errorf("Stat(fifo): %v, want ErrNotSupported", err)
	}
	if got := names(t, f, ""); len(got) != 0 {
		t.Errorf("List shows %v, want the FIFO hidden", got)
	}
}

func TestRoot(t *testing.T) {
	ctx := t.Context()
	base := t.TempDir()

	missing := open(t, filepath.Join(base, "not-yet"), nil)
	defer missing.Close()
	if _, err := missing.Stat(ctx, ""); !errors.Is(err, ufs.ErrNotFound) {
		t.Errorf("Stat(missing root): %v, want ErrNotFound", err)
	}
	if err := ufs.Check(ctx, missing); !errors.Is(err, ufs.ErrNotFound) {
		t.Errorf("Check(missing root): %v, want ErrNotFound", err)
	}
	// Once the directory appears, the FS works.
	if err := os.Mkdir(filepath.Join(base, "not-yet"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := ufs.Check(ctx, missing); err != nil {
		t.Errorf("Check after mkdir: %v", err)
	}

	file := filepath.Join(base, "plain-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ff := open(t, file, nil)
	defer ff.Close()
	if err := ufs.Check(ctx, ff); !errors.Is(err, ufs.ErrNotDir) {
		t.Errorf("Check(root is a file): %v, want ErrNotDir", err)
	}

	ok := open(t, base, nil)
	defer ok.Close()
	if err := ok.Delete(ctx, ""); !errors.Is(err, ufs.ErrNotSupported) {
		t.Errorf("Delete(root): %v, want ErrNotSupported", err)
	}
	if _, err := os.Stat(base); err != nil {
		t.Errorf("the root is gone: %v", err)
	}
}

func TestNewAndRegistry(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	if _, err := New(ctx, ufs.Location{Scheme: "s3", Bucket: "b"}, nil); !errors.Is(err, ufs.ErrInvalidURI) {
		t.Errorf("New(s3 location): %v, want ErrInvalidURI", err)
	}
	loc, _ := ufs.ParseURI("file://" + dir)
	_, err := New(ctx, loc, ufs.Options{"local.fsync": "maybe", "local.colour": "red", "s3.region": "ignored"})
	if !errors.Is(err, ufs.ErrInvalidURI) || !strings.Contains(err.Error(), "local.fsync") || !strings.Contains(err.Error(), "local.colour") {
		t.Errorf("New with bad options: %v, want ErrInvalidURI naming both", err)
	}

	var r ufs.Registry
	Register(&r)
	fs, err := r.Open(ctx, "file://"+dir, nil)
	if err != nil {
		t.Fatalf("Registry.Open: %v", err)
	}
	defer fs.Close()
	if _, err := fs.Put(ctx, "x/y", strings.NewReader("hi"), 2); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "x", "y")); err != nil || string(b) != "hi" {
		t.Errorf("file on disk = %q, %v", b, err)
	}
	if _, err := r.Open(ctx, "file://host/dir", nil); !errors.Is(err, ufs.ErrInvalidURI) {
		t.Errorf("Open(file://host/dir): %v, want ErrInvalidURI", err)
	}
	if _, err := r.Open(ctx, "file:///a/../../etc", nil); !errors.Is(err, ufs.ErrInvalidURI) {
		t.Errorf("Open with '..': %v, want ErrInvalidURI", err)
	}
}

// TestETagFollowsFile: the ETag changes when the file is changed behind the
// FS's back, and an open reader keeps reading the version it opened.
func TestETagFollowsFile(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	f := open(t, dir, nil)
	defer f.Close()
	fi, err := f.Put(ctx, "v", strings.NewReader("version-1"), 9)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := f.OpenRange(ctx, "v", 0, -1, ufs.ReadOptions{IfMatch: fi.ETag})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := f.Put(ctx, "v", strings.NewReader("version-2!"), 10); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(rc); err != nil || string(b) != "version-1" {
		t.Errorf("open reader read %q, %v; want the version it opened", b, err)
	}
	// Written by another tool, same size, explicit older mtime.
	if err := os.WriteFile(filepath.Join(dir, "v"), []byte("version-3!"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := f.Stat(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	if st.ETag == fi.ETag {
		t.Errorf("ETag unchanged after an outside write")
	}
	if _, err := f.OpenRange(ctx, "v", 0, 1, ufs.ReadOptions{IfMatch: fi.ETag}); !errors.Is(err, ufs.ErrChanged) {
		t.Errorf("OpenRange with a stale ETag: %v, want ErrChanged", err)
	}
}
