package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stratafs/strata/pki"
)

// runCert runs the strata command in-process and returns its output.
func runCert(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestCertCommands(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	dir := filepath.Join(dataDir, "certs")

	// The default directory is <data-dir>/certs.
	out, err := runCert(t, "--data-dir", dataDir, "cert", "create-ca")
	if err != nil {
		t.Fatalf("create-ca: %v\n%s", err, out)
	}
	for _, want := range []string{filepath.Join(dir, "ca.crt"), filepath.Join(dir, "cluster.key"), "keep ca.key offline", "create-node"} {
		if !strings.Contains(out, want) {
			t.Errorf("create-ca output lacks %q:\n%s", want, out)
		}
	}
	if _, err := runCert(t, "--data-dir", dataDir, "cert", "create-ca"); !errors.Is(err, pki.ErrExists) {
		t.Errorf("create-ca again: %v, want ErrExists", err)
	}

	out, err = runCert(t, "cert", "create-node", "localhost", "127.0.0.1", "--certs-dir", dir)
	if err != nil {
		t.Fatalf("create-node: %v\n%s", err, out)
	}
	if !strings.Contains(out, "node.crt") || !strings.Contains(out, "localhost, 127.0.0.1") {
		t.Errorf("create-node output:\n%s", out)
	}
	out, err = runCert(t, "cert", "create-client", "alice", "--admin", "--certs-dir", dir, "--lifetime", "720h")
	if err != nil {
		t.Fatalf("create-client --admin: %v\n%s", err, out)
	}
	if !strings.Contains(out, "client.alice.crt") || !strings.Contains(out, "strata://admin/alice") {
		t.Errorf("create-client --admin output:\n%s", out)
	}
	if out, err := runCert(t, "cert", "create-client", "fuse-1", "--default", "--certs-dir", dir); err != nil {
		t.Fatalf("create-client --default: %v\n%s", err, out)
	}
	if _, err := runCert(t, "cert", "create-client", "bad/name", "--certs-dir", dir); err == nil {
		t.Error("create-client with a bad name succeeded")
	}

	// What the commands wrote loads.
	if b, err := pki.LoadDir(dir, true); err != nil || b.Identity.Role != pki.RoleNode {
		t.Errorf("node: %v", err)
	}
	if b, err := pki.LoadDir(dir, false); err != nil || b.Identity != (pki.Identity{Role: pki.RoleClient, Name: "fuse-1"}) {
		t.Errorf("default client: %v", err)
	}
	admin, err := pki.Load(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "client.alice.crt"), filepath.Join(dir, "client.alice.key"))
	if err != nil || admin.Identity != (pki.Identity{Role: pki.RoleAdmin, Name: "alice"}) {
		t.Errorf("admin: %v", err)
	}

	// A certificate of another CA shows as not verifying.
	other := t.TempDir()
	if _, err := runCert(t, "cert", "create-ca", "--certs-dir", other); err != nil {
		t.Fatal(err)
	}
	if _, err := runCert(t, "cert", "create-client", "stray", "--certs-dir", other); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(other, "client.stray.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "client.stray.crt"), data, 0o644); err != nil {
		t.Fatal(err)
	}

	out, err = runCert(t, "--data-dir", dataDir, "cert", "list")
	if err != nil {
		t.Fatalf("list: %v\n%s", err, out)
	}
	lines := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			lines[f[0]] = l
		}
	}
	for file, want := range map[string][]string{
		"ca.crt":           {"ca", "ok"},
		"node.crt":         {"node", "node:localhost", "localhost,127.0.0.1", "ok"},
		"client.crt":       {"client", "fuse-1", "strata://client/fuse-1", "ok"},
		"client.alice.crt": {"admin", "alice", "strata://admin/alice", "ok"},
		"client.stray.crt": {"client", "stray", "not signed by ca.crt"},
	} {
		l, ok := lines[file]
		if !ok {
			t.Errorf("list lacks %s:\n%s", file, out)
			continue
		}
		for _, w := range want {
			if !strings.Contains(l, w) {
				t.Errorf("list line of %s lacks %q: %s", file, w, l)
			}
		}
	}
	if !strings.Contains(out, "ca.key: present") || !strings.Contains(out, "cluster.key: present") {
		t.Errorf("list footer:\n%s", out)
	}

	if _, err := runCert(t, "cert", "list", "--certs-dir", filepath.Join(dataDir, "nope")); !errors.Is(err, pki.ErrNoCert) {
		t.Errorf("list of a missing directory: %v", err)
	}
}

func TestCertsDir(t *testing.T) {
	for _, c := range []struct {
		dataDir, flag, want string
	}{
		{"", "", filepath.Join(".strata", "certs")},
		{"/var/lib/strata", "", filepath.Join("/var/lib/strata", "certs")},
		{"/var/lib/strata", "/etc/strata/certs", "/etc/strata/certs"},
	} {
		if got := certsDir(&globals{dataDir: c.dataDir}, c.flag); got != c.want {
			t.Errorf("certsDir(%q, %q) = %q, want %q", c.dataDir, c.flag, got, c.want)
		}
	}
}
