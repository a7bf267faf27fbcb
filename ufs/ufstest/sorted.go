package ufstest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stratafs/strata/ufs"
)

// listAfter collects the sort keys ListAfter yields.
func listAfter(t *testing.T, sl ufs.SortedLister, dir, after string) ([]string, error) {
	t.Helper()
	var out []string
	for fi, err := range sl.ListAfter(t.Context(), dir, after) {
		if err != nil {
			return out, err
		}
		if want := ufs.Join(dir, fi.Name()); fi.Path != want {
			t.Errorf("ListAfter(%q) yielded the path %q, want %q", dir, fi.Path, want)
		}
		out = append(out, ufs.SortKey(fi))
	}
	return out, nil
}

func testSortedList(t *testing.T, fs ufs.FS, o Options) {
	sl, ok := fs.(ufs.SortedLister)
	if !ok {
		t.Skip("the FS does not implement ufs.SortedLister")
	}
	// S3 order: "-" < "." < "/" < "0", upper case first, bytes of UTF-8.
	for _, p := range []string{"s/Z", "s/a-b", "s/a.txt", "s/a/x", "s/a0", "s/b/c/d", "s/ü"} {
		put(t, fs, p, 1, 3)
	}
	all := []string{"Z", "a-b", "a.txt", "a/", "a0", "b/", "ü"}
	for i, after := range append([]string{""}, all...) {
		got, err := listAfter(t, sl, "s", after)
		if err != nil || !slices.Equal(got, all[i:]) {
			t.Errorf("ListAfter(s, %q) = %v, %v; want %v", after, got, err, all[i:])
		}
	}
	if got, err := listAfter(t, sl, "s", "a.z"); err != nil || !slices.Equal(got, all[3:]) {
		t.Errorf("ListAfter(s, a name between two) = %v, %v", got, err)
	}

	// Several pages of files and directories, interleaved.
	var want []string
	for i := range 40 {
		name := fmt.Sprintf("n%02d", i)
		if i%3 == 0 {
			put(t, fs, "many/"+name+"/inner", uint64(i), 1)
			want = append(want, name+"/")
		} else {
			put(t, fs, "many/"+name, uint64(i), 1)
			want = append(want, name)
		}
	}
	got, err := listAfter(t, sl, "many", "")
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("ListAfter(many) = %v, %v; want %v", got, err, want)
	}
	got, err = listAfter(t, sl, "many", "n21/")
	if err != nil || !slices.Equal(got, want[22:]) {
		t.Errorf("ListAfter(many, n21/) = %v, %v; want %v", got, err, want[22:])
	}
	// The consumer stops early.
	n := 0
	for range sl.ListAfter(t.Context(), "many", "") {
		if n++; n == 5 {
			break
		}
	}

	_, err = listAfter(t, sl, "nothing", "")
	wantErr(t, err, ufs.ErrNotFound, "ListAfter of a missing directory")
	_, err = listAfter(t, sl, "s/Z", "")
	wantErr(t, err, ufs.ErrNotDir, "ListAfter of a file")
	if got, err := listAfter(t, sl, "", ""); err != nil || !slices.Contains(got, "s/") || !slices.IsSortedFunc(got, strings.Compare) {
		t.Errorf("ListAfter of the root = %v, %v", got, err)
	}
}
