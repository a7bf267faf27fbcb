package cli

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestSecurityFromOutside tries `strata local` as a stranger and as a plain
// client would: no certificate, a client certificate that is not admin, the
// worker's data port without a token; and checks that the mount secret is
// nowhere at rest under the data dir or in the logs.
func TestSecurityFromOutside(t *testing.T) {
	l := startLocal(t)
	bucket := minio.NewBucket(t, "security")
	o := minio.S3Options()
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte(o["s3.secret_access_key"]), 0o600); err != nil {
		t.Fatal(err)
	}
	l.ok(t, "fs", "mount", "/sec", "s3://"+bucket, "--option", "s3.endpoint="+o["s3.endpoint"],
		"--option", "s3.access_key_id="+o["s3.access_key_id"], "--option", "s3.secret_access_key=@"+secretFile)

	// A stranger: no certificates at all.
	stranger := t.TempDir()
	cmd := exec.Command(binary, "--etcd-endpoints", l.etcd, "--certs-dir", stranger, "fs", "mounts")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no certificates") {
		t.Errorf("a client without certificates: err %v, output %q; want a refusal naming the missing certificates", err, out)
	}

	// A plain (non-admin) client certificate: may list, may not mount.
	l.ok(t, "cert", "create-client", "bob", "--certs-dir", l.certs)
	bob := t.TempDir()
	for _, f := range []string{"ca.crt", "client.bob.crt", "client.bob.key"} {
		b, err := os.ReadFile(filepath.Join(l.certs, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bob, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	asBob := func(args ...string) (string, error) {
		out, err := exec.Command(binary, append([]string{"--etcd-endpoints", l.etcd, "--certs-dir", bob}, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := asBob("fs", "mounts"); err != nil || !strings.Contains(out, "/sec") {
		t.Errorf("bob fs mounts: %v\n%s", err, out)
	}
	for _, args := range [][]string{
		{"fs", "mount", "/pwn", "file:///"},
		{"fs", "unmount", "/sec"},
		{"load", "/sec", "--detach"},
		{"free", "/sec"},
	} {
		if out, err := asBob(args...); err == nil || !strings.Contains(out, "admin") {
			t.Errorf("bob %v: err %v, output %q; want a refusal naming the admin role", args, err, out)
		}
	}
	if out := l.ok(t, "fs", "mounts"); strings.Contains(out, "/pwn") {
		t.Errorf("a refused mount is in the table:\n%s", out)
	}

	// The worker's data port serves nothing without a data token.
	report := l.ok(t, "report")
	addr := regexp.MustCompile(`127\.0\.0\.1:\d+`).FindString(report[strings.Index(report, "WORKER"):])
	for _, path := range []string{"/", "/v1/data?mount=x&path=a&off=0&n=1"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 300 {
			t.Errorf("data port %s answered %d without a token", path, resp.StatusCode)
		}
	}

	// The secret is nowhere at rest: not in etcd's files, not in the log.
	dataDir := filepath.Dir(l.certs)
	secret := []byte(o["s3.secret_access_key"])
	_ = filepath.Walk(dataDir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, secret) {
			t.Errorf("%s holds the mount secret in plaintext", p)
		}
		return nil
	})
	if strings.Contains(l.proc.Tail(1<<20), string(secret)) {
		t.Error("the log of strata local shows the mount secret")
	}
}

// TestDaemonRefusesInsecureBind: a coordinator or worker without
// certificates refuses a non-loopback address unless --insecure is given.
func TestDaemonRefusesInsecureBind(t *testing.T) {
	for _, args := range [][]string{
		{"coordinator", "--listen", "0.0.0.0:0", "--metrics-listen", ""},
		{"worker", "--listen", "127.0.0.1:0", "--data-listen", "0.0.0.0:0"},
	} {
		dir := t.TempDir()
		cmd := exec.Command(binary, append(args, "--data-dir", dir, "--etcd-endpoints", "http://127.0.0.1:1")...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "--insecure") || !strings.Contains(string(out), "without TLS") {
			t.Errorf("strata %v without certificates: err %v, output %q; want a refusal that names --insecure", args, err, out)
		}
	}
}
