package cli

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stratafs/strata/tests/harness"
)

// TestSeparateDaemons runs `strata coordinator` and two `strata worker`
// processes against the etcd of a `strata local`, as a cluster would run them
// against an external etcd.
func TestSeparateDaemons(t *testing.T) {
	l := startLocal(t)
	coord := harness.Start(t, "coordinator", nil, binary, "coordinator", "--etcd-endpoints", l.etcd,
		"--listen", "127.0.0.1:0", "--metrics-listen", "", "--data-dir", t.TempDir(), "--certs-dir", l.certs)
	coord.WaitReady(t, 30*time.Second, logSays(coord, "coordinator serving"))
	for i := range 2 {
		w := harness.Start(t, fmt.Sprintf("worker-%d", i), nil, binary, "worker", "--etcd-endpoints", l.etcd,
			"--listen", "127.0.0.1:0", "--data-listen", "127.0.0.1:0", "--memory", "64MiB", "--data-dir", t.TempDir(), "--certs-dir", l.certs)
		w.WaitReady(t, 30*time.Second, logSays(w, "worker serving"))
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(l.ok(t, "report"), "Workers: 3") {
		if time.Now().After(deadline) {
			t.Fatalf("report never showed 3 workers:\n%s", l.ok(t, "report"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	bucket := minio.NewBucket(t, "daemons")
	var files [][]byte
	for i := range 12 {
		data := bytes.Repeat([]byte{byte('a' + i)}, 300_000+i)
		files = append(files, data)
		if _, err := minio.S3Client(t).PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket),
			Key: aws.String(fmt.Sprintf("f%02d", i)), Body: bytes.NewReader(data)}); err != nil {
			t.Fatal(err)
		}
	}
	o := minio.S3Options()
	l.ok(t, "fs", "mount", "/d", "s3://"+bucket, "--option", "s3.endpoint="+o["s3.endpoint"],
		"--option", "s3.access_key_id="+o["s3.access_key_id"], "--option", "s3.secret_access_key="+o["s3.secret_access_key"])
	for i, want := range files {
		if got := l.ok(t, "fs", "cat", fmt.Sprintf("/d/f%02d", i)); got != string(want) {
			t.Fatalf("f%02d: wrong bytes through the cluster", i)
		}
	}
	// Every worker took part: the files spread over the ring.
	rep := l.ok(t, "report")
	served := 0
	for _, line := range strings.Split(rep, "\n") {
		if f := strings.Fields(line); len(f) > 8 && strings.HasPrefix(f[0], "w-") && f[8] != "0" {
			served++
		}
	}
	if served < 2 {
		t.Errorf("only %d workers missed pages for 12 files; placement is not spreading:\n%s", served, rep)
	}
}

func logSays(p *harness.Process, what string) func(context.Context) error {
	return func(context.Context) error {
		if !strings.Contains(p.Tail(1<<20), what) {
			return fmt.Errorf("waiting for %q", what)
		}
		return nil
	}
}

// TestDaemonWaitsForEtcd: a worker started before its etcd retries with
// backoff instead of exiting, and serves once etcd is up.
func TestDaemonWaitsForEtcd(t *testing.T) {
	ports := harness.FreePorts(t, 2)
	etcd := "http://" + harness.Addr(ports[0])
	w := harness.Start(t, "worker", nil, binary, "worker", "--etcd-endpoints", etcd,
		"--listen", "127.0.0.1:0", "--data-listen", "127.0.0.1:0", "--memory", "64MiB", "--data-dir", t.TempDir())
	w.WaitReady(t, 30*time.Second, logSays(w, "etcd is not reachable yet; retrying"))
	if w.Exited() {
		t.Fatalf("the worker exited instead of waiting for etcd:\n%s", w.Tail(2000))
	}
	// Now etcd comes up (plaintext, as the worker has no certificates).
	l := harness.Start(t, "strata-local", []string{"STRATA_S3_LISTEN=127.0.0.1:0", "STRATA_HDFS_LISTEN=127.0.0.1:0"}, binary,
		"local", "--insecure", "--data-dir", t.TempDir(), "--embed-client-url", etcd, "--embed-peer-url", "http://"+harness.Addr(ports[1]),
		"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--worker-listen", "127.0.0.1:0",
		"--worker-data-listen", "127.0.0.1:0", "--worker-memory", "64MiB")
	l.WaitReady(t, 60*time.Second, logSays(l, "Strata is running"))
	w.WaitReady(t, 60*time.Second, logSays(w, "worker serving"))
}
