package fuse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/stratafs/strata/namespace"
)

// headLimit is how much new content is kept in memory before it is streamed
// to the UFS (or staged on disk): small files are uploaded in one request on
// close, and any write pattern works within the first headLimit bytes.
const headLimit = 8 << 20

// headBudget bounds the memory the heads of all files being written use
// together; beyond it new content is streamed or staged at once.
const headBudget = 256 << 20

// growHeadLocked makes the head size bytes long (zeros at the end, or cut),
// within headLimit and the mount's head budget; false when it cannot grow
// that far. w.mu held.
func (w *writeState) growHeadLocked(size int64) bool {
	delta := size - int64(len(w.head))
	if size > headLimit || (delta > 0 && w.sys.headUsed.Add(delta) > headBudget) {
		if delta > 0 && size <= headLimit {
			w.sys.headUsed.Add(-delta)
		}
		return false
	}
	if delta > 0 {
		w.head = append(w.head, make([]byte, delta)...)
	} else {
		w.head = w.head[:size]
		w.sys.headUsed.Add(delta)
	}
	return true
}

// dropHeadLocked releases the head. w.mu held.
func (w *writeState) dropHeadLocked() {
	w.sys.headUsed.Add(-int64(len(w.head)))
	w.head = nil
}

// wsMode is where the content of a file being written lives.
type wsMode int

const (
	// wsLazy: the UFS content, not fetched yet (fetched at the first write
	// or read).
	wsLazy wsMode = iota
	// wsHead: the whole content, in memory.
	wsHead
	// wsStream: the content is streaming to the UFS (sequential writes).
	wsStream
	// wsStaged: the content is in a staging file.
	wsStaged
	// wsDone: the stream was committed and its bytes are gone; a later
	// write fetches the content back into a staging file.
	wsDone
)

var (
	errDiscarded = errors.New("fuse: the file was truncated or unlinked while it was written")
	errNoStream  = errors.New("fuse: the upload ended before the stream")
)

// writeState is the content of a file being written, shared by the handles
// open on it. io serializes the operations that move data (writes,
// truncates, fetches, uploads) of this one file — it is held across an
// upload, so writers of the same file wait for it like for an fsync; mu
// guards the fields for readers and attributes and is never held across I/O.
type writeState struct {
	n    *node
	sys  *fsys
	refs int // handles (under n.mu)

	io sync.Mutex

	mu         sync.Mutex
	mode       wsMode
	staging    bool // outgrow the head into a staging file, not a stream
	head       []byte
	file       *os.File
	size       int64
	mtime      time.Time
	needCommit bool  // changes not in the UFS yet
	lastErr    error // the last upload's failure, until the next change
	broken     error // the stream failed: its data is lost
	discarded  bool
	pw         *io.PipeWriter
	upDone     chan struct{}
	upInfo     namespace.FileInfo // set before upDone is closed
	upErr      error              // set before upDone is closed
}

func newWriteState(n *node, mode wsMode, needCommit bool) *writeState {
	return &writeState{n: n, sys: n.sys, mode: mode, needCommit: needCommit, mtime: time.Now()}
}

// setStaging makes the content grow into a staging file rather than a
// stream: the file is read too.
func (w *writeState) setStaging() {
	w.mu.Lock()
	w.staging = true
	w.mu.Unlock()
}

// streaming reports whether the content is (or was) streamed.
func (w *writeState) streaming() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mode == wsStream
}

// attrs returns the size and mtime of local content, ok false when the UFS
// describes the file.
func (w *writeState) attrs() (int64, time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch w.mode {
	case wsHead, wsStream, wsStaged:
		return w.size, w.mtime, true
	}
	return 0, time.Time{}, false
}

// pending reports whether there are changes not uploaded yet.
func (w *writeState) pending() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.needCommit && !w.discarded
}

// readable reports whether a reader can be served from the local content.
func (w *writeState) readable() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mode == wsHead || w.mode == wsStaged {
		w.staging = true
		return true
	}
	return false
}

// discard drops the content (the file was unlinked). Called with n.mu held.
func (w *writeState) discard() bool {
	w.mu.Lock()
	w.discarded, w.needCommit = true, false
	pw := w.pw
	w.mu.Unlock()
	if pw != nil {
		_ = pw.CloseWithError(errDiscarded)
	}
	return true
}

// changedLocked records a change (w.mu held).
func (w *writeState) changedLocked() {
	w.needCommit, w.lastErr, w.mtime = true, nil, time.Now()
}

// readAt reads local content.
func (w *writeState) readAt(dest []byte, off int64) (int, syscall.Errno) {
	for {
		w.mu.Lock()
		switch w.mode {
		case wsHead:
			n := 0
			if off < int64(len(w.head)) {
				n = copy(dest, w.head[off:])
			}
			w.mu.Unlock()
			return n, 0
		case wsStaged:
			f, size := w.file, w.size
			w.mu.Unlock()
			if off >= size {
				return 0, 0
			}
			n, err := f.ReadAt(dest[:min(int64(len(dest)), size-off)], off)
			if err != nil && !errors.Is(err, io.EOF) {
				return 0, w.sys.errno("read", f.Name(), err)
			}
			return n, 0
		case wsLazy:
			w.mu.Unlock()
			w.io.Lock()
			err := w.fetchLocked()
			w.io.Unlock()
			if err != nil {
				p, _ := w.n.path()
				return 0, w.sys.errno("read", p, err)
			}
		default:
			w.mu.Unlock()
			return 0, syscall.EBADF
		}
	}
}

// write writes data at off.
func (w *writeState) write(data []byte, off int64) syscall.Errno {
	w.io.Lock()
	defer w.io.Unlock()
	if err := w.writeLocked(data, off); err != nil {
		p, _ := w.n.path()
		return w.sys.errno("write", p, err)
	}
	return 0
}

// errOutOfOrder is a write before the end of a file being streamed.
var errOutOfOrder = fmt.Errorf("fuse: write before the end of a file being streamed to the UFS (more than %d MiB written; open it O_RDWR to stage it instead): %w", headLimit>>20, syscall.ENOTSUP)

func (w *writeState) writeLocked(data []byte, off int64) error {
	w.mu.Lock()
	mode, discarded, broken := w.mode, w.discarded, w.broken
	w.mu.Unlock()
	switch {
	case discarded:
		return nil // the file is gone; like writes to an unlinked file
	case broken != nil:
		return broken
	}
	end := off + int64(len(data))
	if mode == wsLazy || mode == wsDone {
		if err := w.fetchLocked(); err != nil {
			return err
		}
	}
	w.mu.Lock()
	mode = w.mode
	if mode == wsHead && (end <= int64(len(w.head)) || w.growHeadLocked(end)) {
		copy(w.head[off:], data)
		w.size = int64(len(w.head))
		w.changedLocked()
		w.mu.Unlock()
		return nil
	}
	staging := w.staging
	w.mu.Unlock()
	if mode == wsHead {
		var err error
		if off == int64(len(w.head)) && !staging {
			err = w.startStreamLocked()
		} else {
			err = w.stageHeadLocked()
		}
		if err != nil {
			return err
		}
		mode = w.currentMode()
	}
	switch mode {
	case wsStream:
		if off < w.size {
			return errOutOfOrder
		}
		if err := w.streamLocked(off, data); err != nil {
			return err
		}
	case wsStaged:
		if _, err := w.file.WriteAt(data, off); err != nil {
			return fmt.Errorf("write the staging file: %w", err)
		}
		w.mu.Lock()
		w.size = max(w.size, end)
		w.mu.Unlock()
	}
	w.mu.Lock()
	w.changedLocked()
	w.mu.Unlock()
	return nil
}

func (w *writeState) currentMode() wsMode {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mode
}

// streamLocked sends zeros up to off, then data, into the upload pipe.
func (w *writeState) streamLocked(off int64, data []byte) error {
	if gap := off - w.size; gap > 0 {
		zeros := make([]byte, min(gap, 1<<20))
		for gap > 0 {
			k := min(gap, int64(len(zeros)))
			if _, err := w.pw.Write(zeros[:k]); err != nil {
				return w.streamFailedLocked(err)
			}
			gap -= k
			w.mu.Lock()
			w.size += k
			w.mu.Unlock()
		}
	}
	if _, err := w.pw.Write(data); err != nil {
		return w.streamFailedLocked(err)
	}
	w.mu.Lock()
	w.size += int64(len(data))
	w.mu.Unlock()
	return nil
}

// startStreamLocked starts uploading the content through a pipe, beginning
// with the head.
func (w *writeState) startStreamLocked() error {
	p, errno := w.n.path()
	if errno != 0 {
		return errno
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	w.mu.Lock()
	head := w.head
	w.pw, w.upDone, w.mode = pw, done, wsStream
	w.mu.Unlock()
	ctx, cancel := w.sys.background()
	w.sys.wg.Add(1)
	go func() {
		defer w.sys.wg.Done()
		defer cancel()
		fi, err := w.sys.c.Create(ctx, p, pr, -1)
		if err != nil {
			_ = pr.CloseWithError(err)
		} else {
			_ = pr.CloseWithError(errNoStream)
		}
		w.upInfo, w.upErr = fi, err
		close(done)
	}()
	_, err := pw.Write(head)
	w.mu.Lock()
	w.dropHeadLocked()
	w.mu.Unlock()
	if err != nil {
		return w.streamFailedLocked(err)
	}
	return nil
}

// streamFailedLocked records that the stream broke and returns why.
func (w *writeState) streamFailedLocked(werr error) error {
	w.mu.Lock()
	pw, done := w.pw, w.upDone
	w.mu.Unlock()
	_ = pw.CloseWithError(werr)
	<-done
	err := w.upErr
	if err == nil {
		err = werr
	}
	err = fmt.Errorf("upload: %w", err)
	w.mu.Lock()
	if !w.discarded {
		w.broken = err
	}
	w.needCommit, w.mode, w.pw = false, wsDone, nil
	w.mu.Unlock()
	w.sys.m.uploads.WithLabelValues("error").Inc()
	return err
}

// newStagingFile creates an anonymous file in the staging dir.
func (w *writeState) newStagingFile() (*os.File, error) {
	f, err := os.CreateTemp(w.sys.cfg.StagingDir, "stage-*")
	if err != nil {
		return nil, fmt.Errorf("create a staging file: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("create a staging file: %w", err)
	}
	return f, nil
}

// stageHeadLocked moves the in-memory content to a staging file.
func (w *writeState) stageHeadLocked() error {
	f, err := w.newStagingFile()
	if err != nil {
		return err
	}
	if _, err := f.Write(w.head); err != nil {
		_ = f.Close()
		return fmt.Errorf("write the staging file: %w", err)
	}
	w.mu.Lock()
	w.file, w.mode = f, wsStaged
	w.dropHeadLocked()
	w.mu.Unlock()
	return nil
}

// onlyWriter hides io.ReaderFrom so io.CopyBuffer uses its buffer.
type onlyWriter struct{ io.Writer }

// fetchLocked copies the file's content in the UFS into a staging file.
func (w *writeState) fetchLocked() error {
	w.mu.Lock()
	mode := w.mode
	w.mu.Unlock()
	if mode != wsLazy && mode != wsDone {
		return nil
	}
	p, errno := w.n.path()
	if errno != 0 {
		return errno
	}
	f, err := w.newStagingFile()
	if err != nil {
		return err
	}
	ctx, cancel := w.sys.background()
	defer cancel()
	src, err := w.sys.c.Open(ctx, p, true)
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("fetch the content to modify: %w", err)
	}
	n, err := io.CopyBuffer(onlyWriter{f}, src, make([]byte, 1<<20))
	_ = src.Close()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("fetch the content to modify: %w", err)
	}
	w.mu.Lock()
	w.file, w.size, w.mode = f, n, wsStaged
	if mode == wsLazy {
		w.mtime = src.Info().ModTime
	}
	w.mu.Unlock()
	return nil
}

// truncate sets the size of the content.
func (w *writeState) truncate(size int64) syscall.Errno {
	w.io.Lock()
	defer w.io.Unlock()
	if err := w.truncateLocked(size); err != nil {
		p, _ := w.n.path()
		return w.sys.errno("truncate", p, err)
	}
	return 0
}

func (w *writeState) truncateLocked(size int64) error {
	if size == 0 {
		w.resetLocked()
		return nil
	}
	if err := w.fetchLocked(); err != nil {
		return err
	}
	w.mu.Lock()
	mode := w.mode
	if mode == wsHead && w.growHeadLocked(size) {
		w.size = size
		w.changedLocked()
		w.mu.Unlock()
		return nil
	}
	broken := w.broken
	w.mu.Unlock()
	if broken != nil {
		return broken
	}
	if mode == wsHead {
		if err := w.stageHeadLocked(); err != nil {
			return err
		}
		mode = wsStaged
	}
	switch mode {
	case wsStream:
		switch {
		case size < w.size:
			return errOutOfOrder
		case size > w.size:
			if err := w.streamLocked(size, nil); err != nil {
				return err
			}
		}
	case wsStaged:
		if err := w.file.Truncate(size); err != nil {
			return fmt.Errorf("truncate the staging file: %w", err)
		}
		w.mu.Lock()
		w.size = size
		w.mu.Unlock()
	}
	w.mu.Lock()
	w.changedLocked()
	w.mu.Unlock()
	return nil
}

// resetLocked empties the content: an aborted stream or a staging file is
// dropped, nothing of it reaches the UFS.
func (w *writeState) resetLocked() {
	w.abortLocked()
	w.mu.Lock()
	w.dropHeadLocked()
	w.mode, w.size, w.broken = wsHead, 0, nil
	w.changedLocked()
	w.mu.Unlock()
}

// abortLocked stops an uncommitted stream and closes the staging file.
func (w *writeState) abortLocked() {
	w.mu.Lock()
	pw, done, f := w.pw, w.upDone, w.file
	w.pw, w.file = nil, nil
	w.mu.Unlock()
	if pw != nil {
		_ = pw.CloseWithError(errDiscarded)
		<-done
	}
	if f != nil {
		_ = f.Close()
	}
}

// commit uploads the changes; it returns when the UFS has them, with the
// upload's error otherwise. Uploads are not interrupted by signals: an
// interrupted close would lose the file.
func (w *writeState) commit() syscall.Errno {
	w.io.Lock()
	defer w.io.Unlock()
	if err := w.commitLocked(); err != nil {
		p, _ := w.n.path()
		return w.sys.errno("upload", p, err)
	}
	return 0
}

func (w *writeState) commitLocked() error {
	w.mu.Lock()
	mode, need, broken, discarded := w.mode, w.needCommit, w.broken, w.discarded
	head, f, size, pw, done := w.head, w.file, w.size, w.pw, w.upDone
	w.mu.Unlock()
	switch {
	case discarded:
		return nil
	case broken != nil:
		return broken
	case !need:
		return nil
	}
	p, errno := w.n.path()
	if errno != 0 {
		return errno
	}
	var fi namespace.FileInfo
	var err error
	switch mode {
	case wsHead:
		ctx, cancel := w.sys.background()
		fi, err = w.sys.c.Create(ctx, p, bytes.NewReader(head), int64(len(head)))
		cancel()
	case wsStaged:
		ctx, cancel := w.sys.background()
		fi, err = w.sys.c.Create(ctx, p, io.NewSectionReader(f, 0, size), size)
		cancel()
	case wsStream:
		_ = pw.Close()
		<-done
		fi, err = w.upInfo, w.upErr
		w.mu.Lock()
		w.mode, w.pw = wsDone, nil
		if err != nil {
			err = fmt.Errorf("upload: %w", err)
			w.broken = err
		}
		w.mu.Unlock()
	default:
		return nil
	}
	if err != nil {
		w.mu.Lock()
		w.lastErr = err
		w.mu.Unlock()
		w.sys.m.uploads.WithLabelValues("error").Inc()
		return err
	}
	w.mu.Lock()
	w.needCommit = false
	w.mu.Unlock()
	w.sys.m.uploads.WithLabelValues("ok").Inc()
	w.sys.m.uploadBytes.Add(float64(fi.Size))
	w.n.committed(fi)
	w.sys.warm(p)
	return nil
}

// finish runs when the last handle is released: changes never flushed
// (written after the last close, through a memory map) are uploaded; an
// upload that failed was reported to the application and is not retried.
func (w *writeState) finish() {
	w.io.Lock()
	defer w.io.Unlock()
	w.mu.Lock()
	need, lastErr := w.needCommit && !w.discarded, w.lastErr
	w.mu.Unlock()
	p, _ := w.n.path()
	switch {
	case need && lastErr == nil:
		if err := w.commitLocked(); err != nil {
			w.sys.log.Warn("changes written after the last close could not be uploaded and are lost", "path", p, "err", err)
		}
	case need:
		w.sys.log.Warn("dropping changes whose upload failed (close or fsync returned the error)", "path", p, "err", lastErr)
	}
	w.abortLocked()
	w.mu.Lock()
	w.dropHeadLocked()
	w.mu.Unlock()
}

// committed records the file info of a successful upload.
func (n *node) committed(fi namespace.FileInfo) {
	n.mu.Lock()
	n.setInfoLocked(fi)
	n.written = true
	n.lastFP = ""
	n.mu.Unlock()
}
