package harness

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// MinIO is a running MinIO server.
type MinIO struct {
	*Process
	// Endpoint is http://127.0.0.1:port.
	Endpoint  string
	AccessKey string
	SecretKey string
	// DataDir is the server's storage directory.
	DataDir string
	port    int
}

// StartMinIO starts a MinIO server with a fresh data dir and waits until it
// serves requests. It is stopped when the test ends.
func StartMinIO(t TB) *MinIO {
	t.Helper()
	bin := FindTool(t, "minio")
	m := &MinIO{AccessKey: "strata-test", SecretKey: "strata-test-secret", DataDir: filepath.Join(t.TempDir(), "minio")}
	if err := os.MkdirAll(m.DataDir, 0o755); err != nil {
		t.Fatalf("harness: %v", err)
	}
	m.start(t, bin)
	return m
}

func (m *MinIO) start(t TB, bin string) {
	fixed := m.port != 0 // a restart keeps its port
	for attempt := 1; ; attempt++ {
		ports := FreePorts(t, 2)
		if !fixed {
			m.port = ports[0]
		}
		cport := ports[1]
		if cport == m.port {
			cport = ports[0]
		}
		m.Endpoint = "http://" + Addr(m.port)
		env := []string{
			"MINIO_ROOT_USER=" + m.AccessKey, "MINIO_ROOT_PASSWORD=" + m.SecretKey,
			"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1",
			"MINIO_API_REQUESTS_DEADLINE=2m",
		}
		m.Process = Start(t, "minio", env, bin, "server", "--quiet", "--address", Addr(m.port), "--console-address", Addr(cport), m.DataDir)
		err := m.waitHealthy(60 * time.Second)
		if err == nil {
			return
		}
		m.Kill()
		// Another test binary may have taken a port since FreePorts.
		if !fixed && attempt < 3 && strings.Contains(m.Tail(8000), "address already in use") {
			continue
		}
		t.Fatalf("harness: minio: %v\n%s", err, m.Tail(4000))
	}
}

// waitHealthy polls the readiness endpoint until it answers 200, the server
// exits, or timeout.
func (m *MinIO) waitHealthy(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if m.Exited() {
			return fmt.Errorf("exited during start-up")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.Endpoint+"/minio/health/ready", nil)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("health: %s", resp.Status)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %s: %v", timeout, last)
}

// Restart starts the server again on the same port and data dir after Stop or
// Kill (for tests of an origin that goes away and comes back).
func (m *MinIO) Restart(t TB) {
	t.Helper()
	if !m.Exited() {
		m.Stop(10 * time.Second)
	}
	m.start(t, m.Cmd.Path)
}
