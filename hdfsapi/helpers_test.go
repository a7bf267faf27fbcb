package hdfsapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/pki"
	"github.com/stratafs/strata/tests/testcluster"
)

// env is a TLS cluster with local-directory mounts at /data (writable),
// /ro (read-only) and /other (writable, another mount), and a WebHDFS server
// in front of it.
type env struct {
	c    *testcluster.Cluster
	srv  *Server
	reg  *prometheus.Registry
	base string // https://127.0.0.1:port/webhdfs/v1
	dir  string // the directory mounted at /data
	ro   string // the directory mounted at /ro
	cfg  conf.Config

	admin, reader, writer *pki.Bundle // client certificates: admin, client "reader", client "etl" (in hdfs.writers)
}

func startEnv(t *testing.T, tune func(cfg *conf.Config)) *env {
	t.Helper()
	c := testcluster.Start(t, testcluster.Options{TLS: true})
	e := &env{c: c, dir: t.TempDir(), ro: t.TempDir(), reg: prometheus.NewRegistry()}
	c.MustMount(t, "/data", "file://"+e.dir, nil)
	c.MustMount(t, "/ro", "file://"+e.ro, nil, func(m *namespace.Mount) { m.ReadOnly = true })
	c.MustMount(t, "/other", "file://"+t.TempDir(), nil)
	cfg := c.Config
	cfg.HDFS.Listen = "127.0.0.1:0"
	cfg.HDFS.Writers = []string{"etl"}
	if tune != nil {
		tune(&cfg)
	}
	e.cfg = cfg
	srv, err := New(context.Background(), cfg, Deps{Client: c.Client, Logger: c.Log, TLS: c.Node, Metrics: e.reg})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", cfg.HDFS.Listen)
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	e.srv = srv
	e.base = srv.URL() + Prefix
	e.admin = c.ClientBundle(t, "alice", pki.RoleAdmin)
	e.reader = c.ClientBundle(t, "reader", pki.RoleClient)
	e.writer = c.ClientBundle(t, "etl", pki.RoleClient)
	return e
}

// client is an HTTP client of the server that trusts the cluster CA and
// presents b (nil: no certificate). It does not follow redirects.
func (e *env) client(t *testing.T, b *pki.Bundle) *http.Client {
	t.Helper()
	var cfg *tls.Config
	if e.srv.TLS() {
		cfg = &tls.Config{RootCAs: e.c.Node.CA, MinVersion: tls.VersionTLS13}
		if b != nil {
			cfg.Certificates = []tls.Certificate{b.Cert}
		}
	}
	tr := &http.Transport{TLSClientConfig: cfg, Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 60 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

// token signs a WebHDFS token with b.
func token(t *testing.T, b *pki.Bundle) string {
	t.Helper()
	tok, err := SignToken(b, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// u is the URL of a namespace path with the query parameters kv (name,
// value pairs).
func (e *env) u(path string, kv ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Add(kv[i], kv[i+1])
	}
	return e.base + path + "?" + q.Encode()
}

// response is what a request got.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a generic value.
func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body is not JSON (%d): %q", r.status, r.body)
	}
	return v
}

func do(t *testing.T, cl *http.Client, method, rawURL string, body []byte) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, rawURL, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, rawURL, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// follow does a request and, for a 307, the same request at its Location.
func follow(t *testing.T, cl *http.Client, method, rawURL string, body []byte) response {
	t.Helper()
	r := do(t, cl, method, rawURL, nil)
	if r.status != http.StatusTemporaryRedirect {
		return r
	}
	loc := r.header.Get("Location")
	if !strings.Contains(loc, "datanode=true") {
		t.Fatalf("redirect to %q, not to a data URL", loc)
	}
	return do(t, cl, method, loc, body)
}

// wantRemote checks a RemoteException answer: status, exception, Java
// class, and a message containing each of want.
func wantRemote(t *testing.T, r response, status int, exception string, want ...string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var v struct {
		RemoteException map[string]string
	}
	if err := json.Unmarshal(r.body, &v); err != nil || len(v.RemoteException) != 3 {
		t.Fatalf("not a RemoteException: %s", r.body)
	}
	re := v.RemoteException
	if re["exception"] != exception || re["javaClassName"] != exceptions[exception].class {
		t.Fatalf("exception %q (%s), want %q: %s", re["exception"], re["javaClassName"], exception, r.body)
	}
	for _, w := range want {
		if !strings.Contains(re["message"], w) {
			t.Errorf("message %q lacks %q", re["message"], w)
		}
	}
	for _, leak := range []string{"file://", "s3://", os.TempDir()} {
		if strings.Contains(re["message"], leak) {
			t.Errorf("message %q names the under-storage (%s)", re["message"], leak)
		}
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// pattern is n deterministic, non-repeating-looking bytes.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}
