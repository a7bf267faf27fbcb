package coordinator

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stratafs/strata/ufs"
)

func TestLocalRoots(t *testing.T) {
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(base, "data")
	for _, d := range []string{data, filepath.Join(data, "sets"), filepath.Join(base, "data2"), filepath.Join(base, "outside")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A symlink under the root that escapes it, one that stays inside, and a
	// root that is itself reached through a symlink.
	if err := os.Symlink(filepath.Join(base, "outside"), filepath.Join(data, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(data, "sets"), filepath.Join(data, "inside")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(data, filepath.Join(base, "datalink")); err != nil {
		t.Fatal(err)
	}
	roots := []string{data}
	cases := []struct {
		name  string
		uri   string
		roots []string
		ok    bool
	}{
		{"the root itself", "file://" + data, roots, true},
		{"below the root", "file://" + data + "/sets", roots, true},
		{"not yet created below the root", "file://" + data + "/new/dir", roots, true},
		{"trailing slash and dots", "file://" + data + "/./sets/", roots, true},
		{"symlink staying inside", "file://" + data + "/inside", roots, true},
		{"symlink escaping the root", "file://" + data + "/escape", roots, false},
		{"below an escaping symlink, not yet created", "file://" + data + "/escape/new", roots, false},
		{"prefix trick", "file://" + base + "/data2", roots, false},
		{"outside", "file:///etc", roots, false},
		{"parent of the root", "file://" + base, roots, false},
		{"no roots", "file://" + data, nil, false},
		{"star", "file:///etc", []string{"*"}, true},
		{"star among others", "file:///etc", []string{data, "*"}, true},
		{"root given through a symlink", "file://" + data + "/sets", []string{filepath.Join(base, "datalink")}, true},
		{"mount through a symlinked root", "file://" + base + "/datalink/sets", roots, true},
		{"slash root", "file:///etc", []string{"/"}, true},
		{"root with trailing slash", "file://" + data + "/sets", []string{data + "/"}, true},
		{"relative root never matches", "file://" + data, []string{"data"}, false},
		{"other schemes pass", "s3://bucket/etc", nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := checkLocalRoot(c.uri, c.roots)
			if c.ok {
				if err != nil {
					t.Fatalf("checkLocalRoot(%s, %v) = %v; want allowed", c.uri, c.roots, err)
				}
				return
			}
			if !errors.Is(err, ErrLocalRootNotAllowed) || !errors.Is(err, ufs.ErrPermission) {
				t.Fatalf("checkLocalRoot(%s, %v) = %v; want ErrLocalRootNotAllowed (ErrPermission)", c.uri, c.roots, err)
			}
			if !strings.Contains(err.Error(), "coordinator.allowed_local_roots") {
				t.Errorf("error %q does not name the setting", err)
			}
		})
	}

	// ".." never reaches the check: the URI is refused first.
	if err := checkLocalRoot("file://"+data+"/../outside", roots); !errors.Is(err, ufs.ErrInvalidURI) {
		t.Errorf("a URI with '..' = %v; want ErrInvalidURI", err)
	}
	// Still, the path rule itself resolves ".." before comparing.
	if _, ok := localPathAllowed(data+"/../outside", roots); ok {
		t.Error("localPathAllowed accepted a path that leaves the root with '..'")
	}
	if _, ok := localPathAllowed(data+"/sets/../sets", roots); !ok {
		t.Error("localPathAllowed refused a path whose '..' stays inside the root")
	}

	// The messages say what to do.
	err = checkLocalRoot("file:///etc", nil)
	want := "file:///etc is outside coordinator.allowed_local_roots (none configured); add a root to the coordinator's config to allow local mounts"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("message = %q; want it to contain %q", err, want)
	}
	err = checkLocalRoot("file://"+data+"/escape", roots)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(base, "outside")+" once its symlinks are resolved") || !strings.Contains(err.Error(), "allowed: "+data) {
		t.Errorf("message for an escaping symlink = %q", err)
	}
}
