package hdfsapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"

	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/ufs"
)

// writableFile checks, before a redirect, that a file may be written at p:
// it lies inside a mount that is not read-only and is not the mount point.
func (s *Server) writableFile(p string) error {
	m, rel, err := s.c.Mounts().Resolve(p)
	switch {
	case errors.Is(err, namespace.ErrNoMount):
		return remoteErr("UnsupportedOperationException", "%s lies in no mount; mount an under-storage there first (`strata fs mount`)", p)
	case err != nil:
		return toRemote(err, p)
	case rel == "":
		return remoteErr("FileAlreadyExistsException", "%s already exists as a directory (it is a mount point)", p)
	case m.ReadOnly:
		return remoteErr("AccessControlException", "Permission denied: the mount that holds %s is read-only", p)
	}
	return nil
}

// create answers CREATE. The first step checks the target (no directory
// there, no file without overwrite=true, a writable mount) and redirects to
// the data URL; the data URL (or HttpFS's data=true) takes the body and
// writes it through to the under-storage, where it becomes visible whole
// when the body has arrived whole (a client that disconnects leaves
// nothing). It answers 201 Created. blocksize, replication, permission and
// buffersize are accepted and ignored: the mount decides.
//
// Without overwrite the under-storage itself refuses an existing file where
// it can (a conditional write); elsewhere a stat checks first.
func (s *Server) create(ctx context.Context, w *responseWriter, r *http.Request, rq *request) error {
	if err := s.writableFile(rq.path); err != nil {
		return err
	}
	fi, err := s.c.Stat(ctx, rq.path, true)
	switch {
	case err == nil && fi.IsDir:
		return remoteErr("FileAlreadyExistsException", "%s already exists as a directory", rq.path)
	case err == nil && !rq.overwrite:
		return remoteErr("FileAlreadyExistsException", "%s already exists (pass overwrite=true to replace it)", rq.path)
	case err != nil && !errors.Is(err, ufs.ErrNotFound):
		return toRemote(err, rq.path)
	}
	if !rq.datanode {
		return s.redirect(w, r, rq)
	}
	body := &touchReader{r: r.Body}
	var opts client.CreateOptions
	if !rq.overwrite {
		opts.Cond = ufs.Condition{NoneMatch: true}
	}
	_, err = s.c.CreateWith(ctx, rq.path, body, r.ContentLength, opts)
	if errors.Is(err, ufs.ErrNotSupported) && !opts.Cond.IsZero() && !body.touched {
		// The under-storage cannot make the write conditional: the stat
		// above was the check.
		_, err = s.c.Create(ctx, rq.path, body, r.ContentLength)
	}
	if errors.Is(err, ufs.ErrPrecondition) {
		return remoteErr("FileAlreadyExistsException", "%s already exists (pass overwrite=true to replace it)", rq.path)
	}
	if err != nil {
		return toRemote(err, rq.path)
	}
	h := w.Header()
	h.Set("Location", s.fileURL(r, rq.path))
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// fileURL is the WebHDFS URL of a namespace path (the Location of 201
// Created), without parameters.
func (s *Server) fileURL(r *http.Request, p string) string {
	u := url.URL{Scheme: "http", Host: r.Host, Path: Prefix + p}
	if r.TLS != nil {
		u.Scheme = "https"
	}
	if !validHost(u.Host) {
		u.Host = s.Addr()
	}
	return u.String()
}

// touchReader records whether its reader was read from, so a write that
// failed before reading its body can be tried again another way.
type touchReader struct {
	r       io.Reader
	touched bool
}

func (t *touchReader) Read(p []byte) (int, error) {
	t.touched = true
	return t.r.Read(p)
}

// appendFile answers APPEND. Object stores cannot append, so an append
// rewrites the file: the data URL reads the current version through the
// cache, streams it followed by the body into one write to the
// under-storage, and the new file replaces the old one whole when all of it
// arrived (conditional on the version read, where the under-storage can
// check it, so a concurrent writer is not silently overwritten). The result
// may be at most hdfs.max_append_size bytes; 0 refuses APPEND. It answers
// 200 with no body.
func (s *Server) appendFile(ctx context.Context, w *responseWriter, r *http.Request, rq *request) error {
	limit := int64(s.cfg.MaxAppendSize)
	if limit == 0 {
		return remoteErr("UnsupportedOperationException", "APPEND is turned off on this server (hdfs.max_append_size is 0)")
	}
	if err := s.writableFile(rq.path); err != nil {
		return err
	}
	fi, err := s.c.Stat(ctx, rq.path, true)
	if err != nil {
		return toRemote(err, rq.path)
	}
	if fi.IsDir {
		return remoteErr("FileAlreadyExistsException", "Cannot append to directory %s; already exists as a directory.", rq.path)
	}
	tooBig := remoteErr("UnsupportedOperationException", "APPEND would make %s larger than %d bytes; this server appends to files of at most that size (hdfs.max_append_size): an append rewrites the whole file in the under-storage", rq.path, limit)
	if fi.Size > limit || (r.ContentLength > 0 && fi.Size+r.ContentLength > limit) {
		return tooBig
	}
	if !rq.datanode {
		return s.redirect(w, r, rq)
	}
	f, err := s.c.OpenVersion(fi)
	if err != nil {
		return toRemote(err, rq.path)
	}
	defer f.Close()
	old := newStreamReader(ctx, f, s.bufs, fi.Size)
	defer old.Close()
	body := &touchReader{r: io.MultiReader(old, &limitReader{r: r.Body, left: limit - fi.Size, err: tooBig})}
	size := int64(-1)
	if r.ContentLength >= 0 {
		size = fi.Size + r.ContentLength
	}
	var opts client.CreateOptions
	if fi.ETag != "" {
		opts.Cond = ufs.Condition{Match: fi.ETag}
	}
	_, err = s.c.CreateWith(ctx, rq.path, body, size, opts)
	if errors.Is(err, ufs.ErrNotSupported) && !opts.Cond.IsZero() && !body.touched {
		_, err = s.c.Create(ctx, rq.path, body, size)
	}
	if errors.Is(err, ufs.ErrPrecondition) {
		return remoteErr("RetriableException", "%s changed while appending to it; nothing was appended; try again", rq.path)
	}
	var re *RemoteError
	if errors.As(err, &re) {
		return re
	}
	if err != nil {
		return toRemote(err, rq.path)
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

// limitReader fails with err once more than left bytes are read.
type limitReader struct {
	r    io.Reader
	left int64
	err  error
}

func (l *limitReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n, l.err
	}
	return n, err
}

// mkdirs answers MKDIRS: {"boolean": true}, making the parents too. A file
// at the path is FileAlreadyExistsException; permission is ignored.
func (s *Server) mkdirs(ctx context.Context, w *responseWriter, _ *http.Request, rq *request) error {
	fi, err := s.c.Stat(ctx, rq.path, true)
	switch {
	case err == nil && fi.IsDir:
		return writeBoolean(w, true)
	case err == nil:
		return remoteErr("FileAlreadyExistsException", "Path is not a directory: %s", rq.path)
	case !errors.Is(err, ufs.ErrNotFound):
		return toRemote(err, rq.path)
	}
	if err := s.c.Mkdir(ctx, rq.path); err != nil {
		return toRemote(err, rq.path)
	}
	return writeBoolean(w, true)
}

// rename answers RENAME with HDFS's semantics: {"boolean": true} when the
// source moved; false when the source does not exist, the destination
// exists as a file, its parent does not exist, or the destination lies in
// the source. A destination that is a directory receives the source under
// its own name. Within one mount only (UnsupportedOperationException
// across mounts, or where the under-storage cannot rename).
func (s *Server) rename(ctx context.Context, w *responseWriter, _ *http.Request, rq *request) error {
	src, dst := rq.path, rq.dest
	if err := s.inMount(src); err != nil {
		return err
	}
	if _, err := s.c.Stat(ctx, src, true); err != nil {
		if errors.Is(err, ufs.ErrNotFound) {
			return writeBoolean(w, false)
		}
		return toRemote(err, src)
	}
	if src == dst {
		return writeBoolean(w, true)
	}
	if namespace.IsWithin(dst, src) {
		return writeBoolean(w, false)
	}
	if d, err := s.c.Stat(ctx, dst, true); err == nil {
		if !d.IsDir {
			return writeBoolean(w, false)
		}
		dst = namespace.Join(dst, namespace.Base(src))
		if _, err := s.c.Stat(ctx, dst, true); err == nil {
			return writeBoolean(w, false)
		} else if !errors.Is(err, ufs.ErrNotFound) {
			return toRemote(err, dst)
		}
	} else if !errors.Is(err, ufs.ErrNotFound) {
		return toRemote(err, dst)
	} else if parent, err := s.c.Stat(ctx, namespace.Parent(dst), true); err != nil || !parent.IsDir {
		if err != nil && !errors.Is(err, ufs.ErrNotFound) {
			return toRemote(err, dst)
		}
		return writeBoolean(w, false)
	}
	if err := s.inMount(dst); err != nil {
		return err
	}
	if err := s.c.Rename(ctx, src, dst); err != nil {
		if errors.Is(err, ufs.ErrNotFound) {
			return writeBoolean(w, false)
		}
		if errors.Is(err, ufs.ErrNotSupported) || errors.Is(err, ufs.ErrIsDir) {
			return remoteErr("UnsupportedOperationException", "Cannot rename %s to %s: they lie in different mounts, or the under-storage cannot rename it (object stores cannot rename directories); copy and delete instead", src, dst)
		}
		return toRemote(err, src)
	}
	return writeBoolean(w, true)
}

// inMount refuses a path that is a mount point or lies above mounts: those
// are changed with `strata fs mount` and `strata fs unmount`.
func (s *Server) inMount(p string) error {
	_, rel, err := s.c.Mounts().Resolve(p)
	switch {
	case errors.Is(err, namespace.ErrNoMount):
		return remoteErr("UnsupportedOperationException", "%s lies in no mount (a directory above mounts); use `strata fs mount` and `strata fs unmount`", p)
	case err != nil:
		return toRemote(err, p)
	case rel == "":
		return remoteErr("UnsupportedOperationException", "%s is a mount point; use `strata fs unmount`", p)
	}
	return nil
}

// delete answers DELETE: {"boolean": true} when the path was removed, false
// when it did not exist. A non-empty directory needs recursive=true
// (PathIsNotEmptyDirectoryException otherwise); mount points and the
// directories above them are refused.
func (s *Server) delete(ctx context.Context, w *responseWriter, _ *http.Request, rq *request) error {
	fi, err := s.c.Stat(ctx, rq.path, true)
	if errors.Is(err, ufs.ErrNotFound) {
		return writeBoolean(w, false)
	}
	if err != nil {
		return toRemote(err, rq.path)
	}
	if err := s.inMount(rq.path); err != nil {
		return err
	}
	if fi.IsDir && !rq.recursive {
		for _, err := range s.c.List(ctx, rq.path, true) {
			if err != nil {
				return toRemote(err, rq.path)
			}
			return remoteErr("PathIsNotEmptyDirectoryException", "`%s is non empty': Directory is not empty", rq.path)
		}
	}
	if err := s.c.Remove(ctx, rq.path, fi.IsDir && rq.recursive); err != nil {
		if errors.Is(err, ufs.ErrNotFound) {
			return writeBoolean(w, false)
		}
		return toRemote(err, rq.path)
	}
	return writeBoolean(w, true)
}

// unsupported answers the operations Strata does not implement: 404 for a
// path that does not exist (as HDFS checks it first), else
// UnsupportedOperationException naming the operation.
func (s *Server) unsupported(ctx context.Context, rq *request) error {
	switch rq.op {
	case "SETTIMES", "SETPERMISSION", "SETOWNER", "SETREPLICATION":
		if _, err := s.stat(ctx, rq.path); err != nil {
			return err
		}
		return remoteErr("UnsupportedOperationException", "%s is not supported by Strata: times, permissions, owners and replication come from the under-storage and the mount, and cannot be set through WebHDFS", rq.op)
	}
	return remoteErr("UnsupportedOperationException", "%s is not supported by Strata's WebHDFS (docs/hdfs.md lists what is)", rq.op)
}
