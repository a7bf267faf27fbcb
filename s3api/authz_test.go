package s3api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/tests/harness"
)

const (
	readerID     = "READER0001"
	readerSecret = "reader-secret-0001"
	starID       = "STARKEY001"
	starSecret   = "star-secret-from-a-file-0001"
	noneID       = "NOKEY00001"
	noneSecret   = "none-secret-0001"
)

// TestS3KeysConfig loads the documented shape of s3.keys and
// s3.anonymous_buckets from YAML.
func TestS3KeysConfig(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "star.secret")
	if err := os.WriteFile(secretFile, []byte(starSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yml := `s3:
  access_keys: ["ADMINKEY01:admin-secret-0001"]
  keys:
    - access_key_id: ` + readerID + `
      secret_access_key: ` + readerSecret + `
      buckets: {data: read}
    - access_key_id: ` + starID + `
      secret_file: ` + secretFile + `
      buckets:
        "*": read
        other: write
        private: none
  anonymous: "off"
  anonymous_buckets: {public: read}
`
	p := filepath.Join(dir, "strata.yaml")
	if err := os.WriteFile(p, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := conf.Load(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range cfg.S3.Keys() {
		ids = append(ids, k.ID)
		if k.ID == starID && k.Secret != starSecret {
			t.Errorf("the secret of %s was not read from its file (trimmed)", starID)
		}
	}
	if want := []string{"ADMINKEY01", readerID, starID}; !slices.Equal(ids, want) {
		t.Errorf("keys %v, want %v", ids, want)
	}
	star, ok := cfg.S3.BucketKey(starID)
	if !ok {
		t.Fatal("no bucket key", starID)
	}
	for bucket, want := range map[string]string{"data": "read", "other": "write", "private": "none", "anything": "read"} {
		if got := star.Permission(bucket); got != want {
			t.Errorf("%s on %s: %s, want %s", starID, bucket, got, want)
		}
	}
	reader, _ := cfg.S3.BucketKey(readerID)
	if got := reader.Permission("other"); got != conf.S3PermNone {
		t.Errorf("a bucket not named without \"*\": %s, want none", got)
	}
	if _, ok := cfg.S3.BucketKey("ADMINKEY01"); ok {
		t.Error("a key of access_keys has bucket permissions")
	}
	for _, tc := range []struct{ anonymous, bucket, want string }{
		{"off", "public", "read"}, {"off", "data", "none"}, {"off", "", "none"},
		{"read", "data", "read"}, {"read", "", "read"}, {"read-write", "public", "write"},
	} {
		s := cfg.S3
		s.Anonymous = tc.anonymous
		if got := s.AnonymousPermission(tc.bucket); got != tc.want {
			t.Errorf("anonymous %s on %q: %s, want %s", tc.anonymous, tc.bucket, got, tc.want)
		}
	}

	// Per-bucket keys and anonymous buckets are YAML-only.
	for _, v := range []string{"STRATA_S3_KEYS=x", "STRATA_S3_ANONYMOUS_BUCKETS=b=read"} {
		if err := conf.ApplyEnv(&cfg, []string{v}); err == nil || !strings.Contains(err.Error(), "YAML") {
			t.Errorf("%s: %v, want an error pointing to the YAML file", v, err)
		}
	}
}

func TestS3KeysValidation(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.secret")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := conf.Default()
	cfg.S3.AccessKeys = []string{"DUPKEY0001:dup-secret-0001"}
	cfg.S3.BucketKeys = []conf.S3Key{
		{AccessKeyID: "DUPKEY0001", SecretAccessKey: "leaky-secret-0001", Buckets: map[string]string{"data": "read"}},       // 0: id of access_keys
		{AccessKeyID: "KEY0000002", SecretAccessKey: "", Buckets: map[string]string{"data": "read"}},                        // 1: no secret
		{AccessKeyID: "KEY0000003", SecretFile: empty, Buckets: map[string]string{"data": "read"}},                          // 2: empty file
		{AccessKeyID: "KEY0000004", SecretFile: filepath.Join(dir, "missing"), Buckets: map[string]string{"*": "write"}},    // 3: no file
		{AccessKeyID: "KEY0000005", SecretAccessKey: "leaky-secret-0005", SecretFile: empty, Buckets: map[string]string{}},  // 4: both, no buckets
		{AccessKeyID: "KEY0000006", SecretAccessKey: "leaky-secret-0006", Buckets: map[string]string{"data": "read-write"}}, // 5: bad level
		{AccessKeyID: "KEY0000006", SecretAccessKey: "leaky-secret-0007", Buckets: map[string]string{"a/b": "read"}},        // 6: dup id, bad bucket
		{AccessKeyID: "x", SecretAccessKey: "leaky secret 8", Buckets: map[string]string{"data": "write"}},                  // 7: bad id and secret
	}
	cfg.S3.AnonymousBuckets = map[string]string{"pub": "none", "*": "read", "ok": "read-write"}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("a bad s3.keys validated")
	}
	msg := err.Error()
	for _, want := range []string{
		`s3.keys[0].access_key_id: access key id "DUPKEY0001" is listed twice`,
		"s3.keys[1]: ", "secret is empty",
		"s3.keys[2]: ", "is empty",
		"s3.keys[3]: ", "missing",
		"s3.keys[4]: ", "not both", "s3.keys[4].buckets: grants nothing",
		`s3.keys[5].buckets: bucket "data": "read-write" is not one of none, read, write`,
		`s3.keys[6].access_key_id: access key id "KEY0000006" is listed twice`, `s3.keys[6].buckets: "a/b"`,
		`s3.keys[7].access_key_id: "x"`, "s3.keys[7]: ",
		`s3.anonymous_buckets: bucket "pub": "none" is not one of read, write`,
		`s3.anonymous_buckets: "*": set s3.anonymous`,
		`s3.anonymous_buckets: bucket "ok": "read-write"`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("no %q in:\n%v", want, msg)
		}
	}
	if strings.Contains(msg, "leaky") {
		t.Errorf("a secret leaked into the error:\n%v", msg)
	}
	if !errors.Is(err, conf.ErrInvalid) {
		t.Errorf("not ErrInvalid: %v", err)
	}
}

// TestAuthorizeOps checks the level each operation needs, without a
// cluster.
func TestAuthorizeOps(t *testing.T) {
	cfg := conf.DefaultS3API()
	cfg.AccessKeys = []string{testKeyID + ":" + testKeySecret}
	cfg.BucketKeys = []conf.S3Key{
		{AccessKeyID: readerID, SecretAccessKey: readerSecret, Buckets: map[string]string{"data": "read", "other": "write"}},
	}
	cfg.AnonymousBuckets = map[string]string{"pub": "read"}
	s := &Server{cfg: cfg}
	type req struct {
		method, path, query, copySource string
	}
	for _, tc := range []struct {
		r         req
		op        string
		reader    string // "" when allowed, else the start of the message
		anonymous string
	}{
		{req{"GET", "/", "", ""}, "ListBuckets", "", "anonymous requests may not list buckets"},
		{req{"GET", "/data/k", "", ""}, "GetObject", "", "anonymous requests may not read bucket 'data'"},
		{req{"HEAD", "/data/k", "", ""}, "HeadObject", "", "anonymous"},
		{req{"GET", "/data", "list-type=2", ""}, "ListObjectsV2", "", "anonymous"},
		{req{"HEAD", "/data", "", ""}, "HeadBucket", "", "anonymous"},
		{req{"GET", "/data", "uploads", ""}, "ListMultipartUploads", "", "anonymous"},
		{req{"GET", "/data/k", "uploadId=u", ""}, "ListParts", "", "anonymous"},
		{req{"PUT", "/data/k", "", ""}, "PutObject", "access key READER0001 may not write to bucket 'data'", "anonymous requests may not write to bucket 'data'"},
		{req{"DELETE", "/data/k", "", ""}, "DeleteObject", "access key READER0001 may not write", "anonymous"},
		{req{"POST", "/data", "delete", ""}, "DeleteObjects", "access key READER0001 may not write", "anonymous"},
		{req{"POST", "/data/k", "uploads", ""}, "CreateMultipartUpload", "access key READER0001 may not write", "anonymous"},
		{req{"PUT", "/data/k", "partNumber=1&uploadId=u", ""}, "UploadPart", "access key READER0001 may not write", "anonymous"},
		{req{"POST", "/data/k", "uploadId=u", ""}, "CompleteMultipartUpload", "access key READER0001 may not write", "anonymous"},
		{req{"DELETE", "/data/k", "uploadId=u", ""}, "AbortMultipartUpload", "access key READER0001 may not write", "anonymous"},
		{req{"PUT", "/data/k", "", "/other/src"}, "CopyObject", "access key READER0001 may not write", "anonymous"},
		{req{"PUT", "/other/k", "", "/data/src"}, "CopyObject", "", "anonymous"},
		{req{"PUT", "/other/k", "", "/secret/src"}, "CopyObject", "access key READER0001 may not read bucket 'secret' (the copy source)", "anonymous"},
		{req{"PUT", "/other/k", "partNumber=1&uploadId=u", "/secret/src"}, "UploadPartCopy", "access key READER0001 may not read bucket 'secret'", "anonymous"},
		{req{"PUT", "/other/k", "partNumber=1&uploadId=u", "data/src"}, "UploadPartCopy", "", "anonymous"},
		{req{"GET", "/secret/k", "", ""}, "GetObject", "access key READER0001 may not read bucket 'secret'", "anonymous"},
		{req{"GET", "/pub/k", "", ""}, "GetObject", "access key READER0001 may not read bucket 'pub'", ""},
		{req{"GET", "/pub", "", ""}, "ListObjects", "access key READER0001 may not read", ""},
		{req{"PUT", "/pub/k", "", ""}, "PutObject", "access key READER0001 may not write", "anonymous requests may only read"},
		{req{"GET", "/data/k", "tagging", ""}, "NotImplemented", "access key READER0001 may not write", "anonymous"},
	} {
		r := httptest.NewRequest(tc.r.method, "http://127.0.0.1"+tc.r.path+"?"+tc.r.query, nil)
		if tc.r.copySource != "" {
			r.Header.Set("X-Amz-Copy-Source", tc.r.copySource)
		}
		tg, aerr := splitTarget(r.Host, r.URL.Path, nil)
		if aerr != nil {
			t.Fatal(aerr)
		}
		q, err := parseQuery(r.URL.RawQuery)
		if err != nil {
			t.Fatal(err)
		}
		op := operation(r.Method, tg, q, r.Header)
		if op != tc.op {
			t.Fatalf("%v: op %s, want %s", tc.r, op, tc.op)
		}
		for _, who := range []struct {
			id   identity
			want string
		}{{identity{AccessKey: testKeyID}, ""}, {identity{AccessKey: readerID}, tc.reader}, {identity{}, tc.anonymous}} {
			e := s.authorize(r, op, who.id)
			switch {
			case who.want == "" && e != nil:
				t.Errorf("%s %v as %s: %v, want allowed", op, tc.r, who.id, e)
			case who.want != "" && e == nil:
				t.Errorf("%s %v as %s: allowed, want %q", op, tc.r, who.id, who.want)
			case who.want != "" && (e.Code != "AccessDenied" || e.Status != http.StatusForbidden || !strings.HasPrefix(e.Message, who.want)):
				t.Errorf("%s %v as %s: %d %s %q, want 403 AccessDenied %q", op, tc.r, who.id, e.Status, e.Code, e.Message, who.want)
			}
		}
	}
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestBucketPermissions runs real requests of aws-sdk-go-v2 against keys
// with per-bucket permissions: buckets data, other and third.
func TestBucketPermissions(t *testing.T) {
	t.Parallel()
	secretFile := filepath.Join(t.TempDir(), "star.secret")
	if err := os.WriteFile(secretFile, []byte(starSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := startEnv(t, func(cfg *conf.Config) {
		cfg.S3.BucketKeys = []conf.S3Key{
			{AccessKeyID: readerID, SecretAccessKey: readerSecret, Buckets: map[string]string{"data": "read"}},
			{AccessKeyID: starID, SecretFile: secretFile, Buckets: map[string]string{"*": "read", "other": "write"}},
			{AccessKeyID: noneID, SecretAccessKey: noneSecret, Buckets: map[string]string{"data": "none", "*": "write"}},
		}
		cfg.S3.AnonymousBuckets = map[string]string{"other": "read"}
	})
	otherDir, thirdDir := t.TempDir(), t.TempDir()
	e.c.MustMount(t, "/other", "file://"+otherDir, nil)
	e.c.MustMount(t, "/third", "file://"+thirdDir, nil)
	writeFile(t, filepath.Join(e.dir, "a.txt"), []byte("in data"))
	writeFile(t, filepath.Join(otherDir, "b.txt"), []byte("in other"))
	writeFile(t, filepath.Join(thirdDir, "c.txt"), []byte("in third"))

	// A second server on the same cluster whose debug log is kept.
	var logs syncBuffer
	srv, err := New(context.Background(), e.cfg, Deps{Client: e.c.Client,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.Close(); _ = srv.Close(context.Background()) })
	e.url = hs.URL
	ctx := context.Background()
	as := func(id, secret string) *s3.Client {
		return e.sdk(t, func(o *s3.Options) { o.Credentials = credentials.NewStaticCredentialsProvider(id, secret, "") })
	}
	full, reader, star, none := e.sdk(t), as(readerID, readerSecret), as(starID, starSecret), as(noneID, noneSecret)
	denied := func(what string, err error) {
		t.Helper()
		harness.WantS3Error(t, what, err, "AccessDenied", 403)
	}
	allowed := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	buckets := func(cl *s3.Client) []string {
		t.Helper()
		out, err := cl.ListBuckets(ctx, &s3.ListBucketsInput{})
		if err != nil {
			t.Fatalf("ListBuckets: %v", err)
		}
		var names []string
		for _, b := range out.Buckets {
			names = append(names, aws.ToString(b.Name))
		}
		return names
	}
	exists := func(path string) bool {
		_, err := os.Stat(path)
		return err == nil
	}

	// A read-only key: reads, and nothing else.
	if b, _, err := get(t, reader, "data", "a.txt"); err != nil || string(b) != "in data" {
		t.Errorf("reader GET: %q %v", b, err)
	}
	_, err = reader.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("data"), Key: aws.String("a.txt")})
	allowed("reader HEAD", err)
	_, err = reader.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("data")})
	allowed("reader HeadBucket", err)
	lo, err := reader.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("data")})
	if err != nil || len(lo.Contents) != 1 {
		t.Errorf("reader LIST: %v %v", lo, err)
	}
	_, err = reader.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("new"), Body: strings.NewReader("x")})
	denied("reader PUT", err)
	_, err = reader.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("data"), Key: aws.String("a.txt")})
	denied("reader DELETE", err)
	_, err = reader.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("data"),
		Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: aws.String("a.txt")}}}})
	denied("reader DeleteObjects", err)
	_, err = reader.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("data"), Key: aws.String("copy"), CopySource: aws.String("data/a.txt")})
	denied("reader CopyObject into data", err)
	_, err = reader.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String("mp")})
	denied("reader CreateMultipartUpload", err)
	up, err := full.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String("mp")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = reader.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("data"), Key: aws.String("mp"), UploadId: up.UploadId,
		PartNumber: aws.Int32(1), Body: strings.NewReader("part")})
	denied("reader UploadPart into another key's upload", err)
	_, err = reader.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String("mp"), UploadId: up.UploadId})
	denied("reader AbortMultipartUpload", err)
	_, err = full.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String("mp"), UploadId: up.UploadId})
	allowed("full key AbortMultipartUpload", err)
	_, _, err = get(t, reader, "other", "b.txt")
	denied("reader GET of a bucket not named (no \"*\")", err)
	if exists(filepath.Join(e.dir, "new")) || exists(filepath.Join(e.dir, "copy")) || !exists(filepath.Join(e.dir, "a.txt")) {
		t.Error("a denied request changed the bucket")
	}
	if got := buckets(reader); !slices.Equal(got, []string{"data"}) {
		t.Errorf("reader ListBuckets: %v, want [data]", got)
	}

	// "*": read everywhere, write on other; copies need read on the source.
	_, _, err = get(t, star, "third", "c.txt")
	allowed("star GET third", err)
	_, err = star.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("new"), Body: strings.NewReader("x")})
	denied("star PUT into a \"*\": read bucket", err)
	put(t, star, "other", "by-star", []byte("x"))
	_, err = star.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("other"), Key: aws.String("copied"), CopySource: aws.String("data/a.txt")})
	allowed("star CopyObject data → other", err)
	if b, err := os.ReadFile(filepath.Join(otherDir, "copied")); err != nil || string(b) != "in data" {
		t.Errorf("copied: %q %v", b, err)
	}
	if got := buckets(star); !slices.Equal(got, []string{"data", "other", "third"}) {
		t.Errorf("star ListBuckets: %v", got)
	}

	// none on data: invisible and unreadable, while "*" lets it write
	// elsewhere.
	_, _, err = get(t, none, "data", "a.txt")
	denied("none GET", err)
	_, err = none.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("data")})
	harness.WantS3Error(t, "none HeadBucket", err, "", 403)
	_, err = none.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("data")})
	denied("none LIST", err)
	_, err = none.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("third"), Key: aws.String("stolen"), CopySource: aws.String("data/a.txt")})
	denied("none CopyObject out of data", err)
	if exists(filepath.Join(thirdDir, "stolen")) {
		t.Error("a copy out of a bucket the key may not read was made")
	}
	_, err = none.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("third"),
		Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: aws.String("c.txt")}}}})
	allowed("none DeleteObjects in third (\"*\": write)", err)
	if got := buckets(none); !slices.Equal(got, []string{"other", "third"}) {
		t.Errorf("none ListBuckets: %v, want [other third]", got)
	}
	if got := buckets(full); !slices.Equal(got, []string{"data", "other", "third"}) {
		t.Errorf("access_keys key ListBuckets: %v", got)
	}

	// Anonymous: read on other only.
	anon := func(method, path string) (int, string) {
		t.Helper()
		r, err := http.NewRequest(method, e.url+path, strings.NewReader(""))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := e.http.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := anon("GET", "/other/b.txt"); code != 200 || body != "in other" {
		t.Errorf("anonymous GET of other: %d %q", code, body)
	}
	if code, _ := anon("GET", "/other?list-type=2"); code != 200 {
		t.Errorf("anonymous LIST of other: %d", code)
	}
	for _, c := range []struct{ method, path string }{{"GET", "/data/a.txt"}, {"PUT", "/other/anon"}, {"DELETE", "/other/b.txt"}, {"GET", "/"}} {
		if code, body := anon(c.method, c.path); code != 403 || errorCode(t, []byte(body)) != "AccessDenied" {
			t.Errorf("anonymous %s %s: %d %s", c.method, c.path, code, body)
		}
	}

	// The message of a refusal names the key and the bucket, never a secret
	// or the under-storage.
	resp, body := rawAs(t, e, readerID, readerSecret, "PUT", "/data/new", []byte("x"))
	if resp.StatusCode != 403 || !strings.Contains(string(body), "access key READER0001 may not write to bucket &#39;data&#39;") {
		t.Errorf("refusal: %d %s", resp.StatusCode, body)
	}
	log := logs.String()
	for _, leak := range []string{readerSecret, starSecret, noneSecret, testKeySecret, "file://"} {
		if strings.Contains(string(body), leak) || strings.Contains(log, leak) {
			t.Errorf("%q leaked into a response or the log", leak)
		}
	}
	if !strings.Contains(log, "AccessDenied") {
		t.Errorf("refusals were not logged at debug level:\n%s", log)
	}
}

// rawAs sends a request signed with the given key.
func rawAs(t *testing.T, e *env, id, secret, method, path string, body []byte) (*http.Response, []byte) {
	t.Helper()
	r := newReq(t, method, e.url, path, "", body)
	sum := sha256Hex(body)
	r.Header.Set("X-Amz-Content-Sha256", sum)
	if err := s3Signer().SignHTTP(context.Background(), creds(id, secret), r, sum, "s3", "us-east-1", time.Now()); err != nil {
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

// TestAuthorizationDocParses keeps the example of docs/s3-api.md's
// Authorization section true.
func TestAuthorizationDocParses(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "s3-api.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "## Authorization\n")
	if !ok {
		t.Fatal("no Authorization section in docs/s3-api.md")
	}
	_, rest, ok = strings.Cut(rest, "```yaml\n")
	if !ok {
		t.Fatal("no yaml example in the Authorization section")
	}
	block, _, _ := strings.Cut(rest, "```")
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("training-secret-0001\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	block = strings.ReplaceAll(block, "/run/secrets/strata-training", secret)
	p := filepath.Join(dir, "strata.yaml")
	if err := os.WriteFile(p, []byte(block), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := conf.Load(p, nil)
	if err != nil {
		t.Fatalf("the documented example does not load: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the documented example does not validate: %v", err)
	}
	if len(cfg.S3.Keys()) != 3 || cfg.S3.AnonymousPermission("public") != conf.S3PermRead {
		t.Errorf("the documented example: %d keys, anonymous on public: %s", len(cfg.S3.Keys()), cfg.S3.AnonymousPermission("public"))
	}
}
