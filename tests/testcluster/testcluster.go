// Package testcluster runs a whole Strata cluster inside a test process: an
// embedded etcd on free ports, a coordinator and N workers on 127.0.0.1:0, and
// a client, all stopped when the test ends.
package testcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/cluster"
	"github.com/stratafs/strata/cluster/embedetcd"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/coordinator"
	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/pki"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/tests/harness"
	"github.com/stratafs/strata/ufs"
	"github.com/stratafs/strata/ufs/azblob"
	"github.com/stratafs/strata/ufs/gcs"
	"github.com/stratafs/strata/ufs/local"
	ufss3 "github.com/stratafs/strata/ufs/s3"
	"github.com/stratafs/strata/worker"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// Options shape the cluster.
type Options struct {
	// Workers is the number of workers (default 1).
	Workers int
	// Tune changes the configuration before anything starts.
	Tune func(cfg *conf.Config)
	// TLS runs every part with mutual TLS: a CA, a node certificate, an
	// admin and a plain client certificate are made in CertsDir, etcd
	// checks roles, workers ask for data tokens. The cluster's Client is
	// the admin. Without it the cluster runs in plaintext on loopback.
	TLS bool
}

// Cluster is a running in-process cluster.
type Cluster struct {
	T        testing.TB
	Config   conf.Config
	Etcd     *clientv3.Client
	Coord    *coordinator.Server
	Workers  []*worker.Server
	Client   *client.Client
	Registry *ufs.Registry
	Log      *slog.Logger
	// CertsDir holds the cluster's certificates (with Options.TLS) and its
	// cluster key (always).
	CertsDir string
	// Node is the node certificate (nil without TLS); Secrets opens mount
	// credentials with the cluster key.
	Node    *pki.Bundle
	Secrets *cluster.SecretBox

	etcdSrv *embedetcd.Server
	conn    *grpc.ClientConn
	coordC  rpcpb.CoordinatorClient
}

// Registry returns a registry with the backends tests use.
func Registry() *ufs.Registry {
	r := &ufs.Registry{}
	local.Register(r)
	ufss3.Register(r)
	gcs.Register(r)
	azblob.Register(r)
	return r
}

// Start runs a cluster for the test.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Workers == 0 {
		opts.Workers = 1
	}
	ctx := context.Background()
	dir := t.TempDir()
	cfg := conf.Default()
	cfg.DataDir = dir
	cfg.Coordinator.Listen = "127.0.0.1:0"
	cfg.Coordinator.MetricsListen = ""
	cfg.Worker.Listen = "127.0.0.1:0"
	cfg.Worker.DataListen = "127.0.0.1:0"
	cfg.Worker.LeaseTTL = conf.Duration(3 * time.Second)
	cfg.Worker.Cache.Tiers[0].Size = 256 << 20
	cfg.Client.RequestTimeout = conf.Duration(10 * time.Second)
	// Tests mount temp directories anywhere; a Tune may narrow this.
	cfg.Coordinator.AllowedLocalRoots = []string{conf.AllowAnyLocalRoot}
	if opts.Tune != nil {
		opts.Tune(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("testcluster: config: %v", err)
	}
	level := slog.LevelWarn
	if os.Getenv("STRATA_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	c := &Cluster{T: t, Config: cfg, Registry: Registry(), Log: log, CertsDir: filepath.Join(dir, "certs")}
	var err error
	admin := c.security(t, opts.TLS)
	// Another test binary may take a port between FreePorts and the listen;
	// pick fresh ports and try again then.
	for attempt := 1; ; attempt++ {
		ports := harness.FreePorts(t, 2)
		scheme := "http://"
		var sec *embedetcd.Security
		if opts.TLS {
			scheme = "https://"
			sec = &embedetcd.Security{CAFile: filepath.Join(c.CertsDir, pki.CACertFile), CertFile: filepath.Join(c.CertsDir, pki.NodeCertFile),
				KeyFile: filepath.Join(c.CertsDir, pki.NodeKeyFile), Prefix: cfg.Etcd.Prefix}
		}
		c.Config.Etcd.EmbedClientURL = scheme + harness.Addr(ports[0])
		c.Config.Etcd.EmbedPeerURL = scheme + harness.Addr(ports[1])
		c.Config.Etcd.Endpoints = []string{c.Config.Etcd.EmbedClientURL}
		c.etcdSrv, err = embedetcd.Start(ctx, filepath.Join(dir, fmt.Sprintf("etcd-%d", attempt)), c.Config.Etcd.EmbedClientURL, c.Config.Etcd.EmbedPeerURL, sec)
		if err == nil {
			break
		}
		if attempt == 3 || !(errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use")) {
			t.Fatalf("testcluster: %v", err)
		}
	}
	cfg = c.Config
	t.Cleanup(c.etcdSrv.Close)
	c.Etcd = c.DialEtcd(t, c.Node)
	c.Coord, err = coordinator.New(ctx, cfg, coordinator.Deps{Etcd: c.Etcd, Registry: c.Registry, Logger: log, TLS: c.Node, Secrets: c.Secrets})
	if err != nil {
		t.Fatalf("testcluster: coordinator: %v", err)
	}
	if err := c.Coord.Start(ctx); err != nil {
		t.Fatalf("testcluster: coordinator: %v", err)
	}
	t.Cleanup(func() { stop(c.Coord.Close) })
	for i := range opts.Workers {
		c.StartWorker(t, fmt.Sprintf("w%d", i))
	}
	clientEtcd := c.Etcd
	if admin != nil {
		clientEtcd = c.DialEtcd(t, admin)
	}
	c.Client, err = client.New(ctx, client.Options{Etcd: clientEtcd, Config: cfg, Registry: c.Registry, Logger: log, TLS: admin, Secrets: c.Secrets})
	if err != nil {
		t.Fatalf("testcluster: client: %v", err)
	}
	t.Cleanup(func() { _ = c.Client.Close() })
	c.WaitWorkers(t, opts.Workers)
	coordC, conn, err := c.Client.Coordinator(ctx)
	if err != nil {
		t.Fatalf("testcluster: %v", err)
	}
	c.conn, c.coordC = conn, coordC
	t.Cleanup(func() { _ = conn.Close() })
	return c
}

// security makes the cluster key and, with withTLS, the certificates; it
// returns the admin client's bundle (nil without TLS).
func (c *Cluster) security(t testing.TB, withTLS bool) *pki.Bundle {
	t.Helper()
	keyFile := filepath.Join(c.CertsDir, pki.ClusterKeyFile)
	if err := os.MkdirAll(c.CertsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := pki.GenerateClusterKey(keyFile, pki.Options{}); err != nil {
		t.Fatalf("testcluster: cluster key: %v", err)
	}
	key, err := pki.ReadClusterKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if c.Secrets, err = cluster.NewSecretBox(key); err != nil {
		t.Fatal(err)
	}
	if !withTLS {
		return nil
	}
	if err := pki.CreateCA(c.CertsDir, pki.Options{}); err != nil {
		t.Fatalf("testcluster: CA: %v", err)
	}
	if err := pki.CreateNode(c.CertsDir, []string{"localhost", "127.0.0.1"}, pki.Options{}); err != nil {
		t.Fatalf("testcluster: node certificate: %v", err)
	}
	if c.Node, err = pki.LoadDir(c.CertsDir, true); err != nil {
		t.Fatal(err)
	}
	return c.ClientBundle(t, "admin", pki.RoleAdmin)
}

// ClientBundle makes (or loads) a client certificate of the cluster's CA.
func (c *Cluster) ClientBundle(t testing.TB, name string, role pki.Role) *pki.Bundle {
	t.Helper()
	certPath, err := pki.CreateClient(c.CertsDir, name, role, false, pki.Options{Overwrite: true})
	if err != nil {
		t.Fatalf("testcluster: client certificate %s: %v", name, err)
	}
	b, err := pki.Load(filepath.Join(c.CertsDir, pki.CACertFile), certPath, strings.TrimSuffix(certPath, ".crt")+".key")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// DialEtcd connects to the cluster's etcd with a bundle (nil: plaintext) and
// closes the connection when the test ends.
func (c *Cluster) DialEtcd(t testing.TB, b *pki.Bundle) *clientv3.Client {
	t.Helper()
	ecfg := clientv3.Config{Endpoints: c.Config.Etcd.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
	if b != nil {
		ecfg.TLS = b.ClientTLS("")
	}
	cli, err := clientv3.New(ecfg)
	if err != nil {
		t.Fatalf("testcluster: etcd client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// stop runs a Close-like function with a bounded context.
func stop(closeFn func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = closeFn(ctx)
}

// StartWorker starts (or restarts, with the same id and data dir) a worker.
func (c *Cluster) StartWorker(t testing.TB, id string) *worker.Server {
	t.Helper()
	cfg := c.Config
	cfg.Worker.ID = id
	cfg.DataDir = filepath.Join(c.Config.DataDir, "worker-"+id)
	w, err := worker.New(context.Background(), cfg, worker.Deps{Etcd: c.Etcd, Registry: c.Registry, Logger: c.Log, TLS: c.Node, Secrets: c.Secrets})
	if err != nil {
		t.Fatalf("testcluster: worker %s: %v", id, err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatalf("testcluster: worker %s: %v", id, err)
	}
	t.Cleanup(func() { stop(w.Close) })
	c.Workers = append(c.Workers, w)
	return w
}

// WaitWorkers waits until the client sees n workers.
func (c *Cluster) WaitWorkers(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for c.Client.View().Members().Ring.Len() != n {
		if time.Now().After(deadline) {
			t.Fatalf("testcluster: the client sees %d workers, want %d", c.Client.View().Members().Ring.Len(), n)
		}
		select {
		case <-c.Client.View().Changed():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Coordinator is a gRPC client of the coordinator.
func (c *Cluster) Coordinator() rpcpb.CoordinatorClient { return c.coordC }

// Mount adds a mount through the coordinator and waits until the client sees
// it. The error is the coordinator's, mapped back to Strata's sentinels.
func (c *Cluster) Mount(path, uri string, opts map[string]string, tune ...func(*namespace.Mount)) error {
	m := namespace.Mount{Path: path, URI: uri, Options: opts, MetadataTTL: -1}
	for _, f := range tune {
		f(&m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.coordC.AddMount(ctx, &rpcpb.AddMountRequest{Mount: rpcpb.FromMount(m)}); err != nil {
		return rpcpb.FromStatus(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c.visible(path) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testcluster: mount %s not visible to the client", path)
		}
		select {
		case <-c.Client.View().Changed():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// MustMount is Mount that fails the test on error.
func (c *Cluster) MustMount(t testing.TB, path, uri string, opts map[string]string, tune ...func(*namespace.Mount)) {
	t.Helper()
	if err := c.Mount(path, uri, opts, tune...); err != nil {
		t.Fatalf("mount %s %s: %v", path, uri, err)
	}
}

// visible reports whether the client and every worker see the mount at path.
func (c *Cluster) visible(path string) bool {
	if _, ok := c.Client.Mounts().ByPath(path); !ok {
		return false
	}
	for _, w := range c.Workers {
		if _, ok := w.Mounts().ByPath(path); !ok {
			return false
		}
	}
	return true
}
