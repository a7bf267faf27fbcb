// Package loade2e tests `strata load`, `strata free` and pins on a real
// cluster of processes on 127.0.0.1 (etcd, coordinators, workers: the strata
// binary) over a real MinIO.
package loade2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/tests/harness"
	"github.com/stratafs/strata/tests/testcluster"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
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

// testCluster is the set of processes of one test.
type testCluster struct {
	t       testing.TB // the current (sub)test
	root    testing.TB
	opts    clusterOpts
	minio   *harness.MinIO
	etcd    *harness.EtcdCluster
	coords  map[string]*harness.Process // by name
	workers map[string]*harness.Process // by worker ID
	config  string
	client  *client.Client
	etcdCli *clientv3.Client
	wcs     map[string]rpcpb.WorkerClient
}

func (c *testCluster) endpoints() string { return strings.Join(c.etcd.Endpoints(), ",") }

func startCluster(t testing.TB, o clusterOpts) *testCluster {
	c := &testCluster{t: t, root: t, opts: o, minio: o.minio, coords: map[string]*harness.Process{}, workers: map[string]*harness.Process{}}
	if c.minio == nil {
		c.minio = minio
	}
	c.etcd = harness.StartEtcdCluster(t, 1)
	c.config = filepath.Join(t.TempDir(), "strata.yaml")
	// A short metadata TTL: reads after the load find expired entries, and
	// with the UFS down they are served stale.
	yaml := fmt.Sprintf(`worker:
  block_size: %d
  lease_ttl: 3s
  metadata_ttl: 2s
  cache:
    tiers:
      - {name: ssd, medium: disk, policy: lru, dirs: [{path: cache, quota: 1GiB}]}
`, blockSize)
	if err := os.WriteFile(c.config, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range o.coords {
		c.startCoordinator(fmt.Sprintf("coordinator-%d", i))
	}
	for i := range o.workers {
		c.startWorker(fmt.Sprintf("w%d", i))
	}
	cfg := conf.Default()
	cfg.Etcd.Endpoints = c.etcd.Endpoints()
	cfg.Worker.BlockSize = blockSize
	cfg.Client.RequestTimeout = conf.Duration(20 * time.Second)
	var err error
	c.etcdCli, err = clientv3.New(clientv3.Config{Endpoints: cfg.Etcd.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.etcdCli.Close() })
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c.client, err = client.New(context.Background(), client.Options{Etcd: c.etcdCli, Config: cfg, Registry: testcluster.Registry(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.client.Close() })
	c.waitRing(o.workers)
	return c
}

func (c *testCluster) startCoordinator(name string) {
	p := harness.Start(c.t, name, nil, binary, "coordinator", "--config", c.config, "--etcd-endpoints", c.endpoints(),
		"--listen", "127.0.0.1:0", "--metrics-listen", "", "--data-dir", c.t.TempDir())
	p.WaitReady(c.t, 30*time.Second, logSays(p, "coordinator serving"))
	c.coords[name] = p
}

func (c *testCluster) startWorker(id string) {
	args := []string{"worker", "--config", c.config, "--etcd-endpoints", c.endpoints(),
		"--id", id, "--listen", "127.0.0.1:0", "--data-listen", "127.0.0.1:0", "--data-dir", c.t.TempDir()}
	if c.opts.workerMemory != "" {
		args = append(args, "--memory", c.opts.workerMemory)
	}
	p := harness.Start(c.t, "worker-"+id, nil, binary, args...)
	p.WaitReady(c.t, 30*time.Second, logSays(p, "worker serving"))
	c.workers[id] = p
}

func logSays(p *harness.Process, what string) func(context.Context) error {
	return func(context.Context) error {
		if !strings.Contains(p.Tail(1<<20), what) {
			return fmt.Errorf("waiting for %q", what)
		}
		return nil
	}
}

func (c *testCluster) waitRing(n int) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for c.client.View().Members().Ring.Len() != n {
		if time.Now().After(deadline) {
			c.t.Fatalf("the ring has %d workers, want %d", c.client.View().Members().Ring.Len(), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// run runs a strata client command and returns stdout, stderr and the exit
// status.
func (c *testCluster) run(args ...string) (string, string, int) {
	c.t.Helper()
	cmd := exec.Command(binary, append([]string{"--etcd-endpoints", c.endpoints(), "--config", c.config}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("run strata %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

func (c *testCluster) mustCLI(args ...string) string {
	c.t.Helper()
	out, errOut, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("strata %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// fails runs a command that must fail with an error that mentions want.
func (c *testCluster) fails(want string, args ...string) {
	c.t.Helper()
	out, errOut, code := c.run(args...)
	if code == 0 {
		c.t.Fatalf("strata %s succeeded, want an error mentioning %q:\n%s", strings.Join(args, " "), want, out)
	}
	if !strings.Contains(errOut, want) {
		c.t.Errorf("strata %s: stderr %q does not mention %q", strings.Join(args, " "), errOut, want)
	}
}

func (c *testCluster) mount(path, bucket string) {
	c.t.Helper()
	o := c.minio.S3Options()
	c.mustCLI("fs", "mount", path, "s3://"+bucket, "--option", "s3.endpoint="+o["s3.endpoint"],
		"--option", "s3.access_key_id="+o["s3.access_key_id"], "--option", "s3.secret_access_key="+o["s3.secret_access_key"])
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := c.client.Mounts().ByPath(path); ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("mount %s not visible", path)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// workerClient dials one worker (once per test).
func (c *testCluster) workerClient(id string) rpcpb.WorkerClient {
	c.t.Helper()
	if wc, ok := c.wcs[id]; ok {
		return wc
	}
	w, ok := c.client.View().Members().Get(id)
	if !ok {
		c.t.Fatalf("worker %s not registered", id)
	}
	cc, err := grpc.NewClient(w.RPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		c.t.Fatal(err)
	}
	c.root.Cleanup(func() { cc.Close() })
	if c.wcs == nil {
		c.wcs = map[string]rpcpb.WorkerClient{}
	}
	c.wcs[id] = rpcpb.NewWorkerClient(cc)
	return c.wcs[id]
}

// waitWorkersLog waits until every running worker's log has what at least
// n times.
func (c *testCluster) waitWorkersLog(what string, n int) {
	c.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for _, p := range c.workers {
		for !p.Exited() && strings.Count(p.Tail(1<<22), what) < n {
			if time.Now().After(deadline) {
				c.t.Fatalf("%s logged %q %d times, want %d", p.Name, what, strings.Count(p.Tail(1<<22), what), n)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func (c *testCluster) workerStats(id string) *rpcpb.WorkerStats {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.workerClient(id).Stats(ctx, &rpcpb.StatsRequest{})
	if err != nil {
		c.t.Fatal(err)
	}
	return st
}

// ufsBytes sums the bytes every live worker read from the UFS.
func (c *testCluster) ufsBytes(ids ...string) int64 {
	var n int64
	for _, id := range ids {
		n += c.workerStats(id).GetUfsBytes()
	}
	return n
}

// workerMetric reads one counter from a worker's /metrics.
func (c *testCluster) workerMetric(id, name string) float64 {
	c.t.Helper()
	w, _ := c.client.View().Members().Get(id)
	resp, err := http.Get("http://" + w.DataAddr + "/metrics")
	if err != nil {
		c.t.Fatal(err)
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
	c.t.Helper()
	resp, err := c.etcdCli.Get(context.Background(), "/strata/jobs/"+id)
	if err != nil || len(resp.Kvs) == 0 {
		c.t.Fatalf("job %s in etcd: %v", id, err)
	}
	j := &rpcpb.LoadJob{}
	if err := protojson.Unmarshal(resp.Kvs[0].Value, j); err != nil {
		c.t.Fatal(err)
	}
	return j
}

// waitJob polls a job's checkpoint until cond holds.
func (c *testCluster) waitJob(id string, timeout time.Duration, what string, cond func(j *rpcpb.LoadJob) bool) *rpcpb.LoadJob {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		j := c.job(id)
		if cond(j) {
			return j
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("job %s: %s not reached within %s: %v", id, what, timeout, j)
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

// readAll reads every file through the client library, 8 at a time, and
// compares the bytes.
func (c *testCluster) readAll(ds dataset, mount string) error {
	keys := make(chan string)
	errs := make(chan error, len(ds))
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for key := range keys {
				f, err := c.client.Open(context.Background(), mount+"/"+key, false)
				if err != nil {
					errs <- err
					continue
				}
				got := make([]byte, f.Size())
				_, err = f.ReadAt(got, 0)
				f.Close()
				if err != nil && err != io.EOF {
					errs <- fmt.Errorf("%s: %w", key, err)
				} else if !bytes.Equal(got, ds[key]) {
					errs <- fmt.Errorf("%s: wrong bytes", key)
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
	return <-errs
}
