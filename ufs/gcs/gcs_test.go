package gcs

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"cloud.google.com/go/storage"

	"github.com/stratafs/strata/tests/harness"
	"github.com/stratafs/strata/ufs"
	"github.com/stratafs/strata/ufs/ufstest"
)

// srv is the emulator every test of this package talks to, started by
// TestMain.
var srv *harness.FakeGCS

func TestMain(m *testing.M) {
	harness.Main(m, func(t harness.TB) { srv = harness.StartFakeGCS(t) })
}

var seq atomic.Int64

// newBucket creates a fresh bucket on the emulator.
func newBucket(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("strata-test-%d", seq.Add(1))
	srv.CreateBucket(t, name)
	return name
}

// emulatorOpts are the options that point the backend at the emulator,
// which takes no credentials.
func emulatorOpts() ufs.Options {
	return ufs.Options{OptEndpoint: srv.Endpoint, OptCredentials: CredAnonymous}
}

func open(t *testing.T, uri string, opts ufs.Options) *FS {
	t.Helper()
	loc, err := ufs.ParseURI(uri)
	if err != nil {
		t.Fatalf("ParseURI(%q): %v", uri, err)
	}
	fs, err := New(t.Context(), loc, opts)
	if err != nil {
		t.Fatalf("New(%q): %v", uri, err)
	}
	t.Cleanup(func() { fs.Close() })
	return fs
}

// rawClient is a storage client of the emulator that bypasses the backend,
// playing "another tool" that wrote the bucket.
func rawClient(t *testing.T) *storage.Client {
	t.Helper()
	cfg, err := parseOptions("gs://raw", emulatorOpts())
	if err != nil {
		t.Fatal(err)
	}
	c, err := cfg.newClient(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func rawPut(t *testing.T, c *storage.Client, bucket, name, data string) {
	t.Helper()
	w := c.Bucket(bucket).Object(name).NewWriter(t.Context())
	if _, err := io.WriteString(w, data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("put %s: %v", name, err)
	}
}

// testPageSize makes listings of a few thousand entries span several pages
// (fake-gcs-server's memory backend slows down past a few thousand objects
// per bucket, so ListKeys stays moderate).
const testPageSize = 200

// TestConformanceBucket mounts a whole fresh bucket per case.
func TestConformanceBucket(t *testing.T) {
	ufstest.Run(t, func(t *testing.T) ufs.FS {
		fs := open(t, "gs://"+newBucket(t), emulatorOpts())
		fs.listPageSize = testPageSize
		return fs
	}, ufstest.Options{PartSize: defaultChunkSize, ListKeys: 1500})
}

// TestConformancePrefix mounts prefixes of one shared bucket whose other
// objects (siblings sharing the prefix's leading characters, a marker of the
// mount point) must stay invisible, through the gcs:// scheme and a small
// chunk size.
func TestConformancePrefix(t *testing.T) {
	bucket := newBucket(t)
	raw := rawClient(t)
	var n atomic.Int64
	ufstest.Run(t, func(t *testing.T) ufs.FS {
		mnt := fmt.Sprintf("mnt/%d", n.Add(1))
		rawPut(t, raw, bucket, mnt+"-sibling", "x")
		rawPut(t, raw, bucket, mnt+"x/other", "x")
		rawPut(t, raw, bucket, mnt+"/", "") // a marker for the mount point itself
		opts := emulatorOpts()
		opts[OptChunkSize] = "1MiB"
		fs := open(t, "gcs://"+bucket+"/"+mnt, opts)
		fs.listPageSize = testPageSize
		return fs
	}, ufstest.Options{PartSize: 1 << 20, LargeSize: 24<<20 + 123, ListKeys: 700})
}

func TestRegister(t *testing.T) {
	var r ufs.Registry
	Register(&r)
	if got := r.Schemes(); !slices.Equal(got, []string{"gcs", "gs"}) {
		t.Fatalf("Schemes() = %v", got)
	}
	bucket := newBucket(t)
	for _, scheme := range []string{"gs", "gcs"} {
		fs, err := r.Open(t.Context(), scheme+"://"+bucket+"/some/prefix", emulatorOpts())
		if err != nil {
			t.Fatalf("Open(%s): %v", scheme, err)
		}
		if err := ufs.Check(t.Context(), fs); err != nil {
			t.Errorf("Check(%s): %v", scheme, err)
		}
		fs.Close()
	}
	fs, err := r.Open(t.Context(), "gs://Bad_Bucket", emulatorOpts())
	if !errors.Is(err, ufs.ErrInvalidURI) || fs != nil {
		t.Errorf("Open(gs://Bad_Bucket) = %v, %v; want a nil FS and ErrInvalidURI", fs, err)
	}
}

func TestMissingBucket(t *testing.T) {
	ctx := t.Context()
	fs := open(t, "gs://no-such-bucket-here/pre", emulatorOpts())
	_, err := fs.Stat(ctx, "")
	if !errors.Is(err, ufs.ErrNotFound) || !strings.Contains(err.Error(), `bucket "no-such-bucket-here" does not exist`) {
		t.Errorf("Stat(root) = %v; want ErrNotFound naming the bucket", err)
	}
	if err := ufs.Check(ctx, fs); !errors.Is(err, ufs.ErrNotFound) {
		t.Errorf("Check = %v; want ErrNotFound", err)
	}
	for _, err := range fs.List(ctx, "") {
		if !errors.Is(err, ufs.ErrNotFound) || !strings.Contains(err.Error(), "no-such-bucket-here") {
			t.Errorf("List(root) = %v; want ErrNotFound naming the bucket", err)
		}
	}
	_, err = fs.Put(ctx, "f", strings.NewReader("data"), 4)
	if !errors.Is(err, ufs.ErrNotFound) {
		t.Errorf("Put = %v; want ErrNotFound", err)
	}
}

// TestForeignLayout mounts a bucket written by other tools: keys that are
// not clean paths, markers with content, a file and a directory of one name.
func TestForeignLayout(t *testing.T) {
	ctx := t.Context()
	bucket := newBucket(t)
	raw := rawClient(t)
	for name, data := range map[string]string{
		"a//double": "1", "a/./dot": "2", "a/../up": "3", "a/ok": "4",
		"b/": "marker with content", "b/c/": "", "top": "5",
	} {
		rawPut(t, raw, bucket, name, data)
	}
	fs := open(t, "gs://"+bucket, emulatorOpts())
	got := map[string]bool{}
	for fi, err := range fs.List(ctx, "a") {
		if err != nil {
			t.Fatalf("List(a): %v", err)
		}
		got[fi.Name()] = fi.IsDir
	}
	if want := map[string]bool{"ok": false}; !maps.Equal(got, want) {
		t.Errorf("List(a) = %v, want %v (unaddressable keys skipped)", got, want)
	}
	for _, d := range []string{"a", "b", "b/c"} {
		if fi, err := fs.Stat(ctx, d); err != nil || !fi.IsDir {
			t.Errorf("Stat(%q) = %+v, %v; want a directory", d, fi, err)
		}
	}
	got = map[string]bool{}
	for fi, err := range fs.List(ctx, "b") {
		if err != nil {
			t.Fatalf("List(b): %v", err)
		}
		got[fi.Name()] = fi.IsDir
	}
	if want := map[string]bool{"c": true}; !maps.Equal(got, want) {
		t.Errorf("List(b) = %v, want %v", got, want)
	}
	if err := fs.Delete(ctx, "b"); !errors.Is(err, ufs.ErrNotEmpty) {
		t.Errorf("Delete(b) = %v, want ErrNotEmpty", err)
	}
	// Reading through the backend what another tool wrote.
	rc, err := fs.OpenRange(ctx, "a/ok", 0, -1, ufs.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "4" {
		t.Errorf("read a/ok = %q", b)
	}

	// An object stored gzip-encoded (gsutil cp -z) reads as its stored
	// bytes, so reads agree with the size Stat reports.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(bytes.Repeat([]byte("compressible "), 1000))
	zw.Close()
	w := raw.Bucket(bucket).Object("z.txt").NewWriter(ctx)
	w.ContentEncoding = "gzip"
	w.ContentType = "text/plain"
	if _, err := w.Write(gz.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := fs.Stat(ctx, "z.txt")
	if err != nil || fi.Size != int64(gz.Len()) {
		t.Fatalf("Stat(z.txt) = %+v, %v; want %d bytes", fi, err, gz.Len())
	}
	for _, r := range [][2]int64{{0, -1}, {10, 20}} {
		rc, err := fs.OpenRange(ctx, "z.txt", r[0], r[1], ufs.ReadOptions{IfMatch: fi.ETag})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		end := int64(gz.Len())
		if r[1] >= 0 {
			end = r[0] + r[1]
		}
		if err != nil || !bytes.Equal(b, gz.Bytes()[r[0]:end]) {
			t.Errorf("OpenRange(z.txt, %d, %d) = %d bytes, %v; want the stored bytes", r[0], r[1], len(b), err)
		}
	}
}

// TestEmulatorEnv finds the emulator through STORAGE_EMULATOR_HOST, as the
// Google libraries do, without the endpoint option: the host's environment
// is used because the mount asks for it (gcs.credentials=ambient).
func TestEmulatorEnv(t *testing.T) {
	t.Setenv(emulatorEnv, strings.TrimPrefix(srv.Endpoint, "http://"))
	bucket := newBucket(t)
	fs := open(t, "gs://"+bucket, ufs.Options{OptCredentials: CredAmbient})
	if _, err := fs.Put(t.Context(), "x", strings.NewReader("hello"), 5); err != nil {
		t.Fatalf("Put via %s: %v", emulatorEnv, err)
	}
	if fi, err := fs.Stat(t.Context(), "x"); err != nil || fi.Size != 5 {
		t.Errorf("Stat = %+v, %v", fi, err)
	}
}

// TestUnavailable points the backend at a port nobody listens on.
func TestUnavailable(t *testing.T) {
	port := harness.FreePort(t)
	fs := open(t, "gs://bucket", ufs.Options{OptEndpoint: harness.Addr(port), OptMaxAttempts: "2", OptCredentials: CredAnonymous})
	_, err := fs.Stat(t.Context(), "")
	if !errors.Is(err, ufs.ErrUnavailable) {
		t.Errorf("Stat(root) on a closed port = %v; want ErrUnavailable", err)
	}
	_, err = fs.OpenRange(t.Context(), "f", 0, -1, ufs.ReadOptions{})
	if !errors.Is(err, ufs.ErrUnavailable) {
		t.Errorf("OpenRange on a closed port = %v; want ErrUnavailable", err)
	}
}

// serviceAccountJSON builds a syntactically valid service account key whose
// token endpoint is tokenURL. The private key is fresh and worthless.
func serviceAccountJSON(t *testing.T, tokenURL string) []byte {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "strata-test", "private_key_id": "k1",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": "nobody@strata-test.iam.gserviceaccount.com", "client_id": "1",
		"token_uri": tokenURL,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCredentialsRejected uses a service account whose token exchange is
// refused (fake-gcs-server ignores credentials, so the refusal comes from
// the OAuth token endpoint named in the key, as it would from Google's).
func TestCredentialsRejected(t *testing.T) {
	denied := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`)
	}))
	t.Cleanup(denied.Close)
	creds := serviceAccountJSON(t, denied.URL+"/token")
	file := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(file, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	bucket := newBucket(t)
	for name, opts := range map[string]ufs.Options{
		"json": {OptEndpoint: srv.Endpoint, OptCredentialsJSON: string(creds), OptMaxAttempts: "1"},
		"file": {OptEndpoint: srv.Endpoint, OptCredentialsFile: file, OptMaxAttempts: "1"},
	} {
		t.Run(name, func(t *testing.T) {
			fs := open(t, "gs://"+bucket, opts)
			_, err := fs.Stat(t.Context(), "")
			if !errors.Is(err, ufs.ErrPermission) {
				t.Fatalf("Stat with refused credentials = %v; want ErrPermission", err)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Errorf("the error shows the key: %v", err)
			}
		})
	}
}

func TestBadOptions(t *testing.T) {
	secret := "s3cr3t-do-not-print"
	cases := []struct {
		name string
		uri  string
		opts ufs.Options
		want []string // substrings of the error
	}{
		{"MalformedJSON", "gs://b-ok", ufs.Options{OptCredentialsJSON: `{"type": "service_account", "private_key": "` + secret}, []string{OptCredentialsJSON, "not valid JSON"}},
		{"NotJSONObject", "gs://b-ok", ufs.Options{OptCredentialsJSON: secret}, []string{OptCredentialsJSON, "not valid JSON"}},
		{"NoType", "gs://b-ok", ufs.Options{OptCredentialsJSON: `{"private_key": "` + secret + `"}`}, []string{OptCredentialsJSON, `no "type"`}},
		{"WrongType", "gs://b-ok", ufs.Options{OptCredentialsJSON: `{"type": "api_key", "key": "` + secret + `"}`}, []string{`"api_key" is not supported`}},
		{"MissingFile", "gs://b-ok", ufs.Options{OptCredentialsFile: "/nonexistent/key.json"}, []string{OptCredentialsFile, "no such file"}},
		{"BothCredentials", "gs://b-ok", ufs.Options{OptCredentialsFile: "/x", OptCredentialsJSON: "{}"}, []string{"both set"}},
		{"AnonymousAndKey", "gs://b-ok", ufs.Options{OptAnonymous: "true", OptCredentialsJSON: `{"type":"authorized_user"}`}, []string{"contradicts"}},
		{"BadBool", "gs://b-ok", ufs.Options{OptAnonymous: "yes please"}, []string{OptAnonymous}},
		{"BadChunk", "gs://b-ok", ufs.Options{OptChunkSize: "1KiB"}, []string{OptChunkSize, "256KiB"}},
		{"BadChunkUnit", "gs://b-ok", ufs.Options{OptChunkSize: "lots"}, []string{OptChunkSize}},
		{"BadAttempts", "gs://b-ok", ufs.Options{OptMaxAttempts: "0"}, []string{OptMaxAttempts}},
		{"BadEndpoint", "gs://b-ok", ufs.Options{OptEndpoint: "ftp://x"}, []string{OptEndpoint}},
		{"Typo", "gs://b-ok", ufs.Options{"gcs.endpiont": "x"}, []string{`unknown option "gcs.endpiont"`}},
		{"UpperBucket", "gs://Bucket", nil, []string{"lower-case"}},
		{"ShortBucket", "gs://ab", nil, []string{"3 to 63"}},
		{"DashBucket", "gs://-abc", nil, []string{"start and end"}},
		{"Scheme", "s3://bucket", nil, []string{"not gs or gcs"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			loc, err := ufs.ParseURI(c.uri)
			if err != nil {
				t.Fatal(err)
			}
			opts := c.opts
			if opts == nil {
				opts = emulatorOpts()
			}
			fs, err := New(t.Context(), loc, opts)
			if err == nil {
				fs.Close()
				t.Fatalf("New succeeded, want an error")
			}
			if !errors.Is(err, ufs.ErrInvalidURI) {
				t.Errorf("error %v does not wrap ErrInvalidURI", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q shows a secret", err)
			}
		})
	}
	// Every problem is reported at once.
	_, err := parseOptions("gs://b-ok", ufs.Options{OptChunkSize: "x", OptMaxAttempts: "y"})
	if err == nil || !strings.Contains(err.Error(), OptChunkSize) || !strings.Contains(err.Error(), OptMaxAttempts) {
		t.Errorf("parseOptions with two bad options = %v; want both named", err)
	}
}

func TestNormaliseEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:4443":                               "http://127.0.0.1:4443/storage/v1/",
		"http://127.0.0.1:4443":                        "http://127.0.0.1:4443/storage/v1/",
		"http://127.0.0.1:4443/":                       "http://127.0.0.1:4443/storage/v1/",
		"https://storage.googleapis.com/storage/v1":    "https://storage.googleapis.com/storage/v1/",
		"https://storage.googleapis.com/storage/v1/":   "https://storage.googleapis.com/storage/v1/",
		"https://private.example/gcs/storage/v1/":      "https://private.example/gcs/storage/v1/",
		"https://private.example/gcs":                  "https://private.example/gcs/storage/v1/",
		"https://storage-xyz.p.googleapis.com:443/x/y": "https://storage-xyz.p.googleapis.com:443/x/y/storage/v1/",
	} {
		got, err := normaliseEndpoint(in)
		if err != nil || got != want {
			t.Errorf("normaliseEndpoint(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"ftp://host", "http://", "http://h/?q=1", "http://u:p@h/"} {
		if _, err := normaliseEndpoint(bad); err == nil {
			t.Errorf("normaliseEndpoint(%q) succeeded", bad)
		}
	}
}

// TestGenerationIsETag checks that the ETag is the object generation and
// that a read pinned to it sees exactly that version or ErrChanged.
func TestGenerationIsETag(t *testing.T) {
	ctx := t.Context()
	bucket := newBucket(t)
	fs := open(t, "gs://"+bucket+"/p", emulatorOpts())
	fi, err := fs.Put(ctx, "obj", strings.NewReader("version one"), -1)
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := rawClient(t).Bucket(bucket).Object("p/obj").Attrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fi.ETag != fmt.Sprint(attrs.Generation) || !fi.ModTime.Equal(attrs.Updated) {
		t.Errorf("Put returned ETag %q ModTime %v; object has generation %d updated %v", fi.ETag, fi.ModTime, attrs.Generation, attrs.Updated)
	}
	for _, bad := range []string{"not-a-number", "-3", `"abc"`} {
		_, err := fs.OpenRange(ctx, "obj", 0, -1, ufs.ReadOptions{IfMatch: bad})
		if !errors.Is(err, ufs.ErrChanged) {
			t.Errorf("OpenRange(IfMatch %q) = %v; want ErrChanged", bad, err)
		}
	}
	if _, err := fs.Put(ctx, "obj", strings.NewReader("version two"), -1); err != nil {
		t.Fatal(err)
	}
	// n == 0 and off past the end take the metadata path; they must check too.
	for _, r := range [][2]int64{{0, 0}, {100, 5}, {0, -1}, {2, 3}} {
		_, err := fs.OpenRange(ctx, "obj", r[0], r[1], ufs.ReadOptions{IfMatch: fi.ETag})
		if !errors.Is(err, ufs.ErrChanged) {
			t.Errorf("OpenRange(%d, %d, old generation) = %v; want ErrChanged", r[0], r[1], err)
		}
	}
}

// TestLargeChunkedUpload puts an object of several chunks of unknown size
// and reads it back whole.
func TestLargeChunkedUpload(t *testing.T) {
	ctx := t.Context()
	opts := emulatorOpts()
	opts[OptChunkSize] = "256KiB"
	fs := open(t, "gs://"+newBucket(t), opts)
	data := make([]byte, 3<<20+777)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	fi, err := fs.Put(ctx, "chunked", struct{ io.Reader }{bytes.NewReader(data)}, -1)
	if err != nil || fi.Size != int64(len(data)) {
		t.Fatalf("Put = %+v, %v", fi, err)
	}
	rc, err := fs.OpenRange(ctx, "chunked", 0, -1, ufs.ReadOptions{IfMatch: fi.ETag})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("read back %d bytes, %v; want the %d bytes put", len(got), err, len(data))
	}
}

// TestCancelledUploadInvisible cancels the context in the middle of a
// multi-chunk upload: nothing may appear.
func TestCancelledUploadInvisible(t *testing.T) {
	opts := emulatorOpts()
	opts[OptChunkSize] = "256KiB"
	fs := open(t, "gs://"+newBucket(t), opts)
	ctx, cancel := context.WithCancel(t.Context())
	r := &cancelAfter{n: 1 << 20, cancel: cancel}
	_, err := fs.Put(ctx, "partial", r, 4<<20)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a cancelled context = %v; want context.Canceled", err)
	}
	if _, err := fs.Stat(t.Context(), "partial"); !errors.Is(err, ufs.ErrNotFound) {
		t.Errorf("Stat after a cancelled Put = %v; want ErrNotFound", err)
	}
}

// cancelAfter yields zeros and cancels a context after n bytes.
type cancelAfter struct {
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
		return 0, context.Canceled
	}
	n := min(len(p), c.n)
	clear(p[:n])
	c.n -= n
	return n, nil
}

func TestExactReader(t *testing.T) {
	read := func(data string, want int64) error {
		_, err := io.ReadAll(&exactReader{r: strings.NewReader(data), want: want})
		return err
	}
	if err := read("12345", 5); err != nil {
		t.Errorf("exact: %v", err)
	}
	if err := read("12345", -1); err != nil {
		t.Errorf("unknown size: %v", err)
	}
	if err := read("123", 5); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short: %v", err)
	}
	if err := read("1234567", 5); err == nil {
		t.Errorf("long: no error")
	}
}
