package fuse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/ufs"
)

func TestToErrno(t *testing.T) {
	cases := []struct {
		err  error
		want syscall.Errno
	}{
		{nil, 0},
		{fmt.Errorf("stat /a: %w", ufs.ErrNotFound), syscall.ENOENT},
		{fmt.Errorf("x: %w", namespace.ErrNoMount), syscall.ENOENT},
		{ufs.ErrExist, syscall.EEXIST},
		{ufs.ErrNotDir, syscall.ENOTDIR},
		{ufs.ErrIsDir, syscall.EISDIR},
		{fmt.Errorf("rmdir: %w", ufs.ErrNotEmpty), syscall.ENOTEMPTY},
		{fmt.Errorf("put: %w", rpcpb.ErrReadOnly), syscall.EROFS},
		{&rpcpb.RemoteError{Sentinel: rpcpb.ErrReadOnly, Msg: "remote"}, syscall.EROFS},
		{ufs.ErrPermission, syscall.EACCES},
		{ufs.ErrNotSupported, syscall.ENOTSUP},
		{ufs.ErrChanged, syscall.ESTALE},
		{namespace.ErrInvalidPath, syscall.EINVAL},
		{ufs.ErrInvalidPath, syscall.EINVAL},
		{fmt.Errorf("get: %w", ufs.ErrUnavailable), syscall.EIO},
		{context.Canceled, syscall.EINTR},
		{context.DeadlineExceeded, syscall.ETIMEDOUT},
		{&os.PathError{Op: "write", Path: "/staging/x", Err: syscall.ENOSPC}, syscall.ENOSPC},
		{fmt.Errorf("stream: %w", syscall.ENOTSUP), syscall.ENOTSUP},
		{errors.New("something else"), syscall.EIO},
	}
	for _, c := range cases {
		if got := toErrno(c.err); got != c.want {
			t.Errorf("toErrno(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestFUSEConfigValidate(t *testing.T) {
	if err := conf.DefaultFUSE().Validate(); err != nil {
		t.Fatalf("default: %v", err)
	}
	if err := conf.Default().Validate(); err != nil {
		t.Fatalf("whole default config: %v", err)
	}
	bad := conf.DefaultFUSE()
	bad.AttrTimeout = -1
	bad.MaxRead = 3000
	bad.MaxWrite = 4 << 20
	bad.ReadAhead = -5
	bad.ReadAheadBudget = -1
	bad.KernelReadAhead = 1000
	bad.MaxBackground = 0
	bad.StagingDir = ""
	err := bad.Validate()
	if !errors.Is(err, conf.ErrInvalid) {
		t.Fatalf("Validate = %v, want ErrInvalid", err)
	}
	for _, field := range []string{"attr_timeout", "max_read", "max_write", "read_ahead", "read_ahead_budget", "kernel_read_ahead", "max_background", "staging_dir"} {
		if !strings.Contains(err.Error(), "fuse."+field+":") {
			t.Errorf("the error does not report fuse.%s:\n%v", field, err)
		}
	}
	c := conf.Default()
	c.FUSE.MaxBackground = -3
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "fuse.max_background") {
		t.Errorf("Config.Validate does not check the FUSE section: %v", err)
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/tmp/plain`:            "/tmp/plain",
		`/tmp/with\040space`:    "/tmp/with space",
		`/tmp/tab\011and\134bs`: "/tmp/tab\tand\\bs",
		`/tmp/trailing\04`:      `/tmp/trailing\04`,
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPrepareMountPoint(t *testing.T) {
	lg := slog.New(slog.DiscardHandler)
	dir := filepath.Join(t.TempDir(), "a", "b")
	if err := prepareMountPoint(dir, lg); err != nil {
		t.Fatalf("missing dir: %v", err)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf("the mount point was not created: %v", err)
	}
	if err := prepareMountPoint(dir, lg); err != nil {
		t.Fatalf("existing dir: %v", err)
	}
}

// fakeSource serves reads from memory, counting them, with an optional
// failure at one offset.
type fakeSource struct {
	data  []byte
	reads atomic.Int64
	fail  atomic.Int64 // reads covering this offset+1 fail (0: none)
}

func (f *fakeSource) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	f.reads.Add(1)
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if bad := f.fail.Load() - 1; bad >= 0 && bad >= off && bad < off+int64(len(p)) {
		return 0, fmt.Errorf("fake: %w", ufs.ErrUnavailable)
	}
	if off >= int64(len(f.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func randData(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 9))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestReadAheadSequentialAndRandom(t *testing.T) {
	src := &fakeSource{data: randData(10<<20 + 4321)}
	pool := newBufPool(1<<20, 4<<20)
	var windows atomic.Int64
	ra := newReadAhead(src, int64(len(src.data)), 128<<10, pool, func() { windows.Add(1) })
	defer ra.close()
	ctx := context.Background()

	// Sequential reads in odd sizes see every byte, mostly from windows.
	var got []byte
	buf := make([]byte, 100_000)
	for off := int64(0); ; {
		n, err := ra.read(ctx, buf, off)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		got = append(got, buf[:n]...)
		off += int64(n)
	}
	if !bytes.Equal(got, src.data) {
		t.Fatalf("sequential read: %d bytes, want %d", len(got), len(src.data))
	}
	if windows.Load() == 0 {
		t.Errorf("no read-ahead window for a sequential reader")
	}
	if reads := src.reads.Load(); reads > 20 {
		t.Errorf("%d source reads for a 10MiB sequential read in 1MiB windows", reads)
	}
	// Random reads are direct and exact.
	r := rand.New(rand.NewPCG(5, 6))
	for range 200 {
		off := r.Int64N(int64(len(src.data)))
		n, err := ra.read(ctx, buf[:1+r.IntN(len(buf))], off)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[:n], src.data[off:off+int64(n)]) {
			t.Fatalf("random read at %d differs", off)
		}
		if n == 0 {
			t.Fatalf("empty read at %d inside the file", off)
		}
	}
	if n, err := ra.read(ctx, buf, int64(len(src.data))); n != 0 || err != nil {
		t.Errorf("read at the end = %d, %v", n, err)
	}
}

// TestReadAheadConcurrent runs sequential and random readers of one handle
// at once (as the kernel's async reads do); run with -race.
func TestReadAheadConcurrent(t *testing.T) {
	src := &fakeSource{data: randData(6<<20 + 17)}
	pool := newBufPool(512<<10, 2<<20) // a tight budget: some reads go direct
	ra := newReadAhead(src, int64(len(src.data)), 64<<10, pool, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			buf := make([]byte, 70_000)
			off := int64(0)
			for range 400 {
				if g%2 == 1 {
					off = r.Int64N(int64(len(src.data)))
				}
				n, err := ra.read(context.Background(), buf, off)
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(buf[:n], src.data[off:off+int64(n)]) {
					errs <- fmt.Errorf("reader %d: %d bytes at %d differ", g, n, off)
					return
				}
				off += int64(n)
				if off >= int64(len(src.data)) {
					off = 0
				}
			}
		})
	}
	wg.Wait()
	ra.close()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if left := pool.available(); left != 2<<20 {
		t.Errorf("the pool has %d bytes left after close, want all %d back", left, 2<<20)
	}
}

// TestReadAheadWindowFailure: a window whose fetch fails does not fail the
// read when a direct read succeeds, and reports the error when it does not.
func TestReadAheadWindowFailure(t *testing.T) {
	src := &fakeSource{data: randData(4 << 20)}
	pool := newBufPool(1<<20, 4<<20)
	ra := newReadAhead(src, int64(len(src.data)), 64<<10, pool, nil)
	defer ra.close()
	ctx := context.Background()
	buf := make([]byte, 64<<10)
	for off := int64(0); off < 192<<10; off += 64 << 10 {
		if _, err := ra.read(ctx, buf, off); err != nil {
			t.Fatal(err)
		}
	}
	src.fail.Store(3<<20 + 1) // the byte at 3MiB is unreadable from now on
	off := int64(192 << 10)
	for ; off < 3<<20-int64(len(buf)); off += int64(len(buf)) {
		n, err := ra.read(ctx, buf, off)
		if err != nil || !bytes.Equal(buf[:n], src.data[off:off+int64(n)]) {
			t.Fatalf("read at %d: %d, %v", off, n, err)
		}
	}
	if _, err := ra.read(ctx, buf, 3<<20); !errors.Is(err, ufs.ErrUnavailable) {
		t.Fatalf("read of the failing range: %v, want ErrUnavailable", err)
	}
	src.fail.Store(0)
	if n, err := ra.read(ctx, buf, 3<<20); err != nil || !bytes.Equal(buf[:n], src.data[3<<20:3<<20+n]) {
		t.Fatalf("read after recovery: %d, %v", n, err)
	}
}

func TestBufPoolBudget(t *testing.T) {
	p := newBufPool(1<<20, 2<<20)
	a, b := p.get(), p.get()
	if a == nil || b == nil {
		t.Fatal("the budget holds two buffers")
	}
	if p.get() != nil {
		t.Fatal("a third buffer exceeds the budget")
	}
	p.put(a)
	if c := p.get(); c == nil || len(*c) != 1<<20 {
		t.Fatal("a returned buffer is handed out again")
	}
	var none *bufPool
	if none.get() != nil {
		t.Fatal("a nil pool (read-ahead off) hands out no buffer")
	}
}

// TestBufPoolTrim: idle free buffers are dropped and their budget returns;
// buffers in use and a pool in use are left alone.
func TestBufPoolTrim(t *testing.T) {
	p := newBufPool(1<<20, 4<<20)
	a, b, c := p.get(), p.get(), p.get()
	p.put(a)
	p.put(b)
	if got := p.trim(time.Hour); got != 0 {
		t.Fatalf("trim of a pool used a moment ago dropped %d bytes", got)
	}
	if got := p.trim(0); got != 2<<20 {
		t.Fatalf("trim dropped %d bytes, want the two free buffers", got)
	}
	if got := p.available(); got != 3<<20 {
		t.Fatalf("available after trim: %d, want all but the buffer in use", got)
	}
	p.put(c)
	if got := p.available(); got != 4<<20 {
		t.Fatalf("available: %d", got)
	}
	if d := p.get(); d == nil {
		t.Fatal("the budget is usable after a trim")
	}
}
