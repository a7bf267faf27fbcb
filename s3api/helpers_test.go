package s3api

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/tests/testcluster"
)

const (
	testKeyID     = "TESTKEY0001"
	testKeySecret = "test-secret-key-0001"
)

// env is a cluster with a local-directory mount at /data (bucket "data")
// and an S3 server in front of it.
type env struct {
	c    *testcluster.Cluster
	srv  *Server
	url  string
	dir  string // the directory mounted at /data
	cfg  conf.Config
	http *http.Client
}

func startEnv(t *testing.T, tune func(cfg *conf.Config)) *env {
	t.Helper()
	c := testcluster.Start(t, testcluster.Options{})
	dir := t.TempDir()
	c.MustMount(t, "/data", "file://"+dir, nil)
	cfg := c.Config
	cfg.S3.Listen = "127.0.0.1:0"
	cfg.S3.AccessKeys = []string{testKeyID + ":" + testKeySecret}
	cfg.S3.MultipartDir = filepath.Join(t.TempDir(), "mp")
	if tune != nil {
		tune(&cfg)
	}
	srv, err := New(context.Background(), cfg, Deps{Client: c.Client, Logger: c.Log})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", cfg.S3.Listen)
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
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Wait for the server's answer to Expect: 100-continue as long as a
	// loaded test machine needs (the default 1 s then streams the body
	// into a refusal, and the refusal is lost in a reset).
	tr.ExpectContinueTimeout = 30 * time.Second
	t.Cleanup(tr.CloseIdleConnections)
	return &env{c: c, srv: srv, url: "http://" + srv.Addr(), dir: dir, cfg: cfg, http: &http.Client{Transport: tr}}
}

// sdk is an aws-sdk-go-v2 client of the server.
func (e *env) sdk(t *testing.T, opts ...func(*s3.Options)) *s3.Client {
	t.Helper()
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(e.url),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(testKeyID, testKeySecret, ""),
		HTTPClient:   e.http,
	}, opts...)
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
