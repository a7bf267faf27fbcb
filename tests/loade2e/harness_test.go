// Package loade2e tests `strata load`, `strata free` and pins on a real
// cluster of processes on 127.0.0.1 (etcd, coordinators, workers: the strata
// binary) over a real MinIO.
package loade2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/tests/harness"
	"github.com/stratafs/strata/tests/proccluster"
	"google.golang.org/protobuf/encoding/protojson"
)

var (
	minio  *harness.MinIO
	binary string
)

func TestMain(m *testing.M) {
	harness.Main(m, func(t harness.TB) {
		binary = harness.BuildStrata(t)
		minio = harness.StartMinIO(t)
	})
}

const blockSize = 4 << 20

// clusterOpts shape a test cluster.
type clusterOpts struct {
	workers, coords int
	// workerMemory, when set, gives each worker one memory tier of that size
	// instead of a 1 GiB disk tier.
	workerMemory string
	minio        *harness.MinIO // default: the package's
}

// testCluster is a process cluster with the load tests' helpers.
type testCluster struct{ *proccluster.Cluster }

func startCluster(t testing.TB, o clusterOpts) *testCluster {
	m := o.minio
	if m == nil {
		m = minio
	}
	// A short metadata TTL: reads after the load find expired entries, and
	// with the UFS down they are served stale.
	return &testCluster{proccluster.Start(t, proccluster.Options{Binary: binary, Workers: o.workers, Coordinators: o.coords,
		BlockSize: blockSize, MetadataTTL: 2 * time.Second, WorkerMemory: o.workerMemory, RequestTimeout: 20 * time.Second, MinIO: m})}
}

// waitWorkersLog waits until every running worker's log has what at least
// n times.
func (c *testCluster) waitWorkersLog(what string, n int) {
	c.T.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for _, p := range c.Workers {
		for !p.Exited() && strings.Count(p.Tail(1<<22), what) < n {
			if time.Now().After(deadline) {
				c.T.Fatalf("%s logged %q %d times, want %d", p.Name, what, strings.Count(p.Tail(1<<22), what), n)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// ufsBytes sums the bytes every live worker read from the UFS.
func (c *testCluster) ufsBytes(ids ...string) int64 {
	var n int64
	for _, id := range ids {
		n += c.WorkerStats(id).GetUfsBytes()
	}
	return n
}

// workerMetric reads one counter from a worker's /metrics.
func (c *testCluster) workerMetric(id, name string) float64 {
	c.T.Helper()
	w, _ := c.Client.View().Members().Get(id)
	resp, err := http.Get("http://" + w.DataAddr + "/metrics")
	if err != nil {
		c.T.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

// job reads a job's last checkpoint from etcd.
func (c *testCluster) job(id string) *rpcpb.LoadJob {
	c.T.Helper()
	resp, err := c.EtcdCli.Get(context.Background(), "/strata/jobs/"+id)
	if err != nil || len(resp.Kvs) == 0 {
		c.T.Fatalf("job %s in etcd: %v", id, err)
	}
	j := &rpcpb.LoadJob{}
	if err := protojson.Unmarshal(resp.Kvs[0].Value, j); err != nil {
		c.T.Fatal(err)
	}
	return j
}

// waitJob polls a job's checkpoint until cond holds.
func (c *testCluster) waitJob(id string, timeout time.Duration, what string, cond func(j *rpcpb.LoadJob) bool) *rpcpb.LoadJob {
	c.T.Helper()
	deadline := time.Now().Add(timeout)
	for {
		j := c.job(id)
		if cond(j) {
			return j
		}
		if time.Now().After(deadline) {
			c.T.Fatalf("job %s: %s not reached within %s: %v", id, what, timeout, j)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func finished(j *rpcpb.LoadJob) bool { return j.GetState() != "pending" && j.GetState() != "running" }

// jobJSON is what `strata load --json` and `load status --json` print.
type jobJSON struct {
	ID             string `json:"id"`
	State          string `json:"state"`
	Phase          string `json:"phase"`
	Error          string `json:"error"`
	Resumes        int    `json:"resumes"`
	StartedUnixMs  int64  `json:"started_unix_ms"`
	FinishedUnixMs int64  `json:"finished_unix_ms"`
	Progress       struct {
		FilesListed, BytesListed, FilesDone, BytesDone, FilesFailed, FilesSkipped int64
		UfsBytes, CachedBytes, VerifyFiles, VerifyMissingBlocks, VerifyFailed     int64
	} `json:"-"`
	RawProgress map[string]float64 `json:"progress"`
	Failures    []struct {
		Path   string `json:"path"`
		Reason string `json:"reason"`
	} `json:"failures"`
}

func parseJob(t testing.TB, out string) jobJSON {
	t.Helper()
	var j jobJSON
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("job JSON: %v\n%s", err, out)
	}
	p := j.RawProgress
	j.Progress.FilesListed, j.Progress.BytesListed = int64(p["files_listed"]), int64(p["bytes_listed"])
	j.Progress.FilesDone, j.Progress.BytesDone = int64(p["files_done"]), int64(p["bytes_done"])
	j.Progress.FilesFailed, j.Progress.FilesSkipped = int64(p["files_failed"]), int64(p["files_skipped"])
	j.Progress.UfsBytes, j.Progress.CachedBytes = int64(p["ufs_bytes"]), int64(p["cached_bytes"])
	j.Progress.VerifyFiles, j.Progress.VerifyMissingBlocks = int64(p["verify_files"]), int64(p["verify_missing_blocks"])
	j.Progress.VerifyFailed = int64(p["verify_failed"])
	return j
}

type dataset map[string][]byte

func (d dataset) bytes() int64 {
	var n int64
	for _, b := range d {
		n += int64(len(b))
	}
	return n
}

// upload puts files (key -> size) with random content, 8 at a time.
func upload(t testing.TB, m *harness.MinIO, bucket string, sizes map[string]int) dataset {
	t.Helper()
	ds := dataset{}
	for k, n := range sizes {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		ds[k] = b
	}
	s3c := m.S3Client(t)
	keys := make(chan string)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				if _, err := s3c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: bytes.NewReader(ds[k])}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for k := range ds {
		keys <- k
	}
	close(keys)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	return ds
}
