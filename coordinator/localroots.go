package coordinator

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/ufs"
)

// ErrLocalRootNotAllowed is returned for a file:// mount outside
// coordinator.allowed_local_roots. It matches ufs.ErrPermission too, so the
// RPC answer is PermissionDenied.
var ErrLocalRootNotAllowed error = localRootError{}

type localRootError struct{}

func (localRootError) Error() string { return "local directory not allowed" }
func (localRootError) Unwrap() error { return ufs.ErrPermission }

// checkLocalRoot refuses a file:// URI whose directory, cleaned and with its
// symlinks resolved, is not one of roots or below one. "*" among roots
// allows any directory; other schemes pass. Errors wrap
// ErrLocalRootNotAllowed, or ufs.ErrInvalidURI for a malformed URI.
func checkLocalRoot(uri string, roots []string) error {
	loc, err := ufs.ParseURI(uri)
	if err != nil {
		return err
	}
	if loc.Scheme != "file" {
		return nil
	}
	dir := filepath.Clean("/" + loc.Prefix)
	resolved, ok := localPathAllowed(dir, roots)
	if ok {
		return nil
	}
	what := loc.String()
	if resolved != dir {
		what += " (" + resolved + " once its symlinks are resolved)"
	}
	configured := "none configured"
	if len(roots) > 0 {
		configured = "allowed: " + strings.Join(roots, ", ")
	}
	return fmt.Errorf("%w: %s is outside coordinator.allowed_local_roots (%s); add a root to the coordinator's config to allow local mounts",
		ErrLocalRootNotAllowed, what, configured)
}

// localPathAllowed reports whether the absolute path p is equal to or under
// one of roots, after cleaning both and resolving the symlinks of the part of
// each that exists. It also returns p resolved, for messages.
func localPathAllowed(p string, roots []string) (string, bool) {
	p = resolvePath(p)
	for _, r := range roots {
		if r == conf.AllowAnyLocalRoot {
			return p, true
		}
		if !filepath.IsAbs(r) {
			continue // conf validation refuses these; never match them
		}
		clean := filepath.Clean(r)
		// A root reached through a symlink is compared as configured and as
		// resolved: p is always resolved.
		if within(p, clean) || within(p, resolvePath(clean)) {
			return p, true
		}
	}
	return p, false
}

// within reports whether p is root or below it. Both are clean and absolute.
func within(p, root string) bool {
	if root == "/" {
		return true
	}
	return p == root || strings.HasPrefix(p, root+"/")
}

// resolvePath cleans the absolute path p and resolves the symlinks of its
// longest existing prefix; the missing rest is appended as it is (it cannot
// hold a symlink yet).
func resolvePath(p string) string {
	p = filepath.Clean(p)
	var rest []string
	for cur := p; ; {
		r, err := filepath.EvalSymlinks(cur)
		if err == nil {
			return filepath.Join(append([]string{r}, rest...)...)
		}
		parent := filepath.Dir(cur)
		if parent == cur || !(errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission)) {
			// Nothing resolvable (or a loop): judge the path as written.
			return p
		}
		rest = append([]string{filepath.Base(cur)}, rest...)
		cur = parent
	}
}
