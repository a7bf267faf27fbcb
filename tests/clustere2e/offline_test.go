package clustere2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stratafs/strata/tests/harness"
	"github.com/stratafs/strata/tests/proccluster"
)

// TestLoadedDatasetSurvivesWorkerLoss loads a dataset (a few hundred small
// files in directories and a few multi-block files) into 3 workers with a
// memory tier over a disk tier, stops the bucket, and then restarts one
// worker gracefully, drains one and kills one with SIGKILL, one at a time:
// every file reads back byte-exact through the client library and `strata fs
// cat` while one holder of each piece lives. With 2 replicas every piece
// (data and metadata) has two holders; with 1 replica the drained worker
// keeps serving what only it holds.
func TestLoadedDatasetSurvivesWorkerLoss(t *testing.T) {
	origin := harness.StartMinIO(t) // stopped below: not the package's
	c := &testCluster{proccluster.Start(t, proccluster.Options{Binary: binary, Workers: 3, Coordinators: 1, BlockSize: blockSize,
		MetadataTTL: 2 * time.Second, MemoryTier: "8MiB", RequestTimeout: 20 * time.Second, MinIO: origin})}
	bucket := origin.NewBucket(t, "offline")
	ds := dataset{}
	for i := range 300 {
		ds[fmt.Sprintf("d%d/f%03d.bin", i%6, i)] = randBytes(1 + (i*7919)%(24<<10))
	}
	for i := range 3 {
		ds[fmt.Sprintf("big/ckpt-%d.bin", i)] = randBytes(2*blockSize + 1<<20 + i*4099) // 3 blocks
	}
	ds["top.txt"] = []byte("at the mount root\n")
	s3c := origin.S3Client(t)
	for k, b := range ds {
		if _, err := s3c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: bytes.NewReader(b)}); err != nil {
			t.Fatal(err)
		}
	}
	// Two mounts of the bucket: /r2 loaded with 2 replicas, /r1 with 1.
	c.Mount("/r2", bucket)
	c.Mount("/r1", bucket)
	start := time.Now()
	for _, l := range []struct{ path, replicas string }{{"/r2", "2"}, {"/r1", "1"}} {
		var j struct {
			State    string `json:"state"`
			Progress struct {
				FilesDone   int `json:"files_done"`
				FilesFailed int `json:"files_failed"`
			} `json:"progress"`
		}
		out := c.MustCLI("load", l.path, "--replicas", l.replicas, "--json", "-q")
		if err := json.Unmarshal([]byte(out), &j); err != nil || j.State != "done" || j.Progress.FilesDone != len(ds) || j.Progress.FilesFailed != 0 {
			t.Fatalf("load %s: %v\n%s", l.path, err, out)
		}
	}
	t.Logf("loaded %d files twice in %s", len(ds), time.Since(start).Round(time.Millisecond))

	origin.Stop(10 * time.Second)
	time.Sleep(2500 * time.Millisecond) // past the metadata TTL
	readAll := func(phase string, mounts ...string) {
		t.Helper()
		for _, m := range mounts {
			start := time.Now()
			if err := c.ReadAll(ds, m); err != nil {
				t.Fatalf("%s: read %s: %v", phase, m, err)
			}
			for _, k := range []string{"top.txt", "d3/f123.bin", "big/ckpt-1.bin"} {
				if got := c.MustCLI("fs", "cat", m+"/"+k); got != string(ds[k]) {
					t.Fatalf("%s: fs cat %s%s: %d bytes, want %d", phase, m, k, len(got), len(ds[k]))
				}
			}
			if out := c.MustCLI("fs", "ls", m+"/d5"); strings.Count(out, ".bin") != 50 {
				t.Fatalf("%s: fs ls %s/d5 lists %d files, want 50:\n%s", phase, m, strings.Count(out, ".bin"), out)
			}
			t.Logf("%s: %s read back in %s", phase, m, time.Since(start).Round(time.Millisecond))
		}
	}
	readAll("bucket down", "/r2", "/r1")
	// --sync asks the bucket itself, and must say it does not answer.
	if out, _, code := c.Run("fs", "ls", "--sync", "/r2/d1"); code == 0 {
		t.Fatalf("fs ls --sync with the bucket down succeeded:\n%s", out)
	}

	// 1. A graceful restart of w0: its memory tier is spilled to disk, its
	// metadata comes back from disk.
	old := c.Workers["w0"]
	old.Stop(20 * time.Second)
	c.WaitRing(2)
	readAll("w0 stopped", "/r2")
	c.StartWorker("w0")
	c.WaitRing(3)
	if log := old.Tail(1 << 22); !strings.Contains(log, "memory tier spilled to disk") {
		t.Errorf("w0 did not spill its memory tier when stopped:\n%s", grepLines(log, "spill", "WARN", "ERROR"))
	}
	if log := c.Workers["w0"].Tail(1 << 20); !strings.Contains(log, "metadata cache restored from disk") {
		t.Errorf("w0 did not restore its metadata:\n%s", log)
	}
	readAll("w0 restarted", "/r2", "/r1")

	// 2. Drain w2: it leaves placement but stays readable for what it holds
	// (the only copy of a third of /r1).
	before := c.WorkerStats("w2").GetServedBytes()
	c.MustCLI("worker", "drain", "w2")
	c.WaitRing(2)
	readAll("w2 draining", "/r1", "/r2")
	if served := c.WorkerStats("w2").GetServedBytes() - before; served == 0 {
		t.Error("the draining w2 served nothing: its data was not read from it")
	}
	c.MustCLI("worker", "undrain", "w2")
	c.WaitRing(3)

	// 3. kill -9 of w1: the other replica of each piece serves, at once
	// (w1 still in the ring: its address refuses) and after its lease
	// expired.
	c.Workers["w1"].Signal(syscall.SIGKILL)
	readAll("w1 killed", "/r2")
	c.WaitRing(2)
	readAll("w1 out of the ring", "/r2")
	c.StartWorker("w1")
	c.WaitRing(3)
	readAll("w1 back", "/r2")
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// grepLines keeps the lines of s that contain any of the words.
func grepLines(s string, words ...string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		for _, w := range words {
			if strings.Contains(l, w) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
