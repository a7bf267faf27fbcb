package robustness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/ufs"
	"golang.org/x/sys/unix"
)

// workload overwrites keys straight in MinIO while readers read them through
// Strata, recording everything in a history.
type workload struct {
	h    *history
	seed uint64
	keys int
	// minSize and maxSize bound the versions' sizes (log-uniform).
	minSize, maxSize int
	writers          int
	// writePause is the pause of a writer between two PUTs.
	writePause time.Duration
	// hold is how long a held handle stays open: hold + [0, hold) random.
	hold time.Duration

	// minio writes the objects into bucket.
	minio  *s3.Client
	bucket string
	// mnt is the FUSE directory that shows the bucket (the mount's
	// namespace directory); readers of the other paths read nsDir/KEY
	// through the Go client, and s3Bucket/KEY through the S3 API.
	mnt      string
	cl       *client.Client
	nsDir    string
	strataS3 *s3.Client
	s3Bucket string

	freshReaders, heldReaders, s3Readers, clientReaders int

	// versions[k] is the last version given to key k (each key has one
	// writer, so it needs no lock beyond the writer's own order).
	versions []int
}

func keyName(k int) string { return fmt.Sprintf("k%03d", k) }

// size draws a log-uniform size in [minSize, maxSize].
func (w *workload) size(rng *rand.Rand) int {
	lo, hi := math.Log(float64(w.minSize)), math.Log(float64(w.maxSize))
	return int(math.Exp(lo + rng.Float64()*(hi-lo)))
}

// put writes the next version of key k.
func (w *workload) put(k int, rng *rand.Rand) {
	w.versions[k]++
	v := w.versions[k]
	size := w.size(rng)
	body := makeContent(k, v, size, w.h.run)
	rec := writeRec{key: k, version: v, size: size, start: w.h.now()}
	// Not ctx: a PUT cut at the end of the run would be an unacknowledged
	// version for no reason.
	pctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	_, err := w.minio.PutObject(pctx, &s3.PutObjectInput{Bucket: aws.String(w.bucket), Key: aws.String(keyName(k)), Body: bytes.NewReader(body)})
	cancel()
	rec.ack = w.h.now()
	if err != nil {
		// An unacknowledged version may or may not be visible: it is
		// logged (a read may return it) but never makes another stale.
		rec.err = err.Error()
	} else {
		rec.ok = true
	}
	w.h.addWrite(rec)
}

// writeFirst writes version 1 of every key, before any reader starts.
func (w *workload) writeFirst() error {
	w.versions = make([]int, w.keys)
	rng := rand.New(rand.NewPCG(w.seed, 0))
	for k := range w.keys {
		w.put(k, rng)
	}
	ws, _ := w.h.snapshot()
	for _, r := range ws {
		if !r.ok {
			return fmt.Errorf("put %s v%d: %s", keyName(r.key), r.version, r.err)
		}
	}
	return nil
}

// writer overwrites its keys (k % writers == idx) until ctx ends.
func (w *workload) writer(ctx context.Context, idx int) {
	rng := rand.New(rand.NewPCG(w.seed, uint64(1000+idx)))
	var mine []int
	for k := range w.keys {
		if k%w.writers == idx {
			mine = append(mine, k)
		}
	}
	for ctx.Err() == nil {
		w.put(mine[rng.IntN(len(mine))], rng)
		sleep(ctx, w.writePause)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// run starts the writers and readers, stops them after d and waits for
// them, at most grace longer. It returns the names of the goroutines still
// running then (hung reads).
func (w *workload) run(d, grace time.Duration) []string {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	running := map[string]bool{}
	var wg sync.WaitGroup
	start := func(name string, fn func()) {
		mu.Lock()
		running[name] = true
		mu.Unlock()
		wg.Go(func() {
			fn()
			mu.Lock()
			delete(running, name)
			mu.Unlock()
		})
	}
	for i := range w.writers {
		start(fmt.Sprintf("writer%d", i), func() { w.writer(ctx, i) })
	}
	for i := range w.freshReaders {
		start(fmt.Sprintf("%s%d", pathFresh, i), func() { w.freshReader(ctx, i) })
	}
	for i := range w.heldReaders {
		start(fmt.Sprintf("%s%d", pathHeld, i), func() { w.heldReader(ctx, i) })
	}
	for i := range w.s3Readers {
		start(fmt.Sprintf("%s%d", pathS3, i), func() { w.s3Reader(ctx, i) })
	}
	for i := range w.clientReaders {
		start(fmt.Sprintf("%s%d", pathClient, i), func() { w.clientReader(ctx, i) })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	<-ctx.Done()
	select {
	case <-done:
		return nil
	case <-time.After(grace):
	}
	mu.Lock()
	defer mu.Unlock()
	var names []string
	for n := range running {
		names = append(names, n)
	}
	return names
}

// maxRead caps what one read collects: far more than any version, so
// padding shows, but bounded.
const maxRead = 64 << 20

// readChunk is the size of one read(2)/pread(2) call (the FUSE maximum).
const readChunk = 1 << 20

// errName names a read's error: errChanged for the "changed since opened"
// forms, the errno's name, the S3 error code, or the error's type.
func errName(err error) string {
	var errno syscall.Errno
	var apiErr smithy.APIError
	switch {
	case errors.Is(err, syscall.ESTALE), errors.Is(err, ufs.ErrChanged):
		return errChanged
	case errors.As(err, &errno):
		return unix.ErrnoName(errno)
	case errors.As(err, &apiErr):
		if apiErr.ErrorCode() == "OperationAborted" {
			return errChanged
		}
		return apiErr.ErrorCode()
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return fmt.Sprintf("%T", err)
}

func detail(err error) string {
	s := err.Error()
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// record decodes data (or notes err) and adds the read to the history.
func (w *workload) record(r readRec, data []byte, err error) {
	if err != nil {
		r.err, r.detail = errName(err), detail(err)
	} else {
		r.dec = decode(data, r.key, w.h.run)
	}
	w.h.addRead(r)
}

// readAll reads r to EOF into buf (grown as needed, at most maxRead bytes).
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	buf = buf[:0]
	for len(buf) < maxRead {
		if cap(buf)-len(buf) < readChunk {
			buf = append(buf, make([]byte, readChunk)...)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf) : len(buf)+readChunk])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// preadAll reads f from offset 0 to EOF with pread(2), into buf.
func preadAll(f *os.File, buf []byte) ([]byte, error) {
	buf = buf[:0]
	for len(buf) < maxRead {
		if cap(buf)-len(buf) < readChunk {
			buf = append(buf, make([]byte, readChunk)...)[:len(buf)]
		}
		n, err := f.ReadAt(buf[len(buf):len(buf)+readChunk], int64(len(buf)))
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// freshReader: open + fstat + read to EOF + close of a random key.
func (w *workload) freshReader(ctx context.Context, idx int) {
	rng := rand.New(rand.NewPCG(w.seed, uint64(2000+idx)))
	buf := make([]byte, 0, 4<<20)
	for ctx.Err() == nil {
		k := rng.IntN(w.keys)
		r := readRec{path: pathFresh, key: k, stSize: -1, start: w.h.now()}
		var data []byte
		err := func() error {
			f, err := os.Open(filepath.Join(w.mnt, keyName(k)))
			if err != nil {
				return err
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				return err
			}
			r.stSize = st.Size()
			data, err = readAll(f, buf)
			buf = data
			return err
		}()
		r.end = w.h.now()
		w.record(r, data, err)
	}
}

// heldHandle is an fd a held reader keeps open.
type heldHandle struct {
	f     *os.File
	id    int
	open  time.Duration
	until time.Duration
}

// heldReader keeps one handle per key of its own (k % heldReaders == idx)
// open for hold..2*hold, re-reading it over and over with fstat + pread from
// 0 to EOF; a failed read closes it (the next round opens the key again).
func (w *workload) heldReader(ctx context.Context, idx int) {
	rng := rand.New(rand.NewPCG(w.seed, uint64(3000+idx)))
	buf := make([]byte, 0, 4<<20)
	hs := map[int]*heldHandle{}
	defer func() {
		for _, h := range hs {
			h.f.Close()
		}
	}()
	nextID := 0
	for ctx.Err() == nil {
		for k := idx; k < w.keys && ctx.Err() == nil; k += w.heldReaders {
			h := hs[k]
			if h != nil && w.h.now() > h.until {
				h.f.Close()
				delete(hs, k)
				h = nil
			}
			if h == nil {
				t0 := w.h.now()
				f, err := os.Open(filepath.Join(w.mnt, keyName(k)))
				if err != nil {
					w.record(readRec{path: pathHeld, key: k, stSize: -1, start: t0, end: w.h.now()}, nil, fmt.Errorf("open: %w", err))
					continue
				}
				nextID++
				h = &heldHandle{f: f, id: idx*1_000_000 + nextID, open: t0}
				h.until = t0 + w.hold + time.Duration(rng.Int64N(int64(w.hold)))
				hs[k] = h
			}
			r := readRec{path: pathHeld, key: k, handle: h.id, open: h.open, stSize: -1, start: w.h.now()}
			var data []byte
			err := func() error {
				st, err := h.f.Stat()
				if err != nil {
					return err
				}
				r.stSize = st.Size()
				data, err = preadAll(h.f, buf)
				buf = data
				return err
			}()
			r.end = w.h.now()
			w.record(r, data, err)
			if err != nil {
				h.f.Close()
				delete(hs, k)
			}
		}
		sleep(ctx, 50*time.Millisecond+time.Duration(rng.Int64N(int64(100*time.Millisecond))))
	}
}

// s3Reader: GetObject of a random key on Strata's S3 API.
func (w *workload) s3Reader(ctx context.Context, idx int) {
	rng := rand.New(rand.NewPCG(w.seed, uint64(4000+idx)))
	buf := make([]byte, 0, 4<<20)
	for ctx.Err() == nil {
		k := rng.IntN(w.keys)
		r := readRec{path: pathS3, key: k, stSize: -1, start: w.h.now()}
		var data []byte
		err := func() error {
			gctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := w.strataS3.GetObject(gctx, &s3.GetObjectInput{Bucket: aws.String(w.s3Bucket), Key: aws.String(keyName(k))})
			if err != nil {
				return err
			}
			defer out.Body.Close()
			data, err = readAll(out.Body, buf)
			buf = data
			if err != nil {
				return fmt.Errorf("body: %w", err)
			}
			if out.ContentLength != nil && *out.ContentLength != int64(len(data)) {
				return fmt.Errorf("body: %d bytes, Content-Length %d", len(data), *out.ContentLength)
			}
			return nil
		}()
		r.end = w.h.now()
		w.record(r, data, err)
	}
}

// clientReader: client.Client.Open + read to EOF of a random key.
func (w *workload) clientReader(ctx context.Context, idx int) {
	rng := rand.New(rand.NewPCG(w.seed, uint64(5000+idx)))
	buf := make([]byte, 0, 4<<20)
	for ctx.Err() == nil {
		k := rng.IntN(w.keys)
		r := readRec{path: pathClient, key: k, stSize: -1, start: w.h.now()}
		var data []byte
		err := func() error {
			octx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			f, err := w.cl.Open(octx, w.nsDir+"/"+keyName(k), false)
			if err != nil {
				return err
			}
			defer f.Close()
			data, err = readAll(f, buf)
			buf = data
			return err
		}()
		r.end = w.h.now()
		w.record(r, data, err)
	}
}
