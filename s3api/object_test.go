package s3api

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"github.com/stratafs/strata/tests/harness"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/namespace"
)

func randData(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// raw sends a request signed with aws-sdk-go-v2's signer.
func (e *env) raw(t *testing.T, method, path, query string, body []byte, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	r := newReq(t, method, e.url, path, query, body)
	for k, v := range hdr {
		r.Header[k] = v
	}
	sum := sha256Hex(body)
	r.Header.Set("X-Amz-Content-Sha256", sum)
	if err := s3Signer().SignHTTP(context.Background(), creds(testKeyID, testKeySecret), r, sum, "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := e.http.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var doc struct {
		Code string `xml:"Code"`
	}
	if err := xml.Unmarshal(body, &doc); err != nil {
		t.Fatalf("not an S3 error document: %q", body)
	}
	return doc.Code
}

func get(t *testing.T, cl *s3.Client, bucket, key string, tune ...func(*s3.GetObjectInput)) ([]byte, *s3.GetObjectOutput, error) {
	t.Helper()
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	for _, f := range tune {
		f(in)
	}
	out, err := cl.GetObject(context.Background(), in)
	if err != nil {
		return nil, nil, err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	return b, out, err
}

func put(t *testing.T, cl *s3.Client, bucket, key string, data []byte) *s3.PutObjectOutput {
	t.Helper()
	out, err := cl.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatalf("put %s/%s: %v", bucket, key, err)
	}
	return out
}

func TestObjectReadWrite(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	e := startEnv(t, nil)
	// A second server on the same cluster, with metrics registered.
	srv2, err := New(context.Background(), e.cfg, Deps{Client: e.c.Client, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv2)
	t.Cleanup(func() { hs.Close(); _ = srv2.Close(context.Background()) })
	e2 := *e
	e2.url = hs.URL
	cl := e2.sdk(t)
	ctx := context.Background()

	small := []byte("hello, strata")
	big := randData(t, 9<<20+123) // several read chunks, last one short
	pout := put(t, cl, "data", "x/small.txt", small)
	put(t, cl, "data", "x/big.bin", big)
	got, out, err := get(t, cl, "data", "x/big.bin")
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("get big: %v (%d bytes)", err, len(got))
	}
	if aws.ToInt64(out.ContentLength) != int64(len(big)) || out.LastModified == nil || !strings.HasPrefix(aws.ToString(out.ETag), `"`) {
		t.Errorf("GetObject headers: %+v", out)
	}
	head, err := cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("data"), Key: aws.String("x/small.txt")})
	if err != nil || aws.ToInt64(head.ContentLength) != int64(len(small)) || aws.ToString(head.ContentType) != "text/plain; charset=utf-8" {
		t.Fatalf("HeadObject: %+v %v", head, err)
	}
	etag := aws.ToString(head.ETag)
	if aws.ToString(pout.ETag) != etag {
		t.Errorf("PutObject answered the ETag %s, HeadObject shows %s: they must agree", aws.ToString(pout.ETag), etag)
	}

	// Ranges.
	for rng, want := range map[string][]byte{
		"bytes=0-0": big[:1], "bytes=5-4194310": big[5:4194311], "bytes=-100": big[len(big)-100:],
		"bytes=9437000-": big[9437000:], "bytes=4194304-8388608": big[4194304:8388609],
	} {
		got, out, err := get(t, cl, "data", "x/big.bin", func(in *s3.GetObjectInput) { in.Range = aws.String(rng) })
		if err != nil || !bytes.Equal(got, want) || out.ContentRange == nil {
			t.Errorf("Range %s: %v, %d bytes, Content-Range %v", rng, err, len(got), out)
		}
	}
	_, _, err = get(t, cl, "data", "x/big.bin", func(in *s3.GetObjectInput) { in.Range = aws.String("bytes=99999999-") })
	harness.WantS3Error(t, "range past the end", err, "InvalidRange", 416)

	// Conditional GETs.
	lm := head.LastModified
	_, _, err = get(t, cl, "data", "x/small.txt", func(in *s3.GetObjectInput) { in.IfNoneMatch = aws.String(etag) })
	harness.WantS3Error(t, "If-None-Match with the ETag", err, "", 304)
	_, _, err = get(t, cl, "data", "x/small.txt", func(in *s3.GetObjectInput) { in.IfMatch = aws.String(`"other"`) })
	harness.WantS3Error(t, "If-Match with another ETag", err, "PreconditionFailed", 412)
	_, _, err = get(t, cl, "data", "x/small.txt", func(in *s3.GetObjectInput) { in.IfModifiedSince = aws.Time(lm.Add(time.Hour)) })
	harness.WantS3Error(t, "If-Modified-Since later", err, "", 304)
	_, _, err = get(t, cl, "data", "x/small.txt", func(in *s3.GetObjectInput) { in.IfUnmodifiedSince = aws.Time(lm.Add(-time.Hour)) })
	harness.WantS3Error(t, "If-Unmodified-Since earlier", err, "PreconditionFailed", 412)
	if got, _, err := get(t, cl, "data", "x/small.txt", func(in *s3.GetObjectInput) {
		in.IfMatch, in.IfModifiedSince = aws.String(etag), aws.Time(lm.Add(-time.Hour))
	}); err != nil || !bytes.Equal(got, small) {
		t.Errorf("conditions that hold: %v", err)
	}

	// Missing things.
	_, _, err = get(t, cl, "data", "x/nope")
	harness.WantS3Error(t, "missing key", err, "NoSuchKey", 404)
	_, _, err = get(t, cl, "data", "x")
	harness.WantS3Error(t, "a directory", err, "NoSuchKey", 404)
	_, _, err = get(t, cl, "data", "a//b")
	harness.WantS3Error(t, "a key that cannot be a path", err, "NoSuchKey", 404)
	_, _, err = get(t, cl, "nobucket", "x")
	harness.WantS3Error(t, "missing bucket", err, "NoSuchBucket", 404)
	_, err = cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("data"), Key: aws.String("x/nope")})
	harness.WantS3Error(t, "HEAD of a missing key", err, "", 404)
	_, err = cl.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("nobucket")})
	harness.WantS3Error(t, "HEAD of a missing bucket", err, "", 404)
	if _, err := cl.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("data")}); err != nil {
		t.Errorf("HeadBucket: %v", err)
	}
	loc, err := cl.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String("data")})
	if err != nil || loc.LocationConstraint != "" {
		t.Errorf("GetBucketLocation: %+v %v", loc, err)
	}

	// Content-MD5 mismatch: BadDigest, and nothing is left behind.
	sum := md5.Sum(small)
	resp, body := e2.raw(t, http.MethodPut, "/data/x/bad.bin", "", big[:1<<20], http.Header{"Content-Md5": {base64.StdEncoding.EncodeToString(sum[:])}})
	if resp.StatusCode != 400 || errorCode(t, body) != "BadDigest" {
		t.Errorf("Content-MD5 mismatch: %d %s", resp.StatusCode, body)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "x/bad.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the object with a bad digest exists: %v", err)
	}
	ents, _ := os.ReadDir(filepath.Join(e.dir, "x"))
	if len(ents) != 2 {
		t.Errorf("x holds %d entries, want 2 (no temp files left)", len(ents))
	}

	// A directory key.
	put(t, cl, "data", "newdir/", nil)
	if fi, err := os.Stat(filepath.Join(e.dir, "newdir")); err != nil || !fi.IsDir() {
		t.Errorf("PUT newdir/ did not make a directory: %v", err)
	}
	if got, _, err := get(t, cl, "data", "newdir/"); err != nil || len(got) != 0 {
		t.Errorf("GET newdir/: %v", err)
	}
	_, err = cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("x"), Body: bytes.NewReader(small)})
	harness.WantS3Error(t, "PUT over a directory", err, "XStrataPathConflict", 409)

	// Copies.
	cp, err := cl.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("data"), Key: aws.String("y/copy.bin"), CopySource: aws.String("data/x/big.bin")})
	if err != nil || cp.CopyObjectResult == nil || cp.CopyObjectResult.ETag == nil {
		t.Fatalf("CopyObject: %v", err)
	}
	if got, _, err := get(t, cl, "data", "y/copy.bin"); err != nil || !bytes.Equal(got, big) {
		t.Errorf("copy differs: %v", err)
	}
	_, err = cl.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("data"), Key: aws.String("x/small.txt"), CopySource: aws.String("data/x/small.txt")})
	harness.WantS3Error(t, "copy onto itself", err, "InvalidRequest", 400)
	if _, err := cl.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("data"), Key: aws.String("x/small.txt"), CopySource: aws.String("data/x/small.txt"),
		MetadataDirective: types.MetadataDirectiveReplace}); err != nil {
		t.Errorf("copy onto itself with REPLACE: %v", err)
	}
	_, err = cl.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("data"), Key: aws.String("y/c2"), CopySource: aws.String("data/x/small.txt"), CopySourceIfMatch: aws.String(`"nope"`)})
	harness.WantS3Error(t, "copy-source-if-match", err, "PreconditionFailed", 412)
	_, err = cl.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("data"), Key: aws.String("y/c2"), CopySource: aws.String("data/x/none")})
	harness.WantS3Error(t, "copy of a missing key", err, "NoSuchKey", 404)

	// Deletes.
	if _, err := cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("data"), Key: aws.String("y/copy.bin")}); err != nil {
		t.Errorf("DeleteObject: %v", err)
	}
	if _, err := cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("data"), Key: aws.String("y/never")}); err != nil {
		t.Errorf("DeleteObject of a missing key: %v", err)
	}
	if _, err := cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("data"), Key: aws.String("x")}); err != nil {
		t.Errorf("DeleteObject of a directory's name: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "x/small.txt")); err != nil {
		t.Errorf("deleting the key x touched the directory x: %v", err)
	}
	for i := range 5 {
		put(t, cl, "data", "del/"+string(rune('a'+i)), small)
	}
	dout, err := cl.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("data"), Delete: &types.Delete{Objects: []types.ObjectIdentifier{
		{Key: aws.String("del/a")}, {Key: aws.String("del/b")}, {Key: aws.String("del/zzz")}, {Key: aws.String("del/c"), VersionId: aws.String("v1")},
	}}})
	if err != nil || len(dout.Deleted) != 3 || len(dout.Errors) != 1 || aws.ToString(dout.Errors[0].Code) != "NotImplemented" {
		t.Fatalf("DeleteObjects: %+v %v", dout, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.dir, "del")); len(ents) != 3 {
		t.Errorf("del holds %d files, want 3", len(ents))
	}

	// Unsupported and refused operations.
	resp, body = e2.raw(t, http.MethodGet, "/data/x/small.txt", "tagging", nil, nil)
	if resp.StatusCode != 501 || errorCode(t, body) != "NotImplemented" {
		t.Errorf("GetObjectTagging: %d %s", resp.StatusCode, body)
	}
	resp, body = e2.raw(t, http.MethodPut, "/data", "", nil, nil)
	if resp.StatusCode != 409 || errorCode(t, body) != "BucketAlreadyOwnedByYou" {
		t.Errorf("CreateBucket of an existing bucket: %d %s", resp.StatusCode, body)
	}
	resp, body = e2.raw(t, http.MethodPost, "/", "", nil, nil)
	if resp.StatusCode != 405 || errorCode(t, body) != "MethodNotAllowed" {
		t.Errorf("POST /: %d %s", resp.StatusCode, body)
	}
	resp, body = e2.raw(t, http.MethodGet, "/data/"+strings.Repeat("k", 1025), "", nil, nil)
	if resp.StatusCode != 400 || errorCode(t, body) != "KeyTooLongError" {
		t.Errorf("long key: %d %s", resp.StatusCode, body)
	}

	// Metrics count requests by operation and status, and bytes both ways.
	if n := testutil.ToFloat64(srv2.metrics.requests.WithLabelValues("GetObject", "206")); n < 5 {
		t.Errorf("ranged GetObject requests counted: %v", n)
	}
	if n := testutil.ToFloat64(srv2.metrics.bytesOut.WithLabelValues("GetObject")); n < float64(len(big)) {
		t.Errorf("GetObject bytes out: %v", n)
	}
	if n := testutil.ToFloat64(srv2.metrics.bytesIn.WithLabelValues("PutObject")); n < float64(len(big)) {
		t.Errorf("PutObject bytes in: %v", n)
	}
	if n, err := testutil.GatherAndCount(reg, "strata_s3_requests_total"); err != nil || n == 0 {
		t.Errorf("gathered %d series: %v", n, err)
	}
}

func TestMultipartUpload(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	cl := e.sdk(t)
	ctx := context.Background()
	const part = 5 << 20
	data := randData(t, 2*part+1234)
	create := func(key string) string {
		out, err := cl.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.UploadId)
	}
	upload := func(key, id string, n int32, b []byte) string {
		out, err := cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("data"), Key: aws.String(key), UploadId: aws.String(id),
			PartNumber: aws.Int32(n), Body: bytes.NewReader(b)})
		if err != nil {
			t.Fatalf("upload part %d: %v", n, err)
		}
		return aws.ToString(out.ETag)
	}
	complete := func(key, id string, parts ...types.CompletedPart) (*s3.CompleteMultipartUploadOutput, error) {
		return cl.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String(key), UploadId: aws.String(id),
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	}
	cp := func(n int32, etag string) types.CompletedPart {
		return types.CompletedPart{PartNumber: aws.Int32(n), ETag: aws.String(etag)}
	}

	id := create("mp/obj.bin")
	// Parts arrive out of order and one is uploaded twice.
	e3 := upload("mp/obj.bin", id, 3, data[2*part:])
	upload("mp/obj.bin", id, 1, data[:10])
	e1 := upload("mp/obj.bin", id, 1, data[:part])
	e2 := upload("mp/obj.bin", id, 2, data[part:2*part])
	lp, err := cl.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("data"), Key: aws.String("mp/obj.bin"), UploadId: aws.String(id)})
	if err != nil || len(lp.Parts) != 3 || aws.ToInt64(lp.Parts[0].Size) != part || aws.ToString(lp.Parts[0].ETag) != e1 {
		t.Fatalf("ListParts: %+v %v", lp, err)
	}
	lu, err := cl.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("data")})
	if err != nil || len(lu.Uploads) != 1 || aws.ToString(lu.Uploads[0].UploadId) != id {
		t.Fatalf("ListMultipartUploads: %+v %v", lu, err)
	}
	_, err = complete("mp/obj.bin", id, cp(2, e2), cp(1, e1), cp(3, e3))
	harness.WantS3Error(t, "parts out of order", err, "InvalidPartOrder", 400)
	_, err = complete("mp/obj.bin", id, cp(1, e1), cp(2, e3), cp(3, e3))
	harness.WantS3Error(t, "wrong part ETag", err, "InvalidPart", 400)
	_, err = complete("mp/obj.bin", id, cp(1, e1), cp(2, e2), cp(4, e3))
	harness.WantS3Error(t, "missing part", err, "InvalidPart", 400)
	if _, err := os.Stat(filepath.Join(e.dir, "mp/obj.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed completion left an object: %v", err)
	}
	res, err := complete("mp/obj.bin", id, cp(1, e1), cp(2, e2), cp(3, e3))
	if err != nil {
		t.Fatal(err)
	}
	got, gout, err := get(t, cl, "data", "mp/obj.bin")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("completed object differs: %v", err)
	}
	if aws.ToString(res.ETag) != aws.ToString(gout.ETag) {
		t.Errorf("CompleteMultipartUpload answered the ETag %s, GetObject shows %s: they must agree", aws.ToString(res.ETag), aws.ToString(gout.ETag))
	}
	// A retried completion answers as the completion did (S3 does).
	again, err := complete("mp/obj.bin", id, cp(1, e1))
	if err != nil || aws.ToString(again.ETag) != aws.ToString(res.ETag) {
		t.Errorf("completing again: %+v, %v; want the first answer", again, err)
	}
	_, err = cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("data"), Key: aws.String("mp/obj.bin"), UploadId: aws.String(id),
		PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("late"))})
	harness.WantS3Error(t, "a part of a completed upload", err, "NoSuchUpload", 404)
	if ents, _ := os.ReadDir(filepath.Join(e.srv.mp.dir, id)); len(ents) != 1 || ents[0].Name() != "completed.json" {
		t.Errorf("staging dir of a completed upload not cleaned: %v", ents)
	}
	if n := e.srv.mp.sweep(time.Now().Add(48 * time.Hour)); n != 1 {
		t.Errorf("sweep removed %d uploads, want the completed one", n)
	}
	_, err = complete("mp/obj.bin", id, cp(1, e1))
	harness.WantS3Error(t, "completing after the upload expired", err, "NoSuchUpload", 404)

	// Too small parts.
	id = create("mp/small")
	s1 := upload("mp/small", id, 1, data[:1000])
	s2 := upload("mp/small", id, 2, data[:1000])
	_, err = complete("mp/small", id, cp(1, s1), cp(2, s2))
	harness.WantS3Error(t, "small part", err, "EntityTooSmall", 400)
	if _, err := cl.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String("mp/small"), UploadId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	_, err = cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("data"), Key: aws.String("mp/small"), UploadId: aws.String(id), PartNumber: aws.Int32(1), Body: bytes.NewReader(data[:10])})
	harness.WantS3Error(t, "part of an aborted upload", err, "NoSuchUpload", 404)
	_, err = cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("data"), Key: aws.String("mp/small"), UploadId: aws.String("../../etc"), PartNumber: aws.Int32(1), Body: bytes.NewReader(data[:10])})
	harness.WantS3Error(t, "a forged upload id", err, "NoSuchUpload", 404)

	// UploadPartCopy from a range of an object, and a completion slow enough
	// for the keepalive (whitespace, then the result in the 200 body).
	e.srv.keepaliveAfter, e.srv.keepaliveEvery = time.Millisecond, time.Millisecond
	id = create("mp/copied")
	pc, err := cl.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("data"), Key: aws.String("mp/copied"), UploadId: aws.String(id),
		PartNumber: aws.Int32(1), CopySource: aws.String("data/mp/obj.bin"), CopySourceRange: aws.String("bytes=0-5242879")})
	if err != nil {
		t.Fatal(err)
	}
	l2 := upload("mp/copied", id, 2, data[:7])
	if _, err := complete("mp/copied", id, cp(1, aws.ToString(pc.CopyPartResult.ETag)), cp(2, l2)); err != nil {
		t.Fatal(err)
	}
	if got, _, err := get(t, cl, "data", "mp/copied"); err != nil || !bytes.Equal(got, append(bytes.Clone(data[:part]), data[:7]...)) {
		t.Errorf("UploadPartCopy result differs: %v", err)
	}
	// A completion that fails after its response began: the error is in the
	// 200 body, and the SDK reports it.
	id = create("mp")
	p1 := upload("mp", id, 1, data[:7])
	_, err = complete("mp", id, cp(1, p1))
	if c, _ := harness.S3ErrorCode(err); c != "XStrataPathConflict" {
		t.Errorf("completion onto a directory: %v", err)
	}
}

// TestVirtualHostAndTLS addresses the bucket in the host name, and sends
// aws-chunked bodies with unsigned CRC32 trailers, which aws-sdk-go-v2 does
// over TLS.
func TestVirtualHostAndTLS(t *testing.T) {
	t.Parallel()
	e := startEnv(t, func(cfg *conf.Config) { cfg.S3.Domains = []string{"s3.strata.test"} })
	var mu sync.Mutex
	modes := map[string]bool{}
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		modes[r.Header.Get("X-Amz-Content-Sha256")] = true
		mu.Unlock()
		e.srv.ServeHTTP(w, r)
	}))
	hs.StartTLS()
	t.Cleanup(hs.Close)
	_, port, _ := net.SplitHostPort(hs.Listener.Addr().String())
	tr := hs.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, hs.Listener.Addr().String())
	}
	cl := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String("https://s3.strata.test:" + port),
		Credentials: e.sdk(t).Options().Credentials, HTTPClient: &http.Client{Transport: tr},
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported})
	data := randData(t, 300<<10)
	if _, err := cl.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("vh/obj"),
		Body: io.NopCloser(bytes.NewReader(data)), ContentLength: aws.Int64(int64(len(data)))}); err != nil {
		t.Fatal(err)
	}
	if got, _, err := get(t, cl, "data", "vh/obj"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("virtual-host GET: %v", err)
	}
	out, err := cl.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("data"), Prefix: aws.String("vh/")})
	if err != nil || len(out.Contents) != 1 {
		t.Fatalf("virtual-host list: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !modes[streamingUnsignedTrail] {
		t.Errorf("the SDK sent no %s body (modes %v)", streamingUnsignedTrail, modes)
	}
}

func TestReadOnlyMountAndRootMount(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	ro := t.TempDir()
	writeFile(t, filepath.Join(ro, "f"), []byte("read only"))
	e.c.MustMount(t, "/ro/inner", "file://"+ro, nil, func(m *namespace.Mount) { m.ReadOnly = true })
	cl := e.sdk(t)
	if got, _, err := get(t, cl, "ro", "inner/f"); err != nil || string(got) != "read only" {
		t.Fatalf("read through a virtual bucket: %v", err)
	}
	_, err := cl.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("ro"), Key: aws.String("inner/g"), Body: bytes.NewReader([]byte("x"))})
	harness.WantS3Error(t, "write to a read-only mount", err, "AccessDenied", 403)
	_, err = cl.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("ro"), Key: aws.String("g"), Body: bytes.NewReader([]byte("x"))})
	harness.WantS3Error(t, "write outside any mount", err, "NotImplemented", 501)
	lb, err := cl.ListBuckets(context.Background(), &s3.ListBucketsInput{})
	if err != nil || len(lb.Buckets) != 2 || aws.ToString(lb.Buckets[0].Name) != "data" || aws.ToString(lb.Buckets[1].Name) != "ro" {
		t.Errorf("ListBuckets: %+v %v", lb, err)
	}
}

// TestStreamingSignedPut sends STREAMING-AWS4-HMAC-SHA256-PAYLOAD bodies: the
// headers signed by aws-sdk-go-v2's signer, the chunks chained from its
// signature. A tampered chunk is refused and leaves nothing behind.
func TestStreamingSignedPut(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	data := randData(t, 200<<10)
	send := func(key string, tamper bool) (*http.Response, []byte) {
		now := time.Now().UTC()
		r := newReq(t, http.MethodPut, e.url, "/data/"+key, "", nil)
		r.Header.Set("Content-Encoding", "aws-chunked")
		r.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(data)))
		r.Header.Set("X-Amz-Content-Sha256", streamingSigned)
		if err := s3Signer().SignHTTP(context.Background(), creds(testKeyID, testKeySecret), r, streamingSigned, "s3", "us-east-1", now); err != nil {
			t.Fatal(err)
		}
		auth, _ := parseAuthorization(r.Header.Get("Authorization"))
		id := identity{key: signingKey(testKeySecret, auth.Date, "us-east-1", "s3"), amzDate: now.Format(amzDateFormat), scope: auth.Scope(), seed: auth.Signature}
		body := signedChunks(id, data, 64<<10)
		if tamper {
			body[len(body)/2] ^= 1
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		resp, err := e.http.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	if resp, body := send("s/good", false); resp.StatusCode != 200 {
		t.Fatalf("signed streaming PUT: %d %s", resp.StatusCode, body)
	}
	if got, err := os.ReadFile(filepath.Join(e.dir, "s/good")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("stored object differs: %v", err)
	}
	resp, body := send("s/bad", true)
	if resp.StatusCode != 403 || errorCode(t, body) != "SignatureDoesNotMatch" {
		t.Errorf("tampered chunk: %d %s", resp.StatusCode, body)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "s/bad")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a body with a bad chunk signature was stored: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	cfg := conf.Default()
	cfg.S3.Listen = "nope"
	cfg.S3.AccessKeys = []string{"ok-key:secret-ok-1", "no-colon", "ok-key:secret-ok-2", "x:short"}
	cfg.S3.Anonymous = "sometimes"
	cfg.S3.Domains = []string{"http://bad/"}
	cfg.S3.MinPartSize = 10 << 20
	cfg.S3.MaxPartSize = 1 << 20
	cfg.S3.ReadBufferBudget = 1
	err := cfg.Validate()
	if err == nil {
		t.Fatal("a bad s3 section validated")
	}
	for _, field := range []string{"s3.listen", "s3.access_keys[1]", "s3.access_keys[2]", "s3.access_keys[3]", "s3.anonymous", "s3.domains[0]", "s3.max_part_size", "s3.read_buffer_budget"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("no complaint about %s in: %v", field, err)
		}
	}
	if strings.Contains(err.Error(), "secret-ok") {
		t.Errorf("a secret leaked into the error: %v", err)
	}
	if err := conf.Default().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	if _, err := New(context.Background(), cfg, Deps{}); !errors.Is(err, conf.ErrInvalid) {
		t.Errorf("New with a bad config: %v", err)
	}
}
