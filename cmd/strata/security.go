package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/stratafs/strata/cluster"
	"github.com/stratafs/strata/cluster/embedetcd"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/pki"
)

// security is the TLS material and cluster key of one process.
type security struct {
	// bundle is this process's certificate and the CA it trusts; nil runs
	// without TLS.
	bundle *pki.Bundle
	// box opens (and, in a coordinator, seals) mount credentials; nil when
	// this process holds no cluster key.
	box *cluster.SecretBox
	// dir is where the certificates were looked for.
	dir string
}

// errInsecureBind refuses a daemon on a non-loopback address without TLS.
var errInsecureBind = errors.New("refusing to serve without TLS on a non-loopback address")

// certsDir is the directory of the certificates: tls.dir under data_dir.
func certsDirOf(cfg conf.Config) string { return cfg.Resolve(cfg.TLS.Dir) }

// loadSecurity finds the process's certificates: node.crt for a daemon
// (node=true), client.crt (or the node certificate of the host) for a client.
// Without a CA in the directory and no file configured, the process runs
// without TLS; a CA with no usable certificate is an error that says what to
// create.
func loadSecurity(cfg conf.Config, node bool) (security, error) {
	dir := certsDirOf(cfg)
	sec := security{dir: dir}
	keyFile := cfg.TLS.ClusterKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(dir, pki.ClusterKeyFile)
	}
	key, err := pki.ReadClusterKey(keyFile)
	switch {
	case err == nil:
		if sec.box, err = cluster.NewSecretBox(key); err != nil {
			return sec, err
		}
	case (errors.Is(err, fs.ErrNotExist) || errors.Is(err, pki.ErrNoCert)) && cfg.TLS.ClusterKeyFile == "":
	default:
		return sec, err
	}
	if cfg.TLS.Insecure {
		return sec, nil
	}
	caFile := cfg.TLS.CAFile
	if caFile == "" {
		caFile = filepath.Join(dir, pki.CACertFile)
	}
	if cfg.TLS.CertFile != "" {
		sec.bundle, err = pki.Load(caFile, cfg.TLS.CertFile, cfg.TLS.KeyFile)
		return sec, err
	}
	if _, err := os.Stat(caFile); errors.Is(err, fs.ErrNotExist) && cfg.TLS.CAFile == "" {
		return sec, nil // no TLS material: plaintext (daemons: loopback only)
	}
	certFile, keyPath := filepath.Join(dir, pki.NodeCertFile), filepath.Join(dir, pki.NodeKeyFile)
	if !node {
		b, err := pki.LoadDir(dir, false)
		if err == nil {
			sec.bundle = b
			return sec, nil
		}
		if !errors.Is(err, pki.ErrNoCert) || !exists(certFile) {
			return sec, fmt.Errorf("%w (in %s; `strata cert create-client NAME` makes one, --certs-dir points elsewhere)", err, dir)
		}
		// A client on a node's host uses the node certificate: it may
		// read, not administer.
	}
	sec.bundle, err = pki.Load(caFile, certFile, keyPath)
	if err != nil {
		return sec, fmt.Errorf("%w (in %s; `strata cert create-node HOST...` makes a node certificate)", err, dir)
	}
	return sec, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// checkBinds refuses to serve on a non-loopback address without TLS unless
// tls.insecure is set, and warns when a loopback daemon runs without it.
func checkBinds(sec security, cfg conf.Config, log *slog.Logger, addrs ...string) error {
	if sec.bundle != nil {
		return nil
	}
	for _, a := range addrs {
		if a == "" {
			continue
		}
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			continue
		}
		if !loopback(host) && !cfg.TLS.Insecure {
			return fmt.Errorf("%w: %s (no certificates in %s): create them with `strata cert create-ca` and "+
				"`strata cert create-node HOST...`, or pass --insecure to serve any caller on the network", errInsecureBind, a, sec.dir)
		}
	}
	if cfg.TLS.Insecure {
		log.Warn("running WITHOUT TLS (--insecure): any host that reaches these ports can read and reconfigure the cluster")
	} else {
		log.Warn("running without TLS on loopback: any local user can reach these ports; create certificates with `strata cert` to authenticate callers", "certs_dir", sec.dir)
	}
	return nil
}

// loopback reports whether host names only this machine.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// httpsURLs returns urls with http:// turned into https://: with TLS every
// etcd endpoint speaks TLS.
func httpsURLs(urls []string) []string {
	out := make([]string, len(urls))
	for i, u := range urls {
		if rest, ok := strings.CutPrefix(u, "http://"); ok {
			u = "https://" + rest
		}
		out[i] = u
	}
	return out
}

// ensureLocalCerts creates, on the first start of `strata local`, a CA, a
// node certificate for this host, an admin client certificate (the default
// client.crt of the data dir, so the CLI run beside it is admin) and the
// cluster key. It never replaces what exists.
func ensureLocalCerts(cfg conf.Config, out io.Writer) error {
	if cfg.TLS.Insecure || cfg.TLS.CertFile != "" {
		return nil
	}
	dir := certsDirOf(cfg)
	made := false
	if !exists(filepath.Join(dir, pki.CACertFile)) {
		if err := pki.CreateCA(dir, pki.Options{}); err != nil {
			return fmt.Errorf("create the local CA: %w", err)
		}
		made = true
	}
	if !exists(filepath.Join(dir, pki.ClusterKeyFile)) {
		if err := pki.GenerateClusterKey(filepath.Join(dir, pki.ClusterKeyFile), pki.Options{}); err != nil {
			return err
		}
	}
	if !exists(filepath.Join(dir, pki.NodeCertFile)) {
		if err := pki.CreateNode(dir, localHosts(cfg), pki.Options{}); err != nil {
			return fmt.Errorf("create the local node certificate: %w", err)
		}
		made = true
	}
	if !exists(filepath.Join(dir, pki.ClientCertFile)) {
		if _, err := pki.CreateClient(dir, "local-admin", pki.RoleAdmin, true, pki.Options{}); err != nil {
			return fmt.Errorf("create the local admin certificate: %w", err)
		}
		made = true
	}
	if made {
		fmt.Fprintf(out, "Created a CA, node and admin certificates and a cluster key in %s (the CLI finds them there).\n", dir)
	}
	return nil
}

// localHosts are the names a local node certificate must carry: loopback,
// the host name, and the hosts of the configured addresses.
func localHosts(cfg conf.Config) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	if cfg.Worker.AdvertiseHost != "" {
		hosts = append(hosts, cfg.Worker.AdvertiseHost)
	}
	for _, a := range []string{cfg.Coordinator.Listen, cfg.Worker.Listen, cfg.Worker.DataListen, cfg.S3.Listen, cfg.HDFS.Listen} {
		if h, _, err := net.SplitHostPort(a); err == nil && h != "" && !net.ParseIP(h).IsUnspecified() {
			hosts = append(hosts, h)
		}
	}
	for _, u := range []string{cfg.Etcd.EmbedClientURL, cfg.Etcd.EmbedPeerURL} {
		if pu, err := url.Parse(u); err == nil && pu.Hostname() != "" {
			hosts = append(hosts, pu.Hostname())
		}
	}
	seen := map[string]bool{}
	out := hosts[:0]
	for _, h := range hosts {
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out
}

// embedSecurity is the embedded etcd's TLS and access control, from the
// node certificate's files.
func embedSecurity(cfg conf.Config, sec security) *embedetcd.Security {
	if sec.bundle == nil {
		return nil
	}
	dir := sec.dir
	pick := func(set, def string) string {
		if set != "" {
			return set
		}
		return filepath.Join(dir, def)
	}
	return &embedetcd.Security{
		CAFile:   pick(cfg.TLS.CAFile, pki.CACertFile),
		CertFile: pick(cfg.TLS.CertFile, pki.NodeCertFile),
		KeyFile:  pick(cfg.TLS.KeyFile, pki.NodeKeyFile),
		Prefix:   cfg.Etcd.Prefix,
	}
}
