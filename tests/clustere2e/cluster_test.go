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
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stratafs/strata/cluster"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/tests/harness"
	"github.com/stratafs/strata/tests/proccluster"
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

// testCluster is a process cluster with these tests' helpers: a 3-member
// etcd, and workers with a disk tier only, so everything a worker caches
// survives its kill -9.
type testCluster struct{ *proccluster.Cluster }

func startCluster(t *testing.T, workers, coords int) *testCluster {
	return &testCluster{proccluster.Start(t, proccluster.Options{Binary: binary, EtcdMembers: 3, Workers: workers, Coordinators: coords,
		BlockSize: blockSize, MinIO: minio})}
}

func (c *testCluster) report() *rpcpb.ReportResponse {
	c.T.Helper()
	out := c.MustCLI("report", "--json")
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
		c.T.Fatalf("report --json: %v\n%s", err, out)
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

func TestWorkerKilledMidReadAndRestarted(t *testing.T) {
	c := startCluster(t, 3, 1)
	bucket := minio.NewBucket(t, "killworker")
	ds := upload(t, bucket, 12, 10<<20)
	c.Mount("/ds", bucket)
	if err := c.ReadAll(ds, "/ds"); err != nil {
		t.Fatalf("first read: %v", err)
	}
	// Readers loop over the dataset while w1 is killed with SIGKILL.
	victim := "w1"
	before := c.WorkerStats(victim)
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
				if err := c.ReadAll(ds, "/ds"); err != nil {
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
	c.Workers[victim].Signal(syscall.SIGKILL)
	time.Sleep(4 * time.Second) // reads go on through the lease expiry
	close(stop)
	wg.Wait()
	close(readErrs)
	if err := <-readErrs; err != nil {
		t.Fatalf("a read failed while %s was killed: %v", victim, err)
	}
	t.Logf("%d full passes over the dataset while %s was killed", rounds, victim)
	c.WaitRing(2)

	// The worker comes back with its identity and its disk cache: it serves
	// the blocks it owns again from cache, with no refetch.
	c.StartWorker(victim)
	c.WaitRing(3)
	if err := c.ReadAll(ds, "/ds"); err != nil {
		t.Fatalf("read after restart: %v", err)
	}
	after := c.WorkerStats(victim)
	if after.GetPageHits() == 0 || after.GetUfsBytes() != 0 {
		t.Errorf("restarted %s: %d page hits, %d bytes fetched from the UFS; want hits and no refetch", victim, after.GetPageHits(), after.GetUfsBytes())
	}
}

func TestMembershipChangesMoveFewKeys(t *testing.T) {
	c := startCluster(t, 3, 1)
	bucket := minio.NewBucket(t, "join")
	ds := upload(t, bucket, 8, 6<<20)
	c.Mount("/j", bucket)
	if err := c.ReadAll(ds, "/j"); err != nil {
		t.Fatal(err)
	}
	ringBefore := c.Client.View().Members().Ring
	c.StartWorker("w3")
	c.WaitRing(4)
	ringAfter := c.Client.View().Members().Ring
	var keys []string
	for i := range 100_000 {
		keys = append(keys, fmt.Sprintf("b\x00mount\x00file-%d\x00%d", i/10, i%10))
	}
	moved := cluster.MovedFraction(ringBefore, ringAfter, keys)
	t.Logf("joining a 4th worker moved %.3f of 100k placement keys (ideal 0.25)", moved)
	if moved < 0.2 || moved > 0.3 {
		t.Errorf("joining a 4th worker moved %.3f of the keys, want about 1/4", moved)
	}
	if err := c.ReadAll(ds, "/j"); err != nil {
		t.Fatalf("read after the join: %v", err)
	}
	// Drain: the worker leaves the ring but the data stays readable.
	out := c.MustCLI("worker", "drain", "w3")
	if !strings.Contains(out, "draining") {
		t.Errorf("drain said %q", out)
	}
	c.WaitRing(3)
	rep := c.report()
	for _, w := range rep.Workers {
		if w.Stats.Id == "w3" && (w.Stats.State != cluster.StateDraining || w.KeyShare != 0) {
			t.Errorf("drained w3 in the report: state %s, key share %.3f", w.Stats.State, w.KeyShare)
		}
	}
	if err := c.ReadAll(ds, "/j"); err != nil {
		t.Fatalf("read after the drain: %v", err)
	}
	c.MustCLI("worker", "undrain", "w3")
	c.WaitRing(4)
	if _, errOut, code := c.Run("worker", "drain", "no-such-worker"); code == 0 || !strings.Contains(errOut, "no worker") {
		t.Errorf("drain of an unknown worker: exit %d, %s", code, errOut)
	}
}

func TestCoordinatorAndEtcdFailover(t *testing.T) {
	c := startCluster(t, 2, 2)
	bucket := minio.NewBucket(t, "failover")
	ds := upload(t, bucket, 4, 3<<20)
	c.Mount("/f", bucket)
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
	for name, p := range c.Coords {
		if strings.Contains(p.Tail(1<<20), leader) {
			victim = name
		}
	}
	if victim == "" {
		t.Fatalf("no coordinator process logged the leader id %s", leader)
	}
	killed := time.Now()
	c.Coords[victim].Signal(syscall.SIGKILL)
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
	if out := c.MustCLI("fs", "mounts"); !strings.Contains(out, "/f") {
		t.Errorf("mounts after the leader died:\n%s", out)
	}

	// Lose one etcd member: mounts, reads and reports go on.
	c.Etcd.Members[0].Signal(syscall.SIGKILL)
	bucket2 := minio.NewBucket(t, "failover-two")
	ds2 := upload(t, bucket2, 2, 1<<20)
	c.Mount("/f2", bucket2)
	if err := c.ReadAll(ds, "/f"); err != nil {
		t.Fatalf("read with one etcd member down: %v", err)
	}
	if err := c.ReadAll(ds2, "/f2"); err != nil {
		t.Fatalf("read of a mount made with one etcd member down: %v", err)
	}
	if rep := c.report(); len(rep.Workers) != 2 {
		t.Errorf("report with one etcd member down shows %d workers", len(rep.Workers))
	}
}
