package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/stratafs/strata/cluster"
	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/pki"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/ufs"
	"golang.org/x/sync/errgroup"
)

// readAheadWindow is how much a sequential reader fetches ahead.
const readAheadWindow = 16 << 20

// parallelSegments bounds concurrent block fetches of one ReadAt.
const parallelSegments = 8

// File is a namespace file open for reading one version of its content: every
// byte it returns belongs to the version that Open saw, or the read fails with
// ufs.ErrChanged. ReadAt is safe for concurrent use; Read and Seek are not.
type File struct {
	c    *Client
	m    namespace.Mount
	rel  string
	info namespace.FileInfo
	ufsi ufs.FileInfo

	pos  int64
	cur  *window
	next *window
}

// Open opens a file for reading. sync refreshes its metadata first.
// Returns errors matching ufs.ErrNotFound, ufs.ErrIsDir.
func (c *Client) Open(ctx context.Context, path string, sync bool) (*File, error) {
	fi, err := c.Stat(ctx, path, sync)
	if err != nil {
		return nil, err
	}
	if fi.IsDir {
		return nil, fmt.Errorf("%s: %w", fi.Path, ufs.ErrIsDir)
	}
	_, m, rel, err := c.resolve(fi.Path)
	if err != nil {
		return nil, err
	}
	return &File{c: c, m: m, rel: rel, info: fi, ufsi: fi.UFS(rel)}, nil
}

// OpenVersion opens one known version of a file for reading, without asking
// for its metadata again: fi is what an earlier Stat, Open or write returned.
// Reads fail with ufs.ErrChanged once no copy of that version is left.
func (c *Client) OpenVersion(fi namespace.FileInfo) (*File, error) {
	if fi.IsDir {
		return nil, fmt.Errorf("%s: %w", fi.Path, ufs.ErrIsDir)
	}
	_, m, rel, err := c.resolve(fi.Path)
	if err != nil {
		return nil, err
	}
	return &File{c: c, m: m, rel: rel, info: fi, ufsi: fi.UFS(rel)}, nil
}

// Info describes the version of the file being read.
func (f *File) Info() namespace.FileInfo { return f.info }

// Size is the file size.
func (f *File) Size() int64 { return f.info.Size }

// ReadAt implements io.ReaderAt.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	return f.ReadAtContext(context.Background(), p, off)
}

// ReadAtContext reads len(p) bytes at off, fetching the blocks it spans in
// parallel from their owners. At the end of the file it returns the bytes
// there are and io.EOF.
func (f *File) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%s: negative offset: %w", f.info.Path, ufs.ErrInvalidPath)
	}
	if off >= f.info.Size {
		return 0, io.EOF
	}
	n := min(int64(len(p)), f.info.Size-off)
	bs := int64(f.c.wcfg.BlockSize)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallelSegments)
	for s := off; s < off+n; {
		e := min((s/bs+1)*bs, off+n)
		buf := p[s-off : e-off]
		segOff := s
		g.Go(func() error { return f.fetch(gctx, segOff, buf) })
		s = e
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	if n < int64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

// fetch fills buf from offset off, which lies inside one block: from the
// block's owners in order, then from the UFS.
func (f *File) fetch(ctx context.Context, off int64, buf []byte) error {
	block := off / int64(f.c.wcfg.BlockSize)
	var lastErr error
	for _, w := range f.c.owners(cluster.BlockKey(f.m.ID, f.rel, block), f.m.Replicas) {
		err := f.fetchFrom(ctx, w, off, buf)
		if err == nil {
			return nil
		}
		if !retriable(err) || ctx.Err() != nil {
			return err
		}
		f.c.log.Debug("worker read failed; trying the next owner", "worker", w.ID, "path", f.info.Path, "off", off, "err", err)
		lastErr = err
	}
	if !f.c.cfg.UFSFallback && lastErr != nil {
		return fmt.Errorf("%s: no worker could serve it (UFS fallback is off): %w", f.info.Path, lastErr)
	}
	fs, err := f.c.ufsOf(ctx, f.m)
	if err != nil {
		return err
	}
	rc, err := fs.OpenRange(ctx, f.rel, off, int64(len(buf)), ufs.ReadOptions{IfMatch: f.ufsi.ETag})
	if err != nil {
		return fmt.Errorf("%s: %w", f.info.Path, err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, buf); err != nil {
		return fmt.Errorf("%s: read from the UFS at %d: %w", f.info.Path, off, shortRead(err))
	}
	return nil
}

func (f *File) fetchFrom(ctx context.Context, w cluster.WorkerInfo, off int64, buf []byte) error {
	rctx, cancel := context.WithTimeout(ctx, f.c.cfg.RequestTimeout.D())
	defer cancel()
	if f.c.local != nil && w.ID == f.c.local.ID() {
		// The owner runs in this process (strata local): read its cache
		// directly instead of through its HTTP endpoint.
		if err := f.c.local.ReadAt(rctx, f.m.ID, f.rel, f.ufsi, off, buf); err != nil {
			return fmt.Errorf("%s: %w", f.info.Path, err)
		}
		return nil
	}
	req := rpcpb.DataRequest{MountID: f.m.ID, Path: f.rel, Info: f.ufsi, Off: off, N: int64(len(buf))}
	scheme := "http://"
	if w.DataTLS {
		scheme = "https://"
	}
	hreq, err := http.NewRequestWithContext(rctx, http.MethodGet, scheme+w.DataAddr+rpcpb.DataPath+"?"+req.Query().Encode(), nil)
	if err != nil {
		return err
	}
	if f.c.token != nil {
		tok, err := f.c.token.Token(time.Now())
		if err != nil {
			return fmt.Errorf("%s: sign a data token: %w", f.info.Path, err)
		}
		hreq.Header.Set(pki.DataTokenHeader, tok)
	}
	resp, err := f.c.http.Do(hreq)
	if err != nil {
		return fmt.Errorf("worker %s: %w: %v", w.ID, ufs.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return rpcpb.ReadHTTPError(resp)
	}
	if resp.ContentLength != int64(len(buf)) {
		return fmt.Errorf("worker %s sent %d bytes for a %d-byte range: %w", w.ID, resp.ContentLength, len(buf), ufs.ErrUnavailable)
	}
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		return fmt.Errorf("worker %s: read cut short: %w: %v", w.ID, ufs.ErrUnavailable, err)
	}
	return nil
}

func shortRead(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("the object is shorter than when it was opened: %w", ufs.ErrChanged)
	}
	return err
}

// window is one read-ahead buffer being filled in the background.
type window struct {
	off    int64
	buf    []byte
	n      int
	err    error
	done   chan struct{}
	cancel context.CancelFunc
	pooled *[]byte
}

// startWindow fetches the window at off in the background, into a buffer
// from the client's pool; release cancels it and gives the buffer back.
func (f *File) startWindow(off int64) *window {
	size := max(min(int64(readAheadWindow), f.info.Size-off), 0)
	bp := f.c.windowBuf()
	ctx, cancel := context.WithCancel(context.Background())
	w := &window{off: off, buf: (*bp)[:size], pooled: bp, done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(w.done)
		w.n, w.err = f.ReadAtContext(ctx, w.buf, off)
		if errors.Is(w.err, io.EOF) {
			w.err = nil
		}
	}()
	return w
}

// release stops a window's fetch, waits for it and returns its buffer.
func (f *File) release(w *window) {
	if w == nil {
		return
	}
	w.cancel()
	<-w.done
	f.c.windows.Put(w.pooled)
}

// windowBuf returns a read-ahead buffer of readAheadWindow bytes.
func (c *Client) windowBuf() *[]byte {
	if b, ok := c.windows.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, readAheadWindow)
	return &b
}

// Read implements io.Reader with read-ahead: while one window is consumed the
// next is fetched.
func (f *File) Read(p []byte) (int, error) {
	if f.pos >= f.info.Size {
		return 0, io.EOF
	}
	if f.cur == nil || f.pos < f.cur.off || f.pos >= f.cur.off+int64(len(f.cur.buf)) {
		if f.next != nil && f.pos >= f.next.off && f.pos < f.next.off+int64(len(f.next.buf)) {
			f.release(f.cur)
			f.cur, f.next = f.next, nil
		} else {
			f.drain()
			f.cur = f.startWindow(f.pos)
		}
	}
	<-f.cur.done
	if f.cur.err != nil {
		return 0, f.cur.err
	}
	if f.next == nil {
		if nextOff := f.cur.off + int64(len(f.cur.buf)); nextOff < f.info.Size {
			f.next = f.startWindow(nextOff)
		}
	}
	n := copy(p, f.cur.buf[f.pos-f.cur.off:f.cur.n])
	f.pos += int64(n)
	return n, nil
}

// Seek implements io.Seeker.
func (f *File) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.pos
	case io.SeekEnd:
		offset += f.info.Size
	default:
		return 0, fmt.Errorf("seek: bad whence %d", whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("seek to negative offset: %w", ufs.ErrInvalidPath)
	}
	f.pos = offset
	return offset, nil
}

// drain stops the background windows and waits for them, so none outlives
// the file.
func (f *File) drain() {
	f.release(f.cur)
	f.release(f.next)
	f.cur, f.next = nil, nil
}

// Close stops the read-ahead and waits for it.
func (f *File) Close() error {
	f.drain()
	return nil
}

// OpenLocal opens the cache file holding every byte of this version of the
// file when a worker in this process (Options.Local) owns all its blocks and
// has them on a disk tier: the FUSE front-end hands it to the kernel
// (passthrough). The pages stay on disk until release is called.
func (f *File) OpenLocal() (file *os.File, release func(), ok bool) {
	local := f.c.local
	if local == nil || f.info.Size == 0 {
		return nil, nil, false
	}
	bs := int64(f.c.wcfg.BlockSize)
	for b := int64(0); b*bs < f.info.Size; b++ {
		o := f.c.owners(cluster.BlockKey(f.m.ID, f.rel, b), 1)
		if len(o) == 0 || o[0].ID != local.ID() {
			return nil, nil, false
		}
	}
	file, release, err := local.OpenFull(f.m.ID, f.rel, f.ufsi)
	if err != nil {
		return nil, nil, false
	}
	return file, release, true
}
