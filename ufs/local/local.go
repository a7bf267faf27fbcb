// Package local is the ufs backend for a local or NFS-mounted directory
// (scheme "file", URIs file:///abs/dir).
//
// Every access goes through an os.Root opened on the mount directory, so no
// path and no symlink can reach outside it. ETags are stamps of the
// modification time (ns) and size. Put writes a temp file named
// ".strata-tmp-*" beside the target and renames it into place, so a reader
// sees the old file or the whole new one, never a part; List hides the temp
// files.
//
// Options (ufs.Options):
//
//	local.fsync  fsync a file before renaming it into place (default true)
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/stratafs/strata/ufs"
)

// Scheme is the URI scheme of this backend.
const Scheme = "file"

// TempPrefix starts the names of the temp files Put writes; List hides them.
const TempPrefix = ".strata-tmp-"

// listBatch is how many directory entries List reads at a time.
const listBatch = 1024

// FS is a directory tree mounted as a ufs.FS. It is safe for concurrent use.
type FS struct {
	dir   string // absolute directory of the root
	fsync bool

	mu   sync.Mutex
	root *os.Root // nil until the directory could be opened
}

var (
	_ ufs.FS      = (*FS)(nil)
	_ ufs.Renamer = (*FS)(nil)
)

// New returns an FS for loc (scheme "file"). It does not require the directory
// to exist yet: Stat("") reports a missing root as ErrNotFound, and the
// directory is opened on first use. Bad options or a location of another
// scheme return an error wrapping ufs.ErrInvalidURI.
func New(ctx context.Context, loc ufs.Location, opts ufs.Options) (*FS, error) {
	if loc.Scheme != Scheme {
		return nil, fmt.Errorf("%w: local: scheme %q, want %q", ufs.ErrInvalidURI, loc.Scheme, Scheme)
	}
	if loc.Bucket != "" {
		return nil, fmt.Errorf("%w: local: %q: a file URI has no host; write file:///absolute/dir", ufs.ErrInvalidURI, loc.Raw)
	}
	f := &FS{dir: "/" + loc.Prefix, fsync: true}
	var problems []string
	for k, v := range opts {
		switch k {
		case "local.fsync":
			b, err := strconv.ParseBool(v)
			if err != nil {
				problems = append(problems, fmt.Sprintf("local.fsync=%q is not a boolean", v))
			}
			f.fsync = b
		default:
			if strings.HasPrefix(k, "local.") {
				problems = append(problems, fmt.Sprintf("unknown option %q (known: local.fsync)", k))
			}
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: local: %s", ufs.ErrInvalidURI, strings.Join(problems, "; "))
	}
	_, _ = f.getRoot() // open early when possible; errors are reported on use
	return f, nil
}

// Register adds the "file" scheme to r.
func Register(r *ufs.Registry) {
	r.Register(Scheme, func(ctx context.Context, loc ufs.Location, opts ufs.Options) (ufs.FS, error) {
		f, err := New(ctx, loc, opts)
		if err != nil {
			return nil, err
		}
		return f, nil
	})
}

// getRoot returns the open root, opening it if an earlier attempt failed.
func (f *FS) getRoot() (*os.Root, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.root != nil {
		return f.root, nil
	}
	// Stat first: OpenRoot opens without O_DIRECTORY and would block on a FIFO.
	st, err := os.Stat(f.dir)
	if err == nil && !st.IsDir() {
		return nil, fmt.Errorf("local: open root %q: %w: the mount root is not a directory", f.dir, ufs.ErrNotDir)
	}
	r, err := os.OpenRoot(f.dir)
	if err != nil {
		return nil, mapErr("open root", f.dir, err)
	}
	f.root = r
	return r, nil
}

// begin checks ctx and the path and returns the root.
func (f *FS) begin(ctx context.Context, op, p string) (*os.Root, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("local: %s %q: %w", op, p, err)
	}
	if c, err := ufs.CleanPath(p); err != nil || c != p {
		return nil, fmt.Errorf("local: %s %q: %w: not a clean relative path", op, p, ufs.ErrInvalidPath)
	}
	return f.getRoot()
}

// name turns a UFS path into a name inside the root.
func name(p string) string {
	if p == "" {
		return "."
	}
	return p
}

// etag is the version stamp of a file: mtime in ns and size, in hex.
func etag(fi fs.FileInfo) string {
	return fmt.Sprintf("%x-%x", fi.ModTime().UnixNano(), fi.Size())
}

// info converts an os FileInfo; special files (devices, sockets, fifos,
// unresolved symlinks) are ErrNotSupported.
func info(p string, fi fs.FileInfo) (ufs.FileInfo, error) {
	switch {
	case fi.IsDir():
		return ufs.FileInfo{Path: p, ModTime: fi.ModTime(), IsDir: true}, nil
	case fi.Mode().IsRegular():
		return ufs.FileInfo{Path: p, Size: fi.Size(), ModTime: fi.ModTime(), ETag: etag(fi)}, nil
	default:
		return ufs.FileInfo{}, fmt.Errorf("local: %q: %w: %s is not a regular file or directory", p, ufs.ErrNotSupported, fi.Mode().Type())
	}
}

// Stat describes path, following symlinks that stay inside the root. The
// root itself is a directory. Returns ErrNotFound (a missing root included),
// ErrNotDir (a path element is a file), ErrPermission, ErrNotSupported (a
// special file). Safe for concurrent use.
func (f *FS) Stat(ctx context.Context, p string) (ufs.FileInfo, error) {
	root, err := f.begin(ctx, "stat", p)
	if err != nil {
		return ufs.FileInfo{}, err
	}
	fi, err := root.Stat(name(p))
	if err != nil {
		return ufs.FileInfo{}, mapErr("stat", p, err)
	}
	if p == "" && !fi.IsDir() {
		return ufs.FileInfo{}, fmt.Errorf("local: stat %q: %w: the mount root %s is not a directory", p, ufs.ErrNotDir, f.dir)
	}
	return info(p, fi)
}

// List streams the children of dir in batches, in directory order. Temp files
// of Put, special files and symlinks that leave the root or dangle are
// skipped. Yields ErrNotFound, ErrNotDir, ErrPermission. Safe for concurrent
// use.
func (f *FS) List(ctx context.Context, dir string) iter.Seq2[ufs.FileInfo, error] {
	return func(yield func(ufs.FileInfo, error) bool) {
		root, err := f.begin(ctx, "list", dir)
		if err != nil {
			yield(ufs.FileInfo{}, err)
			return
		}
		// A root on the directory itself: entries are stat'ed by fd, one
		// fstatat each (DirEntry.Info would lstat a path outside the root).
		// Stat first: OpenRoot opens without O_DIRECTORY and would block on a FIFO.
		st, err := root.Stat(name(dir))
		if err != nil {
			yield(ufs.FileInfo{}, mapErr("list", dir, err))
			return
		}
		if !st.IsDir() {
			yield(ufs.FileInfo{}, fmt.Errorf("local: list %q: %w", dir, ufs.ErrNotDir))
			return
		}
		sub, err := root.OpenRoot(name(dir))
		if err != nil {
			yield(ufs.FileInfo{}, mapErr("list", dir, err))
			return
		}
		defer sub.Close()
		d, err := sub.Open(".")
		if err != nil {
			yield(ufs.FileInfo{}, mapErr("list", dir, err))
			return
		}
		defer d.Close()
		for {
			if err := ctx.Err(); err != nil {
				yield(ufs.FileInfo{}, fmt.Errorf("local: list %q: %w", dir, err))
				return
			}
			ents, err := d.ReadDir(listBatch)
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), TempPrefix) {
					continue
				}
				p := ufs.Join(dir, e.Name())
				var fi fs.FileInfo
				var ierr error
				if e.Type()&fs.ModeSymlink != 0 {
					fi, ierr = root.Stat(p) // followed inside the mount root only
				} else {
					fi, ierr = sub.Lstat(e.Name())
				}
				if ierr != nil {
					if errors.Is(ierr, fs.ErrNotExist) || isEscape(ierr) || errors.Is(ierr, syscall.ELOOP) {
						continue // removed meanwhile, dangling, or leaves the root
					}
					if !yield(ufs.FileInfo{}, mapErr("list", p, ierr)) {
						return
					}
					continue
				}
				ufi, ierr := info(p, fi)
				if ierr != nil {
					continue // special file
				}
				if !yield(ufi, nil) {
					return
				}
			}
			if err == io.EOF || (err == nil && len(ents) == 0) {
				return
			}
			if err != nil {
				yield(ufs.FileInfo{}, mapErr("list", dir, err))
				return
			}
		}
	}
}

// OpenRange opens path for reading n bytes from off (n < 0: to the end). The
// reader holds its own file descriptor and implements io.WriterTo, which lets
// a socket use sendfile. With opts.IfMatch the ETag of the opened file (from
// fstat) must match, else ErrChanged (a missing file with IfMatch is
// ErrChanged and ErrNotFound). Returns ErrNotFound, ErrIsDir,
// ErrNotSupported (a special file), ErrChanged, ErrPermission. Safe for
// concurrent use.
func (f *FS) OpenRange(ctx context.Context, p string, off, n int64, opts ufs.ReadOptions) (io.ReadCloser, error) {
	root, err := f.begin(ctx, "open", p)
	if err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("local: open %q: negative offset %d", p, off)
	}
	// O_NONBLOCK: opening a FIFO must not hang; it is rejected below.
	file, err := root.OpenFile(name(p), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		err = mapErr("open", p, err)
		if opts.IfMatch != "" && errors.Is(err, ufs.ErrNotFound) {
			return nil, fmt.Errorf("local: open %q: %w: %w", p, ufs.ErrChanged, ufs.ErrNotFound)
		}
		return nil, err
	}
	st, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, mapErr("open", p, err)
	}
	switch {
	case st.IsDir():
		file.Close()
		return nil, fmt.Errorf("local: open %q: %w", p, ufs.ErrIsDir)
	case !st.Mode().IsRegular():
		file.Close()
		return nil, fmt.Errorf("local: open %q: %w: %s is not a regular file", p, ufs.ErrNotSupported, st.Mode().Type())
	}
	if opts.IfMatch != "" && etag(st) != opts.IfMatch {
		file.Close()
		return nil, fmt.Errorf("local: open %q: %w: version %s, want %s", p, ufs.ErrChanged, etag(st), opts.IfMatch)
	}
	size := st.Size()
	if off >= size || n == 0 {
		file.Close()
		return io.NopCloser(strings.NewReader("")), nil
	}
	if n < 0 || n > size-off {
		n = size - off
	}
	if off > 0 {
		if _, err := file.Seek(off, io.SeekStart); err != nil {
			file.Close()
			return nil, mapErr("seek", p, err)
		}
	}
	return &rangeReader{lr: io.LimitedReader{R: file, N: n}, f: file, p: p}, nil
}

// rangeReader reads a range of one open file.
type rangeReader struct {
	lr io.LimitedReader
	f  *os.File
	p  string
}

func (r *rangeReader) Read(b []byte) (int, error) {
	n, err := r.lr.Read(b)
	if err != nil && err != io.EOF {
		err = mapErr("read", r.p, err)
	}
	return n, err
}

// WriteTo hands the *os.File (under an io.LimitedReader) to w's ReadFrom, so a
// TCP connection sends the range with sendfile.
func (r *rangeReader) WriteTo(w io.Writer) (int64, error) {
	n, err := io.Copy(w, &r.lr)
	if err != nil {
		err = mapErr("read", r.p, err)
	}
	return n, err
}

func (r *rangeReader) Close() error { return r.f.Close() }

// Delete removes a file or an empty directory. The root cannot be deleted
// (ErrNotSupported). Returns ErrNotFound, ErrNotEmpty, ErrPermission. Safe
// for concurrent use.
func (f *FS) Delete(ctx context.Context, p string) error {
	root, err := f.begin(ctx, "delete", p)
	if err != nil {
		return err
	}
	if p == "" {
		return fmt.Errorf("local: delete %q: %w: the mount root cannot be deleted", p, ufs.ErrNotSupported)
	}
	if err := root.Remove(p); err != nil {
		if errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTEMPTY) {
			return fmt.Errorf("local: delete %q: %w", p, ufs.ErrNotEmpty)
		}
		return mapErr("delete", p, err)
	}
	return nil
}

// Mkdir creates path and its parents (mode 0755 before umask). An existing
// directory is not an error. Returns ErrExist (path is a file), ErrNotDir (a
// parent is a file), ErrPermission. Safe for concurrent use.
func (f *FS) Mkdir(ctx context.Context, p string) error {
	root, err := f.begin(ctx, "mkdir", p)
	if err != nil {
		return err
	}
	if p == "" {
		_, err := f.Stat(ctx, "")
		return err
	}
	if err := root.MkdirAll(p, 0o755); err != nil {
		return mapErr("mkdir", p, err)
	}
	return nil
}

// Rename moves src (a file or a directory) to dst atomically, replacing a
// file at dst and creating dst's parents. Returns ErrNotFound (src missing),
// ErrIsDir (dst is a directory), ErrNotDir, ErrPermission. Safe for
// concurrent use.
func (f *FS) Rename(ctx context.Context, src, dst string) error {
	root, err := f.begin(ctx, "rename", src)
	if err != nil {
		return err
	}
	if _, err := f.begin(ctx, "rename", dst); err != nil {
		return err
	}
	if src == "" || dst == "" {
		return fmt.Errorf("local: rename %q to %q: %w: the mount root cannot be renamed", src, dst, ufs.ErrNotSupported)
	}
	if _, err := root.Lstat(src); err != nil {
		return mapErr("rename", src, err)
	}
	if dir := path.Dir(dst); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return mapErr("rename", dst, err)
		}
	}
	if err := root.Rename(src, dst); err != nil {
		if errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.EISDIR) {
			return fmt.Errorf("local: rename %q to %q: %w: the destination is a directory", src, dst, ufs.ErrIsDir)
		}
		return mapErr("rename", src+" to "+dst, err)
	}
	return nil
}

// Close closes the root. Call it once, when no other call is in flight;
// operations after Close fail.
func (f *FS) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.root == nil {
		return nil
	}
	err := f.root.Close()
	if err != nil {
		return fmt.Errorf("local: close %s: %w", f.dir, err)
	}
	return nil
}

// isEscape reports whether err is os.Root refusing a path that leaves it.
func isEscape(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && pe.Err != nil && pe.Err.Error() == "path escapes from parent"
}

// isNotDirRoot reports whether err is OpenRoot refusing a file that is not a
// directory (it reports no errno).
func isNotDirRoot(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && pe.Err != nil && pe.Err.Error() == "not a directory"
}

// mapErr translates an os error into the ufs sentinel, with the operation and
// the path.
func mapErr(op, p string, err error) error {
	var sentinel error
	switch {
	case isEscape(err):
		return fmt.Errorf("local: %s %q: %w: the path leaves the mount root", op, p, ufs.ErrPermission)
	case isNotDirRoot(err):
		return fmt.Errorf("local: %s %q: %w", op, p, ufs.ErrNotDir)
	case errors.Is(err, os.ErrClosed):
		return fmt.Errorf("local: %s %q: the file system is closed: %w", op, p, err)
	case errors.Is(err, syscall.ENOENT):
		sentinel = ufs.ErrNotFound
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EROFS):
		sentinel = ufs.ErrPermission
	case errors.Is(err, syscall.ENOTDIR):
		sentinel = ufs.ErrNotDir
	case errors.Is(err, syscall.EISDIR):
		sentinel = ufs.ErrIsDir
	case errors.Is(err, syscall.EEXIST):
		sentinel = ufs.ErrExist
	case errors.Is(err, syscall.ENOTEMPTY):
		sentinel = ufs.ErrNotEmpty
	case errors.Is(err, syscall.ENAMETOOLONG), errors.Is(err, syscall.EINVAL):
		sentinel = ufs.ErrInvalidPath
	case errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, syscall.ESTALE),
		errors.Is(err, syscall.EHOSTDOWN), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENOTCONN):
		sentinel = ufs.ErrUnavailable
	default:
		return fmt.Errorf("local: %s %q: %w", op, p, err)
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return fmt.Errorf("local: %s %q: %w (%s)", op, p, sentinel, errno.Error())
	}
	return fmt.Errorf("local: %s %q: %w", op, p, sentinel)
}
