package worker

import (
	"context"
	"fmt"

	"github.com/stratafs/strata/ufs"
)

// ReadAt fills buf with the bytes at off of one version (fi) of a file, as
// the data endpoint would send them (cache, then single-flight fills from the
// UFS), for a client in this process: no HTTP request, no copy through a
// socket.
func (s *Server) ReadAt(ctx context.Context, mountID, path string, fi ufs.FileInfo, off int64, buf []byte) error {
	m, err := s.mountOf(mountID)
	if err != nil {
		return err
	}
	path, err = ufs.CleanPath(path)
	if err != nil {
		return err
	}
	if off < 0 || off+int64(len(buf)) > fi.Size {
		return fmt.Errorf("%w: %s: range %d+%d outside its %d bytes", ufs.ErrInvalidPath, joinDisplay(m.Path, path), off, len(buf), fi.Size)
	}
	fs, err := s.openFS(ctx, m)
	if err != nil {
		return err
	}
	ref := &fileRef{mount: m, fs: fs, path: path, info: fi, id: fileID(m.ID, path, fi)}
	w := &sliceWriter{buf: buf}
	if err := s.readRange(ctx, ref, off, int64(len(buf)), w); err != nil {
		return err
	}
	if w.n != len(buf) {
		return fmt.Errorf("%s: read %d of %d bytes at %d", joinDisplay(m.Path, path), w.n, len(buf), off)
	}
	return nil
}

// sliceWriter writes into a fixed buffer.
type sliceWriter struct {
	buf []byte
	n   int
}

func (w *sliceWriter) Write(p []byte) (int, error) {
	if len(p) > len(w.buf)-w.n {
		return 0, fmt.Errorf("worker: %d bytes more than the %d asked for", len(p)-(len(w.buf)-w.n), len(w.buf))
	}
	w.n += copy(w.buf[w.n:], p)
	return len(p), nil
}
