// Package proccluster runs Strata as a cluster of processes on 127.0.0.1 for
// end-to-end tests: etcd (the etcd binary), coordinators and workers (the
// strata binary) sharing one config file, plus an in-process client and
// helpers to run the CLI against them.
package proccluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/cluster"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/pki"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/tests/harness"
	"github.com/stratafs/strata/tests/testcluster"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Options shape a cluster.
type Options struct {
	// Binary is the strata binary (harness.BuildStrata).
	Binary string
	// EtcdMembers is the size of the etcd cluster (default 1).
	EtcdMembers int
	// Workers and Coordinators are started by Start.
	Workers, Coordinators int
	// BlockSize is worker.block_size of every process and of the client.
	BlockSize int64
	// MetadataTTL is worker.metadata_ttl (0: the default).
	MetadataTTL time.Duration
	// WorkerMemory, when set, gives each worker one memory tier of that
	// size instead of a 1 GiB disk tier (which survives a kill -9).
	WorkerMemory string
	// MemoryTier, when set, puts a memory tier of that size above each
	// worker's disk tier (a graceful stop spills it to disk; a kill -9 loses
	// it).
	MemoryTier string
	// RequestTimeout is the client's request timeout (default 10s).
	RequestTimeout time.Duration
	// MinIO is the S3 server Mount points mounts at.
	MinIO *harness.MinIO
}

// Cluster is the set of processes of one test.
type Cluster struct {
	// T is the current (sub)test: the helpers fail it. Tests running
	// subtests on one cluster set it to the subtest.
	T testing.TB
	// Root is the test that started the cluster (its cleanups outlive
	// subtests).
	Root    testing.TB
	Opts    Options
	Etcd    *harness.EtcdCluster
	Coords  map[string]*harness.Process // by name
	Workers map[string]*harness.Process // by worker ID
	Dirs    map[string]string           // worker data dirs, by worker ID
	Config  string                      // the config file every process reads
	Client  *client.Client
	EtcdCli *clientv3.Client

	wcs map[string]rpcpb.WorkerClient
}

// Start starts etcd, the coordinators and the workers, and a client, and
// waits until the ring has every worker.
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	if o.EtcdMembers == 0 {
		o.EtcdMembers = 1
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = 10 * time.Second
	}
	c := &Cluster{T: t, Root: t, Opts: o, Coords: map[string]*harness.Process{}, Workers: map[string]*harness.Process{}, Dirs: map[string]string{}}
	c.Etcd = harness.StartEtcdCluster(t, o.EtcdMembers)
	c.Config = filepath.Join(t.TempDir(), "strata.yaml")
	// Tests mount temp directories anywhere.
	yaml := "coordinator:\n  allowed_local_roots: [\"*\"]\n"
	// Every process gets the cluster key, so mount credentials are sealed in
	// etcd; without a CA the cluster runs in plaintext on loopback.
	keyFile := filepath.Join(t.TempDir(), pki.ClusterKeyFile)
	if err := pki.GenerateClusterKey(keyFile, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	key, err := pki.ReadClusterKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	box, err := cluster.NewSecretBox(key)
	if err != nil {
		t.Fatal(err)
	}
	yaml += fmt.Sprintf("tls:\n  cluster_key_file: %s\n", keyFile)
	yaml += fmt.Sprintf("worker:\n  block_size: %d\n  lease_ttl: 3s\n", o.BlockSize)
	if o.MetadataTTL > 0 {
		yaml += fmt.Sprintf("  metadata_ttl: %s\n", o.MetadataTTL)
	}
	yaml += "  cache:\n    tiers:\n"
	if o.MemoryTier != "" {
		yaml += fmt.Sprintf("      - {name: mem, medium: memory, policy: lru, size: %s}\n", o.MemoryTier)
	}
	yaml += "      - {name: ssd, medium: disk, policy: lru, dirs: [{path: cache, quota: 1GiB}]}\n"
	if err := os.WriteFile(c.Config, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range o.Coordinators {
		c.StartCoordinator(fmt.Sprintf("coordinator-%d", i))
	}
	for i := range o.Workers {
		c.StartWorker(fmt.Sprintf("w%d", i))
	}
	cfg := conf.Default()
	cfg.Etcd.Endpoints = c.Etcd.Endpoints()
	cfg.Worker.BlockSize = conf.Size(o.BlockSize)
	cfg.Client.RequestTimeout = conf.Duration(o.RequestTimeout)
	c.EtcdCli, err = clientv3.New(clientv3.Config{Endpoints: cfg.Etcd.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.EtcdCli.Close() })
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c.Client, err = client.New(context.Background(), client.Options{Etcd: c.EtcdCli, Config: cfg, Registry: testcluster.Registry(), Logger: log, Secrets: box})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Client.Close() })
	c.WaitRing(o.Workers)
	return c
}

// Endpoints is the etcd endpoints, comma-separated.
func (c *Cluster) Endpoints() string { return strings.Join(c.Etcd.Endpoints(), ",") }

// StartCoordinator starts a coordinator process and waits until it serves.
func (c *Cluster) StartCoordinator(name string) {
	c.T.Helper()
	p := harness.Start(c.T, name, nil, c.Opts.Binary, "coordinator", "--config", c.Config, "--etcd-endpoints", c.Endpoints(),
		"--listen", "127.0.0.1:0", "--metrics-listen", "", "--data-dir", c.T.TempDir())
	p.WaitReady(c.T, 30*time.Second, LogSays(p, "coordinator serving"))
	c.Coords[name] = p
}

// StartWorker starts a worker process, or restarts it with the data dir it
// had, and waits until it serves.
func (c *Cluster) StartWorker(id string) {
	c.T.Helper()
	dir, ok := c.Dirs[id]
	if !ok {
		dir = c.T.TempDir()
		c.Dirs[id] = dir
	}
	args := []string{"worker", "--config", c.Config, "--etcd-endpoints", c.Endpoints(),
		"--id", id, "--listen", "127.0.0.1:0", "--data-listen", "127.0.0.1:0", "--data-dir", dir}
	if c.Opts.WorkerMemory != "" {
		args = append(args, "--memory", c.Opts.WorkerMemory)
	}
	p := harness.Start(c.T, "worker-"+id, nil, c.Opts.Binary, args...)
	p.WaitReady(c.T, 30*time.Second, LogSays(p, "worker serving"))
	c.Workers[id] = p
}

// LogSays is a readiness check that passes once the process logged what.
func LogSays(p *harness.Process, what string) func(context.Context) error {
	return func(context.Context) error {
		if !strings.Contains(p.Tail(1<<20), what) {
			return fmt.Errorf("waiting for %q", what)
		}
		return nil
	}
}

// WaitRing waits until the client's ring has n workers.
func (c *Cluster) WaitRing(n int) {
	c.T.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for c.Client.View().Members().Ring.Len() != n {
		if time.Now().After(deadline) {
			c.T.Fatalf("the ring has %d workers, want %d", c.Client.View().Members().Ring.Len(), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Run runs a strata client command and returns stdout, stderr and the exit
// status.
func (c *Cluster) Run(args ...string) (stdout, stderr string, code int) {
	c.T.Helper()
	cmd := exec.Command(c.Opts.Binary, append([]string{"--etcd-endpoints", c.Endpoints(), "--config", c.Config}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.T.Fatalf("run strata %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// MustCLI runs a strata client command that must succeed and returns its
// stdout.
func (c *Cluster) MustCLI(args ...string) string {
	c.T.Helper()
	out, errOut, code := c.Run(args...)
	if code != 0 {
		c.T.Fatalf("strata %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// Fails runs a command that must fail with an error that mentions want.
func (c *Cluster) Fails(want string, args ...string) {
	c.T.Helper()
	out, errOut, code := c.Run(args...)
	if code == 0 {
		c.T.Fatalf("strata %s succeeded, want an error mentioning %q:\n%s", strings.Join(args, " "), want, out)
	}
	if !strings.Contains(errOut, want) {
		c.T.Errorf("strata %s: stderr %q does not mention %q", strings.Join(args, " "), errOut, want)
	}
}

// Mount mounts a bucket of Opts.MinIO at path with `strata fs mount` and
// waits until the client sees it.
func (c *Cluster) Mount(path, bucket string) {
	c.T.Helper()
	o := c.Opts.MinIO.S3Options()
	c.MustCLI("fs", "mount", path, "s3://"+bucket, "--option", "s3.endpoint="+o["s3.endpoint"],
		"--option", "s3.access_key_id="+o["s3.access_key_id"], "--option", "s3.secret_access_key="+o["s3.secret_access_key"])
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := c.Client.Mounts().ByPath(path); ok {
			return
		}
		if time.Now().After(deadline) {
			c.T.Fatalf("mount %s not visible", path)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WorkerClient dials one worker (once per address: a restarted worker
// listens on a new one).
func (c *Cluster) WorkerClient(id string) rpcpb.WorkerClient {
	c.T.Helper()
	w, ok := c.Client.View().Members().Get(id)
	if !ok {
		c.T.Fatalf("worker %s not registered", id)
	}
	key := id + "@" + w.RPCAddr
	if wc, ok := c.wcs[key]; ok {
		return wc
	}
	cc, err := grpc.NewClient(w.RPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		c.T.Fatal(err)
	}
	c.Root.Cleanup(func() { cc.Close() })
	if c.wcs == nil {
		c.wcs = map[string]rpcpb.WorkerClient{}
	}
	c.wcs[key] = rpcpb.NewWorkerClient(cc)
	return c.wcs[key]
}

// WorkerStats asks one worker for its counters.
func (c *Cluster) WorkerStats(id string) *rpcpb.WorkerStats {
	c.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.WorkerClient(id).Stats(ctx, &rpcpb.StatsRequest{})
	if err != nil {
		c.T.Fatal(err)
	}
	return st
}

// ReadAll reads every file of ds (paths below mount) through the client, 8
// at a time, and compares the bytes.
func (c *Cluster) ReadAll(ds map[string][]byte, mount string) error {
	keys := make(chan string)
	errs := make(chan error, len(ds))
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for key := range keys {
				f, err := c.Client.Open(context.Background(), mount+"/"+key, false)
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
