package s3

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// Stale multipart uploads. Put streams large objects with multipart
// uploads on their final keys; a process that dies during one (kill -9, a
// crash, a lost node) leaves the upload, and the storage its parts take, in
// the bucket until it is aborted. A failed Put aborts its own upload (and
// says so in its error when the abort fails), but only a later process can
// clean up after a dead one. So the first Put of an FS starts a sweeper
// that aborts every multipart upload under the mount's prefix initiated more
// than s3.abort_stale_uploads ago (default 24h, as MinIO's own
// stale_uploads_expiry and the usual AbortIncompleteMultipartUpload
// lifecycle rule), and again every sweepEvery. The age is what tells a dead
// upload from a live one: an upload of another live writer (another worker,
// another tool) is never younger than an upload that is still in progress
// needs to be. Uploads outside the mount's prefix are never touched.

// sweepEvery is the period of the stale-upload sweeper.
const sweepEvery = time.Hour

// AbortStaleUploads aborts the multipart uploads under the mount's prefix
// that were initiated before cutoff. It returns how many it aborted; the
// failures (listing, or each failed abort with its key and upload id) are
// joined in the error, the aborts that can go on having gone on. Safe for
// concurrent use.
func (f *FS) AbortStaleUploads(ctx context.Context, cutoff time.Time) (int, error) {
	prefix := f.dirKey("")
	aborted := 0
	var errs []error
	sweep := func(listPrefix string) (seen int) {
		in := &awss3.ListMultipartUploadsInput{Bucket: &f.bucket}
		if listPrefix != "" {
			in.Prefix = aws.String(listPrefix)
		}
		for {
			out, err := f.client.ListMultipartUploads(ctx, in)
			if err != nil {
				errs = append(errs, f.mapErr("list the multipart uploads of", "", err))
				return seen
			}
			for _, u := range out.Uploads {
				key := aws.ToString(u.Key)
				if !strings.HasPrefix(key, prefix) {
					continue
				}
				seen++
				if u.Initiated == nil || !u.Initiated.Before(cutoff) {
					continue
				}
				if err := f.abort(ctx, key, aws.ToString(u.UploadId)); err != nil {
					errs = append(errs, err)
					continue
				}
				aborted++
			}
			if !aws.ToBool(out.IsTruncated) || (aws.ToString(out.NextKeyMarker) == "" && aws.ToString(out.NextUploadIdMarker) == "") {
				return seen
			}
			in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
		}
	}
	if sweep(prefix) == 0 && prefix != "" && len(errs) == 0 {
		// MinIO lists the uploads of one key only when given a prefix:
		// list them all and keep those under the mount's prefix.
		sweep("")
	}
	return aborted, errors.Join(errs...)
}

// startSweeper starts the stale-upload sweeper once (on the first Put);
// Close stops it and waits for it.
func (f *FS) startSweeper() {
	if f.staleAfter <= 0 {
		return
	}
	f.sweepOnce.Do(func() {
		f.sweepers.Go(func() {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan struct{})
			defer close(done)
			go func() {
				select {
				case <-f.stop:
					cancel()
				case <-done:
				}
			}()
			t := time.NewTicker(sweepEvery)
			defer t.Stop()
			for {
				n, err := f.AbortStaleUploads(ctx, time.Now().Add(-f.staleAfter))
				if n > 0 {
					f.log.Info("aborted stale multipart uploads", "bucket", f.bucket, "prefix", f.prefix, "count", n, "older_than", f.staleAfter)
				}
				if err != nil && ctx.Err() == nil {
					f.log.Warn("abort stale multipart uploads", "bucket", f.bucket, "prefix", f.prefix, "err", err)
				}
				select {
				case <-f.stop:
					return
				case <-t.C:
				}
			}
		})
	})
}
