package coordinator

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// probeTimeout bounds the etcd round trip of a readiness probe.
const probeTimeout = 2 * time.Second

// serveHealthz answers liveness probes: the process serves HTTP.
func serveHealthz(w http.ResponseWriter, _ *http.Request) {
	_, _ = w.Write([]byte("ok\n"))
}

// serveReadyz answers readiness probes: 200 when the coordinator is
// registered for discovery and etcd answers, 503 with the reason otherwise.
// Being the leader does not matter: every coordinator serves the mount API.
func (s *Server) serveReadyz(w http.ResponseWriter, r *http.Request) {
	if err := s.ready(r.Context()); err != nil {
		http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

func (s *Server) ready(ctx context.Context) error {
	if s.regn == nil {
		return fmt.Errorf("not registered in etcd yet")
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if _, err := s.etcd.Get(ctx, s.keys.MountsRev()); err != nil {
		return fmt.Errorf("etcd does not answer: %w", err)
	}
	return nil
}
