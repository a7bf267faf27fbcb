package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/tests/testcluster"
	"github.com/stratafs/strata/ufs"
)

// A stat miss in a small directory lists the directory once and caches
// every sibling's stat (placed on the worker that owns the directory's
// listing), a large directory is stat'ed file by file, a sync stat always
// asks the UFS for the file, and writes through Strata invalidate the stat
// on its owner.
func TestStatAnsweredFromTheParentListing(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Workers: 2, Tune: func(cfg *conf.Config) { cfg.Worker.MetadataTTL = conf.Duration(time.Hour) }})
	bucket := minio.NewBucket(t, "statlist")
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	put := func(key string) {
		defer wg.Done()
		sem <- struct{}{}
		defer func() { <-sem }()
		putObject(t, bucket, key, []byte(key))
	}
	for i := range 20 {
		wg.Add(1)
		go put(fmt.Sprintf("small/f%02d", i))
	}
	for i := range 1001 { // siblingListLimit + 1
		wg.Add(1)
		go put(fmt.Sprintf("big/f%04d", i))
	}
	wg.Wait()
	c.MustMount(t, "/d", "s3://"+bucket, minio.S3Options())
	ctx := context.Background()
	del := func(key string) {
		t.Helper()
		if _, err := minio.S3Client(t).DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
			t.Fatal(err)
		}
	}

	if fi, err := c.Client.Stat(ctx, "/d/small/f00", false); err != nil || fi.Size != int64(len("small/f00")) {
		t.Fatalf("stat small/f00: %+v %v", fi, err)
	}
	// f05 went away behind Strata's back after the first stat listed its
	// directory: within the metadata TTL its stat comes from that listing.
	del("small/f05")
	if fi, err := c.Client.Stat(ctx, "/d/small/f05", false); err != nil || fi.Size != int64(len("small/f05")) {
		t.Errorf("stat of a sibling after the listing: %+v %v, want it answered from the cached listing", fi, err)
	}
	if _, err := c.Client.Stat(ctx, "/d/small/f05", true); !errors.Is(err, ufs.ErrNotFound) {
		t.Errorf("sync stat of a deleted file: %v, want ErrNotFound", err)
	}
	// A name the fresh listing does not hold is not found without a HEAD.
	if _, err := c.Client.Stat(ctx, "/d/small/nope", false); !errors.Is(err, ufs.ErrNotFound) {
		t.Errorf("stat of a missing sibling: %v, want ErrNotFound", err)
	}

	// 1,001 entries: too many to list for a stat, so each file is asked for.
	if _, err := c.Client.Stat(ctx, "/d/big/f0000", false); err != nil {
		t.Fatal(err)
	}
	del("big/f0001")
	if _, err := c.Client.Stat(ctx, "/d/big/f0001", false); !errors.Is(err, ufs.ErrNotFound) {
		t.Errorf("stat in a large directory: %v, want ErrNotFound from the UFS", err)
	}

	// A file written through Strata is seen at once: the write invalidated
	// the directory listing and the stat on their owners.
	data := []byte("written through strata")
	if _, err := c.Client.Create(ctx, "/d/small/f05", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if fi, err := c.Client.Stat(ctx, "/d/small/f05", false); err != nil || fi.Size != int64(len(data)) {
		t.Errorf("stat after a write through Strata: %+v %v, want %d bytes", fi, err, len(data))
	}
	if _, err := c.Client.Create(ctx, "/d/small/new", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if fi, err := c.Client.Stat(ctx, "/d/small/new", false); err != nil || fi.Size != int64(len(data)) {
		t.Errorf("stat of a new file written through Strata: %+v %v", fi, err)
	}
}
