package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestSecretsOffTheCommandLine mounts with the secret read from a file
// (--option KEY=@FILE) and from an option file (--option-file): no warning,
// the secret nowhere in the output. A literal secret still works, with a
// warning on stderr. A mount with no keys and no s3.credentials is refused
// even though the servers could find credentials of their own.
func TestSecretsOffTheCommandLine(t *testing.T) {
	l := startLocal(t)
	bucket := minio.NewBucket(t, "secrets")
	if _, err := minio.S3Client(t).PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket),
		Key: aws.String("hello.txt"), Body: bytes.NewReader([]byte("hello\n"))}); err != nil {
		t.Fatal(err)
	}
	o := minio.S3Options()
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(o["s3.secret_access_key"]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	optFile := filepath.Join(dir, "minio.options")
	if err := os.WriteFile(optFile, []byte("# the test MinIO\ns3.endpoint="+o["s3.endpoint"]+"\ns3.access_key_id="+o["s3.access_key_id"]+
		"\ns3.secret_access_key="+o["s3.secret_access_key"]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	for path, args := range map[string][]string{
		"/at-file":     {"--option", "s3.endpoint=" + o["s3.endpoint"], "--option", "s3.access_key_id=" + o["s3.access_key_id"], "--option", "s3.secret_access_key=@" + secretFile},
		"/option-file": {"--option-file", optFile},
	} {
		out, errOut, code := l.run(t, nil, append([]string{"fs", "mount", path, "s3://" + bucket}, args...)...)
		if code != 0 {
			t.Fatalf("mount %s: exit %d\n%s", path, code, errOut)
		}
		if strings.Contains(errOut, "warning") || strings.Contains(out+errOut, minio.SecretKey) {
			t.Errorf("mount %s: stdout %q stderr %q", path, out, errOut)
		}
		if got := l.ok(t, "fs", "cat", path+"/hello.txt"); got != "hello\n" {
			t.Errorf("cat %s/hello.txt = %q", path, got)
		}
	}

	_, errOut, code := l.run(t, nil, "fs", "mount", "/literal", "s3://"+bucket, "--option", "s3.endpoint="+o["s3.endpoint"],
		"--option", "s3.access_key_id="+o["s3.access_key_id"], "--option", "s3.secret_access_key="+o["s3.secret_access_key"])
	if code != 0 {
		t.Fatalf("mount with a literal secret: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "warning: s3.secret_access_key given on the command line") || !strings.Contains(errOut, "@FILE") ||
		strings.Contains(errOut, minio.SecretKey) {
		t.Errorf("literal secret: stderr %q; want a warning that does not repeat the secret", errOut)
	}

	// Bad option input names the file or the line.
	l.fails(t, filepath.Join(dir, "missing"), "fs", "mount", "/x", "s3://"+bucket, "--option", "s3.secret_access_key=@"+filepath.Join(dir, "missing"))
	badFile := filepath.Join(dir, "bad.options")
	if err := os.WriteFile(badFile, []byte("s3.region=us-east-1\nnot an option\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l.fails(t, badFile+", line 2", "fs", "mount", "/x", "s3://"+bucket, "--option-file", badFile)

	// No keys and no s3.credentials: refused, whatever the servers' environment holds.
	l.fails(t, "no credentials for s3://"+bucket+": give s3.access_key_id and s3.secret_access_key, or s3.credentials=ambient",
		"fs", "mount", "/x", "s3://"+bucket, "--option", "s3.endpoint="+o["s3.endpoint"])
	if out := l.ok(t, "fs", "mounts"); strings.Count(out, "\n") != 4 {
		t.Errorf("want the header and three mounts:\n%s", out)
	}
}
