package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// FakeGCS is a running fake-gcs-server (a GCS emulator speaking the JSON and
// XML APIs over plain HTTP; it ignores credentials and read preconditions).
// Its methods are safe for concurrent use.
type FakeGCS struct {
	*Process
	// Endpoint is http://127.0.0.1:port: pass it as the gcs.endpoint option
	// with gcs.credentials=anonymous, or as STORAGE_EMULATOR_HOST with
	// gcs.credentials=ambient.
	Endpoint string
	// DataDir is the server's storage directory (filesystem backend only).
	DataDir string
}

// FakeGCSBackend selects where fake-gcs-server keeps objects.
type FakeGCSBackend string

// Backends of fake-gcs-server.
const (
	// FakeGCSMemory keeps objects in the server's memory (fastest; the
	// default).
	FakeGCSMemory FakeGCSBackend = "memory"
	// FakeGCSFilesystem keeps objects in files under DataDir.
	FakeGCSFilesystem FakeGCSBackend = "filesystem"
)

// StartFakeGCS starts fake-gcs-server with the memory backend on a free port
// of 127.0.0.1 and waits until it serves requests. It is stopped when the test
// ends.
func StartFakeGCS(t TB) *FakeGCS {
	t.Helper()
	return StartFakeGCSWith(t, FakeGCSMemory)
}

// StartFakeGCSWith is StartFakeGCS with a chosen backend.
func StartFakeGCSWith(t TB, backend FakeGCSBackend) *FakeGCS {
	t.Helper()
	bin := FindTool(t, "fake-gcs-server")
	port := FreePort(t)
	g := &FakeGCS{Endpoint: "http://" + Addr(port)}
	args := []string{
		"-scheme", "http", "-host", "127.0.0.1", "-port", fmt.Sprint(port),
		"-public-host", Addr(port), "-external-url", g.Endpoint,
		"-backend", string(backend), "-log-level", "warn",
	}
	if backend == FakeGCSFilesystem {
		g.DataDir = filepath.Join(t.TempDir(), "fake-gcs")
		if err := os.MkdirAll(g.DataDir, 0o755); err != nil {
			t.Fatalf("harness: %v", err)
		}
		args = append(args, "-filesystem-root", g.DataDir)
	}
	g.Process = Start(t, "fake-gcs-server", nil, bin, args...)
	g.WaitReady(t, 30*time.Second, func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.Endpoint+"/_internal/healthcheck", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("healthcheck: %s", resp.Status)
		}
		return nil
	})
	return g
}

// CreateBucket creates a bucket through the JSON API, failing the test on
// error (an existing bucket included). Safe for concurrent use.
func (g *FakeGCS) CreateBucket(t TB, name string) {
	t.Helper()
	if err := g.createBucket(name); err != nil {
		t.Fatalf("harness: create GCS bucket %q: %v", name, err)
	}
}

func (g *FakeGCS) createBucket(name string) error {
	body, err := json.Marshal(map[string]string{"name": name})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.Endpoint+"/storage/v1/b?project=strata-test", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}
