package client_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/tests/testcluster"
	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind (read-ahead
// windows, connections), as etcd's integration framework does.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent())
}

func testFile(t *testing.T, size int) (*testcluster.Cluster, []byte) {
	t.Helper()
	dir := t.TempDir()
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*7 + i/4096)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	c := testcluster.Start(t, testcluster.Options{Workers: 3, Tune: func(cfg *conf.Config) {
		cfg.Worker.BlockSize = 4 << 20
	}})
	c.MustMount(t, "/d", "file://"+dir, nil)
	return c, data
}

// TestSequentialReadAndSeek: Read with read-ahead across windows and blocks
// of three owners, and Seek back and forth, return the file's bytes.
func TestSequentialReadAndSeek(t *testing.T) {
	c, data := testFile(t, 40<<20+123)
	f, err := c.Client.Open(context.Background(), "/d/f", false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadAll: %d bytes, %v", len(got), err)
	}
	for _, off := range []int64{30 << 20, 5, 17<<20 - 3, int64(len(data)) - 10} {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64<<10)
		n, err := io.ReadFull(f, buf)
		if err != nil && err != io.ErrUnexpectedEOF {
			t.Fatalf("read at %d: %v", off, err)
		}
		if !bytes.Equal(buf[:n], data[off:off+int64(n)]) {
			t.Fatalf("read at %d: wrong bytes", off)
		}
	}
}

// TestCloseCancelsReadAhead: closing a file right after its first read stops
// the read-ahead fetches instead of waiting for whole windows (and leaves no
// goroutine: see TestMain).
func TestCloseCancelsReadAhead(t *testing.T) {
	c, data := testFile(t, 64<<20)
	for range 5 {
		f, err := c.Client.Open(context.Background(), "/d/f", false)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		if _, err := io.ReadFull(f, buf); err != nil || !bytes.Equal(buf, data[:4096]) {
			t.Fatalf("first read: %v", err)
		}
		start := time.Now()
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("close after the first read took %v", time.Since(start))
	}
}
