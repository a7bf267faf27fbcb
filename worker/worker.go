// Package worker is Strata's cache worker: it registers in etcd under a lease,
// serves metadata (stat, list) over gRPC with a per-mount TTL cache, and serves
// page data over HTTP from its tiered cache, filling a miss from the UFS once
// however many readers wait for it.
package worker

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stratafs/strata/cluster"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/pki"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/tier"
	"github.com/stratafs/strata/ufs"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc"
)

// Deps are the worker's collaborators.
type Deps struct {
	Etcd     *clientv3.Client
	Registry *ufs.Registry
	Logger   *slog.Logger
	// Metrics is where the worker registers its Prometheus metrics; nil makes
	// a private registry. Gatherer serves /metrics (defaults to Metrics when it
	// is a *prometheus.Registry).
	Metrics  prometheus.Registerer
	Gatherer prometheus.Gatherer
	// TLS is the node certificate: with it the worker serves mutual TLS on
	// its gRPC port, admits load, metadata and free calls only from nodes,
	// and serves its data port only to requests that carry a data token
	// signed by a certificate of the cluster CA. nil runs without TLS
	// (loopback or --insecure only).
	TLS *pki.Bundle
	// Secrets opens the mounts' sealed credentials; without it the worker
	// cannot reach an under-storage that needs them.
	Secrets *cluster.SecretBox
}

// Server is a running worker. Close stops it and waits for every goroutine.
type Server struct {
	cfg  conf.Config
	wcfg conf.Worker
	id   string
	log  *slog.Logger
	keys cluster.Keys
	etcd *clientv3.Client
	view *cluster.View
	// mounts is the view (a fixed table in tests).
	mounts mountSource
	cache  *tier.Cache
	fss    *ufs.Pool
	meta   *metaCache
	fills  *filler
	m      *metrics
	// health is the per-mount circuit breaker of the under-storages.
	health *breaker
	// lastPutErr is the last failed cache Put of a fill (a putError).
	lastPutErr atomic.Value
	// staleBudget is staleBudget (shorter in tests).
	staleBudget time.Duration
	// lists single-flights the directory listings stat misses read.
	lists singleflight.Group

	grpcSrv *grpc.Server
	httpSrv *http.Server
	rpcLis  net.Listener
	dataLis net.Listener
	reg     *cluster.Registration
	infoMu  sync.Mutex
	info    cluster.WorkerInfo
	// bg is the context of the worker's background goroutines (cancel ends
	// them; wg waits for them). spawnMu and stopped keep spawn from adding
	// to wg once Close waits.
	bg      context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	spawnMu sync.Mutex
	stopped bool
	// tokens checks the data tokens of the data port (nil without TLS).
	tokens *pki.TokenVerifier
	// registered is set once the worker is in the membership (readiness).
	registered atomic.Bool
}

// New builds a worker from cfg, opens (and recovers) its cache and binds its
// listeners; Start registers it and starts serving.
func New(ctx context.Context, cfg conf.Config, deps Deps) (*Server, error) {
	log := deps.Logger.With("component", "worker")
	wcfg := cfg.Worker
	id, err := workerID(cfg)
	if err != nil {
		return nil, err
	}
	reg := deps.Metrics
	gath := deps.Gatherer
	if reg == nil {
		r := prometheus.NewRegistry()
		reg, gath = r, r
	}
	if gath == nil {
		if r, ok := reg.(*prometheus.Registry); ok {
			gath = r
		} else {
			gath = prometheus.DefaultGatherer
		}
	}
	tiers := wcfg.Cache
	for i := range tiers.Tiers {
		for j := range tiers.Tiers[i].Dirs {
			tiers.Tiers[i].Dirs[j].Path = cfg.Resolve(tiers.Tiers[i].Dirs[j].Path)
		}
	}
	cache, err := tier.New(tiers, tier.Options{
		PageSize: int64(wcfg.PageSize), BlockSize: int64(wcfg.BlockSize), Logger: log, Registerer: reg,
	})
	if err != nil {
		return nil, fmt.Errorf("worker: open cache: %w", err)
	}
	s := &Server{
		cfg: cfg, wcfg: wcfg, id: id, log: log.With("worker", id), keys: cluster.Keys{Prefix: cfg.Etcd.Prefix},
		etcd: deps.Etcd, cache: cache, m: newMetrics(reg), health: newBreaker(), staleBudget: staleBudget,
	}
	s.bg, s.cancel = context.WithCancel(context.Background())
	fail := func(err error) (*Server, error) {
		s.closeLocal()
		return nil, err
	}
	s.view, err = cluster.NewView(ctx, deps.Etcd, s.keys, log, deps.Secrets)
	if err != nil {
		return fail(fmt.Errorf("worker: watch cluster state: %w", err))
	}
	s.mounts = s.view
	s.fss = ufs.NewPool(deps.Registry)
	s.meta = newMetaCache(200_000, wcfg.MetadataTTL.D())
	if dir := metaDir(tiers); dir != "" {
		store, err := openMetaStore(dir, s.log)
		if err != nil {
			return fail(err)
		}
		store.writeErrors = s.m.metaWriteErrors.Inc
		s.meta.store = store
		if err := s.restoreMeta(); err != nil {
			return fail(err)
		}
	}
	s.view.OnChange(s.pruneFS)
	s.fills = newFiller(s, wcfg.UFSConcurrency)

	s.rpcLis, err = net.Listen("tcp", wcfg.Listen)
	if err != nil {
		return fail(fmt.Errorf("worker: listen on %s (worker.listen): %w", wcfg.Listen, err))
	}
	s.dataLis, err = net.Listen("tcp", wcfg.DataListen)
	if err != nil {
		return fail(fmt.Errorf("worker: listen on %s (worker.data_listen): %w", wcfg.DataListen, err))
	}
	if wcfg.DataTLS {
		if deps.TLS == nil {
			_ = s.dataLis.Close()
			return fail(fmt.Errorf("worker: worker.data_tls needs the node certificate (tls.dir); create it with `strata cert create-node`"))
		}
		s.dataLis = tls.NewListener(s.dataLis, deps.TLS.ServerTLS())
	}
	// Load jobs send directory listings of up to 200k entries in one message;
	// rpcpb bounds messages to that.
	s.grpcSrv = grpc.NewServer(rpcpb.ServerOptions(deps.TLS, policy())...)
	if deps.TLS != nil {
		s.tokens = pki.NewTokenVerifier(deps.TLS.CA, time.Minute)
	}
	rpcpb.RegisterWorkerServer(s.grpcSrv, &rpcService{s: s})
	mux := http.NewServeMux()
	mux.Handle(rpcpb.DataPath, s.requireToken(http.HandlerFunc(s.serveData)))
	mux.Handle("/metrics", promhttp.HandlerFor(gath, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", serveHealthz)
	mux.HandleFunc("/readyz", s.serveReadyz)
	s.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}

	host, _ := os.Hostname()
	var capacity int64
	for _, t := range cache.Stats() {
		capacity += t.Capacity
	}
	s.info = cluster.WorkerInfo{
		ID: id, Host: host, RPCAddr: advertise(s.rpcLis.Addr().String(), wcfg.AdvertiseHost),
		DataAddr: advertise(s.dataLis.Addr().String(), wcfg.AdvertiseHost), DataTLS: wcfg.DataTLS,
		State: cluster.StateServing, Capacity: capacity, Started: time.Now().UTC(),
	}
	return s, nil
}

// Start serves and registers the worker in etcd.
func (s *Server) Start(ctx context.Context) error {
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.grpcSrv.Serve(s.rpcLis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.log.Error("gRPC server stopped", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		if err := s.httpSrv.Serve(s.dataLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("data server stopped", "err", err)
		}
	}()
	reg, err := cluster.Register(ctx, s.etcd, s.keys.Worker(s.id), s.info, s.wcfg.LeaseTTL.D(), s.log)
	if err != nil {
		return fmt.Errorf("worker: register in etcd: %w", err)
	}
	s.reg = reg
	s.registered.Store(true)
	s.spawn(s.watchDrain)
	s.spawn(s.watchPins)
	s.spawn(s.watchHealth)
	s.log.Info("worker serving", "rpc", s.info.RPCAddr, "data", s.info.DataAddr, "capacity", conf.Size(s.info.Capacity).Human())
	return nil
}

// spawn runs fn on a goroutine owned by the worker: fn gets the worker's
// background context, cancelled by Close, which then waits for fn to
// return. It returns false (and does not run fn) once Close has begun.
func (s *Server) spawn(fn func(ctx context.Context)) bool {
	s.spawnMu.Lock()
	defer s.spawnMu.Unlock()
	if s.stopped {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn(s.bg)
	}()
	return true
}

// metaDir is where the metadata store lives: the first directory of the
// first disk tier, or "" for a worker without a disk tier (its metadata
// cache is then in memory only).
func metaDir(c conf.Cache) string {
	for _, t := range c.Tiers {
		if t.Medium == "disk" && len(t.Dirs) > 0 {
			return t.Dirs[0].Path
		}
	}
	return ""
}

// restoreMeta loads the metadata cache from the store, dropping the entries
// of mounts that no longer exist. A store found corrupt is moved aside and
// replaced by an empty one.
func (s *Server) restoreMeta() error {
	known := func(id string) bool { _, ok := s.mounts.Mounts().ByID(id); return ok }
	start := time.Now()
	st, err := s.meta.restore(known)
	if err != nil {
		s.log.Warn("metadata store is corrupt; starting with an empty one", "err", err)
		path := s.meta.store.path
		_ = s.meta.store.Close()
		aside := fmt.Sprintf("%s.corrupt-%d", path, time.Now().Unix())
		if rerr := os.Rename(path, aside); rerr != nil {
			return fmt.Errorf("worker: metadata store %s: %w (and moving it aside failed: %v)", path, err, rerr)
		}
		s.meta = newMetaCache(200_000, s.wcfg.MetadataTTL.D())
		store, oerr := openMetaStore(filepath.Dir(filepath.Dir(path)), s.log)
		if oerr != nil {
			return oerr
		}
		store.writeErrors = s.m.metaWriteErrors.Inc
		s.meta.store = store
		return nil
	}
	s.m.metaRestored.Set(float64(st.stats + st.lists))
	s.log.Info("metadata cache restored from disk", "stats", st.stats, "listings", st.lists, "bad_records", st.bad,
		"took", time.Since(start).Round(time.Millisecond))
	return nil
}

// ID is the worker's identity.
func (s *Server) ID() string { return s.id }

// OpenFull opens the disk file that holds every byte of one version of a
// file of a mount, for a front-end in this process to hand to the kernel (FUSE
// passthrough). The pages stay on disk until release is called. Returns
// tier.ErrNotCached when no single disk file holds the whole file.
func (s *Server) OpenFull(mountID, path string, fi ufs.FileInfo) (*os.File, func(), error) {
	h, err := s.cache.OpenFull(fileID(mountID, path, fi))
	if err != nil {
		return nil, nil, err
	}
	return h.File(), func() { _ = h.Close() }, nil
}

// Mounts is the mount table as this worker sees it.
func (s *Server) Mounts() *namespace.Table { return s.mounts.Mounts() }

// Info is what the worker publishes in etcd.
func (s *Server) Info() cluster.WorkerInfo {
	s.infoMu.Lock()
	defer s.infoMu.Unlock()
	return s.info
}

// watchDrain follows the worker's drain key: while it exists the worker is
// draining (out of the placement ring, still serving what it holds).
func (s *Server) watchDrain(ctx context.Context) {
	key := s.keys.Drain(s.id)
	for ctx.Err() == nil {
		resp, err := s.etcd.Get(ctx, key)
		if err == nil {
			s.setState(ctx, len(resp.Kvs) > 0)
			for wr := range s.etcd.Watch(clientv3.WithRequireLeader(ctx), key, clientv3.WithRev(resp.Header.Revision+1)) {
				if wr.Err() != nil {
					break
				}
				for _, ev := range wr.Events {
					s.setState(ctx, ev.Type == clientv3.EventTypePut)
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (s *Server) setState(ctx context.Context, draining bool) {
	state := cluster.StateServing
	if draining {
		state = cluster.StateDraining
	}
	s.infoMu.Lock()
	changed := s.info.State != state
	s.info.State = state
	info := s.info
	s.infoMu.Unlock()
	if !changed {
		return
	}
	if err := s.reg.Update(ctx, info); err != nil {
		s.log.Warn("publish state", "state", state, "err", err)
		return
	}
	s.log.Info("worker state changed", "state", state)
}

// spillTimeout bounds how long Close spends moving memory pages to disk.
const spillTimeout = 10 * time.Second

// Close deregisters the worker, stops its servers, moves what its memory
// tiers hold to its disk tiers (bounded by ctx and spillTimeout: a graceful
// restart keeps what it cached) and closes its cache and metadata store.
func (s *Server) Close(ctx context.Context) error {
	var errs []error
	s.spawnMu.Lock()
	s.stopped = true
	s.spawnMu.Unlock()
	if s.cancel != nil {
		s.cancel()
	}
	if s.reg != nil {
		errs = append(errs, s.reg.Close(ctx))
	}
	if s.httpSrv != nil {
		if err := s.httpSrv.Shutdown(ctx); err != nil {
			_ = s.httpSrv.Close()
		}
	}
	if s.grpcSrv != nil {
		done := make(chan struct{})
		go func() { s.grpcSrv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			s.grpcSrv.Stop()
		}
	}
	s.wg.Wait()
	s.spill(ctx)
	errs = append(errs, s.closeLocal())
	return errors.Join(errs...)
}

// spill demotes every page of the memory tiers to the tiers below, so that a
// graceful stop loses nothing it cached; what does not fit in spillTimeout
// (or before ctx ends) is lost as before.
func (s *Server) spill(ctx context.Context) {
	if s.cache == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, spillTimeout)
	defer cancel()
	start := time.Now()
	r, err := s.cache.Spill(ctx)
	if r.Pages == 0 && err == nil {
		return
	}
	log := s.log.Info
	if err != nil || r.Lost > 0 {
		log = s.log.Warn
	}
	log("memory tier spilled to disk", "pages", r.Pages, "bytes", r.Bytes, "lost_pages", r.Lost,
		"took", time.Since(start).Round(time.Millisecond), "err", err)
}

func (s *Server) closeLocal() error {
	if s.rpcLis != nil {
		_ = s.rpcLis.Close()
	}
	if s.dataLis != nil {
		_ = s.dataLis.Close()
	}
	if s.view != nil {
		s.view.Close()
	}
	if s.cancel != nil {
		s.cancel()
	}
	var errs []error
	if s.fss != nil {
		errs = append(errs, s.fss.Close())
	}
	if s.cache != nil {
		errs = append(errs, s.cache.Close())
	}
	if s.meta != nil && s.meta.store != nil {
		errs = append(errs, s.meta.store.Close())
	}
	return errors.Join(errs...)
}

func advertise(bound, host string) string {
	if host == "" {
		return bound
	}
	_, port, _ := net.SplitHostPort(bound)
	return net.JoinHostPort(host, port)
}

// workerID returns the configured ID or the one kept in the data dir,
// creating it on first start so a restart keeps the worker's place.
func workerID(cfg conf.Config) (string, error) {
	if cfg.Worker.ID != "" {
		return cfg.Worker.ID, nil
	}
	dir := filepath.Join(cfg.DataDir, "worker")
	p := filepath.Join(dir, "id")
	if b, err := os.ReadFile(p); err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id, nil
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("worker: create %s: %w", dir, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	id := "w-" + hex.EncodeToString(b[:])
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("worker: save identity: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return "", fmt.Errorf("worker: save identity: %w", err)
	}
	return id, nil
}

// fileID is the cache identity of one version of a file of a mount.
func fileID(mountID, path string, fi ufs.FileInfo) string {
	return hashHex(mountID, path, fi.Fingerprint())
}

// pruneFS closes the UFS handles of removed or changed mounts and drops
// their stored metadata.
func (s *Server) pruneFS() {
	if err := s.fss.Prune(s.view.Mounts().Specs()); err != nil {
		s.log.Warn("close UFS of a removed mount", "err", err)
	}
	if s.meta.store != nil {
		mounts := s.view.Mounts()
		s.meta.store.dropMounts(func(id string) bool { _, ok := mounts.ByID(id); return ok })
	}
}

// openFS returns the UFS of mount m.
func (s *Server) openFS(ctx context.Context, m namespace.Mount) (ufs.FS, error) {
	fs, err := s.fss.Get(ctx, m.ID, ufs.Spec{URI: m.URI, Options: m.Options})
	if err != nil {
		return nil, fmt.Errorf("open %s for mount %s: %w", m.URI, m.Path, err)
	}
	return fs, nil
}

// mountSource is where the worker finds the mount table (the cluster view).
type mountSource interface {
	Mounts() *namespace.Table
}

// mountOf returns the mount of an id, or namespace.ErrNotMounted.
func (s *Server) mountOf(id string) (namespace.Mount, error) {
	m, ok := s.mounts.Mounts().ByID(id)
	if !ok {
		return namespace.Mount{}, fmt.Errorf("%w: mount id %s is unknown to this worker (it may have been removed)", namespace.ErrNotMounted, id)
	}
	return m, nil
}
