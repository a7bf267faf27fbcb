package s3api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stratafs/strata/tests/harness"
)

// TestListBucketsPages: max-buckets, continuation-token and prefix.
func TestListBucketsPages(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	for _, b := range []string{"/b1", "/b2", "/c1"} {
		e.c.MustMount(t, b, "file://"+t.TempDir(), nil)
	}
	cl := e.sdk(t)
	ctx := context.Background()
	var names []string
	var pages int
	p := s3.NewListBucketsPaginator(cl, &s3.ListBucketsInput{MaxBuckets: aws.Int32(2)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, b := range out.Buckets {
			names = append(names, aws.ToString(b.Name))
		}
	}
	if strings.Join(names, ",") != "b1,b2,c1,data" || pages != 2 {
		t.Errorf("paged buckets %v in %d pages", names, pages)
	}
	out, err := cl.ListBuckets(ctx, &s3.ListBucketsInput{Prefix: aws.String("b")})
	if err != nil || len(out.Buckets) != 2 || aws.ToString(out.Prefix) != "b" {
		t.Errorf("ListBuckets with a prefix: %+v, %v", out, err)
	}
	resp, body := e.raw(t, http.MethodGet, "/", "max-buckets=0", nil, nil)
	if resp.StatusCode != 400 || errorCode(t, body) != "InvalidArgument" {
		t.Errorf("max-buckets=0: %d %s", resp.StatusCode, body)
	}
}

// TestListEncodingAndTokens: encoding-type=url leaves "/" alone (as S3 and
// MinIO do); an empty continuation-token is no token.
func TestListEncodingAndTokens(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	cl := e.sdk(t)
	put(t, cl, "data", "enc/a b+c", []byte("x"))
	put(t, cl, "data", "enc/sub/d", []byte("y"))

	resp, body := e.raw(t, http.MethodGet, "/data", "list-type=2&prefix=enc%2F&encoding-type=url", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<Key>enc/a+b%2Bc</Key>") || !strings.Contains(string(body), "<Prefix>enc/</Prefix>") {
		t.Errorf("V2 with encoding-type=url: %d %s", resp.StatusCode, body)
	}
	resp, body = e.raw(t, http.MethodGet, "/data", "prefix=enc%2F&delimiter=%2F&encoding-type=url", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<Prefix>enc/</Prefix>") || !strings.Contains(string(body), "<Prefix>enc/sub/</Prefix>") {
		t.Errorf("V1 with encoding-type=url: %d %s", resp.StatusCode, body)
	}
	resp, body = e.raw(t, http.MethodGet, "/data", "list-type=2&continuation-token=", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<Key>enc/a b+c</Key>") {
		t.Errorf("an empty continuation-token: %d %s", resp.StatusCode, body)
	}
	// The SDK decodes what it asked to be encoded.
	out, err := cl.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("data"), Prefix: aws.String("enc/"), EncodingType: "url"})
	if err != nil || len(out.Contents) != 2 || aws.ToString(out.Contents[0].Key) != "enc/a+b%2Bc" {
		t.Errorf("SDK V2 with encoding-type=url: %+v, %v", out, err)
	}
}

// TestEmptyContentMD5: an empty Content-MD5 header is InvalidDigest, as in
// S3.
func TestEmptyContentMD5(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	resp, body := e.raw(t, http.MethodPut, "/data/md5", "", []byte("x"), http.Header{"Content-Md5": {""}})
	if resp.StatusCode != 400 || errorCode(t, body) != "InvalidDigest" {
		t.Errorf("empty Content-MD5: %d %s", resp.StatusCode, body)
	}
}

// TestFullObjectChecksumOnCompletion: the x-amz-checksum-<alg> of a
// CompleteMultipartUpload (FULL_OBJECT, as the SDKs send CRC checksums of
// multipart uploads) is the checksum of the object the parts make: checked
// against them, the object refused (BadDigest, nothing published) when it
// differs, and answered when it holds.
func TestFullObjectChecksumOnCompletion(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	cl := e.sdk(t)
	ctx := context.Background()
	data := randData(t, 7<<20)
	full := crc32.ChecksumIEEE(data)
	good := base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, full))
	bad := base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, full+1))
	cr, err := cl.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String("ck/obj"),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32, ChecksumType: types.ChecksumTypeFullObject})
	if err != nil {
		t.Fatal(err)
	}
	var parts []types.CompletedPart
	for i, chunk := range [][]byte{data[:5<<20], data[5<<20:]} {
		up, err := cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("data"), Key: aws.String("ck/obj"), UploadId: cr.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(chunk), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, types.CompletedPart{ETag: up.ETag, PartNumber: aws.Int32(int32(i + 1)), ChecksumCRC32: up.ChecksumCRC32})
	}
	complete := func(sum string) (*s3.CompleteMultipartUploadOutput, error) {
		return cl.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String("ck/obj"),
			UploadId: cr.UploadId, ChecksumCRC32: aws.String(sum), ChecksumType: types.ChecksumTypeFullObject,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	}
	_, err = complete(bad)
	harness.WantS3Error(t, "a wrong full-object CRC32", err, "BadDigest", 400)
	if _, err := os.Stat(filepath.Join(e.dir, "ck/obj")); err == nil {
		t.Errorf("an object whose checksum failed was published")
	}
	out, err := complete(good)
	if err != nil {
		t.Fatalf("the right full-object CRC32: %v", err)
	}
	if aws.ToString(out.ChecksumCRC32) != good || out.ChecksumType != types.ChecksumTypeFullObject {
		t.Errorf("completion answered the checksum %q (%s), want %q", aws.ToString(out.ChecksumCRC32), out.ChecksumType, good)
	}
	if got, _, err := get(t, cl, "data", "ck/obj"); err != nil || !bytes.Equal(got, data) {
		t.Errorf("completed object: %d bytes, %v", len(got), err)
	}
}
