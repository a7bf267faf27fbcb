package s3api

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stratafs/strata/tests/harness"
)

// TestConditionalPut: If-None-Match: * creates only; If-Match replaces only
// the version named, also when a writer that bypasses Strata changed the
// file; the refused writes leave the object as it was.
func TestConditionalPut(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	cl := e.sdk(t)
	ctx := context.Background()
	putIf := func(key, body string, tune func(*s3.PutObjectInput)) (*s3.PutObjectOutput, error) {
		in := &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String(key), Body: strings.NewReader(body)}
		tune(in)
		return cl.PutObject(ctx, in)
	}
	content := func(key string) string {
		b, err := os.ReadFile(filepath.Join(e.dir, key))
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return string(b)
	}
	noneMatch := func(in *s3.PutObjectInput) { in.IfNoneMatch = aws.String("*") }
	ifMatch := func(etag string) func(*s3.PutObjectInput) {
		return func(in *s3.PutObjectInput) { in.IfMatch = aws.String(etag) }
	}

	v1, err := putIf("lock/state", "one", noneMatch)
	if err != nil {
		t.Fatalf("create-only PUT of a new key: %v", err)
	}
	_, err = putIf("lock/state", "two", noneMatch)
	harness.WantS3Error(t, "create-only PUT of an existing key", err, "PreconditionFailed", 412)
	if got := content("lock/state"); got != "one" {
		t.Errorf("after a refused create-only PUT the file holds %q", got)
	}

	v2, err := putIf("lock/state", "three", ifMatch(aws.ToString(v1.ETag)))
	if err != nil {
		t.Fatalf("If-Match PUT with the current ETag: %v", err)
	}
	if aws.ToString(v2.ETag) == aws.ToString(v1.ETag) {
		t.Errorf("a new version kept the ETag %s", aws.ToString(v1.ETag))
	}
	_, err = putIf("lock/state", "four", ifMatch(aws.ToString(v1.ETag)))
	harness.WantS3Error(t, "If-Match PUT with an old ETag", err, "PreconditionFailed", 412)

	// A writer that goes around Strata: the ETag the client holds is stale.
	time.Sleep(10 * time.Millisecond)
	writeFile(t, filepath.Join(e.dir, "lock/state"), []byte("outside"))
	_, err = putIf("lock/state", "five", ifMatch(aws.ToString(v2.ETag)))
	harness.WantS3Error(t, "If-Match PUT after a write that bypassed Strata", err, "PreconditionFailed", 412)
	if got := content("lock/state"); got != "outside" {
		t.Errorf("after a refused If-Match PUT the file holds %q", got)
	}
	head, err := cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("data"), Key: aws.String("lock/state")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := putIf("lock/state", "six", ifMatch(aws.ToString(head.ETag))); err != nil {
		t.Errorf("If-Match PUT with the ETag of a HEAD: %v", err)
	}
	if got := content("lock/state"); got != "six" {
		t.Errorf("after If-Match PUT the file holds %q", got)
	}

	_, err = putIf("lock/none", "x", ifMatch(aws.ToString(head.ETag)))
	harness.WantS3Error(t, "If-Match PUT of a missing key", err, "NoSuchKey", 404)
	if _, err := os.Stat(filepath.Join(e.dir, "lock/none")); err == nil {
		t.Errorf("a refused If-Match PUT created the key")
	}
	resp, body := e.raw(t, http.MethodPut, "/data/lock/state", "", []byte("x"), http.Header{"If-None-Match": {`"abc"`}})
	if resp.StatusCode != 501 || errorCode(t, body) != "NotImplemented" {
		t.Errorf("If-None-Match with an ETag on a PUT: %d %s", resp.StatusCode, body)
	}

	// Concurrent create-only PUTs of one key: one wins.
	wins := make(chan error, 8)
	for i := range 8 {
		go func() {
			_, err := putIf("lock/race", fmt.Sprint("writer ", i), noneMatch)
			wins <- err
		}()
	}
	ok := 0
	for range 8 {
		if err := <-wins; err == nil {
			ok++
		} else {
			harness.WantS3Error(t, "a losing create-only PUT", err, "PreconditionFailed", 412)
		}
	}
	if ok != 1 {
		t.Errorf("%d concurrent create-only PUTs succeeded, want 1", ok)
	}

	// A directory marker.
	if _, err := putIf("lock/dir/", "", noneMatch); err != nil {
		t.Errorf("create-only PUT of a new directory: %v", err)
	}
	_, err = putIf("lock/dir/", "", noneMatch)
	harness.WantS3Error(t, "create-only PUT of an existing directory", err, "PreconditionFailed", 412)
}

// TestConditionalCompleteAndCopy: If-None-Match and If-Match on
// CompleteMultipartUpload and on the destination of CopyObject.
func TestConditionalCompleteAndCopy(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	cl := e.sdk(t)
	ctx := context.Background()
	data := randData(t, 6<<20)
	mpu := func(key string) (string, []types.CompletedPart) {
		cr, err := cl.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		var parts []types.CompletedPart
		for i, chunk := range [][]byte{data[:5<<20], data[5<<20:]} {
			up, err := cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("data"), Key: aws.String(key), UploadId: cr.UploadId,
				PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(chunk)})
			if err != nil {
				t.Fatal(err)
			}
			parts = append(parts, types.CompletedPart{ETag: up.ETag, PartNumber: aws.Int32(int32(i + 1))})
		}
		return aws.ToString(cr.UploadId), parts
	}
	complete := func(key, id string, parts []types.CompletedPart, tune func(*s3.CompleteMultipartUploadInput)) (*s3.CompleteMultipartUploadOutput, error) {
		in := &s3.CompleteMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String(key), UploadId: aws.String(id),
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}
		tune(in)
		return cl.CompleteMultipartUpload(ctx, in)
	}
	old := put(t, cl, "data", "mp/taken", []byte("old"))

	id, parts := mpu("mp/taken")
	_, err := complete("mp/taken", id, parts, func(in *s3.CompleteMultipartUploadInput) { in.IfNoneMatch = aws.String("*") })
	harness.WantS3Error(t, "create-only completion over an existing key", err, "PreconditionFailed", 412)
	if b, _ := os.ReadFile(filepath.Join(e.dir, "mp/taken")); string(b) != "old" {
		t.Errorf("a refused completion replaced the object (%d bytes)", len(b))
	}
	_, err = complete("mp/taken", id, parts, func(in *s3.CompleteMultipartUploadInput) { in.IfMatch = aws.String(`"0123"`) })
	harness.WantS3Error(t, "If-Match completion with a wrong ETag", err, "PreconditionFailed", 412)
	// The upload is still there: completed with the right ETag.
	res, err := complete("mp/taken", id, parts, func(in *s3.CompleteMultipartUploadInput) { in.IfMatch = old.ETag })
	if err != nil {
		t.Fatalf("If-Match completion with the current ETag: %v", err)
	}
	got, gout, err := get(t, cl, "data", "mp/taken")
	if err != nil || !bytes.Equal(got, data) || aws.ToString(gout.ETag) != aws.ToString(res.ETag) {
		t.Errorf("completed object: %d bytes, ETag %s (completion said %s), %v", len(got), aws.ToString(gout.ETag), aws.ToString(res.ETag), err)
	}
	id, parts = mpu("mp/new")
	if _, err := complete("mp/new", id, parts, func(in *s3.CompleteMultipartUploadInput) { in.IfNoneMatch = aws.String("*") }); err != nil {
		t.Errorf("create-only completion of a new key: %v", err)
	}

	// CopyObject: the conditions apply to the destination.
	put(t, cl, "data", "cp/src", []byte("source"))
	dst := put(t, cl, "data", "cp/dst", []byte("dest"))
	_, err = cl.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("data"), Key: aws.String("cp/dst"), CopySource: aws.String("data/cp/src"),
		IfNoneMatch: aws.String("*")})
	harness.WantS3Error(t, "create-only copy over an existing key", err, "PreconditionFailed", 412)
	_, err = cl.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("data"), Key: aws.String("cp/dst"), CopySource: aws.String("data/cp/src"),
		IfMatch: aws.String(`"nope"`)})
	harness.WantS3Error(t, "If-Match copy with a wrong ETag", err, "PreconditionFailed", 412)
	if b, _ := os.ReadFile(filepath.Join(e.dir, "cp/dst")); string(b) != "dest" {
		t.Errorf("a refused copy replaced the destination: %q", b)
	}
	cout, err := cl.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("data"), Key: aws.String("cp/dst"), CopySource: aws.String("data/cp/src"),
		IfMatch: dst.ETag})
	if err != nil {
		t.Fatalf("If-Match copy with the destination's ETag: %v", err)
	}
	head, err := cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("data"), Key: aws.String("cp/dst")})
	if err != nil || aws.ToString(head.ETag) != aws.ToString(cout.CopyObjectResult.ETag) {
		t.Errorf("copy answered the ETag %s, HEAD shows %+v, %v", aws.ToString(cout.CopyObjectResult.ETag), head, err)
	}
}

// TestWriteETagIsServedETag: the ETag a write answers is the one HEAD and
// GET serve, and a GET with If-Match of it succeeds.
func TestWriteETagIsServedETag(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	cl := e.sdk(t)
	ctx := context.Background()
	out := put(t, cl, "data", "etag/obj", randData(t, 3<<20))
	head, err := cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("data"), Key: aws.String("etag/obj")})
	if err != nil || aws.ToString(head.ETag) != aws.ToString(out.ETag) {
		t.Fatalf("PUT answered %s, HEAD shows %+v, %v", aws.ToString(out.ETag), head.ETag, err)
	}
	if _, _, err := get(t, cl, "data", "etag/obj", func(in *s3.GetObjectInput) { in.IfMatch = out.ETag }); err != nil {
		t.Errorf("GET with If-Match of the PUT's ETag: %v", err)
	}
	_, _, err = get(t, cl, "data", "etag/obj", func(in *s3.GetObjectInput) { in.IfNoneMatch = out.ETag })
	harness.WantS3Error(t, "GET with If-None-Match of the PUT's ETag", err, "", 304)
}

// expectContinue sends the head of a PUT with Expect: 100-continue and a
// body it never sends, and returns the first status line the server
// answers (a server that waits for the body times out: "").
func expectContinue(t *testing.T, e *env, key string, hdr http.Header, sign bool) string {
	t.Helper()
	r := newReq(t, http.MethodPut, e.url, "/data/"+key, "", nil)
	r.ContentLength = 1 << 20
	for k, v := range hdr {
		r.Header[k] = v
	}
	r.Header.Set("Expect", "100-continue")
	if sign {
		r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		if err := s3Signer().SignHTTP(context.Background(), creds(testKeyID, testKeySecret), r, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", r.URL.RequestURI(), r.URL.Host, r.ContentLength)
	for k, vs := range r.Header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	if _, err := conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSpace(line)
}

// TestExpectContinue: a PUT that waits for 100 Continue gets its refusal
// (bad signature, no signature, a failed condition) before sending its body,
// and a good one gets 100 Continue.
func TestExpectContinue(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	put(t, e.sdk(t), "data", "exists", []byte("x"))
	cases := []struct {
		name string
		hdr  http.Header
		sign bool
		want string
	}{
		{"unsigned", nil, false, "HTTP/1.1 403 Forbidden"},
		{"bad signature", http.Header{"Authorization": {"AWS4-HMAC-SHA256 Credential=" + testKeyID + "/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("0", 64)},
			"X-Amz-Date": {time.Now().UTC().Format("20060102T150405Z")}, "X-Amz-Content-Sha256": {"UNSIGNED-PAYLOAD"}}, false, "HTTP/1.1 4"},
		{"create-only over an existing key", http.Header{"If-None-Match": {"*"}}, true, "HTTP/1.1 412 Precondition Failed"},
		{"If-Match of a missing key", http.Header{"If-Match": {`"abc"`}}, true, "HTTP/1.1 404 Not Found"},
		{"sound", nil, true, "HTTP/1.1 100 Continue"},
	}
	for _, c := range cases {
		key := "exists"
		if c.name == "If-Match of a missing key" || c.name == "sound" {
			key = "missing"
		}
		if got := expectContinue(t, e, key, c.hdr, c.sign); !strings.HasPrefix(got, c.want) {
			t.Errorf("%s: the server answered %q before the body, want %q", c.name, got, c.want)
		}
	}
}
