// Package ufs defines the under-storage interface that every backend (S3, GCS,
// Azure Blob, HDFS, local) implements, the sentinel errors they return, and the
// scheme registry that turns a mount URI into a live FS.
//
// Paths handed to an FS are relative to the mount root, use "/" as separator,
// never start or end with "/", and never contain "." or ".." elements; "" is the
// root. CleanPath produces that form.
package ufs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"path"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors. Backends wrap them with %w and the path, so callers test with
// errors.Is and users read which object failed.
var (
	// ErrNotFound: the object, directory, bucket or container does not exist.
	ErrNotFound = errors.New("ufs: not found")
	// ErrExist: the target of a create-only operation already exists.
	ErrExist = errors.New("ufs: already exists")
	// ErrNotDir: a path element used as a directory is a file.
	ErrNotDir = errors.New("ufs: not a directory")
	// ErrIsDir: a file operation was given a directory.
	ErrIsDir = errors.New("ufs: is a directory")
	// ErrNotEmpty: a directory to delete still has children.
	ErrNotEmpty = errors.New("ufs: directory not empty")
	// ErrPermission: the credentials are missing, wrong or not allowed.
	ErrPermission = errors.New("ufs: permission denied")
	// ErrNotSupported: the store cannot do this operation.
	ErrNotSupported = errors.New("ufs: operation not supported")
	// ErrChanged: the object no longer matches the version the caller asked for
	// (ReadOptions.IfMatch): it was overwritten or deleted since it was stat'ed.
	ErrChanged = errors.New("ufs: object changed")
	// ErrInvalidURI: a mount URI or option is malformed or names an unknown scheme.
	ErrInvalidURI = errors.New("ufs: invalid URI")
	// ErrInvalidPath: a path is not clean (contains "..", NUL, ...).
	ErrInvalidPath = errors.New("ufs: invalid path")
	// ErrUnavailable: the store could not be reached (network, DNS, timeout).
	ErrUnavailable = errors.New("ufs: unavailable")
)

// FileInfo describes one file or directory of an under-storage.
type FileInfo struct {
	// Path is relative to the mount root ("" for the root itself).
	Path string
	// Size in bytes; 0 for directories.
	Size int64
	// ModTime is the object's last modification time (zero for synthesized
	// object-store directories).
	ModTime time.Time
	// IsDir is true for directories (object-store prefixes included).
	IsDir bool
	// ETag identifies the object's content version: the S3/Azure ETag, the GCS
	// generation, or a size+mtime stamp for file systems. Empty for directories.
	ETag string
}

// Name is the last element of Path ("" for the root).
func (fi FileInfo) Name() string {
	if fi.Path == "" {
		return ""
	}
	return path.Base(fi.Path)
}

// Fingerprint identifies one version of a file: size, mtime and ETag. Cached
// pages are keyed by it, so a changed object is never served from old pages.
func (fi FileInfo) Fingerprint() string {
	return strconv.FormatInt(fi.Size, 10) + "-" + strconv.FormatInt(fi.ModTime.UnixNano(), 10) + "-" + fi.ETag
}

// ReadOptions qualify OpenRange.
type ReadOptions struct {
	// IfMatch, when not empty, is the ETag from an earlier Stat; the read fails
	// with ErrChanged if the object has another version now.
	IfMatch string
}

// FS is one mounted under-storage. Implementations are safe for concurrent use.
type FS interface {
	// Stat describes path. Object stores report a prefix with children as a
	// directory. Returns ErrNotFound (file systems may return ErrNotDir when a
	// parent is a file).
	Stat(ctx context.Context, path string) (FileInfo, error)
	// List streams the immediate children of dir, paginating inside; order is
	// unspecified. Listing a file returns ErrNotDir, a missing dir ErrNotFound
	// (object stores: a prefix with no children and no marker is missing).
	List(ctx context.Context, dir string) iter.Seq2[FileInfo, error]
	// OpenRange reads n bytes from off (n < 0: to the end). A range past the end
	// is cut at the end; off beyond the size yields an empty reader. Returns
	// ErrNotFound, ErrIsDir, and ErrChanged when IfMatch is set and the object
	// has another version or was deleted (a deleted object wraps both
	// ErrChanged and ErrNotFound).
	OpenRange(ctx context.Context, path string, off, n int64, opts ReadOptions) (io.ReadCloser, error)
	// Put stores r as path, replacing any file there; size < 0 means unknown.
	// Large objects are uploaded in parts. Nothing is visible at path unless the
	// whole stream arrived, and a failed Put leaves an existing file as it was.
	// File systems refuse a path that is a directory (ErrIsDir); object stores
	// may let a file sit beside a "directory" prefix of the same name. Returns
	// the new object's FileInfo.
	Put(ctx context.Context, path string, r io.Reader, size int64) (FileInfo, error)
	// Delete removes a file, or an empty directory (ErrNotEmpty otherwise).
	// Returns ErrNotFound.
	Delete(ctx context.Context, path string) error
	// Mkdir creates a directory and its parents; object stores write a
	// zero-byte "path/" marker. An existing directory is not an error; an
	// existing file is ErrExist.
	Mkdir(ctx context.Context, path string) error
	// Close releases clients and connections.
	Close() error
}

// Renamer is implemented by stores that can rename a file (atomically on file
// systems, by copy and delete on object stores).
type Renamer interface {
	// Rename moves the file src to dst, replacing dst. File systems also move
	// directories (atomically); object stores return ErrIsDir for a
	// directory. Returns ErrNotFound.
	Rename(ctx context.Context, src, dst string) error
}

// CleanPath validates and normalises a UFS-relative path: "a//b/" → "a/b",
// "/" and "" → "". Paths with ".." elements, NUL bytes or invalid UTF-8 are
// rejected with ErrInvalidPath rather than resolved, so a request can never
// escape its mount.
func CleanPath(p string) (string, error) {
	if strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("%w: %q contains a NUL byte", ErrInvalidPath, p)
	}
	var out []string
	for el := range strings.SplitSeq(p, "/") {
		switch el {
		case "", ".":
			continue
		case "..":
			return "", fmt.Errorf("%w: %q contains '..'", ErrInvalidPath, p)
		}
		out = append(out, el)
	}
	return strings.Join(out, "/"), nil
}

// Join joins a directory and a name into a UFS-relative path.
func Join(dir, name string) string {
	if dir == "" {
		return name
	}
	if name == "" {
		return dir
	}
	return dir + "/" + name
}
