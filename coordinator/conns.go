package coordinator

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stratafs/strata/cluster"
	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/ufs"
	"google.golang.org/grpc"
)

// openFS returns the UFS of mount m (one open FS per mount, reopened when
// the mount's URI or options change).
func (s *Server) openFS(ctx context.Context, m namespace.Mount) (ufs.FS, error) {
	fs, err := s.fss.Get(ctx, m.ID, ufs.Spec{URI: m.URI, Options: m.Options})
	if err != nil {
		return nil, fmt.Errorf("open %s for mount %s: %w", m.URI, m.Path, err)
	}
	return fs, nil
}

// workerClient returns a gRPC client of a worker, from a connection kept
// while the worker stays registered.
func (s *Server) workerClient(w cluster.WorkerInfo) (rpcpb.WorkerClient, error) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	cc, ok := s.conns[w.RPCAddr]
	if !ok {
		var err error
		cc, err = grpc.NewClient(w.RPCAddr, rpcpb.DialOptions(s.tls)...)
		if err != nil {
			return nil, fmt.Errorf("dial worker %s at %s: %w", w.ID, w.RPCAddr, err)
		}
		s.conns[w.RPCAddr] = cc
	}
	return rpcpb.NewWorkerClient(cc), nil
}

// prune closes connections to departed workers and UFSes of removed mounts.
func (s *Server) prune() {
	live := map[string]bool{}
	for _, w := range s.view.Members().ByID {
		live[w.RPCAddr] = true
	}
	s.connMu.Lock()
	for addr, cc := range s.conns {
		if !live[addr] {
			_ = cc.Close()
			delete(s.conns, addr)
		}
	}
	s.connMu.Unlock()
	if err := s.fss.Prune(s.view.Mounts().Specs()); err != nil {
		s.log.Warn("close the UFS of a removed mount", "err", err)
	}
}

func (s *Server) closeConns() {
	s.connMu.Lock()
	for addr, cc := range s.conns {
		_ = cc.Close()
		delete(s.conns, addr)
	}
	s.connMu.Unlock()
	if err := s.fss.Close(); err != nil {
		s.log.Warn("close UFS connections", "err", err)
	}
}

// loadMetrics are the coordinator's load job metrics.
type loadMetrics struct {
	files    *prometheus.CounterVec // by result: done, failed, skipped
	bytes    prometheus.Counter
	ufsBytes prometheus.Counter
	active   prometheus.Gauge
	finished *prometheus.CounterVec // by state
}

func newLoadMetrics(reg prometheus.Registerer) *loadMetrics {
	m := &loadMetrics{
		files: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "strata", Subsystem: "load", Name: "files_total",
			Help: "Files finished by load jobs run here, by result (done, failed, skipped)."}, []string{"result"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "strata", Subsystem: "load", Name: "bytes_total",
			Help: "Bytes of the files load jobs run here finished loading."}),
		ufsBytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "strata", Subsystem: "load", Name: "ufs_read_bytes_total",
			Help: "Bytes workers read from the UFS for load jobs run here."}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "strata", Subsystem: "load", Name: "jobs_active",
			Help: "Load jobs running on this coordinator (the leader)."}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "strata", Subsystem: "load", Name: "jobs_finished_total",
			Help: "Load jobs that ended here, by final state (done, failed, stopped)."}, []string{"state"}),
	}
	for _, c := range []prometheus.Collector{m.files, m.bytes, m.ufsBytes, m.active, m.finished} {
		_ = reg.Register(c)
	}
	return m
}
