// Package clustere2e tests Strata as a real cluster of processes on
// 127.0.0.1: a 3-member etcd (the etcd binary), two coordinators and several
// workers with disk tiers, over a real MinIO.
package clustere2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/cluster"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/tests/harness"
	"github.com/stratafs/strata/tests/testcluster"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
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

// testCluster is the set of processes of one test.
type testCluster struct {
	t       *testing.T
	etcd    *harness.EtcdCluster
	coords  map[string]*harness.Process // by coordinator log name
	workers map[string]*harness.Process // by worker ID
	dirs    map[string]string           // worker data dirs
	config  string
	client  *client.Client
	etcdCli *clientv3.Client
}

func (c *testCluster) endpoints() string { return strings.Join(c.etcd.Endpoints(), ",") }

func startCluster(t *testing.T, workers, coords int) *testCluster {
	c := &testCluster{t: t, coords: map[string]*harness.Process{}, workers: map[string]*harness.Process{}, dirs: map[string]string{}}
	c.etcd = harness.StartEtcdCluster(t, 3)
	// Disk tier only: everything a worker caches survives its kill -9.
	c.config = filepath.Join(t.TempDir(), "strata.yaml")
	yaml := fmt.Sprintf(`worker:
  block_size: %d
  lease_ttl: 3s
  cache:
    tiers:
      - {name: ssd, medium: disk, policy: lru, dirs: [{path: cache, quota: 1GiB}]}
`, blockSize)
	if err := os.WriteFile(c.config, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range coords {
		c.startCoordinator(fmt.Sprintf("coordinator-%d", i))
	}
	for i := range workers {
		c.startWorker(fmt.Sprintf("w%d", i))
	}
	cfg := conf.Default()
	cfg.Etcd.Endpoints = c.etcd.Endpoints()
	cfg.Worker.BlockSize = blockSize
	cfg.Client.RequestTimeout = conf.Duration(10 * time.Second)
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
	c.waitRing(workers)
	return c
}

func (c *testCluster) startCoordinator(name string) {
	p := harness.Start(c.t, name, nil, binary, "coordinator", "--config", c.config, "--etcd-endpoints", c.endpoints(),
		"--listen", "127.0.0.1:0", "--metrics-listen", "", "--data-dir", c.t.TempDir())
	p.WaitReady(c.t, 30*time.Second, logSays(p, "coordinator serving"))
	c.coords[name] = p
}

// startWorker starts (or restarts, with the same data dir) a worker process.
func (c *testCluster) startWorker(id string) {
	dir, ok := c.dirs[id]
	if !ok {
		dir = c.t.TempDir()
		c.dirs[id] = dir
	}
	p := harness.Start(c.t, "worker-"+id, nil, binary, "worker", "--config", c.config, "--etcd-endpoints", c.endpoints(),
		"--id", id, "--listen", "127.0.0.1:0", "--data-listen", "127.0.0.1:0", "--data-dir", dir)
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

// cli runs a strata client command against the cluster.
func (c *testCluster) cli(args ...string) (string, error) {
	cmd := exec.Command(binary, append([]string{"--etcd-endpoints", c.endpoints(), "--config", c.config}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("strata %s: %v: %s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), nil
}

func (c *testCluster) mustCLI(args ...string) string {
	c.t.Helper()
	out, err := c.cli(args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

func (c *testCluster) report() *rpcpb.ReportResponse {
	c.t.Helper()
	out := c.mustCLI("report", "--json")
	var r struct {
		Workers []struct {
			Stats struct {
				ID         string `json:"id"`
				State      string `json:"state"`
				PageHits   string `json:"pageHits"`
				UfsBytes   string `json:"ufsBytes"`
				PageMisses string `json:"pageMisses"`
			} `json:"stats"`
			KeyShare float64 `json:"keyShare"`
		} `json:"workers"`
		LeaderID     string   `json:"leaderId"`
		Coordinators []string `json:"coordinators"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		c.t.Fatalf("report --json: %v\n%s", err, out)
	}
	resp := &rpcpb.ReportResponse{LeaderId: r.LeaderID, Coordinators: r.Coordinators}
	for _, w := range r.Workers {
		var hits, ufsBytes, misses int64
		fmt.Sscan(w.Stats.PageHits, &hits)
		fmt.Sscan(w.Stats.UfsBytes, &ufsBytes)
		fmt.Sscan(w.Stats.PageMisses, &misses)
		resp.Workers = append(resp.Workers, &rpcpb.WorkerReport{KeyShare: w.KeyShare, Stats: &rpcpb.WorkerStats{
			Id: w.Stats.ID, State: w.Stats.State, PageHits: hits, UfsBytes: ufsBytes, PageMisses: misses}})
	}
	return resp
}

// workerStats asks one worker directly.
func (c *testCluster) workerStats(id string) *rpcpb.WorkerStats {
	c.t.Helper()
	w, ok := c.client.View().Members().Get(id)
	if !ok {
		c.t.Fatalf("worker %s not registered", id)
	}
	cc, err := grpc.NewClient(w.RPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		c.t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := rpcpb.NewWorkerClient(cc).Stats(ctx, &rpcpb.StatsRequest{})
	if err != nil {
		c.t.Fatal(err)
	}
	return st
}

type dataset map[string][]byte

func upload(t *testing.T, bucket string, n, size int) dataset {
	ds := dataset{}
	for i := range n {
		b := make([]byte, size+i*4099)
		_, _ = rand.Read(b)
		key := fmt.Sprintf("train/part-%03d.bin", i)
		ds[key] = b
		if _, err := minio.S3Client(t).PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(b)}); err != nil {
			t.Fatal(err)
		}
	}
	return ds
}

// readAll reads every file through the client with parallel ReadAt calls and
// compares the bytes.
func (c *testCluster) readAll(ds dataset, mount string) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(ds))
	for key, want := range ds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := c.client.Open(context.Background(), mount+"/"+key, false)
			if err != nil {
				errs <- err
				return
			}
			defer f.Close()
			got := make([]byte, f.Size())
			if _, err := f.ReadAt(got, 0); err != nil {
				errs <- fmt.Errorf("%s: %w", key, err)
				return
			}
			if !bytes.Equal(got, want) {
				errs <- fmt.Errorf("%s: wrong bytes", key)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func (c *testCluster) mount(path, bucket string) {
	o := minio.S3Options()
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

func TestWorkerKilledMidReadAndRestarted(t *testing.T) {
	c := startCluster(t, 3, 1)
	bucket := minio.NewBucket(t, "killworker")
	ds := upload(t, bucket, 12, 10<<20)
	c.mount("/ds", bucket)
	if err := c.readAll(ds, "/ds"); err != nil {
		t.Fatalf("first read: %v", err)
	}
	// Readers loop over the dataset while w1 is killed with SIGKILL.
	victim := "w1"
	before := c.workerStats(victim)
	if before.GetPageMisses() == 0 {
		t.Fatalf("%s cached nothing in the first pass", victim)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	readErrs := make(chan error, 64)
	rounds := 0
	var mu sync.Mutex
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := c.readAll(ds, "/ds"); err != nil {
					readErrs <- err
					return
				}
				mu.Lock()
				rounds++
				mu.Unlock()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	c.workers[victim].Signal(syscall.SIGKILL)
	time.Sleep(4 * time.Second) // reads go on through the lease expiry
	close(stop)
	wg.Wait()
	close(readErrs)
	if err := <-readErrs; err != nil {
		t.Fatalf("a read failed while %s was killed: %v", victim, err)
	}
	t.Logf("%d full passes over the dataset while %s was killed", rounds, victim)
	c.waitRing(2)

	// The worker comes back with its identity and its disk cache: it serves
	// the blocks it owns again from cache, with no refetch.
	c.startWorker(victim)
	c.waitRing(3)
	if err := c.readAll(ds, "/ds"); err != nil {
		t.Fatalf("read after restart: %v", err)
	}
	after := c.workerStats(victim)
	if after.GetPageHits() == 0 || after.GetUfsBytes() != 0 {
		t.Errorf("restarted %s: %d page hits, %d bytes fetched from the UFS; want hits and no refetch", victim, after.GetPageHits(), after.GetUfsBytes())
	}
}

func TestMembershipChangesMoveFewKeys(t *testing.T) {
	c := startCluster(t, 3, 1)
	bucket := minio.NewBucket(t, "join")
	ds := upload(t, bucket, 8, 6<<20)
	c.mount("/j", bucket)
	if err := c.readAll(ds, "/j"); err != nil {
		t.Fatal(err)
	}
	ringBefore := c.client.View().Members().Ring
	c.startWorker("w3")
	c.waitRing(4)
	ringAfter := c.client.View().Members().Ring
	var keys []string
	for i := range 100_000 {
		keys = append(keys, fmt.Sprintf("b\x00mount\x00file-%d\x00%d", i/10, i%10))
	}
	moved := cluster.MovedFraction(ringBefore, ringAfter, keys)
	t.Logf("joining a 4th worker moved %.3f of 100k placement keys (ideal 0.25)", moved)
	if moved < 0.2 || moved > 0.3 {
		t.Errorf("joining a 4th worker moved %.3f of the keys, want about 1/4", moved)
	}
	if err := c.readAll(ds, "/j"); err != nil {
		t.Fatalf("read after the join: %v", err)
	}
	// Drain: the worker leaves the ring but the data stays readable.
	out := c.mustCLI("worker", "drain", "w3")
	if !strings.Contains(out, "draining") {
		t.Errorf("drain said %q", out)
	}
	c.waitRing(3)
	rep := c.report()
	for _, w := range rep.Workers {
		if w.Stats.Id == "w3" && (w.Stats.State != cluster.StateDraining || w.KeyShare != 0) {
			t.Errorf("drained w3 in the report: state %s, key share %.3f", w.Stats.State, w.KeyShare)
		}
	}
	if err := c.readAll(ds, "/j"); err != nil {
		t.Fatalf("read after the drain: %v", err)
	}
	c.mustCLI("worker", "undrain", "w3")
	c.waitRing(4)
	if _, err := c.cli("worker", "drain", "no-such-worker"); err == nil || !strings.Contains(err.Error(), "no worker") {
		t.Errorf("drain of an unknown worker: %v", err)
	}
}

func TestCoordinatorAndEtcdFailover(t *testing.T) {
	c := startCluster(t, 2, 2)
	bucket := minio.NewBucket(t, "failover")
	ds := upload(t, bucket, 4, 3<<20)
	c.mount("/f", bucket)
	var leader string
	deadline := time.Now().Add(15 * time.Second)
	for leader == "" {
		rep := c.report()
		leader = rep.LeaderId
		if len(rep.Coordinators) != 2 {
			leader = ""
		}
		if time.Now().After(deadline) {
			t.Fatal("no leader elected among two coordinators")
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Kill the leader's process with SIGKILL (no resignation).
	var victim string
	for name, p := range c.coords {
		if strings.Contains(p.Tail(1<<20), leader) {
			victim = name
		}
	}
	if victim == "" {
		t.Fatalf("no coordinator process logged the leader id %s", leader)
	}
	killed := time.Now()
	c.coords[victim].Signal(syscall.SIGKILL)
	deadline = time.Now().Add(20 * time.Second)
	for {
		rep := c.report()
		if rep.LeaderId != "" && rep.LeaderId != leader {
			t.Logf("leadership moved from %s to %s in %s", leader, rep.LeaderId, time.Since(killed).Round(100*time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new leader 20s after killing %s (leader now %q)", leader, rep.LeaderId)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if out := c.mustCLI("fs", "mounts"); !strings.Contains(out, "/f") {
		t.Errorf("mounts after the leader died:\n%s", out)
	}

	// Lose one etcd member: mounts, reads and reports go on.
	c.etcd.Members[0].Signal(syscall.SIGKILL)
	bucket2 := minio.NewBucket(t, "failover-two")
	ds2 := upload(t, bucket2, 2, 1<<20)
	c.mount("/f2", bucket2)
	if err := c.readAll(ds, "/f"); err != nil {
		t.Fatalf("read with one etcd member down: %v", err)
	}
	if err := c.readAll(ds2, "/f2"); err != nil {
		t.Fatalf("read of a mount made with one etcd member down: %v", err)
	}
	if rep := c.report(); len(rep.Workers) != 2 {
		t.Errorf("report with one etcd member down shows %d workers", len(rep.Workers))
	}
}
