// Package s3compat checks Strata's S3 API with S3 clients nobody here wrote
// — aws-sdk-go-v2, the AWS CLI, boto3 and s3cmd — against a Strata cluster
// whose buckets are mounts of a real MinIO.
package s3compat

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/s3api"
	"github.com/stratafs/strata/tests/harness"
	"github.com/stratafs/strata/tests/testcluster"
)

const (
	keyID     = "STRATATESTKEY"
	keySecret = "strata/test+secret/key0123456789"
	// listKeys objects lie under k/a/ and k/b/ of the listing bucket, in
	// 50 directories of 100; the object at key K holds the bytes of K.
	listKeys = 5000
)

var (
	minio      *harness.MinIO
	listBucket string
)

func TestMain(m *testing.M) {
	harness.Main(m, func(t harness.TB) {
		minio = harness.StartMinIO(t)
		listBucket = minio.NewBucket(t, "listing")
		fillListing(t)
	})
}

// listingKey is the i-th key of the listing bucket.
func listingKey(i int) string {
	half := "a"
	if i >= listKeys/2 {
		half = "b"
	}
	j := i % (listKeys / 2)
	return fmt.Sprintf("k/%s/%02d/%03d", half, j/100, j%100)
}

// fillListing writes the listing bucket straight into MinIO, 32 at a time.
func fillListing(t harness.TB) {
	cl := minio.S3Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, listKeys)
	sem := make(chan struct{}, 32)
	for i := range listKeys {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			k := listingKey(i)
			_, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(listBucket), Key: aws.String(k), Body: strings.NewReader(k)})
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatalf("fill the listing bucket: %v", err)
	}
}

// strata is a cluster over MinIO with an S3 server in front: bucket "data"
// is a fresh MinIO bucket, bucket "listing" the shared listing bucket
// (read-only).
type strata struct {
	c          *testcluster.Cluster
	srv        *s3api.Server
	endpoint   string // http://127.0.0.1:port
	addr       string
	dataBucket string // the MinIO bucket behind "data"
}

func startStrata(t testing.TB, tune func(*conf.Config)) *strata {
	t.Helper()
	c := testcluster.Start(t, testcluster.Options{})
	st := &strata{c: c, dataBucket: minio.NewBucket(t, t.Name())}
	c.MustMount(t, "/data", "s3://"+st.dataBucket, minio.S3Options())
	c.MustMount(t, "/listing", "s3://"+listBucket, minio.S3Options(), func(m *namespace.Mount) { m.ReadOnly = true })
	cfg := c.Config
	cfg.S3.Listen = "127.0.0.1:0"
	cfg.S3.AccessKeys = []string{keyID + ":" + keySecret}
	cfg.S3.Domains = []string{"s3.strata.test"}
	if tune != nil {
		tune(&cfg)
	}
	srv, err := s3api.New(context.Background(), cfg, s3api.Deps{Client: c.Client, Logger: c.Log})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("close the S3 server: %v", err)
		}
	})
	st.srv, st.addr, st.endpoint = srv, srv.Addr(), "http://"+srv.Addr()
	return st
}

// sdk is an aws-sdk-go-v2 client of the Strata S3 API: path-style, or
// virtual-host-style with every host name dialled at the server.
func (st *strata) sdk(t testing.TB, virtualHost bool) *s3.Client {
	t.Helper()
	return st.sdkAs(t, virtualHost, keyID, keySecret)
}

// sdkAs is sdk with other credentials.
func (st *strata) sdkAs(t testing.TB, virtualHost bool, id, secret string) *s3.Client {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	tr.Proxy = nil
	// The SDK sends Expect: 100-continue with big bodies. The default 1 s
	// wait for the server's answer is a fallback for servers that ignore
	// it; on a loaded test machine Strata's refusal (412, 403) can take
	// longer, the client then streams the body into a connection the server
	// closes, and the refusal is lost in a reset.
	tr.ExpectContinueTimeout = 30 * time.Second
	t.Cleanup(tr.CloseIdleConnections)
	base := st.endpoint
	if virtualHost {
		_, port, _ := net.SplitHostPort(st.addr)
		base = "http://s3.strata.test:" + port
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, st.addr)
		}
	}
	return s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(base), UsePathStyle: !virtualHost,
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""),
		HTTPClient:  &http.Client{Transport: tr},
	})
}

// tool finds a Debian-packaged client by its full path (another `aws` or
// python may come first in PATH), failing (or skipping with
// STRATA_ALLOW_SKIP=1) with the command that installs it.
func tool(t testing.TB, path, pkg string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		msg := fmt.Sprintf("%s is missing: `apt-get install -y %s` (scripts/install-tools.sh does it)", path, pkg)
		if os.Getenv("STRATA_ALLOW_SKIP") == "1" {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
	return path
}

// clientEnv is a clean environment for the Python and CLI clients: no AWS
// settings of the developer's (profile, CA bundle, config files), HOME in a
// temp dir, the test's credentials.
func clientEnv(t testing.TB) []string {
	home := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") || k == "HOME" || k == "PYTHONPATH" || k == "PYTHONHOME" {
			continue
		}
		env = append(env, kv)
	}
	cfg := filepath.Join(home, "aws-config")
	if err := os.WriteFile(cfg, []byte("[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return append(env, "HOME="+home, "AWS_CONFIG_FILE="+cfg, "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "none"),
		"AWS_ACCESS_KEY_ID="+keyID, "AWS_SECRET_ACCESS_KEY="+keySecret, "AWS_DEFAULT_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=")
}

// run runs a command and fails the test with its output on error.
func run(t testing.TB, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}
