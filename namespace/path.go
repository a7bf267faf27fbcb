// Package namespace is the client-side view of Strata's unified namespace:
// absolute path validation, the mount table with longest-prefix resolution, and
// the file information the front-ends show.
package namespace

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/stratafs/strata/ufs"
)

// Sentinel errors of the namespace.
var (
	// ErrInvalidPath: a namespace path is not absolute, contains "..", NUL or
	// invalid UTF-8.
	ErrInvalidPath = errors.New("namespace: invalid path")
	// ErrNoMount: the path lies in no mount and above none.
	ErrNoMount = errors.New("namespace: no mount at path")
	// ErrMountConflict: a new mount point equals, lies inside or lies above an
	// existing one.
	ErrMountConflict = errors.New("namespace: mount point conflicts with an existing mount")
	// ErrNotMounted: unmount of a path that is not a mount point.
	ErrNotMounted = errors.New("namespace: not a mount point")
)

// MaxPathLen bounds a path below a mount point (the under-storage path a
// request carries), in bytes: PATH_MAX.
const MaxPathLen = 4096

// MaxNamespacePathLen bounds a whole namespace path: a mount point of up to
// MaxPathLen bytes and a path of up to MaxPathLen below it, so the mount's
// own prefix never eats into what the under-storage may hold.
const MaxNamespacePathLen = 2 * MaxPathLen

// Clean validates an absolute namespace path and returns it in canonical form:
// "/a//b/./c/" → "/a/b/c". A ".." element is rejected, not resolved, so no
// request can climb out of the directory it names.
func Clean(p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("%w: empty path", ErrInvalidPath)
	}
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%w: %q is not absolute (it must start with /)", ErrInvalidPath, p)
	}
	if len(p) > MaxNamespacePathLen {
		return "", fmt.Errorf("%w: path longer than %d bytes", ErrInvalidPath, MaxNamespacePathLen)
	}
	if strings.ContainsRune(p, 0) || !utf8.ValidString(p) {
		return "", fmt.Errorf("%w: %q contains a NUL byte or invalid UTF-8", ErrInvalidPath, p)
	}
	var b strings.Builder
	for el := range strings.SplitSeq(p, "/") {
		switch el {
		case "", ".":
			continue
		case "..":
			return "", fmt.Errorf("%w: %q contains '..'; give the path without it", ErrInvalidPath, p)
		}
		b.WriteByte('/')
		b.WriteString(el)
	}
	if b.Len() == 0 {
		return "/", nil
	}
	return b.String(), nil
}

// CleanRel validates a path relative to a mount root (the UFS form that
// requests to workers carry) and returns it clean: "a//b/./c/" → "a/b/c",
// "" and "/" → "" (the mount root). Like Clean it rejects, rather than
// resolves, a ".." element, and it rejects a NUL byte, invalid UTF-8 and a
// path longer than MaxPathLen, with ufs.ErrInvalidPath. (Elements may be
// longer than NAME_MAX: object stores hold keys with such elements.) The result is what ufs.CleanPath makes of p.
func CleanRel(p string) (string, error) {
	if len(p) > MaxPathLen {
		return "", fmt.Errorf("%w: a path of %d bytes; the limit is %d", ufs.ErrInvalidPath, len(p), MaxPathLen)
	}
	if strings.ContainsRune(p, 0) || !utf8.ValidString(p) {
		return "", fmt.Errorf("%w: %q contains a NUL byte or invalid UTF-8", ufs.ErrInvalidPath, p)
	}
	clean := true // p is in clean form already: return it, not a copy
	for el := range strings.SplitSeq(p, "/") {
		switch {
		case el == "" || el == ".":
			clean = false
		case el == "..":
			return "", fmt.Errorf("%w: %q contains '..'; give the path without it", ufs.ErrInvalidPath, p)
		}
	}
	if clean || p == "" {
		return p, nil
	}
	var b strings.Builder
	for el := range strings.SplitSeq(p, "/") {
		if el == "" || el == "." {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('/')
		}
		b.WriteString(el)
	}
	return b.String(), nil
}

// Join appends a name to a clean directory path.
func Join(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// Parent returns the parent directory of a clean path ("/" for "/").
func Parent(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// Base returns the last element of a clean path ("" for "/").
func Base(p string) string {
	return p[strings.LastIndexByte(p, '/')+1:]
}

// IsWithin reports whether p equals dir or lies below it (both clean).
func IsWithin(p, dir string) bool {
	if dir == "/" || p == dir {
		return true
	}
	return strings.HasPrefix(p, dir) && p[len(dir)] == '/'
}
