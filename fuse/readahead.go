package fuse

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// rangeReader is what read-ahead reads from: *client.File.
type rangeReader interface {
	// ReadAtContext reads len(p) bytes at off; at the end of the file it
	// returns the bytes there are and io.EOF.
	ReadAtContext(ctx context.Context, p []byte, off int64) (int, error)
}

// bufPool hands out read-ahead buffers of one size within a memory budget,
// and gives the memory of idle buffers back (trim): a burst of readers must
// not leave the process holding the whole budget for good. Safe for
// concurrent use.
type bufPool struct {
	size int64
	left atomic.Int64 // budget not handed out (free buffers count as spent)

	mu      sync.Mutex
	free    []*[]byte
	lastGet time.Time
}

func newBufPool(size, budget int64) *bufPool {
	p := &bufPool{size: size}
	p.left.Store(budget)
	return p
}

// get returns a buffer, or nil when the budget is spent.
func (p *bufPool) get() *[]byte {
	if p == nil || p.size <= 0 {
		return nil
	}
	p.mu.Lock()
	p.lastGet = time.Now()
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free = p.free[:n-1]
		p.mu.Unlock()
		return b
	}
	p.mu.Unlock()
	if p.left.Add(-p.size) < 0 {
		p.left.Add(p.size)
		return nil
	}
	b := make([]byte, p.size)
	return &b
}

// put returns a buffer for reuse.
func (p *bufPool) put(b *[]byte) {
	p.mu.Lock()
	p.free = append(p.free, b)
	p.mu.Unlock()
}

// available is the budget not in use: not handed out, or free.
func (p *bufPool) available() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.left.Load() + int64(len(p.free))*p.size
}

// trim drops the free buffers when none was asked for in idle, and returns
// the bytes dropped.
func (p *bufPool) trim(idle time.Duration) int64 {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) == 0 || time.Since(p.lastGet) < idle {
		return 0
	}
	dropped := int64(len(p.free)) * p.size
	clear(p.free)
	p.free = p.free[:0]
	p.left.Add(dropped)
	return dropped
}

// raWindow is one range fetched ahead of a sequential reader.
type raWindow struct {
	off  int64
	len  int64 // bytes requested (the window may end at the end of the file)
	buf  *[]byte
	done chan struct{}
	n    int   // valid bytes, set before done is closed
	err  error // set before done is closed

	// Under readAhead.mu:
	refs    int  // readers copying out of buf
	dropped bool // no longer in readAhead.wins
	freed   bool
	cancel  context.CancelFunc
}

func (w *raWindow) end() int64 { return w.off + w.len }

// readAhead serves the reads of one open file, fetching windows ahead when
// the reads are sequential (the kernel's own read-ahead stops at 128KiB, and
// its requests may arrive out of order: "sequential" tolerates that). Random
// reads go straight to the source. Safe for concurrent use; close stops the
// fetches and waits for them.
type readAhead struct {
	src     rangeReader
	size    int64
	win     int64
	maxRead int64
	pool    *bufPool
	fetched func() // counts a window fetch

	mu      sync.Mutex
	lastEnd int64
	seq     int
	wins    []*raWindow // ordered by offset, at most two
	closed  bool
	wg      sync.WaitGroup
}

// seqThreshold is how many sequential reads in a row start read-ahead.
const seqThreshold = 2

func newReadAhead(src rangeReader, size, maxRead int64, pool *bufPool, fetched func()) *readAhead {
	var win int64
	if pool != nil {
		win = pool.size
	}
	return &readAhead{src: src, size: size, win: win, maxRead: maxRead, pool: pool, fetched: fetched}
}

// read fills dest with the bytes at off and returns how many it filled: fewer
// than len(dest) only at the end of the file.
func (r *readAhead) read(ctx context.Context, dest []byte, off int64) (int, error) {
	if off >= r.size || len(dest) == 0 {
		return 0, nil
	}
	want := min(int64(len(dest)), r.size-off)
	dest = dest[:want]
	w := r.pick(off, off+want)
	if w == nil {
		return r.direct(ctx, dest, off)
	}
	n, err := r.copyOut(ctx, w, dest, off)
	r.unref(w, err != nil)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		// The window failed: read this range directly, which reports the
		// error (ErrChanged, ...) or succeeds where a transient failure hit
		// the window.
		return r.direct(ctx, dest, off)
	}
	if int64(n) < want {
		// The request crosses into the next window (or past the last one).
		m, err := r.read(ctx, dest[n:], off+int64(n))
		return n + m, err
	}
	return n, nil
}

func (r *readAhead) direct(ctx context.Context, dest []byte, off int64) (int, error) {
	n, err := r.src.ReadAtContext(ctx, dest, off)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return n, err
}

// pick returns the window holding off (referenced), starting windows when
// the reader is sequential, or nil for a direct read.
func (r *readAhead) pick(off, end int64) *raWindow {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.win == 0 || r.size <= r.maxRead {
		return nil
	}
	var w *raWindow
	for _, c := range r.wins {
		if off >= c.off && off < c.end() {
			w = c
			break
		}
	}
	if w == nil {
		// The kernel's asynchronous reads of a sequential reader arrive
		// a few requests out of order at most.
		near := off >= r.lastEnd-4*r.maxRead && off <= r.lastEnd+4*r.maxRead
		if near {
			r.seq++
			r.lastEnd = max(r.lastEnd, end)
		} else {
			r.seq = 1
			r.lastEnd = end
		}
		if r.seq < seqThreshold {
			return nil
		}
		if len(r.wins) > 0 && off < r.wins[0].off && off >= r.wins[0].off-r.win {
			// A straggler of the kernel's asynchronous reads, just behind
			// the windows: read it directly and keep the windows.
			return nil
		}
		// A sequential reader with no window here: the windows it had lie
		// elsewhere, drop them and start one at off.
		r.dropLocked(func(*raWindow) bool { return true })
		if w = r.startLocked(off); w == nil {
			return nil
		}
	} else {
		r.lastEnd = max(r.lastEnd, end)
	}
	// Windows wholly before w are consumed; keep one window beyond w.
	r.dropLocked(func(c *raWindow) bool { return c.end() <= w.off })
	if last := r.wins[len(r.wins)-1]; last == w && w.end() < r.size {
		r.startLocked(w.end())
	}
	w.refs++
	return w
}

// startLocked starts fetching a window at off; nil when the budget is spent.
func (r *readAhead) startLocked(off int64) *raWindow {
	buf := r.pool.get()
	if buf == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &raWindow{off: off, len: min(r.win, r.size-off), buf: buf, done: make(chan struct{}), cancel: cancel}
	r.wins = append(r.wins, w)
	r.wg.Add(1)
	if r.fetched != nil {
		r.fetched()
	}
	go func() {
		defer r.wg.Done()
		defer cancel()
		n, err := r.src.ReadAtContext(ctx, (*w.buf)[:w.len], w.off)
		if errors.Is(err, io.EOF) {
			err = nil
		}
		w.n, w.err = n, err
		close(w.done)
		r.mu.Lock()
		if err != nil && !w.dropped {
			r.removeLocked(w)
		}
		r.freeLocked(w)
		r.mu.Unlock()
	}()
	return w
}

// dropLocked removes the windows for which drop is true.
func (r *readAhead) dropLocked(drop func(*raWindow) bool) {
	keep := r.wins[:0]
	for _, w := range r.wins {
		if drop(w) {
			w.dropped = true
			w.cancel()
			r.freeLocked(w)
			continue
		}
		keep = append(keep, w)
	}
	clear(r.wins[len(keep):])
	r.wins = keep
}

func (r *readAhead) removeLocked(w *raWindow) {
	r.dropLocked(func(c *raWindow) bool { return c == w })
}

// freeLocked returns the buffer of a window nobody can read any more.
func (r *readAhead) freeLocked(w *raWindow) {
	if w.freed || !w.dropped || w.refs > 0 {
		return
	}
	select {
	case <-w.done:
	default:
		return // the fetch still writes into buf; it frees it when done
	}
	w.freed = true
	r.pool.put(w.buf)
	w.buf = nil
}

// copyOut waits for w and copies what it holds of [off, off+len(dest)).
func (r *readAhead) copyOut(ctx context.Context, w *raWindow, dest []byte, off int64) (int, error) {
	select {
	case <-w.done:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	if w.err != nil {
		return 0, w.err
	}
	start := off - w.off
	if start >= int64(w.n) {
		return 0, io.ErrUnexpectedEOF
	}
	return copy(dest, (*w.buf)[start:w.n]), nil
}

func (r *readAhead) unref(w *raWindow, failed bool) {
	r.mu.Lock()
	w.refs--
	if failed && !w.dropped {
		r.removeLocked(w)
	}
	r.freeLocked(w)
	r.mu.Unlock()
}

// close cancels the fetches in flight and waits for them. The caller makes
// sure no read is running (the kernel releases a handle after its reads).
func (r *readAhead) close() {
	r.mu.Lock()
	r.closed = true
	r.dropLocked(func(*raWindow) bool { return true })
	r.mu.Unlock()
	r.wg.Wait()
}
