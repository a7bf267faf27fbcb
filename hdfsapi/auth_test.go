package hdfsapi

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/pki"
	"github.com/stratafs/strata/tests/testcluster"
)

// TestAuthentication checks who gets in and who may write: client
// certificates by role and hdfs.writers, WebHDFS tokens, worker data tokens
// (read only), and what is refused: no credentials, user.name alone, a
// forged, expired or foreign token, a certificate of another CA.
func TestAuthentication(t *testing.T) {
	e := startEnv(t, nil)
	writeFile(t, filepath.Join(e.dir, "f"), []byte("data"))
	stat := func(cl *http.Client, kv ...string) response {
		return do(t, cl, "GET", e.u("/data/f", append([]string{"op", "GETFILESTATUS"}, kv...)...), nil)
	}
	mkdir := func(cl *http.Client, name string, kv ...string) response {
		return do(t, cl, "PUT", e.u("/data/"+name, append([]string{"op", "MKDIRS"}, kv...)...), nil)
	}
	anon := e.client(t, nil)

	// No credentials: 401, before anything about the request is said.
	wantRemote(t, stat(anon), 401, "SecurityException", "Authentication required")
	wantRemote(t, stat(anon, "user.name", "hdfs"), 401, "SecurityException", "user.name alone is not authentication")
	wantRemote(t, do(t, anon, "GET", e.base+"/data/../x?op=NOPE", nil), 401, "SecurityException")
	if r := stat(anon); !strings.Contains(r.header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("401 without WWW-Authenticate: %v", r.header)
	}

	// Certificates: every role reads; admin and the client in
	// hdfs.writers write; another client may not.
	for name, b := range map[string]*pki.Bundle{"admin": e.admin, "reader": e.reader, "etl": e.writer, "node": e.c.Node} {
		if r := stat(e.client(t, b)); r.status != 200 {
			t.Errorf("%s certificate reads: %d %s", name, r.status, r.body)
		}
	}
	for name, b := range map[string]*pki.Bundle{"admin": e.admin, "etl": e.writer, "node": e.c.Node} {
		if r := mkdir(e.client(t, b), "by-"+name); r.status != 200 {
			t.Errorf("%s certificate writes: %d %s", name, r.status, r.body)
		}
	}
	wantRemote(t, mkdir(e.client(t, e.reader), "by-reader"), 403, "AccessControlException", "client:reader may read but not write")
	if _, err := os.Stat(filepath.Join(e.dir, "by-reader")); !os.IsNotExist(err) {
		t.Errorf("a refused write happened: %v", err)
	}

	// Tokens grant what their certificate grants, without TLS client auth.
	if r := mkdir(anon, "by-admin-token", "delegation", token(t, e.admin)); r.status != 200 {
		t.Errorf("admin token writes: %d %s", r.status, r.body)
	}
	readerTok := token(t, e.reader)
	if r := stat(anon, "delegation", readerTok); r.status != 200 {
		t.Errorf("client token reads: %d %s", r.status, r.body)
	}
	wantRemote(t, mkdir(anon, "by-reader-token", "delegation", readerTok), 403, "AccessControlException", "token of client:reader")
	req, _ := http.NewRequest("GET", e.u("/data/f", "op", "GETFILESTATUS"), nil)
	req.Header.Set("Authorization", "Bearer "+readerTok)
	if resp, err := anon.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("Authorization: Bearer: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// A worker data token reads, never writes.
	dataTok, err := e.admin.SignDataToken(time.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if r := stat(anon, "delegation", dataTok); r.status != 200 {
		t.Errorf("data token reads: %d %s", r.status, r.body)
	}
	wantRemote(t, mkdir(anon, "by-data-token", "delegation", dataTok), 403, "AccessControlException")

	// Refused tokens: 401, even with a valid certificate beside them.
	expired, err := SignToken(e.admin, time.Now().Add(-3*time.Hour), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other := otherCA(t)
	foreign, err := SignToken(other, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	good := token(t, e.admin)
	forged := good[:len(good)-6] + strings.Map(func(r rune) rune {
		if r == 'A' {
			return 'B'
		}
		return 'A'
	}, good[len(good)-6:])
	for name, tok := range map[string]string{"expired": expired, "foreign": foreign, "forged": forged, "garbage": "wh1.x.y.z", "random": "hello"} {
		t.Run(name, func(t *testing.T) {
			wantRemote(t, stat(anon, "delegation", tok), 401, "SecurityException", "delegation token was refused")
			wantRemote(t, stat(e.client(t, e.admin), "delegation", tok), 401, "SecurityException")
		})
	}
	if r := stat(anon, "delegation", expired); strings.Contains(string(r.body), expired) {
		t.Error("the refusal echoes the token")
	}

	// A certificate of another CA fails the TLS handshake.
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.c.Node.CA, Certificates: []tls.Certificate{other.Cert}}}
	defer tr.CloseIdleConnections()
	if resp, err := (&http.Client{Transport: tr}).Get(e.u("/data/f", "op", "GETFILESTATUS")); err == nil {
		resp.Body.Close()
		t.Errorf("a certificate of another CA got %d", resp.StatusCode)
	}
}

// otherCA makes an admin certificate of an unrelated CA.
func otherCA(t *testing.T) *pki.Bundle {
	t.Helper()
	dir := t.TempDir()
	if err := pki.CreateCA(dir, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	p, err := pki.CreateClient(dir, "mallory", pki.RoleAdmin, false, pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := pki.Load(filepath.Join(dir, pki.CACertFile), p, strings.TrimSuffix(p, ".crt")+".key")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAnonymousPlainHTTP checks a server without certificates: plain HTTP,
// only what hdfs.anonymous allows, no tokens.
func TestAnonymousPlainHTTP(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	dir := t.TempDir()
	c.MustMount(t, "/data", "file://"+dir, nil)
	writeFile(t, filepath.Join(dir, "f"), []byte("plain"))
	for _, mode := range []string{conf.HDFSAnonymousOff, conf.HDFSAnonymousRead, conf.HDFSAnonymousReadWrite} {
		cfg := c.Config
		cfg.HDFS.Anonymous = mode
		srv, err := New(context.Background(), cfg, Deps{Client: c.Client, Logger: c.Log})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv.Serve(ln)
		if srv.TLS() || !strings.HasPrefix(srv.URL(), "http://") {
			t.Fatalf("%s: TLS without certificates", srv.URL())
		}
		e := &env{srv: srv, base: srv.URL() + Prefix}
		cl := e.client(t, nil)
		read := do(t, cl, "GET", e.u("/data/f", "op", "OPEN", "datanode", "true"), nil)
		write := do(t, cl, "PUT", e.u("/data/d-"+mode, "op", "MKDIRS"), nil)
		switch mode {
		case conf.HDFSAnonymousOff:
			wantRemote(t, read, 401, "SecurityException")
			wantRemote(t, write, 401, "SecurityException")
		case conf.HDFSAnonymousRead:
			if read.status != 200 || string(read.body) != "plain" {
				t.Errorf("anonymous read: %d %s", read.status, read.body)
			}
			wantRemote(t, write, 403, "AccessControlException", "anonymous may read but not write")
		case conf.HDFSAnonymousReadWrite:
			if read.status != 200 || write.status != 200 {
				t.Errorf("anonymous read-write: %d %d %s", read.status, write.status, write.body)
			}
		}
		wantRemote(t, do(t, cl, "GET", e.u("/data/f", "op", "GETFILESTATUS", "delegation", "wh1.a.1.b"), nil), 401, "SecurityException", "no certificates")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := srv.Close(ctx); err != nil {
			t.Error(err)
		}
		cancel()
	}
}
