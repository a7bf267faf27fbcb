package coordinator

import (
	"context"
	"errors"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/stratafs/strata/ufs"
	"github.com/stratafs/strata/ufs/local"
)

// tree makes files (paths relative to a temp dir) and returns the local FS.
func tree(t *testing.T, files []string) ufs.FS {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := &ufs.Registry{}
	local.Register(r)
	fs, err := r.Open(context.Background(), "file://"+dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fs.Close() })
	return fs
}

// walked runs a walk and returns the files it visited and the listings it
// reported.
func walked(t *testing.T, fs ufs.FS, root, cursor string, window, maxListing int) ([]string, map[string]int) {
	t.Helper()
	var files []string
	listings := map[string]int{}
	w := newWalker(fs, walkHandler{
		file: func(_ context.Context, fi ufs.FileInfo) error { files = append(files, fi.Path); return nil },
		dir:  func(context.Context, ufs.FileInfo) (bool, error) { return true, nil },
		listed: func(_ context.Context, dir string, entries []ufs.FileInfo) error {
			listings[dir] = len(entries)
			if entries == nil {
				listings[dir] = -1
			}
			return nil
		},
		listFailed: func(_ context.Context, _ string, err error) error { return err },
	})
	w.window, w.maxListing = window, maxListing
	rootInfo, err := fs.Stat(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	rootInfo.Path = root
	if err := w.walk(context.Background(), rootInfo, cursor); err != nil {
		t.Fatal(err)
	}
	return files, listings
}

// Names chosen so that per-directory name order, and the order of files
// with "/" vs "." vs "0" after a common prefix, all differ from path order.
var walkFiles = []string{
	"a", "a.txt", "a0", "b/c.d/e", "b/c/d", "b/c0", "b/b", "b-", "c/z/y/x", "c/z/y/w", "c/z0", "c/y",
	"d/e/f", "d/e/g", "d/e/a/b", "z",
}

func TestWalkVisitsFilesInPathOrder(t *testing.T) {
	fs := tree(t, walkFiles)
	want := slices.Clone(walkFiles)
	sort.Strings(want)
	for _, window := range []int{1, 2, 3, 1000} {
		got, listings := walked(t, fs, "", "", window, 100)
		if !slices.Equal(got, want) {
			t.Errorf("window %d: walk order\n got %v\nwant %v", window, got, want)
		}
		if listings[""] != 8 || listings["b"] != 4 || listings["d/e"] != 3 {
			t.Errorf("window %d: listings %v", window, listings)
		}
	}
}

func TestWalkResumesExactlyAfterTheCursor(t *testing.T) {
	fs := tree(t, walkFiles)
	all := slices.Clone(walkFiles)
	sort.Strings(all)
	for i, cursor := range all {
		for _, window := range []int{1, 1000} {
			got, _ := walked(t, fs, "", cursor, window, 100)
			if want := all[i+1:]; !slices.Equal(got, want) {
				t.Errorf("after %q (window %d):\n got %v\nwant %v", cursor, window, got, want)
			}
		}
	}
}

func TestWalkSubtreeAndSingleFile(t *testing.T) {
	fs := tree(t, walkFiles)
	got, _ := walked(t, fs, "c", "", 2, 100)
	if want := []string{"c/y", "c/z/y/w", "c/z/y/x", "c/z0"}; !slices.Equal(got, want) {
		t.Errorf("walk of c: %v, want %v", got, want)
	}
	got, _ = walked(t, fs, "b/c.d/e", "", 2, 100)
	if !slices.Equal(got, []string{"b/c.d/e"}) {
		t.Errorf("walk of one file: %v", got)
	}
	if got, _ := walked(t, fs, "b/c.d/e", "b/c.d/e", 2, 100); len(got) != 0 {
		t.Errorf("walk of one file after itself: %v", got)
	}
}

func TestWalkDropsListingsTooLongToCache(t *testing.T) {
	fs := tree(t, walkFiles)
	_, listings := walked(t, fs, "", "", 2, 4)
	if listings[""] != -1 || listings["d/e"] != 3 {
		t.Errorf("listings with a limit of 4 entries: %v", listings)
	}
}

// failingFS fails the listing of one directory.
type failingFS struct {
	ufs.FS
	dir string
	err error
	n   int
}

func (f *failingFS) List(ctx context.Context, dir string) iter.Seq2[ufs.FileInfo, error] {
	if dir == f.dir {
		f.n++
		return func(yield func(ufs.FileInfo, error) bool) { yield(ufs.FileInfo{}, f.err) }
	}
	return f.FS.List(ctx, dir)
}

func TestWalkReportsListingFailuresAndGoesOn(t *testing.T) {
	for _, tc := range []struct {
		err   error
		tries int
	}{{ufs.ErrPermission, 1}, {ufs.ErrUnavailable, 3}} {
		fs := &failingFS{FS: tree(t, walkFiles), dir: "c", err: tc.err}
		var files, failed []string
		w := newWalker(fs, walkHandler{
			file:   func(_ context.Context, fi ufs.FileInfo) error { files = append(files, fi.Path); return nil },
			dir:    func(context.Context, ufs.FileInfo) (bool, error) { return true, nil },
			listed: func(context.Context, string, []ufs.FileInfo) error { return nil },
			listFailed: func(_ context.Context, dir string, err error) error {
				if !errors.Is(err, tc.err) {
					t.Errorf("listFailed got %v, want %v", err, tc.err)
				}
				failed = append(failed, dir)
				return nil
			},
		})
		w.retries, w.backoff = 2, 0
		if err := w.walk(context.Background(), ufs.FileInfo{IsDir: true}, ""); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(failed, []string{"c"}) || slices.Contains(files, "c/y") || !slices.Contains(files, "z") {
			t.Errorf("%v: failed %v, files %v", tc.err, failed, files)
		}
		if fs.n != tc.tries {
			t.Errorf("%v: listed %d times, want %d", tc.err, fs.n, tc.tries)
		}
	}
}

func TestAfterCursor(t *testing.T) {
	for _, tc := range []struct {
		path   string
		dir    bool
		cursor string
		want   bool
	}{
		{"a", false, "", true}, {"a", false, "a", false}, {"b", false, "a", true},
		{"a", true, "a/x", true}, {"a", true, "a.txt", true}, {"a", true, "a0", false},
		{"a/b", true, "a/b/c/d", true}, {"a/c", true, "a/b/c/d", true}, {"a/a", true, "a/b", false},
	} {
		if got := afterCursor(ufs.FileInfo{Path: tc.path, IsDir: tc.dir}, tc.cursor); got != tc.want {
			t.Errorf("afterCursor(%q dir=%v, %q) = %v", tc.path, tc.dir, tc.cursor, got)
		}
	}
}
