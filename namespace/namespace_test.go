package namespace

import (
	"errors"
	"slices"
	"testing"
)

func TestClean(t *testing.T) {
	good := map[string]string{
		"/":           "/",
		"//":          "/",
		"/a//b/./c/":  "/a/b/c",
		"/datasets":   "/datasets",
		"/a b/ü名前":    "/a b/ü名前",
		"/x/.hidden/": "/x/.hidden",
	}
	for in, want := range good {
		got, err := Clean(in)
		if err != nil || got != want {
			t.Errorf("Clean(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "relative", "/a/../b", "/..", "/a/\x00b", "/a/\xff"} {
		if _, err := Clean(in); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("Clean(%q) error = %v, want ErrInvalidPath", in, err)
		}
	}
}

func mustTable(t *testing.T, paths ...string) *Table {
	t.Helper()
	var ms []Mount
	for i, p := range paths {
		ms = append(ms, Mount{ID: string(rune('a' + i)), Path: p, URI: "file:///tmp/x"})
	}
	tb, err := NewTable(ms)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestResolveLongestPrefix(t *testing.T) {
	tb := mustTable(t, "/a", "/a-x/y", "/data/mnist", "/data/imagenet", "/data/m")
	cases := []struct{ p, mount, rel string }{
		{"/a", "/a", ""},
		{"/a/b/c", "/a", "b/c"},
		{"/a-x/y/z", "/a-x/y", "z"},
		{"/data/mnist/train/0.png", "/data/mnist", "train/0.png"},
		{"/data/m/x", "/data/m", "x"},
	}
	for _, c := range cases {
		m, rel, err := tb.Resolve(c.p)
		if err != nil || m.Path != c.mount || rel != c.rel {
			t.Errorf("Resolve(%q) = %q %q %v; want %q %q", c.p, m.Path, rel, err, c.mount, c.rel)
		}
	}
	for _, p := range []string{"/", "/data", "/data/mnistx", "/a-x", "/b"} {
		if _, _, err := tb.Resolve(p); !errors.Is(err, ErrNoMount) {
			t.Errorf("Resolve(%q) error = %v, want ErrNoMount", p, err)
		}
	}
	root := mustTable(t, "/")
	if m, rel, err := root.Resolve("/x/y"); err != nil || m.Path != "/" || rel != "x/y" {
		t.Errorf("root mount Resolve = %q %q %v", m.Path, rel, err)
	}
}

func TestCheckNewRejectsNesting(t *testing.T) {
	tb := mustTable(t, "/data/mnist")
	for _, p := range []string{"/data/mnist", "/data/mnist/train", "/data", "/"} {
		if err := tb.CheckNew(p); !errors.Is(err, ErrMountConflict) {
			t.Errorf("CheckNew(%q) = %v, want ErrMountConflict", p, err)
		}
	}
	for _, p := range []string{"relative", "/data/../etc", "/data//x"} {
		if err := tb.CheckNew(p); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("CheckNew(%q) = %v, want ErrInvalidPath", p, err)
		}
	}
	if err := tb.CheckNew("/data/imagenet"); err != nil {
		t.Errorf("sibling mount refused: %v", err)
	}
	if _, err := NewTable([]Mount{{ID: "1", Path: "/a", URI: "file:///x"}, {ID: "2", Path: "/a/b", URI: "file:///y"}}); !errors.Is(err, ErrMountConflict) {
		t.Errorf("NewTable with nested mounts: %v", err)
	}
}

func TestVirtualChildren(t *testing.T) {
	tb := mustTable(t, "/data/mnist", "/data/imagenet", "/models")
	names, ok := tb.VirtualChildren("/")
	slices.Sort(names)
	if !ok || !slices.Equal(names, []string{"data", "models"}) {
		t.Errorf("VirtualChildren(/) = %v %v", names, ok)
	}
	names, ok = tb.VirtualChildren("/data")
	slices.Sort(names)
	if !ok || !slices.Equal(names, []string{"imagenet", "mnist"}) {
		t.Errorf("VirtualChildren(/data) = %v %v", names, ok)
	}
	if _, ok := tb.VirtualChildren("/data/mnist"); ok {
		t.Error("a mount point is not virtual")
	}
	if _, ok := tb.VirtualChildren("/nope"); ok {
		t.Error("/nope is not virtual")
	}
}

func TestMaskedHidesSecrets(t *testing.T) {
	m := Mount{Options: map[string]string{"s3.secret_access_key": "shh", "s3.access_key_id": "AK", "s3.session_token": "tok", "s3.region": "us"}}
	got := m.Masked().Options
	if got["s3.secret_access_key"] != "****" || got["s3.session_token"] != "****" || got["s3.access_key_id"] != "AK" || got["s3.region"] != "us" {
		t.Errorf("Masked = %v", got)
	}
	if m.Options["s3.secret_access_key"] != "shh" {
		t.Error("Masked changed the original")
	}
}
