package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// newCA creates a CA in a fresh directory.
func newCA(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "certs")
	if err := CreateCA(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// newNode creates a node certificate for localhost and 127.0.0.1 and loads it.
func newNode(t *testing.T, dir string) *Bundle {
	t.Helper()
	if err := CreateNode(dir, []string{"localhost", "127.0.0.1"}, Options{}); err != nil {
		t.Fatal(err)
	}
	b, err := LoadDir(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newClient creates and loads a named client certificate.
func newClient(t *testing.T, dir, name string, role Role) *Bundle {
	t.Helper()
	p, err := CreateClient(dir, name, role, false, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load(filepath.Join(dir, CACertFile), p, strings.TrimSuffix(p, ".crt")+".key")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestRole(t *testing.T) {
	for _, r := range []Role{RoleNode, RoleAdmin, RoleClient} {
		if got := r.User(); got != "strata-"+string(r) {
			t.Errorf("%s.User() = %q", r, got)
		}
		for _, s := range []string{string(r), r.User(), " " + strings.ToUpper(string(r))} {
			if got, err := ParseRole(s); err != nil || got != r {
				t.Errorf("ParseRole(%q) = %q, %v", s, got, err)
			}
		}
	}
	for _, s := range []string{"", "root", "strata-", "strata-root"} {
		if _, err := ParseRole(s); !errors.Is(err, ErrBadCert) {
			t.Errorf("ParseRole(%q) err = %v, want ErrBadCert", s, err)
		}
	}
}

func TestCreateAndLoad(t *testing.T) {
	dir := newCA(t)
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("certs dir mode %#o, want 0700", m)
	}
	for file, want := range map[string]fs.FileMode{CACertFile: 0o644, CAKeyFile: 0o600, ClusterKeyFile: 0o600} {
		if m := mode(t, filepath.Join(dir, file)); m != want {
			t.Errorf("%s mode %#o, want %#o", file, m, want)
		}
	}
	ca, _, err := loadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.IsCA || ca.MaxPathLen != 0 || !ca.MaxPathLenZero || ca.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("CA: IsCA %v MaxPathLen %d/%v KeyUsage %v", ca.IsCA, ca.MaxPathLen, ca.MaxPathLenZero, ca.KeyUsage)
	}
	if _, ok := ca.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("CA key %T, want ECDSA", ca.PublicKey)
	}
	if life := ca.NotAfter.Sub(ca.NotBefore); life < DefaultCALifetime || life > DefaultCALifetime+2*time.Hour {
		t.Errorf("CA lifetime %s", life)
	}

	if err := CreateNode(dir, []string{"worker-1.example", "10.1.2.3", "localhost", "[::1]"}, Options{}); err != nil {
		t.Fatal(err)
	}
	node, err := LoadDir(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	leaf := node.Cert.Leaf
	if leaf.Subject.CommonName != "strata-node" || len(leaf.DNSNames) != 2 || len(leaf.IPAddresses) != 2 {
		t.Errorf("node cert: CN %q DNS %v IP %v", leaf.Subject.CommonName, leaf.DNSNames, leaf.IPAddresses)
	}
	if len(leaf.ExtKeyUsage) != 2 || leaf.IsCA {
		t.Errorf("node cert: ExtKeyUsage %v IsCA %v", leaf.ExtKeyUsage, leaf.IsCA)
	}
	if want := (Identity{Role: RoleNode, Name: "node:worker-1.example"}); node.Identity != want || node.Identity.String() != "node:worker-1.example" {
		t.Errorf("node identity %+v (%s)", node.Identity, node.Identity)
	}
	if node.CACert == nil || !node.CACert.Equal(ca) {
		t.Error("node bundle CACert is not the CA")
	}
	if leaf.SerialNumber.BitLen() < 100 {
		t.Errorf("serial %s is not random 128-bit", leaf.SerialNumber)
	}

	admin := newClient(t, dir, "alice", RoleAdmin)
	if want := (Identity{Role: RoleAdmin, Name: "alice"}); admin.Identity != want || admin.Identity.String() != "admin:alice" {
		t.Errorf("admin identity %+v (%s)", admin.Identity, admin.Identity)
	}
	if l := admin.Cert.Leaf; l.Subject.CommonName != "strata-admin" || len(l.URIs) != 1 || l.URIs[0].String() != "strata://admin/alice" ||
		len(l.ExtKeyUsage) != 1 || l.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("admin cert: CN %q URIs %v EKU %v", l.Subject.CommonName, l.URIs, l.ExtKeyUsage)
	}

	p, err := CreateClient(dir, "fuse-1", RoleClient, true, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p != filepath.Join(dir, ClientCertFile) {
		t.Errorf("default client path %s", p)
	}
	cl, err := LoadDir(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Identity{Role: RoleClient, Name: "fuse-1"}); cl.Identity != want {
		t.Errorf("client identity %+v", cl.Identity)
	}

	for _, f := range []string{NodeKeyFile, ClientKeyFile, "client.alice.key"} {
		if m := mode(t, filepath.Join(dir, f)); m != 0o600 {
			t.Errorf("%s mode %#o, want 0600", f, m)
		}
	}
	for _, f := range []string{NodeCertFile, ClientCertFile, "client.alice.crt"} {
		if m := mode(t, filepath.Join(dir, f)); m != 0o644 {
			t.Errorf("%s mode %#o, want 0644", f, m)
		}
	}
	// No temporary files are left behind.
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("left over %s", e.Name())
		}
	}
}

func TestLoadDirClientSelection(t *testing.T) {
	dir := newCA(t)
	if _, err := LoadDir(dir, false); !errors.Is(err, ErrNoCert) {
		t.Fatalf("no client cert: %v", err)
	}
	if _, err := LoadDir(dir, true); !errors.Is(err, ErrNoCert) || !strings.Contains(err.Error(), "create-node") {
		t.Fatalf("no node cert: %v", err)
	}
	if _, err := CreateClient(dir, "one", RoleClient, false, Options{}); err != nil {
		t.Fatal(err)
	}
	b, err := LoadDir(dir, false)
	if err != nil || b.Identity.Name != "one" {
		t.Fatalf("one client cert: %v %+v", err, b)
	}
	if _, err := CreateClient(dir, "two", RoleAdmin, false, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDir(dir, false); !errors.Is(err, ErrNoCert) || !strings.Contains(err.Error(), "explicitly") {
		t.Fatalf("two client certs: %v", err)
	}
	if _, err := CreateClient(dir, "three", RoleAdmin, true, Options{}); err != nil {
		t.Fatal(err)
	}
	if b, err := LoadDir(dir, false); err != nil || b.Identity != (Identity{RoleAdmin, "three"}) {
		t.Fatalf("default client cert: %v %+v", err, b)
	}
}

func TestOverwrite(t *testing.T) {
	dir := newCA(t)
	key1, err := ReadClusterKey(filepath.Join(dir, ClusterKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	ca1, _ := os.ReadFile(filepath.Join(dir, CACertFile))
	if err := CreateCA(dir, Options{}); !errors.Is(err, ErrExists) {
		t.Fatalf("CreateCA again: %v, want ErrExists", err)
	}
	if ca, _ := os.ReadFile(filepath.Join(dir, CACertFile)); !bytes.Equal(ca, ca1) {
		t.Fatal("refused CreateCA changed ca.crt")
	}
	if err := CreateNode(dir, []string{"a"}, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := CreateNode(dir, []string{"a"}, Options{}); !errors.Is(err, ErrExists) {
		t.Fatalf("CreateNode again: %v, want ErrExists", err)
	}
	if _, err := CreateClient(dir, "x", RoleClient, false, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := CreateClient(dir, "x", RoleAdmin, false, Options{}); !errors.Is(err, ErrExists) {
		t.Fatalf("CreateClient again: %v, want ErrExists", err)
	}
	if _, err := CreateClient(dir, "x", RoleAdmin, false, Options{Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	if err := CreateCA(dir, Options{Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	if ca, _ := os.ReadFile(filepath.Join(dir, CACertFile)); bytes.Equal(ca, ca1) {
		t.Fatal("CreateCA with Overwrite kept ca.crt")
	}
	// The cluster key survives a new CA: it encrypts stored secrets.
	if key2, err := ReadClusterKey(filepath.Join(dir, ClusterKeyFile)); err != nil || !bytes.Equal(key1, key2) {
		t.Fatalf("cluster key changed by CreateCA: %v", err)
	}
	// The old node certificate no longer loads with the new CA.
	if _, err := LoadDir(dir, true); !errors.Is(err, ErrBadCert) || !strings.Contains(err.Error(), "not signed by") {
		t.Fatalf("old node cert with new CA: %v", err)
	}
	if err := CreateNode(dir, []string{"a"}, Options{Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDir(dir, true); err != nil {
		t.Fatal(err)
	}
}

func TestCreateErrors(t *testing.T) {
	empty := t.TempDir()
	if err := CreateNode(empty, []string{"a"}, Options{}); !errors.Is(err, ErrNoCert) || !strings.Contains(err.Error(), "create-ca") {
		t.Errorf("node without CA: %v", err)
	}
	if _, err := CreateClient(empty, "a", RoleClient, false, Options{}); !errors.Is(err, ErrNoCert) {
		t.Errorf("client without CA: %v", err)
	}
	dir := newCA(t)
	for _, hosts := range [][]string{nil, {}, {""}, {"host:8080"}, {"http://x"}, {"a b"}} {
		if err := CreateNode(dir, hosts, Options{}); err == nil {
			t.Errorf("CreateNode(%q) succeeded", hosts)
		}
	}
	for _, name := range []string{"", ".", "..", "a/b", "a b", strings.Repeat("x", 65), "é"} {
		if _, err := CreateClient(dir, name, RoleClient, false, Options{}); err == nil {
			t.Errorf("CreateClient(%q) succeeded", name)
		}
	}
	if _, err := CreateClient(dir, strings.Repeat("x", 64), RoleClient, false, Options{}); err != nil {
		t.Errorf("64-character name: %v", err)
	}
	for _, r := range []Role{RoleNode, "", "root"} {
		if _, err := CreateClient(dir, "a", r, false, Options{}); err == nil {
			t.Errorf("CreateClient with role %q succeeded", r)
		}
	}
	if err := CreateNode(dir, []string{"a"}, Options{Lifetime: -time.Hour}); err == nil {
		t.Error("negative lifetime accepted")
	}
}

func TestLeafLifetimeCappedAtCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c")
	if err := CreateCA(dir, Options{Lifetime: 48 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := CreateNode(dir, []string{"n"}, Options{}); err != nil {
		t.Fatal(err)
	}
	b, err := LoadDir(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if !b.Cert.Leaf.NotAfter.Equal(b.CACert.NotAfter) {
		t.Errorf("leaf NotAfter %s, CA NotAfter %s", b.Cert.Leaf.NotAfter, b.CACert.NotAfter)
	}
	p, err := CreateClient(dir, "c", RoleClient, false, Options{Lifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(filepath.Join(dir, CACertFile), p, strings.TrimSuffix(p, ".crt")+".key")
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(c.Cert.Leaf.NotAfter); d > time.Hour || d < 50*time.Minute {
		t.Errorf("1h client cert expires in %s", d)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := newCA(t)
	newNode(t, dir)
	ca, cert, key := filepath.Join(dir, CACertFile), filepath.Join(dir, NodeCertFile), filepath.Join(dir, NodeKeyFile)
	missing := filepath.Join(dir, "nope")
	for _, c := range [][3]string{{missing, cert, key}, {ca, missing, key}, {ca, cert, missing}} {
		_, err := Load(c[0], c[1], c[2])
		if !errors.Is(err, ErrNoCert) || !strings.Contains(err.Error(), missing) {
			t.Errorf("Load(%v): %v, want ErrNoCert naming the file", c, err)
		}
	}
	// A key that belongs to another certificate.
	other := newClient(t, dir, "other", RoleClient)
	_ = other
	if _, err := Load(ca, cert, filepath.Join(dir, "client.other.key")); !errors.Is(err, ErrBadCert) || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("mismatched key: %v", err)
	}
	// Another CA.
	dir2 := newCA(t)
	if _, err := Load(filepath.Join(dir2, CACertFile), cert, key); !errors.Is(err, ErrBadCert) || !strings.Contains(err.Error(), "not signed by") {
		t.Errorf("other CA: %v", err)
	}
	// Expired and not yet valid.
	now := time.Now()
	if _, err := createClient(dir, "old", RoleClient, false, Options{Lifetime: time.Hour}, now.Add(-3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(ca, filepath.Join(dir, "client.old.crt"), filepath.Join(dir, "client.old.key")); !errors.Is(err, ErrBadCert) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired: %v", err)
	}
	if _, err := createClient(dir, "new", RoleClient, false, Options{}, now.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(ca, filepath.Join(dir, "client.new.crt"), filepath.Join(dir, "client.new.key")); !errors.Is(err, ErrBadCert) || !strings.Contains(err.Error(), "clock") {
		t.Errorf("not yet valid: %v", err)
	}
	// Garbage.
	junk := filepath.Join(dir, "junk")
	if err := os.WriteFile(junk, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(junk, cert, key); !errors.Is(err, ErrBadCert) {
		t.Errorf("junk CA: %v", err)
	}
	if _, err := Load(ca, cert, junk); !errors.Is(err, ErrBadCert) {
		t.Errorf("junk key: %v", err)
	}
}

// signWith issues a certificate for pub from the CA in dir, as another tool
// might.
func signWith(t *testing.T, dir string, tmpl *x509.Certificate, pub crypto.PublicKey) []byte {
	t.Helper()
	ca, caKey, err := loadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.SerialNumber, err = newSerial(); err != nil {
		t.Fatal(err)
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Minute)
		tmpl.NotAfter = time.Now().Add(time.Hour)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, pub, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pemCert(der)
}

func clientTemplate(role Role, name string) *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: role.User()},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs:        []*url.URL{clientURI(role, name)},
	}
}

// TestLoadForeignKeys loads keys in the formats other tools write, and signs
// and verifies a data token with each.
func TestLoadForeignKeys(t *testing.T) {
	dir := newCA(t)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ecDER, _ := x509.MarshalECPrivateKey(ecKey)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edDER, _ := x509.MarshalPKCS8PrivateKey(edKey)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	cases := []struct {
		name string
		pub  crypto.PublicKey
		pem  []byte
	}{
		{"ec", ecKey.Public(), append(pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 5, 43, 129, 4, 0, 34}}),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER})...)},
		{"ed", edKey.Public(), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: edDER})},
		{"rsa", rsaKey.Public(), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})},
	}
	v := NewTokenVerifier(mustPool(t, dir), 0)
	for _, c := range cases {
		certFile, keyFile := filepath.Join(dir, c.name+".crt"), filepath.Join(dir, c.name+".key")
		if err := os.WriteFile(certFile, signWith(t, dir, clientTemplate(RoleClient, c.name), c.pub), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, c.pem, 0o600); err != nil {
			t.Fatal(err)
		}
		b, err := Load(filepath.Join(dir, CACertFile), certFile, keyFile)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		now := time.Now()
		tok, err := b.SignDataToken(now, time.Minute)
		if err != nil {
			t.Errorf("%s: sign: %v", c.name, err)
			continue
		}
		if id, err := v.Verify(tok, now); err != nil || id != (Identity{RoleClient, c.name}) {
			t.Errorf("%s: verify: %+v %v", c.name, id, err)
		}
	}
}

func mustPool(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	ca, _, err := loadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	p.AddCert(ca)
	return p
}

func TestIdentityOf(t *testing.T) {
	u := func(s string) *url.URL { x, _ := url.Parse(s); return x }
	for _, c := range []struct {
		cert *x509.Certificate
		ok   bool
	}{
		{&x509.Certificate{Subject: pkix.Name{CommonName: "strata-client"}, URIs: []*url.URL{u("strata://client/a")}}, true},
		{&x509.Certificate{Subject: pkix.Name{CommonName: "strata-client"}, URIs: []*url.URL{u("spiffe://x/y"), u("strata://client/a")}}, true},
		{&x509.Certificate{Subject: pkix.Name{CommonName: "strata-admin"}, URIs: []*url.URL{u("strata://client/a")}}, false},
		{&x509.Certificate{Subject: pkix.Name{CommonName: "strata-admin"}}, false},
		{&x509.Certificate{Subject: pkix.Name{CommonName: "strata-admin"}, URIs: []*url.URL{u("strata://admin/a/b")}}, false},
		{&x509.Certificate{Subject: pkix.Name{CommonName: "strata-admin"}, URIs: []*url.URL{u("strata://admin/a"), u("strata://admin/b")}}, false},
		{&x509.Certificate{Subject: pkix.Name{CommonName: "strata-node"}, IPAddresses: []net.IP{net.IPv4(10, 0, 0, 1)}}, true},
		{&x509.Certificate{Subject: pkix.Name{CommonName: "strata-node"}}, false},
		{&x509.Certificate{Subject: pkix.Name{CommonName: "root"}}, false},
		{nil, false},
	} {
		_, err := IdentityOf(c.cert)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrBadCert)) {
			t.Errorf("IdentityOf(%v): %v", c.cert, err)
		}
	}
}

// handshake runs a TLS handshake over net.Pipe and returns each side's
// error and the server's view of the connection.
func handshake(t *testing.T, srvCfg, cliCfg *tls.Config) (srvErr, cliErr error, srvState tls.ConnectionState, cliState tls.ConnectionState) {
	t.Helper()
	c1, c2 := net.Pipe()
	deadline := time.Now().Add(10 * time.Second)
	_ = c1.SetDeadline(deadline)
	_ = c2.SetDeadline(deadline)
	type result struct {
		err error
		st  tls.ConnectionState
	}
	done := make(chan result, 1)
	go func() {
		srv := tls.Server(c1, srvCfg)
		err := srv.Handshake()
		if err == nil {
			_, err = srv.Write([]byte("k"))
		}
		st := srv.ConnectionState()
		_ = srv.Close()
		done <- result{err, st}
	}()
	cli := tls.Client(c2, cliCfg)
	cliErr = cli.Handshake()
	if cliErr == nil {
		var b [1]byte
		_, cliErr = io.ReadFull(cli, b[:])
	}
	cliState = cli.ConnectionState()
	// Close the pipe itself: tls.Conn.Close would wait up to 5s to send
	// close_notify to a server that is itself writing one.
	_ = c2.Close()
	r := <-done
	return r.err, cliErr, r.st, cliState
}

func TestHandshake(t *testing.T) {
	dir := newCA(t)
	node := newNode(t, dir)
	for _, c := range []struct {
		b    *Bundle
		want Identity
	}{
		{newClient(t, dir, "alice", RoleAdmin), Identity{RoleAdmin, "alice"}},
		{newClient(t, dir, "fuse-1", RoleClient), Identity{RoleClient, "fuse-1"}},
		{node, Identity{RoleNode, "node:localhost"}},
	} {
		srvErr, cliErr, st, cst := handshake(t, node.ServerTLS(), c.b.ClientTLS("localhost"))
		if srvErr != nil || cliErr != nil {
			t.Fatalf("%s: server %v, client %v", c.want, srvErr, cliErr)
		}
		if st.Version != tls.VersionTLS13 {
			t.Errorf("version %x", st.Version)
		}
		if id, err := PeerIdentity(st); err != nil || id != c.want {
			t.Errorf("server sees %+v %v, want %+v", id, err, c.want)
		}
		if id, err := PeerIdentity(cst); err != nil || id != (Identity{RoleNode, "node:localhost"}) {
			t.Errorf("client sees %+v %v", id, err)
		}
	}
	if _, err := PeerIdentity(tls.ConnectionState{}); !errors.Is(err, ErrBadCert) {
		t.Errorf("PeerIdentity of nothing: %v", err)
	}
}

// TestHandshakeTCP dials a real listener and lets ClientTLS("") take the
// server name from the address.
func TestHandshakeTCP(t *testing.T) {
	dir := newCA(t)
	node := newNode(t, dir)
	admin := newClient(t, dir, "ops", RoleAdmin)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", node.ServerTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan Identity, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- Identity{}
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			got <- Identity{}
			return
		}
		id, _ := PeerIdentity(tc.ConnectionState())
		_, _ = tc.Write([]byte("k"))
		got <- id
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), admin.ClientTLS(""))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		t.Fatal(err)
	}
	if id := <-got; id != (Identity{RoleAdmin, "ops"}) {
		t.Errorf("server sees %+v", id)
	}
}

func TestHandshakeOtherCA(t *testing.T) {
	dir := newCA(t)
	node := newNode(t, dir)
	dir2 := newCA(t)
	intruder := newClient(t, dir2, "mallory", RoleAdmin)
	cfg := intruder.ClientTLS("localhost")
	cfg.RootCAs = node.CA // trusts the server, so only the server can refuse
	srvErr, cliErr, _, _ := handshake(t, node.ServerTLS(), cfg)
	if srvErr == nil || cliErr == nil {
		t.Fatalf("client of another CA accepted: server %v, client %v", srvErr, cliErr)
	}
	if !strings.Contains(srvErr.Error(), "unknown authority") {
		t.Errorf("server error %v", srvErr)
	}
	// No client certificate at all.
	cfg.Certificates = nil
	if srvErr, _, _, _ := handshake(t, node.ServerTLS(), cfg); srvErr == nil {
		t.Fatal("client without a certificate accepted")
	}
}

func TestHandshakeExpiredClient(t *testing.T) {
	dir := newCA(t)
	node := newNode(t, dir)
	past := time.Now().Add(-48 * time.Hour)
	p, err := createClient(dir, "late", RoleClient, false, Options{Lifetime: time.Hour}, past)
	if err != nil {
		t.Fatal(err)
	}
	// Load refuses it; present it anyway.
	if _, err := Load(filepath.Join(dir, CACertFile), p, strings.TrimSuffix(p, ".crt")+".key"); !errors.Is(err, ErrBadCert) {
		t.Fatalf("Load of an expired cert: %v", err)
	}
	tc, err := tls.LoadX509KeyPair(p, strings.TrimSuffix(p, ".crt")+".key")
	if err != nil {
		t.Fatal(err)
	}
	old := &Bundle{CA: node.CA, CACert: node.CACert, Cert: tc}
	srvErr, cliErr, _, _ := handshake(t, node.ServerTLS(), old.ClientTLS("localhost"))
	if srvErr == nil || cliErr == nil {
		t.Fatalf("expired client accepted: server %v, client %v", srvErr, cliErr)
	}
	if !strings.Contains(srvErr.Error(), "expired") {
		t.Errorf("server error %v", srvErr)
	}
}

func TestHandshakeSANMismatch(t *testing.T) {
	dir := newCA(t)
	node := newNode(t, dir)
	cl := newClient(t, dir, "c", RoleClient)
	srvErr, cliErr, _, _ := handshake(t, node.ServerTLS(), cl.ClientTLS("worker-9.example"))
	if cliErr == nil || srvErr == nil {
		t.Fatalf("SAN mismatch accepted: server %v, client %v", srvErr, cliErr)
	}
	if !strings.Contains(cliErr.Error(), "worker-9.example") {
		t.Errorf("client error %v", cliErr)
	}
}

// TestHandshakeBadRole: a certificate from the right CA whose CN is no
// Strata role is refused by ServerTLS.
func TestHandshakeBadRole(t *testing.T) {
	dir := newCA(t)
	node := newNode(t, dir)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := clientTemplate(RoleClient, "x")
	tmpl.Subject.CommonName = "root"
	certPEM := signWith(t, dir, tmpl, key.Public())
	keyPEM, _ := marshalKey(key)
	tc, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: node.CA, ServerName: "localhost", Certificates: []tls.Certificate{tc}}
	srvErr, cliErr, _, _ := handshake(t, node.ServerTLS(), cfg)
	if !errors.Is(srvErr, ErrBadCert) || cliErr == nil {
		t.Fatalf("bad role accepted: server %v, client %v", srvErr, cliErr)
	}
}

func TestClusterKey(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", ClusterKeyFile)
	if _, err := ReadClusterKey(p); !errors.Is(err, ErrNoCert) {
		t.Fatalf("missing: %v", err)
	}
	if err := GenerateClusterKey(p, Options{}); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, p); m != 0o600 {
		t.Errorf("mode %#o", m)
	}
	k1, err := ReadClusterKey(p)
	if err != nil || len(k1) != 32 || bytes.Equal(k1, make([]byte, 32)) {
		t.Fatalf("read: %x %v", k1, err)
	}
	if err := GenerateClusterKey(p, Options{}); !errors.Is(err, ErrExists) {
		t.Fatalf("again: %v", err)
	}
	if err := GenerateClusterKey(p, Options{Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	if k2, _ := ReadClusterKey(p); bytes.Equal(k1, k2) {
		t.Fatal("overwrite kept the key")
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadClusterKey(p); !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("0644 key: %v", err)
	}
	short := filepath.Join(dir, "short.key")
	if err := os.WriteFile(short, make([]byte, 31), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadClusterKey(short); err == nil {
		t.Fatal("31-byte key accepted")
	}
}
