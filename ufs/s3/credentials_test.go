package s3

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stratafs/strata/ufs"
)

// hostCredentials makes the MinIO keys this process's ambient AWS
// credentials (environment), with no shared files and no instance metadata.
func hostCredentials(t *testing.T) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           minio.AccessKey,
		"AWS_SECRET_ACCESS_KEY":       minio.SecretKey,
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		t.Setenv(k, v)
	}
}

// endpointOnly are the server's options without its keys.
func endpointOnly() ufs.Options {
	o := ufs.Options(maps.Clone(minio.S3Options()))
	delete(o, "s3.access_key_id")
	delete(o, "s3.secret_access_key")
	return o
}

func newFS(t *testing.T, uri string, opts ufs.Options) (*FS, error) {
	t.Helper()
	loc, err := ufs.ParseURI(uri)
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(t.Context(), loc, opts)
	if err == nil {
		t.Cleanup(func() { f.Close() })
	}
	return f, err
}

// TestNoAmbientCredentialsByDefault: keys in the host's environment are not
// used unless the mount asks for them with s3.credentials=ambient.
func TestNoAmbientCredentialsByDefault(t *testing.T) {
	hostCredentials(t)
	bucket := minio.NewBucket(t, "ambient")
	uri := "s3://" + bucket + "/p"

	_, err := newFS(t, uri, endpointOnly())
	if !errors.Is(err, ufs.ErrInvalidURI) {
		t.Fatalf("New without credentials: %v; want ErrInvalidURI", err)
	}
	want := "no credentials for " + uri + ": give s3.access_key_id and s3.secret_access_key, " +
		"or s3.credentials=ambient to use the host's AWS credentials (env, ~/.aws, instance role), or s3.credentials=anonymous"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q\ndoes not say %q", err, want)
	}

	opts := endpointOnly()
	opts["s3.credentials"] = "ambient"
	f, err := newFS(t, uri, opts)
	if err != nil {
		t.Fatalf("New with s3.credentials=ambient: %v", err)
	}
	if err := ufs.Check(t.Context(), f); err != nil {
		t.Errorf("Check with the host's credentials: %v", err)
	}
}

// TestAnonymousCredentials: s3.credentials=anonymous sends unsigned
// requests, which MinIO refuses on a private bucket and serves on a public
// one.
func TestAnonymousCredentials(t *testing.T) {
	hostCredentials(t) // present, and still not used
	ctx := t.Context()
	private := minio.NewBucket(t, "private")
	public := minio.NewBucket(t, "public")
	s3c := minio.S3Client(t)
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["*"]},
"Action":["s3:GetBucketLocation","s3:ListBucket","s3:GetObject"],"Resource":["arn:aws:s3:::%[1]s","arn:aws:s3:::%[1]s/*"]}]}`, public)
	if _, err := s3c.PutBucketPolicy(ctx, &awss3.PutBucketPolicyInput{Bucket: aws.String(public), Policy: aws.String(policy)}); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{private, public} {
		if _, err := s3c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("f"), Body: bytes.NewReader([]byte("open"))}); err != nil {
			t.Fatal(err)
		}
	}
	opts := endpointOnly()
	opts["s3.credentials"] = "anonymous"
	opts["s3.max_attempts"] = "1"

	f, err := newFS(t, "s3://"+private, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := ufs.Check(ctx, f); !errors.Is(err, ufs.ErrPermission) {
		t.Errorf("anonymous Check of a private bucket: %v; want ErrPermission", err)
	}
	f, err = newFS(t, "s3://"+public, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := ufs.Check(ctx, f); err != nil {
		t.Fatalf("anonymous Check of a public bucket: %v", err)
	}
	if fi, err := f.Stat(ctx, "f"); err != nil || fi.Size != 4 {
		t.Errorf("anonymous Stat = %+v, %v", fi, err)
	}
}

func TestCredentialsOption(t *testing.T) {
	const secret = "s3cr3t-value-never-shown"
	keys := ufs.Options{"s3.access_key_id": "id", "s3.secret_access_key": secret}
	with := func(o ufs.Options, kv ...string) ufs.Options {
		o = maps.Clone(o)
		if o == nil {
			o = ufs.Options{}
		}
		for i := 0; i < len(kv); i += 2 {
			o[kv[i]] = kv[i+1]
		}
		return o
	}
	good := map[string]struct {
		opts ufs.Options
		want string
	}{
		"keys":             {keys, credStatic},
		"keys, static":     {with(keys, "s3.credentials", "static"), credStatic},
		"ambient":          {with(nil, "s3.credentials", "ambient"), credAmbient},
		"anonymous":        {with(nil, "s3.credentials", "anonymous"), credAnonymous},
		"anonymous, other": {with(nil, "s3.credentials", "anonymous", "s3.region", "eu-west-1"), credAnonymous},
	}
	for name, c := range good {
		s, err := parseOptions("s3://b/p", c.opts)
		if err != nil || s.credentials != c.want {
			t.Errorf("%s: credentials %q, %v; want %q", name, s.credentials, err, c.want)
		}
	}
	bad := map[string]struct {
		opts ufs.Options
		want string
	}{
		"nothing":           {nil, "no credentials for s3://b/p"},
		"static, no keys":   {with(nil, "s3.credentials", "static"), "s3.credentials=static needs s3.access_key_id"},
		"ambient and keys":  {with(keys, "s3.credentials", "ambient"), "s3.credentials=ambient contradicts"},
		"anonymous, token":  {with(nil, "s3.credentials", "anonymous", "s3.session_token", secret), "s3.session_token needs"},
		"unknown mode":      {with(nil, "s3.credentials", "instance"), `s3.credentials="instance": want static`},
		"empty mode":        {with(keys, "s3.credentials", ""), `s3.credentials="": want static`},
		"with other errors": {with(nil, "s3.max_keys", "0"), "s3.max_keys"},
	}
	for name, c := range bad {
		_, err := parseOptions("s3://b/p", c.opts)
		if !errors.Is(err, ufs.ErrInvalidURI) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want ErrInvalidURI mentioning %q", name, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error shows a secret: %v", name, err)
		}
	}
}
