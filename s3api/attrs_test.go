package s3api

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stratafs/strata/tests/harness"
	"golang.org/x/sys/unix"
)

// TestObjectMetadata: x-amz-meta-* and the object headers are stored with
// the object (an extended attribute of the file on a local mount) by
// PutObject, CreateMultipartUpload and CopyObject, and returned by HEAD and
// GET.
func TestObjectMetadata(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	cl := e.sdk(t)
	ctx := context.Background()
	exp := time.Date(2033, 12, 1, 16, 0, 0, 0, time.UTC)
	meta := map[string]string{"color": "blue", "content-sha": "abc=="}
	_, err := cl.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String("data"), Key: aws.String("m/obj.json"), Body: strings.NewReader(`{"a":1}`),
		ContentType: aws.String("application/x-custom"), ContentEncoding: aws.String("identity"),
		ContentDisposition: aws.String(`attachment; filename="x.json"`), ContentLanguage: aws.String("fr"),
		CacheControl: aws.String("max-age=60"), Expires: aws.Time(exp), Metadata: meta,
	})
	if err != nil {
		t.Fatal(err)
	}
	check := func(what, key string, wantType string, wantMeta map[string]string, full bool) {
		t.Helper()
		head, err := cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("data"), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("%s: HEAD: %v", what, err)
		}
		_, gout, err := get(t, cl, "data", key)
		if err != nil {
			t.Fatalf("%s: GET: %v", what, err)
		}
		for _, o := range []struct {
			op                 string
			ct, ce, cd, cl, cc *string
			meta               map[string]string
			expires            *string
		}{
			{"HEAD", head.ContentType, head.ContentEncoding, head.ContentDisposition, head.ContentLanguage, head.CacheControl, head.Metadata, head.ExpiresString},
			{"GET", gout.ContentType, gout.ContentEncoding, gout.ContentDisposition, gout.ContentLanguage, gout.CacheControl, gout.Metadata, gout.ExpiresString},
		} {
			if aws.ToString(o.ct) != wantType || len(o.meta) != len(wantMeta) {
				t.Errorf("%s: %s Content-Type %q, metadata %v; want %q, %v", what, o.op, aws.ToString(o.ct), o.meta, wantType, wantMeta)
			}
			for k, v := range wantMeta {
				if o.meta[k] != v {
					t.Errorf("%s: %s metadata %q = %q, want %q", what, o.op, k, o.meta[k], v)
				}
			}
			if !full {
				continue
			}
			if aws.ToString(o.ce) != "identity" || aws.ToString(o.cd) != `attachment; filename="x.json"` || aws.ToString(o.cl) != "fr" ||
				aws.ToString(o.cc) != "max-age=60" {
				t.Errorf("%s: %s headers %q %q %q %q", what, o.op, aws.ToString(o.ce), aws.ToString(o.cd), aws.ToString(o.cl), aws.ToString(o.cc))
			}
			if got, err := http.ParseTime(aws.ToString(o.expires)); err != nil || !got.Equal(exp) {
				t.Errorf("%s: %s Expires %q", what, o.op, aws.ToString(o.expires))
			}
		}
	}
	check("PutObject", "m/obj.json", "application/x-custom", meta, true)
	// The file keeps them, as an extended attribute.
	buf := make([]byte, 4096)
	if n, err := unix.Getxattr(filepath.Join(e.dir, "m/obj.json"), "user.strata.attrs", buf); err != nil || !bytes.Contains(buf[:n], []byte("content-sha")) {
		t.Errorf("the file's user.strata.attrs: %q, %v", buf[:max(n, 0)], err)
	}

	// Copy: COPY keeps the source's, REPLACE takes the request's.
	if _, err := cl.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("data"), Key: aws.String("m/copy"), CopySource: aws.String("data/m/obj.json")}); err != nil {
		t.Fatal(err)
	}
	check("CopyObject COPY", "m/copy", "application/x-custom", meta, true)
	if _, err := cl.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("data"), Key: aws.String("m/copy2"), CopySource: aws.String("data/m/obj.json"),
		MetadataDirective: types.MetadataDirectiveReplace, ContentType: aws.String("text/csv"), Metadata: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	check("CopyObject REPLACE", "m/copy2", "text/csv", map[string]string{"k": "v"}, false)
	// Onto itself, REPLACE rewrites the metadata.
	if _, err := cl.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("data"), Key: aws.String("m/copy2"), CopySource: aws.String("data/m/copy2"),
		MetadataDirective: types.MetadataDirectiveReplace, Metadata: map[string]string{"k": "w", "new": "1"}}); err != nil {
		t.Fatal(err)
	}
	check("CopyObject onto itself", "m/copy2", "application/octet-stream", map[string]string{"k": "w", "new": "1"}, false)
	if got, _, err := get(t, cl, "data", "m/copy2"); err != nil || string(got) != `{"a":1}` {
		t.Errorf("the object copied onto itself holds %q, %v", got, err)
	}

	// Multipart: the attributes of CreateMultipartUpload.
	cr, err := cl.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String("m/mp.bin"),
		ContentType: aws.String("video/mp4"), Metadata: map[string]string{"camera": "front"}})
	if err != nil {
		t.Fatal(err)
	}
	up, err := cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("data"), Key: aws.String("m/mp.bin"), UploadId: cr.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("frames"))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String("m/mp.bin"), UploadId: cr.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: up.ETag, PartNumber: aws.Int32(1)}}}}); err != nil {
		t.Fatal(err)
	}
	check("multipart", "m/mp.bin", "video/mp4", map[string]string{"camera": "front"}, false)

	// Without metadata: the type is guessed from the key, also after an
	// overwrite of an object that had some.
	put(t, cl, "data", "m/obj.json", []byte("{}"))
	check("overwritten", "m/obj.json", "application/json", nil, false)

	// Too much user metadata.
	_, err = cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("m/big"), Body: strings.NewReader("x"),
		Metadata: map[string]string{"big": strings.Repeat("v", 2100)}})
	harness.WantS3Error(t, "2 KiB of user metadata", err, "MetadataTooLarge", 400)
	resp, body := e.raw(t, http.MethodPut, "/data/m/exp", "", []byte("x"), http.Header{"Expires": {"someday"}})
	if resp.StatusCode != 400 || errorCode(t, body) != "InvalidArgument" {
		t.Errorf("a bad Expires: %d %s", resp.StatusCode, body)
	}
}
