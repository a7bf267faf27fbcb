package cli

import (
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestProbes: the coordinator (metrics port) and the worker (data port)
// answer liveness and readiness probes without credentials.
func TestProbes(t *testing.T) {
	l := startLocal(t)
	log, err := os.ReadFile(l.proc.Log)
	if err != nil {
		t.Fatal(err)
	}
	coord := regexp.MustCompile(`coordinator:\s+\S+\s+metrics: http://(\S+)/metrics`).FindSubmatch(log)
	worker := regexp.MustCompile(`data \+ metrics: http://(\S+)/metrics`).FindSubmatch(log)
	if coord == nil || worker == nil {
		t.Fatalf("strata local printed no metrics addresses:\n%s", log)
	}
	for _, addr := range []string{string(coord[1]), string(worker[1])} {
		for _, p := range []string{"/healthz", "/readyz"} {
			resp, err := http.Get("http://" + addr + p)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), map[string]string{"/healthz": "ok", "/readyz": "ready"}[p]) {
				t.Errorf("GET %s%s: %d %q", addr, p, resp.StatusCode, body)
			}
		}
	}
}
