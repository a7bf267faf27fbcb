// Package client is what the CLI and every front-end (FUSE, S3, HDFS) share:
// a live view of mounts and workers from etcd, namespace resolution, routing of
// metadata and page reads to the owning workers by the placement ring, fallback
// to the next owner and then to the UFS itself, and writes through to the UFS.
package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/stratafs/strata/cluster"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/pki"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/ufs"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
)

// Options configure a Client.
type Options struct {
	Etcd     *clientv3.Client
	Config   conf.Config
	Registry *ufs.Registry // opens UFSes for fallback reads and writes
	Logger   *slog.Logger
	// Local is a worker running in this process, if any (`strata local`):
	// fully cached files can then be read from its disk directly.
	Local LocalWorker
	// TLS is this client's certificate: with it the client dials workers and
	// coordinators with mutual TLS and signs data tokens for page reads. nil
	// talks plaintext (a cluster run with --insecure).
	TLS *pki.Bundle
	// Secrets opens the mounts' sealed credentials, for reads straight from
	// the under-storage and for writes. Without it the client holds no bucket
	// secret: it reads through the workers only, and writes fail with
	// ufs.ErrPermission.
	Secrets *cluster.SecretBox
}

// LocalWorker is a worker in the client's own process.
type LocalWorker interface {
	// ID is the worker's identity in the membership.
	ID() string
	// OpenFull opens the disk file holding every byte of one version of a
	// file, keeping its pages on disk until release is called.
	OpenFull(mountID, path string, fi ufs.FileInfo) (file *os.File, release func(), err error)
	// Stat answers a stat as the worker's Stat RPC would (its metadata
	// cache, then the UFS), without the RPC.
	Stat(ctx context.Context, mountID, path string, sync bool) (ufs.FileInfo, error)
	// ReadAt fills buf with the bytes at off of one version of a file, as
	// the worker's data endpoint would send them, without the HTTP request.
	ReadAt(ctx context.Context, mountID, path string, fi ufs.FileInfo, off int64, buf []byte) error
}

// Client routes namespace operations to workers and UFSes. Safe for concurrent
// use; Close releases connections.
type Client struct {
	cfg   conf.Client
	wcfg  conf.Worker
	keys  cluster.Keys
	etcd  *clientv3.Client
	view  *cluster.View
	log   *slog.Logger
	fss   *ufs.Pool
	local LocalWorker
	http  *http.Client
	tls   *pki.Bundle
	token *pki.TokenSource // nil without TLS

	// windows pools the read-ahead buffers of File.Read.
	windows sync.Pool

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn // by worker RPC address
}

// New loads the cluster state from etcd and starts watching it.
func New(ctx context.Context, opts Options) (*Client, error) {
	log := opts.Logger.With("component", "client")
	keys := cluster.Keys{Prefix: opts.Config.Etcd.Prefix}
	view, err := cluster.NewView(ctx, opts.Etcd, keys, log, opts.Secrets)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:               nil, // worker addresses are never reached through a proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ReadBufferSize:      256 << 10,
	}
	if opts.TLS != nil {
		tr.TLSClientConfig = opts.TLS.ClientTLS("") // workers with worker.data_tls
	}
	c := &Client{
		cfg: opts.Config.Client, wcfg: opts.Config.Worker, keys: keys, etcd: opts.Etcd, view: view, log: log,
		fss: ufs.NewPool(opts.Registry), local: opts.Local, http: &http.Client{Transport: tr}, conns: map[string]*grpc.ClientConn{},
		tls: opts.TLS,
	}
	if opts.TLS != nil {
		c.token = pki.NewTokenSource(opts.TLS, dataTokenTTL)
	}
	view.OnChange(c.prune)
	return c, nil
}

// Close stops watching and closes every connection.
func (c *Client) Close() error {
	c.view.Close()
	c.mu.Lock()
	for addr, cc := range c.conns {
		_ = cc.Close()
		delete(c.conns, addr)
	}
	c.mu.Unlock()
	c.http.CloseIdleConnections()
	return c.fss.Close()
}

// View is the live cluster state.
func (c *Client) View() *cluster.View { return c.view }

// Mounts is the current mount table.
func (c *Client) Mounts() *namespace.Table { return c.view.Mounts() }

// Etcd is the client's etcd connection.
func (c *Client) Etcd() *clientv3.Client { return c.etcd }

// Keys is the etcd key layout in use.
func (c *Client) Keys() cluster.Keys { return c.keys }

// prune drops connections to departed workers and UFSes of removed mounts.
func (c *Client) prune() {
	members := c.view.Members()
	live := map[string]bool{}
	for _, w := range members.ByID {
		live[w.RPCAddr] = true
	}
	c.mu.Lock()
	for addr, cc := range c.conns {
		if !live[addr] {
			_ = cc.Close()
			delete(c.conns, addr)
		}
	}
	c.mu.Unlock()
	if err := c.fss.Prune(c.view.Mounts().Specs()); err != nil {
		c.log.Debug("close UFS of a removed mount", "err", err)
	}
}

// workerClient returns a gRPC client for a worker.
func (c *Client) workerClient(w cluster.WorkerInfo) (rpcpb.WorkerClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cc, ok := c.conns[w.RPCAddr]
	if !ok {
		var err error
		cc, err = grpc.NewClient(w.RPCAddr, rpcpb.DialOptions(c.tls)...)
		if err != nil {
			return nil, fmt.Errorf("client: dial worker %s at %s: %w", w.ID, w.RPCAddr, err)
		}
		c.conns[w.RPCAddr] = cc
	}
	return rpcpb.NewWorkerClient(cc), nil
}

// resolve maps a namespace path to its mount and UFS-relative path.
func (c *Client) resolve(path string) (string, namespace.Mount, string, error) {
	p, err := namespace.Clean(path)
	if err != nil {
		return "", namespace.Mount{}, "", err
	}
	m, rel, err := c.Mounts().Resolve(p)
	return p, m, rel, err
}

// dataTokenTTL is the life of the data tokens the client signs; a token is
// re-signed when a third of it is left.
const dataTokenTTL = 10 * time.Minute

// ErrNoSecrets is returned when an operation needs a mount's credentials and
// this client holds no cluster key to open them.
var ErrNoSecrets = errors.New("client: this client holds no cluster key")

// ufsOf returns the UFS of a mount, for fallback reads and writes.
func (c *Client) ufsOf(ctx context.Context, m namespace.Mount) (ufs.FS, error) {
	if cluster.HasSealed(m) {
		return nil, fmt.Errorf("%w: %w to open the credentials of %s, so it cannot reach %s itself: reads go through the workers; "+
			"give it the cluster key (tls.cluster_key_file) to write or to read when no worker answers", ufs.ErrPermission, ErrNoSecrets, m.Path, m.URI)
	}
	fs, err := c.fss.Get(ctx, m.ID, ufs.Spec{URI: m.URI, Options: m.Options})
	if err != nil {
		return nil, fmt.Errorf("open %s for mount %s: %w", m.URI, m.Path, err)
	}
	return fs, nil
}

// owners returns the workers to try for key, best first.
func (c *Client) owners(key string, replicas int) []cluster.WorkerInfo {
	members := c.view.Members()
	n := max(replicas, 1) + 1 // the replicas, then one more as a fallback
	var out []cluster.WorkerInfo
	for _, id := range members.Ring.Owners(key, n) {
		if w, ok := members.Get(id); ok {
			out = append(out, w)
		}
	}
	return out
}

// retriable reports whether another owner (or the UFS) may succeed where this
// worker failed: transport errors and unavailability, not answers such as
// "not found".
func retriable(err error) bool {
	if err == nil {
		return false
	}
	for _, s := range []error{ufs.ErrNotFound, ufs.ErrNotDir, ufs.ErrIsDir, ufs.ErrChanged, ufs.ErrPermission,
		ufs.ErrInvalidPath, ufs.ErrExist, ufs.ErrNotEmpty, context.Canceled} {
		if errors.Is(err, s) {
			return false
		}
	}
	return true
}
