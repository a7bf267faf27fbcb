package webhdfs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stratafs/strata/tests/harness"
)

// webhdfsLine is the line `strata local` and `strata hdfs serve` print.
var webhdfsLine = regexp.MustCompile(`WebHDFS:\s+(https?://\S+)`)

// waitFor waits until the process log matches re and returns the match.
func waitFor(t *testing.T, p *harness.Process, re *regexp.Regexp, marker string) []string {
	t.Helper()
	var m []string
	p.WaitReady(t, 90*time.Second, func(context.Context) error {
		log, _ := os.ReadFile(p.Log)
		if !bytes.Contains(log, []byte(marker)) {
			return fmt.Errorf("not started yet")
		}
		if m = re.FindStringSubmatch(string(log)); m == nil {
			return fmt.Errorf("no WebHDFS line")
		}
		return nil
	})
	return m
}

// TestStrataLocal runs the strata binary: `strata local` serves WebHDFS by
// default (HTTPS with the certificates it made), a token from `strata hdfs
// token` lets fsspec read and write a file:// mount made with `strata fs
// mount`, and `strata hdfs serve` serves the same namespace as a process of
// its own.
func TestStrataLocal(t *testing.T) {
	needFsspec(t)
	dataDir := t.TempDir()
	ports := harness.FreePorts(t, 2)
	etcd, etcdPeer := "http://"+harness.Addr(ports[0]), "http://"+harness.Addr(ports[1])
	p := harness.Start(t, "strata-local", []string{"STRATA_S3_LISTEN=127.0.0.1:0", "STRATA_HDFS_LISTEN=127.0.0.1:0"}, binary,
		"local", "--data-dir", dataDir, "--embed-client-url", etcd, "--embed-peer-url", etcdPeer,
		"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
		"--worker-listen", "127.0.0.1:0", "--worker-data-listen", "127.0.0.1:0", "--worker-memory", "128MiB")
	m := waitFor(t, p, webhdfsLine, "Strata is running")
	endpoint := m[1]
	if !strings.HasPrefix(endpoint, "https://127.0.0.1:") {
		t.Fatalf("strata local serves WebHDFS at %s, want HTTPS on loopback", endpoint)
	}
	certs := filepath.Join(dataDir, "certs")
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(binary, append([]string{"--etcd-endpoints", strings.Replace(etcd, "http://", "https://", 1), "--certs-dir", certs}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("strata %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	dir := t.TempDir()
	seed := bytes.Repeat([]byte("0123456789abcdef"), (6<<20)/16+3)
	if err := os.WriteFile(filepath.Join(dir, "seed.bin"), seed, 0o644); err != nil {
		t.Fatal(err)
	}
	cli("fs", "mount", "/data", "file://"+dir)
	tok := strings.TrimSpace(cli("hdfs", "token", "--ttl", "10m"))

	u, _ := url.Parse(endpoint)
	port, _ := strconv.Atoi(u.Port())
	a := fsspecArgs{Host: u.Hostname(), Port: port, HTTPS: true, CA: filepath.Join(certs, "ca.crt"), Token: tok, Root: "/data", Mode: "readwrite", SeedSize: len(seed)}
	res := runFsspec(t, a)
	if res.SeedSHA != sum(seed) {
		t.Error("fsspec read the seed file wrong through strata local")
	}
	got, err := os.ReadFile(filepath.Join(dir, "up", "big.bin"))
	if err != nil || sum(got) != res.AppendedSHA {
		t.Errorf("what fsspec wrote through strata local: %d bytes, %v", len(got), err)
	}
	a.Token, a.Mode = "", "denied"
	if res := runFsspec(t, a); !strings.Contains(res.LsRefused, "Authentication required") {
		t.Errorf("strata local served a caller without credentials: %q", res.LsRefused)
	}

	// `strata hdfs serve` against the same cluster: HTTPS with the node
	// certificate of the certs dir, tokens of its CA.
	sp := harness.Start(t, "hdfs-serve", nil, binary, "--etcd-endpoints", strings.Replace(etcd, "http://", "https://", 1),
		"--certs-dir", certs, "hdfs", "serve", "--listen", "127.0.0.1:0")
	m = waitFor(t, sp, webhdfsLine, "Press Ctrl-C")
	ca, err := os.ReadFile(filepath.Join(certs, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, Proxy: nil}}
	defer cl.CloseIdleConnections()
	resp, err := cl.Get(m[1] + "/webhdfs/v1/data/up/big.bin?op=GETFILESTATUS&delegation=" + url.QueryEscape(tok))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var st struct{ FileStatus map[string]any }
	if err := json.Unmarshal(body, &st); err != nil || resp.StatusCode != 200 || st.FileStatus["length"] != float64(len(got)) {
		t.Errorf("strata hdfs serve: %d %s", resp.StatusCode, body)
	}
	sp.Stop(20 * time.Second)
	if !sp.Exited() {
		t.Error("strata hdfs serve did not stop")
	}
	p.Stop(30 * time.Second)
	// Stopped, the port is free again.
	if c, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after strata local stopped", u.Host)
	}
}
