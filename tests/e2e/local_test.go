package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/tests/testcluster"
	"github.com/stratafs/strata/ufs"
)

// A client with a worker in its own process (strata local) stats and reads
// through it without RPCs, with the same results and errors as over the
// network: cold reads fill the cache, warm reads come from it, a changed
// object fails with ErrChanged, a missing file with ErrNotFound.
func TestLocalWorkerReadsInProcess(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	bucket := minio.NewBucket(t, "local")
	data := randBytes(t, 21<<20+123)
	putObject(t, bucket, "big", data)
	c.MustMount(t, "/l", "s3://"+bucket, minio.S3Options(), func(m *namespace.Mount) { m.MetadataTTL = 0 })
	ctx := context.Background()
	lc, err := client.New(ctx, client.Options{Etcd: c.Etcd, Config: c.Config, Registry: c.Registry, Logger: c.Log, Local: c.Workers[0], Secrets: c.Secrets})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	for _, pass := range []string{"cold", "warm"} {
		f, err := lc.Open(ctx, "/l/big", false)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(f)
		f.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s read through the local worker: %d bytes, %v", pass, len(got), err)
		}
		// A ranged read across a block boundary of the page size.
		buf := make([]byte, 3<<20)
		f, _ = lc.Open(ctx, "/l/big", false)
		if n, err := f.ReadAt(buf, 5<<20-17); err != nil || n != len(buf) || !bytes.Equal(buf, data[5<<20-17:8<<20-17]) {
			t.Fatalf("%s ranged read: %d %v", pass, n, err)
		}
		f.Close()
	}
	// The cold pass filled the cache, the warm pass read from it.
	if st := c.Workers[0].Stats(); st.GetUfsBytes() < int64(len(data)) || st.GetUfsBytes() >= 2*int64(len(data)) || st.GetPageHits() == 0 {
		t.Errorf("after a cold and a warm pass: %d bytes from the UFS (want the file's %d once), %d page hits", st.GetUfsBytes(), len(data), st.GetPageHits())
	}
	if _, err := lc.Stat(ctx, "/l/nope", false); !errors.Is(err, ufs.ErrNotFound) {
		t.Errorf("stat of a missing file through the local worker: %v", err)
	}
	// The object changes after the open: uncached ranges fail with
	// ErrChanged instead of mixing versions.
	putObject(t, bucket, "small", []byte("version one"))
	f, err := lc.Open(ctx, "/l/small", false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	putObject(t, bucket, "small", []byte("version two"))
	if _, err := f.ReadAt(make([]byte, 4), 0); !errors.Is(err, ufs.ErrChanged) {
		t.Errorf("read of a changed object through the local worker: %v, want ErrChanged", err)
	}
}
