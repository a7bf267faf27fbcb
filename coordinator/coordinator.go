// Package coordinator is Strata's control plane: it validates and stores
// mounts in etcd, watches the membership, aggregates reports, fans out free
// requests and pins, and — on the elected leader — runs the load jobs of
// `strata load`, checkpointed in etcd so that a new leader resumes them. It is
// never on the data path.
package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
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
	"github.com/stratafs/strata/ufs"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
)

// Deps are the coordinator's collaborators.
type Deps struct {
	Etcd     *clientv3.Client
	Registry *ufs.Registry
	Logger   *slog.Logger
	// Metrics registers the coordinator's metrics (nil: a private registry);
	// Gatherer serves them on coordinator.metrics_listen.
	Metrics  prometheus.Registerer
	Gatherer prometheus.Gatherer
	// TLS is the node certificate: with it the coordinator serves mutual TLS,
	// admits admin operations only from admin certificates and dials workers
	// with it. nil runs without TLS (loopback or --insecure only).
	TLS *pki.Bundle
	// Secrets seals mount credentials before they reach etcd and opens them
	// to check and walk mounts; nil refuses mounts with credentials.
	Secrets *cluster.SecretBox
}

// Server is a running coordinator. Close stops it and waits.
type Server struct {
	rpcpb.UnimplementedCoordinatorServer
	cfg     conf.Coordinator
	wcfg    conf.Worker // block size and lease TTL of the workers (shared config)
	id      string
	log     *slog.Logger
	etcd    *clientv3.Client
	keys    cluster.Keys
	reg     *ufs.Registry
	store   *cluster.MountStore
	view    *cluster.View
	grpc    *grpc.Server
	lis     net.Listener
	mlis    net.Listener
	mhttp   *http.Server
	regn    *cluster.Registration
	ops     *prometheus.CounterVec
	gather  prometheus.Gatherer
	leading atomic.Bool
	fss     *ufs.Pool
	jobs    *jobRunner
	lm      *loadMetrics
	connMu  sync.Mutex
	conns   map[string]*grpc.ClientConn // worker connections by RPC address
	tls     *pki.Bundle
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// New builds a coordinator and binds its listeners; Start serves.
func New(ctx context.Context, cfg conf.Config, deps Deps) (*Server, error) {
	keys := cluster.Keys{Prefix: cfg.Etcd.Prefix}
	var b [6]byte
	_, _ = rand.Read(b[:])
	s := &Server{
		cfg: cfg.Coordinator, wcfg: cfg.Worker, id: "c-" + hex.EncodeToString(b[:]), etcd: deps.Etcd, keys: keys,
		reg: deps.Registry, store: cluster.NewMountStore(deps.Etcd, keys, deps.Secrets), fss: ufs.NewPool(deps.Registry),
		conns: map[string]*grpc.ClientConn{}, tls: deps.TLS,
	}
	s.jobs = &jobRunner{s: s, running: map[string]*loadJob{}}
	s.log = deps.Logger.With("component", "coordinator", "coordinator", s.id)
	reg, gath := deps.Metrics, deps.Gatherer
	if reg == nil {
		r := prometheus.NewRegistry()
		reg, gath = r, r
	}
	s.gather = gath
	s.ops = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "strata", Subsystem: "coordinator", Name: "mount_ops_total",
		Help: "Mount table operations by kind and result.",
	}, []string{"op", "result"})
	_ = reg.Register(s.ops)
	s.lm = newLoadMetrics(reg)
	var err error
	s.view, err = cluster.NewView(ctx, deps.Etcd, keys, s.log, deps.Secrets)
	if err != nil {
		return nil, fmt.Errorf("coordinator: watch cluster state: %w", err)
	}
	s.view.OnChange(s.prune)
	s.lis, err = net.Listen("tcp", cfg.Coordinator.Listen)
	if err != nil {
		s.view.Close()
		return nil, fmt.Errorf("coordinator: listen on %s (coordinator.listen): %w", cfg.Coordinator.Listen, err)
	}
	if a := cfg.Coordinator.MetricsListen; a != "" && s.gather != nil {
		s.mlis, err = net.Listen("tcp", a)
		if err != nil {
			s.view.Close()
			_ = s.lis.Close()
			return nil, fmt.Errorf("coordinator: listen on %s (coordinator.metrics_listen): %w", a, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(s.gather, promhttp.HandlerOpts{}))
		mux.HandleFunc("/healthz", serveHealthz)
		mux.HandleFunc("/readyz", s.serveReadyz)
		s.mhttp = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	}
	s.grpc = grpc.NewServer(rpcpb.ServerOptions(deps.TLS, policy())...)
	rpcpb.RegisterCoordinatorServer(s.grpc, s)
	return s, nil
}

// Addr is the address clients dial.
func (s *Server) Addr() string {
	if s.cfg.AdvertiseAddr != "" {
		return s.cfg.AdvertiseAddr
	}
	return s.lis.Addr().String()
}

// MetricsAddr is the bound metrics address ("" when disabled).
func (s *Server) MetricsAddr() string {
	if s.mlis == nil {
		return ""
	}
	return s.mlis.Addr().String()
}

// Start serves and registers the coordinator for discovery.
func (s *Server) Start(ctx context.Context) error {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.grpc.Serve(s.lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.log.Error("gRPC server stopped", "err", err)
		}
	}()
	if s.mhttp != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.mhttp.Serve(s.mlis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("metrics server stopped", "err", err)
			}
		}()
	}
	info := cluster.CoordinatorInfo{ID: s.id, Addr: s.Addr(), Started: time.Now().UTC()}
	regn, err := cluster.Register(ctx, s.etcd, s.keys.Coordinator(s.id), info, 10*time.Second, s.log)
	if err != nil {
		return fmt.Errorf("coordinator: register in etcd: %w", err)
	}
	s.regn = regn
	bg, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.campaign(bg)
	}()
	s.log.Info("coordinator serving", "addr", s.Addr(), "metrics", s.MetricsAddr())
	return nil
}

// Close deregisters and stops the coordinator.
func (s *Server) Close(ctx context.Context) error {
	var errs []error
	if s.cancel != nil {
		s.cancel() // resigns leadership at once
	}
	if s.regn != nil {
		errs = append(errs, s.regn.Close(ctx))
	}
	done := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.grpc.Stop()
	}
	if s.mhttp != nil {
		_ = s.mhttp.Shutdown(ctx)
	}
	s.wg.Wait()
	s.view.Close()
	s.closeConns()
	return errors.Join(errs...)
}

func (s *Server) count(op string, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	s.ops.WithLabelValues(op, result).Inc()
}

// AddMount validates a mount (URI, scheme, reachability with its
// credentials, mount point) and stores it.
func (s *Server) AddMount(ctx context.Context, req *rpcpb.AddMountRequest) (*rpcpb.AddMountResponse, error) {
	m, err := s.addMount(ctx, rpcpb.ToMount(req.GetMount()))
	s.count("add", err)
	if err != nil {
		s.log.Info("mount refused", "path", req.GetMount().GetPath(), "uri", req.GetMount().GetUri(), "err", err)
		return nil, rpcpb.ToStatus(err)
	}
	s.log.Info("mounted", "path", m.Path, "uri", m.URI, "id", m.ID)
	return &rpcpb.AddMountResponse{Mount: rpcpb.FromMount(m.Masked())}, nil
}

func (s *Server) addMount(ctx context.Context, m namespace.Mount) (namespace.Mount, error) {
	if m.WriteMode == "" {
		m.WriteMode = namespace.WriteCacheThrough
	}
	if m.Replicas == 0 {
		m.Replicas = 1
	}
	if err := m.Validate(); err != nil {
		return m, err
	}
	t := s.view.Mounts()
	if err := t.CheckNew(m.Path); err != nil {
		return m, err
	}
	if err := checkLocalRoot(m.URI, s.cfg.AllowedLocalRoots); err != nil {
		return m, err
	}
	if err := s.checkReachable(ctx, m); err != nil {
		return m, err
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	m.ID = hex.EncodeToString(b[:])
	m.Created = time.Now().UTC()
	return m, s.store.Add(ctx, m)
}

// checkReachable opens the UFS and stats its root with the mount's
// credentials, so a typo never gets stored.
func (s *Server) checkReachable(ctx context.Context, m namespace.Mount) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.MountCheckTimeout.D())
	defer cancel()
	fs, err := s.reg.Open(ctx, m.URI, m.Options)
	if err != nil {
		return err
	}
	defer fs.Close()
	if err := ufs.Check(ctx, fs); err != nil {
		return fmt.Errorf("cannot mount %s: %w", m.URI, err)
	}
	return nil
}

// RemoveMount deletes a mount.
func (s *Server) RemoveMount(ctx context.Context, req *rpcpb.RemoveMountRequest) (*rpcpb.RemoveMountResponse, error) {
	p, err := namespace.Clean(req.GetPath())
	if err == nil {
		var m namespace.Mount
		m, err = s.store.Remove(ctx, p)
		if err == nil {
			s.log.Info("unmounted", "path", p, "uri", m.URI)
		}
	}
	s.count("remove", err)
	if err != nil {
		return nil, rpcpb.ToStatus(err)
	}
	return &rpcpb.RemoveMountResponse{}, nil
}

// ListMounts returns every mount with secrets masked.
func (s *Server) ListMounts(ctx context.Context, _ *rpcpb.ListMountsRequest) (*rpcpb.ListMountsResponse, error) {
	mounts, _, err := s.store.List(ctx)
	if err != nil {
		return nil, rpcpb.ToStatus(err)
	}
	resp := &rpcpb.ListMountsResponse{}
	for _, m := range mounts {
		resp.Mounts = append(resp.Mounts, rpcpb.FromMount(m.Masked()))
	}
	return resp, nil
}

// UpdateMount changes a mount's options and settings; a change of
// credentials or endpoint is checked for reachability before it is stored.
func (s *Server) UpdateMount(ctx context.Context, req *rpcpb.UpdateMountRequest) (*rpcpb.UpdateMountResponse, error) {
	p, err := namespace.Clean(req.GetPath())
	if err != nil {
		return nil, rpcpb.ToStatus(err)
	}
	m, err := s.store.Update(ctx, p, func(m *namespace.Mount) error {
		for k, v := range req.GetSetOptions() {
			m.Options[k] = v
		}
		for _, k := range req.GetUnsetOptions() {
			delete(m.Options, k)
		}
		if req.ReadOnly != nil {
			m.ReadOnly = req.GetReadOnly()
		}
		if req.GetWriteMode() != "" {
			m.WriteMode = req.GetWriteMode()
		}
		if req.MetadataTtlMs != nil {
			m.MetadataTTL = time.Duration(req.GetMetadataTtlMs()) * time.Millisecond
		}
		if req.Replicas != nil {
			m.Replicas = int(req.GetReplicas())
		}
		if err := checkLocalRoot(m.URI, s.cfg.AllowedLocalRoots); err != nil {
			return err
		}
		if len(req.GetSetOptions())+len(req.GetUnsetOptions()) > 0 {
			return s.checkReachable(ctx, *m)
		}
		return nil
	})
	s.count("update", err)
	if err != nil {
		return nil, rpcpb.ToStatus(err)
	}
	return &rpcpb.UpdateMountResponse{Mount: rpcpb.FromMount(m.Masked())}, nil
}

// Report gathers every worker's figures.
func (s *Server) Report(ctx context.Context, _ *rpcpb.ReportRequest) (*rpcpb.ReportResponse, error) {
	members := s.view.Members()
	workers := members.Sorted()
	resp := &rpcpb.ReportResponse{Mounts: int32(s.view.Mounts().Len()), CoordinatorId: s.id, LeaderId: s.leaderID(ctx),
		Workers: make([]*rpcpb.WorkerReport, len(workers))}
	if cr, err := s.etcd.Get(ctx, s.keys.Coordinators(), clientv3.WithPrefix(), clientv3.WithKeysOnly()); err == nil {
		for _, kv := range cr.Kvs {
			resp.Coordinators = append(resp.Coordinators, strings.TrimPrefix(string(kv.Key), s.keys.Coordinators()))
		}
	}
	shares := members.Ring.KeyShares(100_000)
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := s.workerReport(ctx, w)
			r.KeyShare = shares[w.ID]
			r.Weight = members.Ring.Weight(w.ID)
			resp.Workers[i] = r
		}()
	}
	wg.Wait()
	return resp, nil
}

func (s *Server) workerReport(ctx context.Context, w cluster.WorkerInfo) *rpcpb.WorkerReport {
	base := &rpcpb.WorkerStats{Id: w.ID, Host: w.Host, RpcAddr: w.RPCAddr, DataAddr: w.DataAddr, State: w.State, StartedUnixMs: w.Started.UnixMilli()}
	wc, err := s.workerClient(w)
	if err != nil {
		return &rpcpb.WorkerReport{Stats: base, Error: err.Error()}
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := wc.Stats(rctx, &rpcpb.StatsRequest{})
	if err != nil {
		return &rpcpb.WorkerReport{Stats: base, Error: rpcpb.FromStatus(err).Error()}
	}
	return &rpcpb.WorkerReport{Stats: st}
}
