package s3compat

import (
	"bytes"
	"context"
	"crypto/rand"
	"github.com/stratafs/strata/tests/harness"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func getBytes(t *testing.T, cl *s3.Client, in *s3.GetObjectInput) ([]byte, *s3.GetObjectOutput, error) {
	t.Helper()
	out, err := cl.GetObject(context.Background(), in)
	if err != nil {
		return nil, nil, err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	return b, out, err
}

// minioGet reads an object straight from MinIO: what Strata wrote is there
// in its native form.
func minioGet(t *testing.T, bucket, key string) ([]byte, error) {
	t.Helper()
	out, err := minio.S3Client(t).GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// TestSDK runs every supported operation with aws-sdk-go-v2, path-style and
// virtual-host-style.
func TestSDK(t *testing.T) {
	st := startStrata(t, nil)
	for _, vhost := range []bool{false, true} {
		name := "path-style"
		if vhost {
			name = "virtual-host"
		}
		t.Run(name, func(t *testing.T) { sdkSuite(t, st, st.sdk(t, vhost), name) })
	}
	t.Run("pagination", func(t *testing.T) {
		cl := st.sdk(t, false)
		var keys []string
		pages := 0
		p := s3.NewListObjectsV2Paginator(cl, &s3.ListObjectsV2Input{Bucket: aws.String("listing"), Prefix: aws.String("k/a/"), MaxKeys: aws.Int32(300)})
		for p.HasMorePages() {
			page, err := p.NextPage(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, o := range page.Contents {
				keys = append(keys, aws.ToString(o.Key))
			}
		}
		if len(keys) != listKeys/2 || pages != 9 || !slices.IsSorted(keys) || keys[0] != "k/a/00/000" || keys[len(keys)-1] != "k/a/24/099" {
			t.Errorf("paged %d keys in %d pages (sorted %v)", len(keys), pages, slices.IsSorted(keys))
		}
		// With the delimiter: 25 common prefixes, 10 per page.
		var cps []string
		p = s3.NewListObjectsV2Paginator(cl, &s3.ListObjectsV2Input{Bucket: aws.String("listing"), Prefix: aws.String("k/a/"), Delimiter: aws.String("/"), MaxKeys: aws.Int32(10)})
		for p.HasMorePages() {
			page, err := p.NextPage(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, cp := range page.CommonPrefixes {
				cps = append(cps, aws.ToString(cp.Prefix))
			}
		}
		if len(cps) != 25 || cps[24] != "k/a/24/" {
			t.Errorf("common prefixes: %v", cps)
		}
		// Keys resume after start-after.
		out, err := cl.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("listing"), StartAfter: aws.String("k/a/24/098"), MaxKeys: aws.Int32(2)})
		if err != nil || len(out.Contents) != 2 || aws.ToString(out.Contents[0].Key) != "k/a/24/099" || aws.ToString(out.Contents[1].Key) != "k/b/00/000" {
			t.Errorf("start-after: %+v %v", out.Contents, err)
		}
	})
}

func sdkSuite(t *testing.T, st *strata, cl *s3.Client, prefix string) {
	ctx := context.Background()
	data := randBytes(t, 3<<20+17)
	key := prefix + "/obj.bin"
	put, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String(key), Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := minioGet(t, st.dataBucket, key); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("MinIO does not hold the object Strata wrote: %v", err)
	}
	head, err := cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("data"), Key: aws.String(key)})
	if err != nil || aws.ToInt64(head.ContentLength) != int64(len(data)) || aws.ToString(head.ETag) != aws.ToString(put.ETag) || head.LastModified == nil {
		t.Fatalf("HeadObject %+v (PUT ETag %s): %v", head, aws.ToString(put.ETag), err)
	}
	if got, _, err := getBytes(t, cl, &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String(key)}); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GetObject: %v", err)
	}
	// Ranged GETs.
	for rng, want := range map[string][]byte{"bytes=0-9": data[:10], "bytes=1048570-2097160": data[1048570:2097161], "bytes=-7": data[len(data)-7:], "bytes=3145700-": data[3145700:]} {
		got, out, err := getBytes(t, cl, &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String(key), Range: aws.String(rng)})
		if err != nil || !bytes.Equal(got, want) || aws.ToString(out.ContentRange) == "" {
			t.Errorf("%s: %v (%d bytes)", rng, err, len(got))
		}
	}
	_, _, err = getBytes(t, cl, &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String(key), Range: aws.String("bytes=4000000-")})
	harness.WantS3Error(t, "range past the end", err, "InvalidRange", 416)
	// Conditional GETs.
	etag, lm := aws.ToString(head.ETag), aws.ToTime(head.LastModified)
	_, _, err = getBytes(t, cl, &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String(key), IfNoneMatch: aws.String(etag)})
	harness.WantS3Error(t, "If-None-Match", err, "", 304)
	_, _, err = getBytes(t, cl, &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String(key), IfMatch: aws.String(`"0123"`)})
	harness.WantS3Error(t, "If-Match", err, "PreconditionFailed", 412)
	_, _, err = getBytes(t, cl, &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String(key), IfModifiedSince: aws.Time(lm)})
	harness.WantS3Error(t, "If-Modified-Since", err, "", 304)
	_, _, err = getBytes(t, cl, &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String(key), IfUnmodifiedSince: aws.Time(lm.Add(-time.Minute))})
	harness.WantS3Error(t, "If-Unmodified-Since", err, "PreconditionFailed", 412)
	if got, _, err := getBytes(t, cl, &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String(key), IfMatch: aws.String(etag), Range: aws.String("bytes=5-6")}); err != nil || !bytes.Equal(got, data[5:7]) {
		t.Errorf("If-Match with a range: %v", err)
	}

	// Multipart with 5 MiB parts, by hand and with the SDK's uploader.
	mpKey := prefix + "/multipart.bin"
	mpData := randBytes(t, 11<<20+5)
	cr, err := cl.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String(mpKey)})
	if err != nil {
		t.Fatal(err)
	}
	var parts []types.CompletedPart
	for i, off := int32(1), 0; off < len(mpData); i, off = i+1, off+5<<20 {
		up, err := cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("data"), Key: aws.String(mpKey), UploadId: cr.UploadId,
			PartNumber: aws.Int32(i), Body: bytes.NewReader(mpData[off:min(off+5<<20, len(mpData))])})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(i), ETag: up.ETag})
	}
	lp, err := cl.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("data"), Key: aws.String(mpKey), UploadId: cr.UploadId})
	if err != nil || len(lp.Parts) != 3 {
		t.Fatalf("ListParts: %v", err)
	}
	lu, err := cl.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("data"), Prefix: aws.String(prefix + "/")})
	if err != nil || len(lu.Uploads) != 1 {
		t.Fatalf("ListMultipartUploads: %+v %v", lu, err)
	}
	done, err := cl.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String(mpKey), UploadId: cr.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	if err != nil {
		t.Fatalf("CompleteMultipartUpload: %v", err)
	}
	// The ETag answered is MinIO's (Strata stored the 11 MiB in one piece),
	// the one HEAD shows.
	if mh, err := minioHead(t, st.dataBucket, mpKey); err != nil || aws.ToString(mh.ETag) != aws.ToString(done.ETag) {
		t.Errorf("CompleteMultipartUpload answered %s, MinIO holds %v (%v)", aws.ToString(done.ETag), aws.ToString(mh.ETag), err)
	}
	if got, err := minioGet(t, st.dataBucket, mpKey); err != nil || !bytes.Equal(got, mpData) {
		t.Fatalf("the completed upload is not one whole object in MinIO: %v", err)
	}
	up := manager.NewUploader(cl, func(u *manager.Uploader) { u.PartSize = 5 << 20; u.Concurrency = 3 })
	if _, err := up.Upload(ctx, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String(prefix + "/uploader.bin"), Body: bytes.NewReader(mpData)}); err != nil {
		t.Fatalf("manager.Uploader: %v", err)
	}
	dl := manager.NewDownloader(cl, func(d *manager.Downloader) { d.PartSize = 5 << 20 })
	buf := manager.NewWriteAtBuffer(nil)
	if _, err := dl.Download(ctx, buf, &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String(prefix + "/uploader.bin")}); err != nil || !bytes.Equal(buf.Bytes(), mpData) {
		t.Fatalf("manager.Downloader: %v", err)
	}
	// An aborted upload leaves nothing.
	cr2, err := cl.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String(prefix + "/aborted")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String(prefix + "/aborted"), UploadId: cr2.UploadId}); err != nil {
		t.Fatal(err)
	}
	_, err = cl.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String(prefix + "/aborted"), UploadId: cr2.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts[:1]}})
	harness.WantS3Error(t, "complete an aborted upload", err, "NoSuchUpload", 404)

	// CopyObject, and DeleteObjects.
	if _, err := cl.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("data"), Key: aws.String(prefix + "/copy/of obj+1"), CopySource: aws.String("data/" + key)}); err != nil {
		t.Fatal(err)
	}
	if got, err := minioGet(t, st.dataBucket, prefix+"/copy/of obj+1"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("copy: %v", err)
	}
	if _, err := cl.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("data"), Key: aws.String(prefix + "/copy/from-listing"), CopySource: aws.String("listing/k/a/00/001")}); err != nil {
		t.Fatalf("copy across buckets: %v", err)
	}
	var ids []types.ObjectIdentifier
	for _, k := range []string{key, mpKey, prefix + "/copy/of obj+1", prefix + "/never-was"} {
		ids = append(ids, types.ObjectIdentifier{Key: aws.String(k)})
	}
	del, err := cl.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("data"), Delete: &types.Delete{Objects: ids}})
	if err != nil || len(del.Deleted) != 4 || len(del.Errors) != 0 {
		t.Fatalf("DeleteObjects: %+v %v", del, err)
	}
	if _, err := minioGet(t, st.dataBucket, key); err == nil {
		t.Errorf("%s still in MinIO after DeleteObjects", key)
	}
	if _, err := cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("data"), Key: aws.String(prefix + "/uploader.bin")}); err != nil {
		t.Fatal(err)
	}
	out, err := cl.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("data"), Prefix: aws.String(prefix + "/")})
	if err != nil || len(out.Contents) != 1 || aws.ToString(out.Contents[0].Key) != prefix+"/copy/from-listing" {
		t.Errorf("left after the deletes: %+v %v", out.Contents, err)
	}
	// Buckets.
	lb, err := cl.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil || len(lb.Buckets) != 2 {
		t.Fatalf("ListBuckets: %+v %v", lb, err)
	}
	if _, err := cl.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("listing")}); err != nil {
		t.Errorf("HeadBucket: %v", err)
	}
	if _, err := cl.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String("data")}); err != nil {
		t.Errorf("GetBucketLocation: %v", err)
	}
	_, err = cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("listing"), Key: aws.String("x"), Body: strings.NewReader("x")})
	harness.WantS3Error(t, "write to the read-only bucket", err, "AccessDenied", 403)
}
