package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stratafs/strata/tests/harness"
	"github.com/stratafs/strata/ufs"
	"github.com/stratafs/strata/ufs/ufstest"
)

// minio is the one server of this package's tests, started by TestMain.
var minio *harness.MinIO

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		crashChild() // never returns
	}
	harness.Main(m, func(t harness.TB) { minio = harness.StartMinIO(t) })
}

// open returns an FS on uri with the server's options plus extra.
func open(t *testing.T, uri string, extra ufs.Options) *FS {
	t.Helper()
	loc, err := ufs.ParseURI(uri)
	if err != nil {
		t.Fatalf("ParseURI(%q): %v", uri, err)
	}
	opts := ufs.Options(minio.S3Options())
	maps.Copy(opts, extra)
	f, err := New(t.Context(), loc, opts)
	if err != nil {
		t.Fatalf("New(%s): %v", uri, err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestConformance: one bucket, a fresh prefix for every FS, default sizes
// (100 MiB objects, 10,000 keys in 10 pages).
func TestConformance(t *testing.T) {
	bucket := minio.NewBucket(t, "conformance")
	var n atomic.Int64
	ufstest.Run(t, func(t *testing.T) ufs.FS {
		return open(t, fmt.Sprintf("s3://%s/run-%d/mount", bucket, n.Add(1)), nil)
	}, ufstest.Options{})
}

// TestConformanceSmallParts: each FS at the root of its own bucket, with the
// smallest parts S3 allows and tiny list pages, so that every upload is
// multipart and every listing takes many pages.
func TestConformanceSmallParts(t *testing.T) {
	ufstest.Run(t, func(t *testing.T) ufs.FS {
		return open(t, "s3://"+minio.NewBucket(t, t.Name()), ufs.Options{
			"s3.part_size":          "5MiB",
			"s3.max_keys":           "7",
			"s3.upload_concurrency": "2",
		})
	}, ufstest.Options{ListKeys: 300, PartSize: 5 << 20, LargeSize: 3*(5<<20) + 4321})
}

func TestMissingBucket(t *testing.T) {
	ctx := t.Context()
	f := open(t, "s3://no-such-bucket-here/some/prefix", nil)
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ufs.ErrNotFound) || !strings.Contains(fmt.Sprint(err), `bucket "no-such-bucket-here" does not exist`) {
			t.Errorf("%s: %v, want ErrNotFound saying the bucket does not exist", what, err)
		}
	}
	check("Check", ufs.Check(ctx, f))
	_, err := f.Stat(ctx, "a/file")
	check("Stat(a/file)", err)
	_, err = f.OpenRange(ctx, "a/file", 0, -1, ufs.ReadOptions{})
	check("OpenRange", err)
	for _, err := range f.List(ctx, "") {
		check("List(root)", err)
	}
	_, err = f.Put(ctx, "x", strings.NewReader("data"), 4)
	check("Put", err)
}

func TestWrongCredentials(t *testing.T) {
	ctx := t.Context()
	bucket := minio.NewBucket(t, "creds")
	good := open(t, "s3://"+bucket, nil)
	if _, err := good.Put(ctx, "file", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	const badSecret = "definitely-not-the-secret-0123456789"
	cases := []struct {
		name string
		opts ufs.Options
		want string
	}{
		{"WrongSecret", ufs.Options{"s3.secret_access_key": badSecret}, "SignatureDoesNotMatch"},
		{"UnknownKeyID", ufs.Options{"s3.access_key_id": "NOSUCHKEYID", "s3.secret_access_key": badSecret}, "InvalidAccessKeyId"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := open(t, "s3://"+bucket, c.opts)
			err := ufs.Check(ctx, f)
			if !errors.Is(err, ufs.ErrPermission) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Check: %v, want ErrPermission naming %s", err, c.want)
			}
			_, err = f.Stat(ctx, "file") // a HEAD: a 403 without a body
			if !errors.Is(err, ufs.ErrPermission) {
				t.Errorf("Stat(file): %v, want ErrPermission", err)
			}
			_, err = f.OpenRange(ctx, "file", 0, -1, ufs.ReadOptions{})
			if !errors.Is(err, ufs.ErrPermission) {
				t.Errorf("OpenRange(file): %v, want ErrPermission", err)
			}
			for _, err := range []error{err, ufs.Check(ctx, f)} {
				if err != nil && strings.Contains(err.Error(), badSecret) {
					t.Errorf("the error shows the secret: %v", err)
				}
			}
		})
	}
}

func TestUnavailable(t *testing.T) {
	port := harness.FreePort(t) // nobody listens there
	cases := map[string]string{
		"ConnectionRefused": fmt.Sprintf("http://127.0.0.1:%d", port),
		"NoSuchHost":        "http://no-such-host.invalid:9000",
	}
	for name, endpoint := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			f := open(t, "s3://bucket/prefix", ufs.Options{"s3.endpoint": endpoint, "s3.max_attempts": "1"})
			if err := ufs.Check(ctx, f); !errors.Is(err, ufs.ErrUnavailable) {
				t.Errorf("Check: %v, want ErrUnavailable", err)
			}
			if _, err := f.OpenRange(ctx, "x", 0, 10, ufs.ReadOptions{}); !errors.Is(err, ufs.ErrUnavailable) {
				t.Errorf("OpenRange: %v, want ErrUnavailable", err)
			}
		})
	}
}

// A server that accepts connections and never answers fails requests after
// s3.response_timeout with ErrUnavailable, instead of hanging the caller.
func TestSilentServerTimesOut(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	f := open(t, "s3://bucket/prefix", ufs.Options{"s3.endpoint": "http://" + l.Addr().String(), "s3.max_attempts": "1",
		"s3.response_timeout": "500ms", "s3.access_key_id": "k", "s3.secret_access_key": "s"})
	start := time.Now()
	_, err = f.OpenRange(t.Context(), "x", 0, 10, ufs.ReadOptions{})
	if !errors.Is(err, ufs.ErrUnavailable) || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("OpenRange from a silent server: %v, want ErrUnavailable (timed out)", err)
	}
	if el := time.Since(start); el > 20*time.Second {
		t.Errorf("gave up after %s", el)
	}
	loc, _ := ufs.ParseURI("s3://bucket/prefix")
	if _, err := New(t.Context(), loc, ufs.Options{"s3.response_timeout": "forever"}); !errors.Is(err, ufs.ErrInvalidURI) || !strings.Contains(err.Error(), "s3.response_timeout") {
		t.Errorf("bad s3.response_timeout: %v", err)
	}
}

func TestParseURIAndRegistry(t *testing.T) {
	ctx := t.Context()
	var r ufs.Registry
	Register(&r)
	for _, uri := range []string{
		"s3://", "s3:///prefix", "bucket/prefix", "s3://b/p?versionId=1", "s3://key:secret@b/p",
		"s3://b/../x", "s3://b/p#frag", "gs://b/p", "://b", "s3://b/a%00b",
	} {
		if fs, err := r.Open(ctx, uri, minio.S3Options()); !errors.Is(err, ufs.ErrInvalidURI) {
			t.Errorf("Open(%q): %v, want ErrInvalidURI", uri, err)
			if fs != nil {
				fs.Close()
			}
		}
	}
	fs, err := r.Open(ctx, "S3://"+minio.NewBucket(t, "registry")+"/p", minio.S3Options())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer fs.Close()
	if err := ufs.Check(ctx, fs); err != nil {
		t.Errorf("Check: %v", err)
	}
	if _, err := New(ctx, ufs.Location{Scheme: "file", Prefix: "tmp"}, nil); !errors.Is(err, ufs.ErrInvalidURI) {
		t.Errorf("New(file location): %v, want ErrInvalidURI", err)
	}
}

func TestBadOptions(t *testing.T) {
	loc, _ := ufs.ParseURI("s3://bucket/p")
	const secret = "s3cr3t-value-never-shown"
	cases := []struct {
		opts ufs.Options
		want []string
	}{
		{ufs.Options{"s3.endpoint": "127.0.0.1:9000"}, []string{"s3.endpoint"}},
		{ufs.Options{"s3.endpoint": "http://h:9000/path"}, []string{"s3.endpoint"}},
		{ufs.Options{"s3.part_size": "1MiB", "s3.max_keys": "5000", "s3.upload_concurrency": "0"},
			[]string{"s3.part_size", "s3.max_keys", "s3.upload_concurrency"}},
		{ufs.Options{"s3.part_size": "lots", "s3.max_attempts": "-1", "s3.path_style": "perhaps"},
			[]string{"s3.part_size", "s3.max_attempts", "s3.path_style"}},
		{ufs.Options{"s3.secret_access_key": secret}, []string{"s3.access_key_id"}},
		{ufs.Options{"s3.session_token": secret}, []string{"s3.session_token"}},
		{ufs.Options{"s3.secret_key": secret}, []string{`"s3.secret_key"`}},
	}
	for _, c := range cases {
		_, err := New(t.Context(), loc, c.opts)
		if !errors.Is(err, ufs.ErrInvalidURI) {
			t.Errorf("New(%v): %v, want ErrInvalidURI", c.opts.Masked(), err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("New(%v): %v, want it to name %s", c.opts.Masked(), err, w)
			}
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("New(%v): the error shows a secret: %v", c.opts.Masked(), err)
		}
	}
	// Other backends' options are not ours to judge.
	if _, err := New(t.Context(), loc, ufs.Options{"gs.project": "x", "s3.credentials": "anonymous"}); err != nil {
		t.Errorf("New with a gs.* option: %v", err)
	}
}

// failAfter yields n random bytes, then an error.
type failAfter struct{ n int64 }

var errFail = errors.New("source broke")

func (r *failAfter) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errFail
	}
	p = p[:min(int64(len(p)), r.n)]
	r.n -= int64(len(p))
	return rand.Read(p)
}

// TestFailedMultipartLeavesNothing: a source that breaks after two parts
// leaves no object and no pending multipart upload, and Put's error wraps
// the source's.
func TestFailedMultipartLeavesNothing(t *testing.T) {
	ctx := t.Context()
	bucket := minio.NewBucket(t, "abort")
	f := open(t, "s3://"+bucket+"/pre", ufs.Options{"s3.part_size": "5MiB"})
	for _, size := range []int64{-1, 30 << 20} {
		_, err := f.Put(ctx, "broken", &failAfter{n: 12 << 20}, size)
		if !errors.Is(err, errFail) {
			t.Errorf("Put(size %d): %v, want the source's error", size, err)
		}
	}
	if _, err := f.Stat(ctx, "broken"); !errors.Is(err, ufs.ErrNotFound) {
		t.Errorf("Stat after failed puts: %v, want ErrNotFound", err)
	}
	out, err := minio.S3Client(t).ListMultipartUploads(ctx, &awss3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Uploads) != 0 {
		t.Errorf("%d multipart uploads left behind, first for %q", len(out.Uploads), aws.ToString(out.Uploads[0].Key))
	}
}

// cancelAfter yields n random bytes, cancels, and goes on yielding.
type cancelAfter struct {
	n      int64
	cancel context.CancelFunc
}

func (r *cancelAfter) Read(p []byte) (int, error) {
	if r.n <= 0 {
		r.cancel()
	}
	r.n -= int64(len(p))
	return rand.Read(p)
}

// TestCancelledMultipartLeavesNothing: cancelling the context in the middle
// of a multipart upload aborts it, although the uploader's own abort runs on
// the cancelled context.
func TestCancelledMultipartLeavesNothing(t *testing.T) {
	bucket := minio.NewBucket(t, "cancel")
	f := open(t, "s3://"+bucket, ufs.Options{"s3.part_size": "5MiB"})
	ctx, cancel := context.WithCancel(t.Context())
	_, err := f.Put(ctx, "cancelled", &cancelAfter{n: 12 << 20, cancel: cancel}, -1)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Put: %v, want context.Canceled", err)
	}
	out, err := minio.S3Client(t).ListMultipartUploads(t.Context(), &awss3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Uploads) != 0 {
		t.Errorf("%d multipart uploads left behind", len(out.Uploads))
	}
	if _, err := f.Stat(t.Context(), "cancelled"); !errors.Is(err, ufs.ErrNotFound) {
		t.Errorf("Stat: %v, want ErrNotFound", err)
	}
}

// TestRenameMultipartCopy exercises the UploadPartCopy path of Rename, used
// above 5 GiB, with the threshold lowered.
func TestRenameMultipartCopy(t *testing.T) {
	ctx := t.Context()
	f := open(t, "s3://"+minio.NewBucket(t, "mpcopy"), nil)
	f.copyThreshold, f.copyPartSize = 6<<20, 5<<20
	data := make([]byte, 13<<20+5)
	_, _ = rand.Read(data)
	if _, err := f.Put(ctx, "src dir/big ü.bin", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if err := f.Rename(ctx, "src dir/big ü.bin", "dst/big+copy.bin"); err != nil {
		t.Fatalf("Rename: %v", err)
	}
	fi, err := f.Stat(ctx, "dst/big+copy.bin")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(fi.ETag, "-3") {
		t.Errorf("ETag %q, want a 3-part multipart ETag", fi.ETag)
	}
	rc, err := f.OpenRange(ctx, "dst/big+copy.bin", 0, -1, ufs.ReadOptions{IfMatch: fi.ETag})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("copied object differs (%d bytes, %v)", len(got), err)
	}
	if _, err := f.Stat(ctx, "src dir/big ü.bin"); !errors.Is(err, ufs.ErrNotFound) {
		t.Errorf("Stat(src) after Rename: %v, want ErrNotFound", err)
	}
}

// TestForeignKeys: objects written by another tool, markers included, are
// served as they are. (MinIO refuses keys such as "a//b" and a file and a
// prefix of one name, so those cases of validName cannot be run here.)
func TestForeignKeys(t *testing.T) {
	ctx := t.Context()
	bucket := minio.NewBucket(t, "foreign")
	c := minio.S3Client(t)
	for _, k := range []string{"d/ok", "d/both", "d/sub/", "d/deep/er/file", "top"} {
		if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: &bucket, Key: aws.String(k), Body: strings.NewReader(k)}); err != nil {
			t.Fatalf("PutObject(%q): %v", k, err)
		}
	}
	f := open(t, "s3://"+bucket, nil)
	got := map[string]bool{}
	for fi, err := range f.List(ctx, "d") {
		if err != nil {
			t.Fatalf("List(d): %v", err)
		}
		if _, dup := got[fi.Name()+fmt.Sprint(fi.IsDir)]; dup {
			t.Errorf("List(d) yielded %+v twice", fi)
		}
		got[fi.Name()+fmt.Sprint(fi.IsDir)] = true
	}
	want := map[string]bool{"okfalse": true, "bothfalse": true, "subtrue": true, "deeptrue": true}
	if !maps.Equal(got, want) {
		t.Errorf("List(d) = %v, want %v", got, want)
	}
	if fi, err := f.Stat(ctx, "d/both"); err != nil || fi.IsDir {
		t.Errorf("Stat(d/both) = %+v, %v; want the file", fi, err)
	}
	if fi, err := f.Stat(ctx, "d/sub"); err != nil || !fi.IsDir {
		t.Errorf("Stat(d/sub) = %+v, %v; want a directory (marker only)", fi, err)
	}
	if fi, err := f.Stat(ctx, "d/deep/er"); err != nil || !fi.IsDir {
		t.Errorf("Stat(d/deep/er) = %+v, %v; want a directory (prefix only)", fi, err)
	}
	if err := f.Mkdir(ctx, "top/below"); !errors.Is(err, ufs.ErrNotDir) {
		t.Errorf("Mkdir below a file: %v, want ErrNotDir", err)
	}
	if _, err := f.Stat(ctx, "d/../top"); !errors.Is(err, ufs.ErrInvalidPath) {
		t.Errorf("Stat(d/../top): %v, want ErrInvalidPath", err)
	}
}

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"a": true, "a b": true, "ü名": true, "...": true, "": false, ".": false, "..": false,
		"a/b": false, "nul\x00": false,
	} {
		if got := validName(name); got != want {
			t.Errorf("validName(%q) = %v, want %v", name, got, want)
		}
	}
}
