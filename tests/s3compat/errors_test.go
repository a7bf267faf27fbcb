package s3compat

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/xml"
	"github.com/stratafs/strata/tests/harness"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stratafs/strata/conf"
)

func s3Error(t *testing.T, resp *http.Response) (string, string) {
	t.Helper()
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var doc struct{ Code, Message string }
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("HTTP %d without an S3 error document: %q", resp.StatusCode, truncate(b))
	}
	return doc.Code, doc.Message
}

// TestAuthAndErrors: every bad-auth case with its S3 error, the not-found
// errors, and a Content-MD5 mismatch that leaves nothing in MinIO.
func TestAuthAndErrors(t *testing.T) {
	st := startStrata(t, nil)
	ctx := context.Background()
	good := st.sdk(t, false)
	if _, err := good.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("e/obj"), Body: strings.NewReader("0123456789")}); err != nil {
		t.Fatal(err)
	}
	with := func(id, secret string) *s3.Client { return st.sdkAs(t, false, id, secret) }
	_, err := with(keyID, "not-the-secret-at-all").GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("e/obj")})
	harness.WantS3Error(t, "bad signature", err, "SignatureDoesNotMatch", 403)
	_, err = with("UNKNOWNKEY", keySecret).ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("data")})
	harness.WantS3Error(t, "unknown key", err, "InvalidAccessKeyId", 403)
	_, err = with(keyID, "not-the-secret-at-all").PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("e/forged"), Body: strings.NewReader("x")})
	harness.WantS3Error(t, "PUT with a bad signature", err, "SignatureDoesNotMatch", 403)
	if _, err := minioGet(t, st.dataBucket, "e/forged"); err == nil {
		t.Error("a PUT with a bad signature wrote to MinIO")
	}

	// Presigned URLs: valid, expired, tampered.
	presign := func(key string, at time.Time, expires time.Duration) string {
		u := st.endpoint + "/data/" + key + "?X-Amz-Expires=" + strconv.Itoa(int(expires/time.Second))
		r, _ := http.NewRequest(http.MethodGet, u, nil)
		signed, _, err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).PresignHTTP(ctx,
			aws.Credentials{AccessKeyID: keyID, SecretAccessKey: keySecret}, r, "UNSIGNED-PAYLOAD", "s3", "us-east-1", at)
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	resp, err := http.Get(presign("e/obj", time.Now(), time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(b) != "0123456789" {
		t.Errorf("presigned GET: %d %q", resp.StatusCode, b)
	}
	resp.Body.Close()
	resp, err = http.Get(presign("e/obj", time.Now().Add(-2*time.Hour), time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if code, msg := s3Error(t, resp); resp.StatusCode != 403 || code != "AccessDenied" || msg != "Request has expired" {
		t.Errorf("expired presigned URL: %d %s %q", resp.StatusCode, code, msg)
	}
	u, _ := url.Parse(presign("e/obj", time.Now(), time.Minute))
	q := u.Query()
	q.Set("X-Amz-Expires", "3600")
	u.RawQuery = q.Encode()
	resp, err = http.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := s3Error(t, resp); resp.StatusCode != 403 || code != "SignatureDoesNotMatch" {
		t.Errorf("presigned URL with a longer expiry: %d %s", resp.StatusCode, code)
	}

	// Anonymous requests while anonymous access is off.
	for _, u := range []string{st.endpoint + "/", st.endpoint + "/data/e/obj", st.endpoint + "/data?list-type=2"} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		if code, _ := s3Error(t, resp); resp.StatusCode != 403 || code != "AccessDenied" {
			t.Errorf("anonymous GET %s: %d %s", u, resp.StatusCode, code)
		}
	}

	// Not-found and range errors.
	_, err = good.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("nosuchbucket"), Key: aws.String("k")})
	harness.WantS3Error(t, "missing bucket", err, "NoSuchBucket", 404)
	_, err = good.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("nosuchbucket")})
	harness.WantS3Error(t, "list of a missing bucket", err, "NoSuchBucket", 404)
	_, err = good.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("e/none")})
	harness.WantS3Error(t, "missing key", err, "NoSuchKey", 404)
	_, err = good.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("e/obj"), Range: aws.String("bytes=10-")})
	harness.WantS3Error(t, "range at the end", err, "InvalidRange", 416)

	// A Content-MD5 that does not match a 20 MiB body (more than one UFS
	// part: the multipart upload to MinIO is aborted).
	body := randBytes(t, 20<<20)
	other := md5.Sum([]byte("something else"))
	_, err = good.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("e/bad-digest"), Body: bytes.NewReader(body),
		ContentMD5: aws.String(base64.StdEncoding.EncodeToString(other[:]))})
	harness.WantS3Error(t, "Content-MD5 mismatch", err, "BadDigest", 400)
	if _, err := minioGet(t, st.dataBucket, "e/bad-digest"); err == nil {
		t.Error("the object with a bad Content-MD5 is visible in MinIO")
	}
	_, err = good.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("data"), Key: aws.String("e/bad-digest")})
	harness.WantS3Error(t, "HEAD of the object with a bad Content-MD5", err, "", 404)
	ups, err := minio.S3Client(t).ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(st.dataBucket)})
	if err != nil || len(ups.Uploads) != 0 {
		t.Errorf("multipart uploads left in MinIO: %+v %v", ups, err)
	}
}

// TestAnonymousRead serves unsigned reads when configured to.
func TestAnonymousRead(t *testing.T) {
	st := startStrata(t, func(cfg *conf.Config) { cfg.S3.Anonymous = conf.S3AnonymousRead })
	resp, err := http.Get(st.endpoint + "/listing/k/a/00/042")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "k/a/00/042" {
		t.Errorf("anonymous GET: %d %q", resp.StatusCode, b)
	}
	req, _ := http.NewRequest(http.MethodPut, st.endpoint+"/data/anon", strings.NewReader("x"))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := s3Error(t, resp); resp.StatusCode != 403 || code != "AccessDenied" {
		t.Errorf("anonymous PUT with anonymous read: %d %s", resp.StatusCode, code)
	}
}
