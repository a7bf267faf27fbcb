package s3compat

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/tests/harness"
)

// TestReadOnlyKey: aws-sdk-go-v2 with a key of s3.keys that may only read
// bucket "data" reads it, is refused PUT and DELETE with AccessDenied, and
// does not see bucket "listing"; MinIO keeps the object.
func TestReadOnlyKey(t *testing.T) {
	const (
		roID     = "STRATAREADONLY"
		roSecret = "strata/read-only+secret/0123456789"
	)
	st := startStrata(t, func(cfg *conf.Config) {
		cfg.S3.BucketKeys = []conf.S3Key{{AccessKeyID: roID, SecretAccessKey: roSecret, Buckets: map[string]string{"data": conf.S3PermRead}}}
	})
	ctx := context.Background()
	full, ro := st.sdk(t, false), st.sdkAs(t, false, roID, roSecret)
	if _, err := full.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("ro/obj"), Body: strings.NewReader("kept")}); err != nil {
		t.Fatal(err)
	}

	out, err := ro.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("ro/obj")})
	if err != nil {
		t.Fatalf("read-only GET: %v", err)
	}
	b, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || string(b) != "kept" {
		t.Errorf("read-only GET: %q %v", b, err)
	}
	_, err = ro.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("ro/new"), Body: strings.NewReader("x")})
	harness.WantS3Error(t, "read-only PUT", err, "AccessDenied", 403)
	_, err = ro.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("data"), Key: aws.String("ro/obj")})
	harness.WantS3Error(t, "read-only DELETE", err, "AccessDenied", 403)
	_, err = ro.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("listing"), MaxKeys: aws.Int32(1)})
	harness.WantS3Error(t, "read-only LIST of a bucket not granted", err, "AccessDenied", 403)
	lb, err := ro.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil || len(lb.Buckets) != 1 || aws.ToString(lb.Buckets[0].Name) != "data" {
		t.Errorf("read-only ListBuckets: %+v %v", lb, err)
	}

	mc := minio.S3Client(t)
	if _, err := mc.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(st.dataBucket), Key: aws.String("ro/obj")}); err != nil {
		t.Errorf("the object a refused DELETE named is gone from MinIO: %v", err)
	}
	_, err = mc.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(st.dataBucket), Key: aws.String("ro/new")})
	harness.WantS3Error(t, "the object of a refused PUT in MinIO", err, "", 404)
}
