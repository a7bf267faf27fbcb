package e2e

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/stratafs/strata/tests/testcluster"
)

// TestConcurrentMissesFetchOnce: many readers of the same cold file make one
// UFS fetch per chunk, however many wait for it.
func TestConcurrentMissesFetchOnce(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	bucket := minio.NewBucket(t, "singleflight")
	data := randBytes(t, 16<<20) // two 8 MiB fetch chunks
	putObject(t, bucket, "f", data)
	c.MustMount(t, "/sf", "s3://"+bucket, minio.S3Options())
	ctx := context.Background()
	f, err := c.Client.Open(ctx, "/sf/f", false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const readers = 24
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	start := make(chan struct{})
	for i := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			buf := make([]byte, len(data))
			n, err := f.ReadAt(buf, 0)
			if err != nil || n != len(data) || !bytes.Equal(buf, data) {
				errs <- err
				t.Errorf("reader %d: %d bytes, %v", i, n, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	s := c.Workers[0].Stats()
	if s.GetUfsFetches() != 2 || s.GetUfsBytes() != int64(len(data)) {
		t.Errorf("%d readers caused %d UFS fetches of %d bytes; want 2 fetches of %d", readers, s.GetUfsFetches(), s.GetUfsBytes(), len(data))
	}
}
