package s3compat

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stratafs/strata/tests/harness"
)

// TestStrataLocal runs the strata binary's `strata local` with its S3
// listener: it prints the endpoint and a generated development key, which
// the AWS CLI then uses on a bucket mounted with `strata fs mount`. The key
// stays the same across restarts.
func TestStrataLocal(t *testing.T) {
	aws := tool(t, awsCLI, "awscli")
	if testing.Short() {
		t.Skip("builds the strata binary")
	}
	bin := filepath.Join(t.TempDir(), "strata")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/stratafs/strata/cmd/strata").CombinedOutput(); err != nil {
		t.Fatalf("build strata: %v\n%s", err, out)
	}
	dataDir := t.TempDir()
	ports := harness.FreePorts(t, 2)
	etcd, etcdPeer := "http://"+harness.Addr(ports[0]), "http://"+harness.Addr(ports[1])
	start := func() (endpoint, id, secret string, p *harness.Process) {
		args := []string{"local", "--data-dir", dataDir,
			"--embed-client-url", etcd, "--embed-peer-url", etcdPeer,
			"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
			"--worker-listen", "127.0.0.1:0", "--worker-data-listen", "127.0.0.1:0", "--worker-memory", "128MiB"}
		p = harness.Start(t, "strata-local", []string{"STRATA_S3_LISTEN=127.0.0.1:0", "STRATA_HDFS_LISTEN=127.0.0.1:0"}, bin, args...)
		var log []byte
		p.WaitReady(t, 90*time.Second, func(context.Context) error {
			log, _ = os.ReadFile(p.Log)
			if !bytes.Contains(log, []byte("Strata is running")) {
				return fmt.Errorf("not started yet")
			}
			return nil
		})
		m := regexp.MustCompile(`S3 API:\s+(http://\S+)`).FindSubmatch(log)
		k := regexp.MustCompile(`AccessKey: (\S+)\s+SecretKey: (\S+)`).FindSubmatch(log)
		if m == nil || k == nil {
			t.Fatalf("strata local printed no S3 endpoint or development key:\n%s", log)
		}
		return string(m[1]), string(k[1]), string(k[2]), p
	}
	endpoint, id, secret, p := start()
	bucket := minio.NewBucket(t, "local")
	opts := minio.S3Options()
	mount := []string{"--etcd-endpoints", etcd, "--certs-dir", filepath.Join(dataDir, "certs"), "fs", "mount", "/shared", "s3://" + bucket}
	for _, k := range []string{"s3.endpoint", "s3.region", "s3.access_key_id", "s3.secret_access_key"} {
		mount = append(mount, "--option", k+"="+opts[k])
	}
	run(t, os.Environ(), bin, mount...)

	env := clientEnv(t)
	for i, kv := range env {
		switch {
		case strings.HasPrefix(kv, "AWS_ACCESS_KEY_ID="):
			env[i] = "AWS_ACCESS_KEY_ID=" + id
		case strings.HasPrefix(kv, "AWS_SECRET_ACCESS_KEY="):
			env[i] = "AWS_SECRET_ACCESS_KEY=" + secret
		}
	}
	src := filepath.Join(t.TempDir(), "hello.txt")
	if err := os.WriteFile(src, []byte("hello through strata local\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, env, aws, "--endpoint-url", endpoint, "s3", "cp", src, "s3://shared/dir/hello.txt")
	if out := run(t, env, aws, "--endpoint-url", endpoint, "s3", "ls", "s3://shared/dir/"); !strings.Contains(out, "hello.txt") {
		t.Errorf("s3 ls:\n%s", out)
	}
	if got, err := minioGet(t, bucket, "dir/hello.txt"); err != nil || string(got) != "hello through strata local\n" {
		t.Errorf("MinIO: %q %v", got, err)
	}

	// Restarted, it serves with the same development key.
	p.Stop(20 * time.Second)
	endpoint2, id2, secret2, _ := start()
	if id2 != id || secret2 != secret {
		t.Errorf("the development key changed across a restart")
	}
	if out := run(t, env, aws, "--endpoint-url", endpoint2, "s3", "ls", "s3://shared/dir/"); !strings.Contains(out, "hello.txt") {
		t.Errorf("s3 ls after the restart:\n%s", out)
	}
}
