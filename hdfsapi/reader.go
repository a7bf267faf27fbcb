package hdfsapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/ufs"
	"golang.org/x/sync/semaphore"
)

const (
	// readChunk is the unit of reads from the cluster: one ReadAt, one
	// buffer.
	readChunk = 4 << 20
	// readDepth is how many chunks one stream keeps in flight.
	readDepth = 4
)

// buffers hands out readChunk buffers within a byte budget
// (hdfs.read_buffer_budget), so the memory of all reads in flight stays
// bounded however many requests arrive. Safe for concurrent use.
type buffers struct {
	sem  *semaphore.Weighted
	pool sync.Pool
}

func newBuffers(budget int64) *buffers {
	return &buffers{
		sem:  semaphore.NewWeighted(budget),
		pool: sync.Pool{New: func() any { b := make([]byte, readChunk); return &b }},
	}
}

// get returns a buffer, waiting for room in the budget when wait is true;
// with wait false it returns nil at once when there is none.
func (b *buffers) get(ctx context.Context, wait bool) (*[]byte, error) {
	if wait {
		if err := b.sem.Acquire(ctx, readChunk); err != nil {
			return nil, err
		}
	} else if !b.sem.TryAcquire(readChunk) {
		return nil, nil
	}
	return b.pool.Get().(*[]byte), nil
}

// put returns a buffer to the pool and its bytes to the budget.
func (b *buffers) put(buf *[]byte) {
	b.pool.Put(buf)
	b.sem.Release(readChunk)
}

// stream reads the bytes [off, end) of one version of a file through the
// cluster, up to readDepth chunks ahead in parallel, in buffers from the
// budget. Each chunk goes to a callback in order. Not safe for concurrent
// use; close releases everything.
type stream struct {
	ctx    context.Context
	cancel context.CancelFunc
	f      *client.File
	bufs   *buffers
	next   int64
	end    int64
	queue  []*fetch
}

type fetch struct {
	buf  *[]byte
	n    int
	err  error
	done chan struct{}
}

func newStream(ctx context.Context, f *client.File, bufs *buffers, off, n int64) *stream {
	ctx, cancel := context.WithCancel(ctx)
	return &stream{ctx: ctx, cancel: cancel, f: f, bufs: bufs, next: off, end: off + n}
}

// fill schedules fetches up to readDepth. It waits for budget only when
// nothing is in flight, so streams holding buffers never wait on each other.
func (s *stream) fill() error {
	for len(s.queue) < readDepth && s.next < s.end {
		buf, err := s.bufs.get(s.ctx, len(s.queue) == 0)
		if err != nil {
			return err
		}
		if buf == nil {
			return nil
		}
		n := min(int64(readChunk), s.end-s.next)
		ft := &fetch{buf: buf, n: int(n), done: make(chan struct{})}
		off := s.next
		s.next += n
		s.queue = append(s.queue, ft)
		go func() {
			defer close(ft.done)
			ft.err = readFull(s.ctx, s.f, (*buf)[:n], off)
		}()
	}
	return nil
}

// each calls fn with every chunk in order; fn must not keep the slice. It
// stops at the first error, of a fetch or of fn.
func (s *stream) each(fn func([]byte) error) error {
	for {
		if err := s.fill(); err != nil {
			return err
		}
		if len(s.queue) == 0 {
			return nil
		}
		ft := s.queue[0]
		<-ft.done
		if ft.err != nil {
			return ft.err
		}
		// Keep the pipeline full while fn works on this chunk.
		if err := s.fill(); err != nil {
			return err
		}
		err := fn((*ft.buf)[:ft.n])
		s.queue = s.queue[1:]
		s.bufs.put(ft.buf)
		if err != nil {
			return err
		}
	}
}

// close cancels the fetches in flight, waits for them and frees the buffers.
func (s *stream) close() {
	s.cancel()
	for _, ft := range s.queue {
		<-ft.done
		s.bufs.put(ft.buf)
	}
	s.queue = nil
}

// readFull reads exactly len(p) bytes at off; a short read means the file
// changed since it was opened.
func readFull(ctx context.Context, f *client.File, p []byte, off int64) error {
	n, err := f.ReadAtContext(ctx, p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: the file is shorter than when it was opened: %w", f.Info().Path, ufs.ErrChanged)
	}
	return err
}

// streamReader is an io.Reader over a stream, for writes that read the old
// content of a file (APPEND). Close releases the stream.
type streamReader struct {
	s   *stream
	pos int // bytes of s.queue[0] consumed
	err error
}

// newStreamReader reads [0, n) of f.
func newStreamReader(ctx context.Context, f *client.File, bufs *buffers, n int64) *streamReader {
	return &streamReader{s: newStream(ctx, f, bufs, 0, n)}
}

// Read implements io.Reader.
func (r *streamReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	s := r.s
	if len(s.queue) > 0 && r.pos == s.queue[0].n {
		s.bufs.put(s.queue[0].buf)
		s.queue = s.queue[1:]
		r.pos = 0
	}
	if err := s.fill(); err != nil {
		r.err = err
		return 0, err
	}
	if len(s.queue) == 0 {
		r.err = io.EOF
		return 0, io.EOF
	}
	ft := s.queue[0]
	<-ft.done
	if ft.err != nil {
		r.err = ft.err
		return 0, ft.err
	}
	n := copy(p, (*ft.buf)[r.pos:ft.n])
	r.pos += n
	return n, nil
}

// Close releases the stream's buffers.
func (r *streamReader) Close() error {
	r.s.close()
	return nil
}
