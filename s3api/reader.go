package s3api

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
	// readChunk is the unit of reads from the cluster: one ReadAt, one buffer.
	readChunk = 4 << 20
	// readDepth is how many chunks a stream keeps in flight.
	readDepth = 4
	// smallChunk is the buffer class of small reads.
	smallChunk = 64 << 10
)

// buffers hands out read buffers from pools within a byte budget, so the
// memory of all reads in flight stays bounded however many requests arrive.
// Safe for concurrent use.
type buffers struct {
	sem   *semaphore.Weighted
	big   sync.Pool
	small sync.Pool
}

func newBuffers(budget int64) *buffers {
	return &buffers{
		sem:   semaphore.NewWeighted(budget),
		big:   sync.Pool{New: func() any { b := make([]byte, readChunk); return &b }},
		small: sync.Pool{New: func() any { b := make([]byte, smallChunk); return &b }},
	}
}

// get returns a buffer of at least n (≤ readChunk) bytes, waiting for room
// in the budget. wait false returns nil at once when there is none.
func (b *buffers) get(ctx context.Context, n int, wait bool) (*[]byte, error) {
	class, pool := int64(readChunk), &b.big
	if n <= smallChunk {
		class, pool = smallChunk, &b.small
	}
	if wait {
		if err := b.sem.Acquire(ctx, class); err != nil {
			return nil, err
		}
	} else if !b.sem.TryAcquire(class) {
		return nil, nil
	}
	return pool.Get().(*[]byte), nil
}

// put returns a buffer to its pool and its bytes to the budget.
func (b *buffers) put(buf *[]byte) {
	if cap(*buf) == smallChunk {
		b.small.Put(buf)
		b.sem.Release(smallChunk)
		return
	}
	b.big.Put(buf)
	b.sem.Release(readChunk)
}

// objectStream reads the bytes [off, end) of one version of a file through
// the cluster, with up to readDepth chunks fetched ahead in parallel, in
// buffers from the budget. It is an io.Reader and an io.WriterTo; Close
// stops the fetches and waits for them. Not safe for concurrent use.
type objectStream struct {
	ctx    context.Context
	cancel context.CancelFunc
	f      *client.File
	bufs   *buffers
	next   int64 // next offset to schedule
	end    int64
	queue  []*fetch
	pos    int // bytes of queue[0] consumed by Read
	err    error
}

// fetch is one chunk being read.
type fetch struct {
	buf  *[]byte
	n    int
	err  error
	done chan struct{}
}

func newObjectStream(ctx context.Context, f *client.File, bufs *buffers, off, n int64) *objectStream {
	ctx, cancel := context.WithCancel(ctx)
	return &objectStream{ctx: ctx, cancel: cancel, f: f, bufs: bufs, next: off, end: off + n}
}

// fill schedules chunk fetches up to readDepth. It waits for buffer room only
// when nothing is in flight (a stream holding buffers never waits for more,
// so streams cannot starve each other).
func (s *objectStream) fill() error {
	for len(s.queue) < readDepth && s.next < s.end {
		n := min(int64(readChunk), s.end-s.next)
		buf, err := s.bufs.get(s.ctx, int(n), len(s.queue) == 0)
		if err != nil {
			return err
		}
		if buf == nil {
			return nil
		}
		ft := &fetch{buf: buf, n: int(n), done: make(chan struct{})}
		off := s.next
		s.next += n
		s.queue = append(s.queue, ft)
		if len(s.queue) == 1 && s.next >= s.end {
			// A single chunk: read it in this goroutine.
			ft.err = readFull(s.ctx, s.f, (*buf)[:n], off)
			close(ft.done)
			return nil
		}
		go func() {
			defer close(ft.done)
			ft.err = readFull(s.ctx, s.f, (*buf)[:n], off)
		}()
	}
	return nil
}

// readFull reads exactly len(p) bytes at off; a short read means the file
// changed since it was opened.
func readFull(ctx context.Context, f *client.File, p []byte, off int64) error {
	n, err := f.ReadAtContext(ctx, p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: the object is shorter than when it was opened: %w", f.Info().Path, ufs.ErrChanged)
	}
	return err
}

// head waits for the first chunk in the queue.
func (s *objectStream) head() (*fetch, error) {
	if s.err != nil {
		return nil, s.err
	}
	if err := s.fill(); err != nil {
		s.err = err
		return nil, err
	}
	if len(s.queue) == 0 {
		return nil, io.EOF
	}
	ft := s.queue[0]
	<-ft.done
	if ft.err != nil {
		s.err = ft.err
		return nil, ft.err
	}
	return ft, nil
}

// pop releases the first chunk.
func (s *objectStream) pop() {
	s.bufs.put(s.queue[0].buf)
	s.queue = s.queue[1:]
	s.pos = 0
}

// Prime waits for the first chunk, so that errors such as ufs.ErrChanged come
// before anything is sent.
func (s *objectStream) Prime() error {
	_, err := s.head()
	if err == io.EOF {
		return nil
	}
	return err
}

// Read implements io.Reader.
func (s *objectStream) Read(p []byte) (int, error) {
	ft, err := s.head()
	if err != nil {
		return 0, err
	}
	n := copy(p, (*ft.buf)[s.pos:ft.n])
	s.pos += n
	if s.pos == ft.n {
		s.pop()
		_ = s.fill() // keep the pipeline full while the consumer works
	}
	return n, nil
}

// WriteTo implements io.WriterTo: whole chunks go to w as they arrive.
func (s *objectStream) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		ft, err := s.head()
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		// Schedule the following chunks before writing this one.
		if err := s.fill(); err != nil {
			s.err = err
			return total, err
		}
		n, err := w.Write((*ft.buf)[s.pos:ft.n])
		total += int64(n)
		if err != nil {
			s.err = err
			return total, err
		}
		s.pop()
	}
}

// Close cancels the fetches in flight, waits for them and frees the buffers.
func (s *objectStream) Close() error {
	s.cancel()
	for _, ft := range s.queue {
		<-ft.done
		s.bufs.put(ft.buf)
	}
	s.queue = nil
	return nil
}
