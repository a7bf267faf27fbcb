package webhdfs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stratafs/strata/hdfsapi"
	"github.com/stratafs/strata/pki"
	"github.com/stratafs/strata/tests/testcluster"
)

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// server is an in-process TLS cluster with a WebHDFS server in front of
// it, and one mount at root: a local directory (/data) or a MinIO bucket
// (/s3), holding seed.bin.
type server struct {
	c    *testcluster.Cluster
	srv  *hdfsapi.Server
	root string
	host string
	port int
	ca   string
	seed []byte
	// get reads a file of the under-storage by its path below the mount
	// (errors for a missing one).
	get func(rel string) ([]byte, error)
}

func startServer(t *testing.T, overMinIO bool) *server {
	t.Helper()
	c := testcluster.Start(t, testcluster.Options{TLS: true})
	s := &server{c: c, ca: filepath.Join(c.CertsDir, pki.CACertFile)}
	s.seed = make([]byte, 11<<20+321)
	r := rand.NewChaCha8([32]byte{7})
	_, _ = r.Read(s.seed)
	if overMinIO {
		bucket := minio.NewBucket(t, "webhdfs")
		c.MustMount(t, "/s3", "s3://"+bucket, minio.S3Options())
		s.root = "/s3"
		cl := minio.S3Client(t)
		s.get = func(rel string) ([]byte, error) {
			out, err := cl.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(rel)})
			if err != nil {
				return nil, err
			}
			defer out.Body.Close()
			return io.ReadAll(out.Body)
		}
		if _, err := cl.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("seed.bin"), Body: bytes.NewReader(s.seed)}); err != nil {
			t.Fatal(err)
		}
	} else {
		dir := t.TempDir()
		c.MustMount(t, "/data", "file://"+dir, nil)
		s.root = "/data"
		s.get = func(rel string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, rel)) }
		if err := os.WriteFile(filepath.Join(dir, "seed.bin"), s.seed, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := c.Config
	cfg.HDFS.Listen = "127.0.0.1:0"
	srv, err := hdfsapi.New(context.Background(), cfg, hdfsapi.Deps{Client: c.Client, Logger: c.Log, TLS: c.Node})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
	})
	s.srv = srv
	host, port, _ := net.SplitHostPort(srv.Addr())
	s.host = host
	s.port, _ = strconv.Atoi(port)
	return s
}

// clientFiles writes a client certificate of the cluster's CA and returns
// its certificate and key paths.
func (s *server) clientFiles(t *testing.T, name string, role pki.Role) (string, string) {
	t.Helper()
	p, err := pki.CreateClient(s.c.CertsDir, name, role, false, pki.Options{Overwrite: true})
	if err != nil {
		t.Fatal(err)
	}
	return p, strings.TrimSuffix(p, ".crt") + ".key"
}

func (s *server) args(mode string) fsspecArgs {
	return fsspecArgs{Host: s.host, Port: s.port, HTTPS: true, CA: s.ca, Root: s.root, Mode: mode, SeedSize: len(s.seed)}
}

// checkReads compares what fsspec read with the seed file.
func (s *server) checkReads(t *testing.T, res fsspecResult) {
	t.Helper()
	size := len(s.seed)
	if res.SeedSHA != sum(s.seed) {
		t.Errorf("fsspec read the seed file wrong")
	}
	var want []string
	for _, r := range [][2]int{{0, 10}, {5<<20 - 3, 5<<20 + 7}, {size - 5, size}, {size / 2, size/2 + 1}} {
		want = append(want, sum(s.seed[r[0]:r[1]]))
	}
	if !slices.Equal(res.RangeSHAs, want) || res.CatRangeSHA != sum(s.seed[7:1000]) {
		t.Errorf("fsspec read ranges wrong: %v", res.RangeSHAs)
	}
	if !strings.Contains(res.Missing, "File does not exist: "+s.root+"/none") {
		t.Errorf("FileNotFoundError message %q", res.Missing)
	}
	if res.Ukey["algorithm"] != "MD5-of-0MD5-of-512CRC32C" || res.Ukey["length"] != 28.0 || len(res.Ukey["bytes"].(string)) != 64 {
		t.Errorf("ukey %v", res.Ukey)
	}
	if res.Summary["fileCount"] == 0.0 || res.Summary["length"].(float64) < float64(size) {
		t.Errorf("content summary %v", res.Summary)
	}
}

// TestFsspecToken drives fsspec with a WebHDFS delegation token of an admin
// certificate over HTTPS: ls, info, reads and ranges, a 12 MiB write
// (CREATE and APPENDs), append mode, odd names, mkdir, mv, rm, rm -r,
// chmod refused; everything checked against the under-storage.
func TestFsspecToken(t *testing.T) {
	needFsspec(t)
	testFsspecReadWrite(t, startServer(t, false))
}

// TestFsspecOverMinIO is TestFsspecToken over a mount of a real object
// store: directories are prefixes and markers, renames are copies, APPEND
// is a conditional rewrite of the object.
func TestFsspecOverMinIO(t *testing.T) {
	needFsspec(t)
	testFsspecReadWrite(t, startServer(t, true))
}

func testFsspecReadWrite(t *testing.T, s *server) {
	tok, err := hdfsapi.SignToken(s.c.ClientBundle(t, "alice", pki.RoleAdmin), time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	a := s.args("readwrite")
	a.Token = tok
	res := runFsspec(t, a)
	s.checkReads(t, res)
	got, err := s.get("up/big.bin")
	if err != nil || sum(got) != res.AppendedSHA || sum(got[:len(got)-len("appended tail")]) != res.WrittenSHA {
		t.Errorf("the under-storage holds %d bytes that are not what fsspec wrote: %v", len(got), err)
	}
	if got, err := s.get("up/sub/moved.txt"); err == nil {
		t.Errorf("rm -r left a file: %q", got)
	}
	if !slices.Equal(res.LsUp, []string{s.root + "/up/big.bin"}) {
		t.Errorf("ls after the changes: %v", res.LsUp)
	}
	if !strings.Contains(res.Nonempty, "is non empty") || !strings.Contains(res.Chmod, "SETPERMISSION is not supported") {
		t.Errorf("errors: %q %q", res.Nonempty, res.Chmod)
	}
	// fsspec's checksum is the server's.
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: s.c.Node.ClientTLS("")}}
	resp, err := cl.Get(s.srv.URL() + hdfsapi.Prefix + s.root + "/seed.bin?op=GETFILECHECKSUM&datanode=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var ck struct{ FileChecksum map[string]any }
	if err := json.Unmarshal(body, &ck); err != nil || ck.FileChecksum["bytes"] != res.Ukey["bytes"] {
		t.Errorf("checksum %s, fsspec saw %v", body, res.Ukey)
	}
}

// TestFsspecCertificates drives fsspec with client certificates (mutual
// TLS, requests' session.cert): an admin reads and writes; a client
// certificate reads and every write is refused (PermissionError); without
// any credential nothing is served.
func TestFsspecCertificates(t *testing.T) {
	needFsspec(t)
	s := startServer(t, false)
	a := s.args("readwrite")
	a.Cert, a.Key = s.clientFiles(t, "bob", pki.RoleAdmin)
	s.checkReads(t, runFsspec(t, a))

	a = s.args("readonly")
	a.Cert, a.Key = s.clientFiles(t, "reader", pki.RoleClient)
	res := runFsspec(t, a)
	s.checkReads(t, res)
	for _, msg := range []string{res.WriteRefused, res.MkdirRefused, res.RmRefused} {
		if !strings.Contains(msg, "client:reader may read but not write") {
			t.Errorf("refusal %q", msg)
		}
	}
	if _, err := s.get("nope.txt"); err == nil {
		t.Error("a refused write happened")
	}
	if _, err := s.get("seed.bin"); err != nil {
		t.Errorf("a refused rm happened: %v", err)
	}

	a = s.args("denied")
	res = runFsspec(t, a)
	if !strings.Contains(res.LsRefused, "Authentication required") || !strings.Contains(res.OpenRefused, "Authentication required") {
		t.Errorf("no credentials: %q %q", res.LsRefused, res.OpenRefused)
	}
	a.Token = "wh1.forged.1.x"
	if res := runFsspec(t, a); !strings.Contains(res.LsRefused, "delegation token was refused") {
		t.Errorf("forged token: %q", res.LsRefused)
	}
}
