package main

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/hdfsapi"
	"github.com/stratafs/strata/pki"
)

func TestHDFSHelp(t *testing.T) {
	for args, want := range map[string][]string{
		"hdfs --help":       {"WebHDFS", "strata hdfs serve --listen", "docs/hdfs.md"},
		"hdfs serve --help": {"--listen", "--anonymous", "--writer", "--tls", "--cert-file", "--metrics-listen", "Example", "--tls off --anonymous read"},
		"hdfs token --help": {"--ttl", "delegation", "bearer", "fsspec"},
	} {
		out, err := runCert(t, strings.Fields(args)...)
		if err != nil {
			t.Fatalf("%s: %v", args, err)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s lacks %q:\n%s", args, w, out)
			}
		}
	}
}

// makeCerts makes a CA, a node certificate and the admin client.crt in
// dir, as `strata local` does.
func makeCerts(t *testing.T, dir string, node bool) {
	t.Helper()
	if err := pki.CreateCA(dir, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	if node {
		if err := pki.CreateNode(dir, []string{"localhost", "127.0.0.1"}, pki.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pki.CreateClient(dir, "local-admin", pki.RoleAdmin, true, pki.Options{}); err != nil {
		t.Fatal(err)
	}
}

// TestHDFSToken checks `strata hdfs token`: a token of the certs dir's
// client certificate that verifies against the CA, its --ttl bounds, and a
// clear error without certificates.
func TestHDFSToken(t *testing.T) {
	dir := t.TempDir()
	makeCerts(t, dir, false)
	out, err := runCert(t, "hdfs", "token", "--certs-dir", dir, "--ttl", "2h")
	if err != nil {
		t.Fatalf("hdfs token: %v\n%s", err, out)
	}
	tok := strings.TrimSpace(out)
	b, err := pki.LoadDir(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	id, err := hdfsapi.VerifyToken(b.CA, tok, time.Now().Add(time.Hour))
	if err != nil || id != (pki.Identity{Role: pki.RoleAdmin, Name: "local-admin"}) {
		t.Errorf("token: %v %v", id, err)
	}
	if _, err := hdfsapi.VerifyToken(b.CA, tok, time.Now().Add(3*time.Hour)); !errors.Is(err, hdfsapi.ErrToken) {
		t.Errorf("the token outlives --ttl: %v", err)
	}
	if _, err := runCert(t, "hdfs", "token", "--certs-dir", dir, "--ttl", "48h"); !errors.Is(err, hdfsapi.ErrToken) {
		t.Errorf("--ttl 48h: %v", err)
	}
	_, err = runCert(t, "hdfs", "token", "--certs-dir", t.TempDir())
	if !errors.Is(err, pki.ErrNoCert) || !strings.Contains(err.Error(), "create-client") {
		t.Errorf("without certificates: %v", err)
	}
}

// serveCmd is `strata hdfs serve` with args parsed, not run.
func serveCmd(t *testing.T, args ...string) (*cobra.Command, *globals, *hdfsServeFlags) {
	t.Helper()
	g := &globals{}
	root := &cobra.Command{Use: "strata"}
	g.register(root)
	sf := &hdfsServeFlags{}
	cmd := newHDFSServeCmd(g)
	cmd.RunE = nil
	root.AddCommand(cmd)
	// newHDFSServeCmd's flags are bound to its own hdfsServeFlags: rebind
	// by parsing through the command, then read them back.
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	f := cmd.Flags()
	sf.listen, _ = f.GetString("listen")
	sf.tlsMode, _ = f.GetString("tls")
	sf.anonymous, _ = f.GetString("anonymous")
	sf.certFile, _ = f.GetString("cert-file")
	sf.keyFile, _ = f.GetString("key-file")
	sf.metricsListen, _ = f.GetString("metrics-listen")
	sf.writers, _ = f.GetStringSlice("writer")
	return cmd, g, sf
}

func TestHDFSServeFlags(t *testing.T) {
	t.Setenv("STRATA_HDFS_LISTEN", "127.0.0.1:1234")
	cmd, g, sf := serveCmd(t, "--anonymous", "read", "--writer", "etl", "--writer", "*", "--tls", "off", "--data-dir", t.TempDir())
	cfg, err := hdfsServeConfig(cmd, g, sf)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HDFS.Listen != "127.0.0.1:1234" || cfg.HDFS.Anonymous != "read" || cfg.HDFS.TLS != "off" || strings.Join(cfg.HDFS.Writers, ",") != "etl,*" {
		t.Errorf("config %+v", cfg.HDFS)
	}
	cmd, g, sf = serveCmd(t, "--listen", "0.0.0.0:9870")
	if cfg, err := hdfsServeConfig(cmd, g, sf); err != nil || cfg.HDFS.Listen != "0.0.0.0:9870" {
		t.Errorf("--listen over the environment: %v %v", cfg.HDFS.Listen, err)
	}
	for _, bad := range [][]string{{"--tls", "on"}, {"--anonymous", "all"}, {"--writer", "bad/name"}, {"--metrics-listen", "nope"}, {"--cert-file", "x"}} {
		cmd, g, sf := serveCmd(t, bad...)
		if _, err := hdfsServeConfig(cmd, g, sf); !errors.Is(err, conf.ErrInvalid) {
			t.Errorf("%v: %v", bad, err)
		}
	}
}

// TestHDFSListenerSecurity checks the choice of server certificate and the
// refusal of plain HTTP off loopback.
func TestHDFSListenerSecurity(t *testing.T) {
	cfg := conf.Default()
	cfg.DataDir = t.TempDir()
	dir := filepath.Join(cfg.DataDir, "certs")

	// No certificates: plain HTTP, on loopback only unless --insecure.
	sec, err := loadSecurity(cfg, false)
	if err != nil || sec.bundle != nil {
		t.Fatalf("no certificates: %v", err)
	}
	if c, err := hdfsServerCert(cfg, sec); c != nil || err != nil {
		t.Errorf("no certificates: %v %v", c, err)
	}
	if err := checkPlainHDFS(cfg, sec); err != nil {
		t.Errorf("loopback: %v", err)
	}
	cfg.HDFS.Listen = "0.0.0.0:9870"
	if err := checkPlainHDFS(cfg, sec); !errors.Is(err, errInsecureBind) || !strings.Contains(err.Error(), "--insecure") {
		t.Errorf("0.0.0.0 without TLS: %v", err)
	}
	cfg.TLS.Insecure = true
	if err := checkPlainHDFS(cfg, sec); err != nil {
		t.Errorf("--insecure: %v", err)
	}
	cfg.TLS.Insecure = false

	// A client certificate only: it cannot serve TLS; say what to do.
	makeCerts(t, dir, false)
	if sec, err = loadSecurity(cfg, false); err != nil || sec.bundle.Identity.Role != pki.RoleAdmin {
		t.Fatalf("client certificate: %v", err)
	}
	if _, err := hdfsServerCert(cfg, sec); err == nil || !strings.Contains(err.Error(), "create-node") {
		t.Errorf("no node certificate: %v", err)
	}
	cfg.HDFS.TLS = conf.HDFSTLSOff
	if c, err := hdfsServerCert(cfg, sec); c != nil || err != nil {
		t.Errorf("tls off: %v %v", c, err)
	}
	cfg.HDFS.TLS = conf.HDFSTLSAuto
	// With a node certificate in the directory, that one serves.
	if err := pki.CreateNode(dir, []string{"localhost"}, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	c, err := hdfsServerCert(cfg, sec)
	if err != nil || c == nil || c.Leaf == nil || c.Leaf.Subject.CommonName != pki.RoleNode.User() {
		t.Errorf("node certificate: %v %v", c, err)
	}
	// hdfs.cert_file wins.
	cfg.HDFS.CertFile, cfg.HDFS.KeyFile = filepath.Join(dir, pki.NodeCertFile), filepath.Join(dir, pki.NodeKeyFile)
	if c, err := hdfsServerCert(cfg, sec); err != nil || c == nil {
		t.Errorf("cert_file: %v", err)
	}
	cfg.HDFS.KeyFile = filepath.Join(dir, "missing.key")
	if _, err := hdfsServerCert(cfg, sec); err == nil || !strings.Contains(err.Error(), "hdfs.cert_file") {
		t.Errorf("bad key_file: %v", err)
	}
}
