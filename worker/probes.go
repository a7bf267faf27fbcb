package worker

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/stratafs/strata/cluster"
)

// probeTimeout bounds the etcd round trip of a readiness probe.
const probeTimeout = 2 * time.Second

// serveHealthz answers liveness probes: the process serves HTTP. It needs
// no data token.
func serveHealthz(w http.ResponseWriter, _ *http.Request) {
	_, _ = w.Write([]byte("ok\n"))
}

// serveReadyz answers readiness probes: 200 once the worker recovered its
// tiers and registered in the membership and while etcd answers; 503 with
// the reason while it starts, drains or has lost etcd. It needs no data
// token.
func (s *Server) serveReadyz(w http.ResponseWriter, r *http.Request) {
	if err := s.ready(r.Context()); err != nil {
		http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

func (s *Server) ready(ctx context.Context) error {
	if !s.registered.Load() {
		return fmt.Errorf("not registered in the membership yet")
	}
	if st := s.Info().State; st != cluster.StateServing {
		return fmt.Errorf("state %s", st)
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if _, err := s.etcd.Get(ctx, s.keys.Worker(s.id)); err != nil {
		return fmt.Errorf("etcd does not answer: %w", err)
	}
	return nil
}
