package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/cluster"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/pki"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/tests/testcluster"
	"github.com/stratafs/strata/ufs"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// secureCluster is a TLS cluster with an S3 mount holding a file.
func secureCluster(t *testing.T) (*testcluster.Cluster, []byte) {
	t.Helper()
	c := testcluster.Start(t, testcluster.Options{TLS: true})
	bucket := minio.NewBucket(t, "secure")
	data := randBytes(t, 3<<20+17)
	putObject(t, bucket, "ds/file.bin", data)
	c.MustMount(t, "/sec", "s3://"+bucket+"/ds", minio.S3Options())
	return c, data
}

// newClient is a client of c with the given certificate and cluster key.
func newClient(t *testing.T, c *testcluster.Cluster, b *pki.Bundle, box *cluster.SecretBox) *client.Client {
	t.Helper()
	cl, err := client.New(context.Background(), client.Options{Etcd: c.DialEtcd(t, b), Config: c.Config, Registry: c.Registry, Logger: c.Log, TLS: b, Secrets: box})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

func readPath(ctx context.Context, cl *client.Client, p string) ([]byte, error) {
	f, err := cl.Open(ctx, p, false)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// TestTLSClusterServesAdminAndReader: the admin reads and writes; a plain
// client certificate reads through the workers but may not reconfigure the
// cluster at the coordinator, the workers or etcd, and holds no bucket secret.
func TestTLSClusterServesAdminAndReader(t *testing.T) {
	c, data := secureCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got, err := readPath(ctx, c.Client, "/sec/file.bin")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("admin read: %d bytes, %v", len(got), err)
	}
	if _, err := c.Client.Create(ctx, "/sec/ckpt.bin", bytes.NewReader([]byte("checkpoint")), 10); err != nil {
		t.Fatalf("admin write: %v", err)
	}

	reader := c.ClientBundle(t, "fuse-node", pki.RoleClient)
	rc := newClient(t, c, reader, nil)
	got, err = readPath(ctx, rc, "/sec/file.bin")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("reader read through the workers: %d bytes, %v", len(got), err)
	}
	// No cluster key: the credentials stay sealed in its view, and a write
	// (which needs them) is refused with a clear error.
	for _, m := range rc.Mounts().All() {
		for k, v := range m.Options {
			if ufs.IsSecret(k) && !cluster.Sealed(v) {
				t.Fatalf("a client without the cluster key sees option %s in the clear", k)
			}
		}
	}
	if _, err := rc.Create(ctx, "/sec/evil.bin", bytes.NewReader([]byte("x")), 1); !errors.Is(err, ufs.ErrPermission) || !errors.Is(err, client.ErrNoSecrets) {
		t.Fatalf("write without the cluster key: %v, want ErrPermission/ErrNoSecrets", err)
	}

	// The coordinator: reads yes, changes no.
	coord, conn, err := rc.Coordinator(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := coord.ListMounts(ctx, &rpcpb.ListMountsRequest{}); err != nil {
		t.Fatalf("reader ListMounts: %v", err)
	}
	for name, call := range map[string]func() error{
		"AddMount": func() error {
			_, err := coord.AddMount(ctx, &rpcpb.AddMountRequest{Mount: &rpcpb.Mount{Path: "/pwn", Uri: "file:///"}})
			return err
		},
		"RemoveMount": func() error { _, err := coord.RemoveMount(ctx, &rpcpb.RemoveMountRequest{Path: "/sec"}); return err },
		"UpdateMount": func() error {
			_, err := coord.UpdateMount(ctx, &rpcpb.UpdateMountRequest{Path: "/sec", SetOptions: map[string]string{"s3.endpoint": "http://evil"}})
			return err
		},
		"SubmitLoad": func() error { _, err := coord.SubmitLoad(ctx, &rpcpb.SubmitLoadRequest{Path: "/sec"}); return err },
		"Free":       func() error { _, err := coord.Free(ctx, &rpcpb.FreeRequest{Path: "/sec"}); return err },
	} {
		if err := call(); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "admin") {
			t.Errorf("reader %s: %v, want PermissionDenied naming the admin role", name, err)
		}
	}
	if _, ok := c.Client.Mounts().ByPath("/pwn"); ok {
		t.Fatal("a refused AddMount changed the mount table")
	}

	// The worker: node-only calls are refused to clients, admin included.
	w := c.Workers[0].Info()
	for _, b := range []*pki.Bundle{reader, c.ClientBundle(t, "ops", pki.RoleAdmin)} {
		wc := workerConn(t, w.RPCAddr, credentials.NewTLS(b.ClientTLS("")))
		if _, err := wc.FreePath(ctx, &rpcpb.FreePathRequest{Path: "/"}); status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s FreePath: %v, want PermissionDenied", b.Identity, err)
		}
		if _, err := wc.CacheMetadata(ctx, &rpcpb.CacheMetadataRequest{}); status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s CacheMetadata: %v, want PermissionDenied", b.Identity, err)
		}
		if _, err := wc.Load(ctx, &rpcpb.LoadRequest{}); status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s Load: %v, want PermissionDenied", b.Identity, err)
		}
		if _, err := wc.Stats(ctx, &rpcpb.StatsRequest{}); err != nil {
			t.Errorf("%s Stats: %v", b.Identity, err)
		}
	}

	// etcd: the reader may read Strata's keys but not write a mount there
	// behind the coordinator's back.
	ecli := c.DialEtcd(t, reader)
	if _, err := ecli.Get(ctx, c.Config.Etcd.Prefix+"/mounts/", clientv3.WithPrefix()); err != nil {
		t.Fatalf("reader etcd read: %v", err)
	}
	if _, err := ecli.Put(ctx, c.Config.Etcd.Prefix+"/mounts/%2Fpwn", `{"path":"/pwn","uri":"file:///"}`); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("reader etcd write: %v, want permission denied", err)
	}
}

// TestSecretsSealedAtRest: a mount's credentials never sit in etcd in
// plaintext, nor in what ListMounts answers.
func TestSecretsSealedAtRest(t *testing.T) {
	c, _ := secureCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	secret := minio.S3Options()["s3.secret_access_key"]
	resp, err := c.Etcd.Get(ctx, "", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		if bytes.Contains(kv.Value, []byte(secret)) {
			t.Fatalf("etcd key %s holds the secret in plaintext", kv.Key)
		}
	}
	lm, err := c.Coordinator().ListMounts(ctx, &rpcpb.ListMountsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range lm.GetMounts() {
		for k, v := range m.GetOptions() {
			if strings.Contains(v, secret) || (ufs.IsSecret(k) && v != "****") {
				t.Fatalf("ListMounts shows %s=%q", k, v)
			}
		}
	}
	// The etcd data on disk (the bbolt file and WAL) has no plaintext copy.
	err = filepath.Walk(c.Config.DataDir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || !strings.Contains(p, "etcd") {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s holds the secret in plaintext", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestUntrustedCallersRefused: no certificate, a certificate of another CA
// and an expired one are refused at every port, and nothing is served.
func TestUntrustedCallersRefused(t *testing.T) {
	c, _ := secureCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := c.Workers[0].Info()
	coordAddr := c.Coord.Addr()

	other := t.TempDir()
	if err := pki.CreateCA(other, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.CreateClient(other, "mallory", pki.RoleAdmin, true, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	foreign, err := pki.LoadDir(other, false)
	if err != nil {
		t.Fatal(err)
	}
	// A foreign client that trusts our CA (so only our check can refuse it).
	foreignTLS := foreign.ClientTLS("")
	foreignTLS.RootCAs = c.Node.CA
	expiredTLS := expiredClientTLS(t, c)

	callers := map[string]credentials.TransportCredentials{
		"plaintext":      insecure.NewCredentials(),
		"no certificate": credentials.NewTLS(&tls.Config{RootCAs: c.Node.CA, MinVersion: tls.VersionTLS13}),
		"another CA":     credentials.NewTLS(foreignTLS),
		"expired":        credentials.NewTLS(expiredTLS),
	}
	for name, creds := range callers {
		wc := workerConn(t, w.RPCAddr, creds)
		sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
		if _, err := wc.FreePath(sctx, &rpcpb.FreePathRequest{Path: "/"}); err == nil {
			t.Errorf("%s: worker FreePath succeeded", name)
		}
		if _, err := wc.Stats(sctx, &rpcpb.StatsRequest{}); err == nil {
			t.Errorf("%s: worker Stats succeeded", name)
		}
		cc, err := grpc.NewClient(coordAddr, grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rpcpb.NewCoordinatorClient(cc).AddMount(sctx, &rpcpb.AddMountRequest{Mount: &rpcpb.Mount{Path: "/pwn", Uri: "file:///"}}); err == nil {
			t.Errorf("%s: coordinator AddMount succeeded", name)
		}
		if _, err := rpcpb.NewCoordinatorClient(cc).ListMounts(sctx, &rpcpb.ListMountsRequest{}); err == nil {
			t.Errorf("%s: coordinator ListMounts succeeded", name)
		}
		_ = cc.Close()
		scancel()
	}
	// etcd refuses every one of them.
	for name, cfg := range map[string]*tls.Config{"no certificate": {RootCAs: c.Node.CA}, "another CA": foreignTLS, "expired": expiredTLS} {
		ecli, err := clientv3.New(clientv3.Config{Endpoints: c.Config.Etcd.Endpoints, DialTimeout: 3 * time.Second, TLS: cfg, Logger: zap.NewNop()})
		if err != nil {
			continue
		}
		sctx, scancel := context.WithTimeout(ctx, 3*time.Second)
		if _, err := ecli.Get(sctx, "/", clientv3.WithPrefix()); err == nil {
			t.Errorf("%s: etcd answered", name)
		}
		scancel()
		ecli.Close()
	}
	// The data port: no token, a forged token, a token of another CA.
	m, ok := c.Client.Mounts().ByPath("/sec")
	if !ok {
		t.Fatal("no mount")
	}
	tokOther, err := foreign.SignDataToken(time.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	good, err := c.ClientBundle(t, "reader", pki.RoleClient).SignDataToken(time.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	forged := good[:len(good)-4] + "AAAA"
	url := "http://" + w.DataAddr + rpcpb.DataPath + "?" + (&rpcpb.DataRequest{MountID: m.ID, Path: "file.bin", Off: 0, N: 16}).Query().Encode()
	for name, tok := range map[string]string{"no token": "", "another CA": tokOther, "forged": forged} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if tok != "" {
			req.Header.Set(pki.DataTokenHeader, tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "token") {
			t.Errorf("data port, %s: %d %s, want 403 naming the token", name, resp.StatusCode, body)
		}
	}
}

func workerConn(t *testing.T, addr string, creds credentials.TransportCredentials) rpcpb.WorkerClient {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return rpcpb.NewWorkerClient(cc)
}

// expiredClientTLS signs, with the cluster's CA key, an admin certificate
// that expired an hour ago.
func expiredClientTLS(t *testing.T, c *testcluster.Cluster) *tls.Config {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(c.CertsDir, pki.CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(caPEM)
	caKeyAny, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		k, err2 := x509.ParseECPrivateKey(blk.Bytes)
		if err2 != nil {
			t.Fatalf("CA key: %v / %v", err, err2)
		}
		caKeyAny = k
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: pki.RoleAdmin.User()},
		NotBefore:    time.Now().Add(-48 * time.Hour),
		NotAfter:     time.Now().Add(-time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.Node.CACert, &key.PublicKey, caKeyAny)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: c.Node.CA, MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// TestDataPortTLS: with worker.data_tls the data port speaks only mutual TLS,
// and the client reads through it.
func TestDataPortTLS(t *testing.T) {
	dir := t.TempDir()
	data := randBytes(t, 5<<20+3)
	if err := os.WriteFile(filepath.Join(dir, "f.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	c := testcluster.Start(t, testcluster.Options{Workers: 2, TLS: true, Tune: func(cfg *conf.Config) {
		cfg.Worker.BlockSize = 1 << 20
		cfg.Worker.DataTLS = true
	}})
	c.MustMount(t, "/d", "file://"+dir, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for range 2 { // cold, then warm
		got, err := readPath(ctx, c.Client, "/d/f.bin")
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read over TLS: %d bytes, %v", len(got), err)
		}
	}
	w := c.Workers[0].Info()
	if !w.DataTLS {
		t.Fatal("the worker does not advertise its TLS data port")
	}
	resp, err := http.Get("http://" + w.DataAddr + rpcpb.DataPath)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Fatalf("plain HTTP to a TLS data port answered %d", resp.StatusCode)
		}
	}
	// TLS without a client certificate: the handshake fails.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.Node.CA}}}
	if resp, err := hc.Get("https://" + w.DataAddr + "/metrics"); err == nil {
		resp.Body.Close()
		t.Fatalf("a TLS client without a certificate got %d", resp.StatusCode)
	}
}
