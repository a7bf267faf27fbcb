package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stratafs/strata/ufs"
)

var (
	_ ufs.ConditionalPutter = (*FS)(nil)
	_ ufs.AttrStore         = (*FS)(nil)
)

// Put writes r to a temp file beside path, fsyncs it (unless local.fsync is
// false) and renames it over path; parent directories are created. On any
// error, a short stream (size >= 0 and fewer bytes) or a longer one, the
// temp file is removed and path is untouched. A new version always gets a new
// ETag: when the old file has the same size and mtime, the new mtime is moved
// one nanosecond on. Returns ErrIsDir (path is a directory), ErrNotDir,
// ErrPermission. Safe for concurrent use; concurrent Puts of one path leave
// one of the versions.
func (f *FS) Put(ctx context.Context, p string, r io.Reader, size int64) (ufs.FileInfo, error) {
	return f.put(ctx, p, r, size, ufs.Condition{}, ufs.Attrs{})
}

// PutIf is Put under cond, checked by the file system itself so that it holds
// against every writer: cond.NoneMatch publishes the temp file with link(2),
// which fails when path exists; cond.Match takes an exclusive flock(2) on the
// file at path, checks that it is still the file at path and has that ETag,
// and renames the temp file over it while holding the lock (other Strata
// writers of the path wait on that lock; a writer that bypasses Strata and
// replaces the file between the check and the rename, a window of one
// rename, is not detected). Returns ErrPrecondition (wrapping ErrNotFound
// when cond.Match names a missing file), ErrNotSupported (a file system
// without hard links, for NoneMatch), and Put's errors. Safe for concurrent
// use.
func (f *FS) PutIf(ctx context.Context, p string, r io.Reader, size int64, cond ufs.Condition) (ufs.FileInfo, error) {
	return f.put(ctx, p, r, size, cond, ufs.Attrs{})
}

// PutAttrs is PutIf that stores attrs in the extended attribute
// "user.strata.attrs" (JSON) of the new file, set before it is published.
// On a file system without user extended attributes a Content-Type alone is
// dropped (reads then guess it from the name); anything more is
// ErrNotSupported. Safe for concurrent use.
func (f *FS) PutAttrs(ctx context.Context, p string, r io.Reader, size int64, cond ufs.Condition, attrs ufs.Attrs) (ufs.FileInfo, error) {
	return f.put(ctx, p, r, size, cond, attrs)
}

func (f *FS) put(ctx context.Context, p string, r io.Reader, size int64, cond ufs.Condition, attrs ufs.Attrs) (ufs.FileInfo, error) {
	root, err := f.begin(ctx, "put", p)
	if err != nil {
		return ufs.FileInfo{}, err
	}
	if p == "" {
		return ufs.FileInfo{}, fmt.Errorf("local: put %q: %w: the mount root", p, ufs.ErrIsDir)
	}
	if cond.NoneMatch && cond.Match != "" {
		return ufs.FileInfo{}, fmt.Errorf("local: put %q: %w: If-None-Match: * and If-Match never hold together", p, ufs.ErrPrecondition)
	}
	dir := path.Dir(p)
	if dir == "." {
		dir = ""
	}
	if dir != "" {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return ufs.FileInfo{}, mapErr("put", p, err)
		}
	}
	var tmp string
	var file *os.File
	for range 10 {
		tmp = ufs.Join(dir, TempPrefix+strconv.FormatUint(rand.Uint64(), 36))
		file, err = root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return ufs.FileInfo{}, mapErr("put", p, err)
	}
	ok := false
	defer func() {
		if !ok {
			file.Close()
			_ = root.Remove(tmp)
		}
	}()

	src := &ctxReader{ctx: ctx, r: r}
	var n int64
	if size >= 0 {
		n, err = io.Copy(file, io.LimitReader(src, size+1))
	} else {
		n, err = io.Copy(file, src)
	}
	switch {
	case err != nil && src.err != nil:
		return ufs.FileInfo{}, fmt.Errorf("local: put %q: reading the data: %w", p, src.err)
	case err != nil:
		return ufs.FileInfo{}, mapErr("put", p, err)
	case size >= 0 && n < size:
		return ufs.FileInfo{}, fmt.Errorf("local: put %q: the stream ended after %d of %d bytes: %w", p, n, size, io.ErrUnexpectedEOF)
	case size >= 0 && n > size:
		return ufs.FileInfo{}, fmt.Errorf("local: put %q: the stream has more than the %d bytes declared", p, size)
	}
	if err := setAttrs(file, attrs); err != nil {
		return ufs.FileInfo{}, fmt.Errorf("local: put %q: %w", p, err)
	}
	if f.fsync {
		if err := file.Sync(); err != nil {
			return ufs.FileInfo{}, mapErr("put", p, err)
		}
	}
	if err := file.Close(); err != nil {
		return ufs.FileInfo{}, mapErr("put", p, err)
	}
	if err := ctx.Err(); err != nil {
		return ufs.FileInfo{}, fmt.Errorf("local: put %q: %w", p, err)
	}
	switch {
	case cond.NoneMatch:
		err = f.publishNew(root, tmp, p)
	case cond.Match != "":
		err = f.publishOver(root, tmp, p, cond.Match)
	default:
		err = f.publish(root, tmp, p)
	}
	if err != nil {
		return ufs.FileInfo{}, err
	}
	ok = true
	st, err := root.Stat(p)
	if err != nil {
		return ufs.FileInfo{}, mapErr("put", p, err)
	}
	return info(p, st)
}

// bumpMTime keeps the fingerprint moving: a rewrite within the file system's
// clock granularity with the same size would otherwise look unchanged. old
// is the file being replaced (nil: none).
func bumpMTime(root *os.Root, tmp string, old fs.FileInfo) error {
	st, err := root.Stat(tmp) // after close: NFS may set the mtime on flush
	if err != nil {
		return err
	}
	if old != nil && old.Mode().IsRegular() && etag(old) == etag(st) {
		mt := old.ModTime().Add(time.Nanosecond)
		return root.Chtimes(tmp, mt, mt)
	}
	return nil
}

// publish renames the temp file over p.
func (f *FS) publish(root *os.Root, tmp, p string) error {
	old, _ := root.Stat(p)
	if err := bumpMTime(root, tmp, old); err != nil {
		return mapErr("put", p, err)
	}
	if err := root.Rename(tmp, p); err != nil {
		if errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.EISDIR) {
			return fmt.Errorf("local: put %q: %w", p, ufs.ErrIsDir)
		}
		return mapErr("put", p, err)
	}
	return nil
}

// publishNew links the temp file at p, which fails when p exists, and
// removes the temp name.
func (f *FS) publishNew(root *os.Root, tmp, p string) error {
	err := root.Link(tmp, p)
	switch {
	case err == nil:
		// p is published; a temp name that cannot be removed stays hidden.
		_ = root.Remove(tmp)
		return nil
	case errors.Is(err, fs.ErrExist):
		if st, serr := root.Lstat(p); serr == nil && st.IsDir() {
			return fmt.Errorf("local: put %q: %w", p, ufs.ErrIsDir)
		}
		return fmt.Errorf("local: put %q: %w: the file exists (If-None-Match: *)", p, ufs.ErrPrecondition)
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.ENOTSUP), errors.Is(err, syscall.EOPNOTSUPP), errors.Is(err, syscall.EMLINK):
		return fmt.Errorf("local: put %q: %w: the file system cannot make hard links, which a create-only write needs: %w",
			p, ufs.ErrNotSupported, err)
	}
	return mapErr("put", p, err)
}

// publishOver renames the temp file over p if p is the version etag, holding
// an exclusive flock on p's file meanwhile.
func (f *FS) publishOver(root *os.Root, tmp, p, want string) error {
	cur, err := root.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		err = mapErr("put", p, err)
		if errors.Is(err, ufs.ErrNotFound) {
			return fmt.Errorf("local: put %q: %w: %w: If-Match %s", p, ufs.ErrPrecondition, ufs.ErrNotFound, want)
		}
		return err
	}
	defer cur.Close()
	for {
		err := unix.Flock(int(cur.Fd()), unix.LOCK_EX)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EINTR) {
			return mapErr("put", p, err)
		}
	}
	// Closing cur drops the lock.
	held, err := cur.Stat()
	if err != nil {
		return mapErr("put", p, err)
	}
	now, err := root.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("local: put %q: %w: %w: deleted meanwhile (If-Match %s)", p, ufs.ErrPrecondition, ufs.ErrNotFound, want)
	case err != nil:
		return mapErr("put", p, err)
	case held.IsDir():
		return fmt.Errorf("local: put %q: %w", p, ufs.ErrIsDir)
	case !os.SameFile(held, now) || etag(held) != want:
		return fmt.Errorf("local: put %q: %w: the file is version %s, not %s", p, ufs.ErrPrecondition, etag(now), want)
	}
	if err := bumpMTime(root, tmp, held); err != nil {
		return mapErr("put", p, err)
	}
	if err := root.Rename(tmp, p); err != nil {
		return mapErr("put", p, err)
	}
	return nil
}

// ctxReader stops a copy when ctx ends and remembers the source's own error.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
	err error
}

func (c *ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		c.err = err
		return 0, err
	}
	n, err := c.r.Read(b)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}
