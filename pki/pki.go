// Package pki creates and loads the certificates that Strata's parts use to
// authenticate each other over mutual TLS, and the short-lived data tokens
// that authorise reads on a worker's plain-HTTP data port.
//
// One cluster CA signs everything. A certificate's role is its Subject
// CommonName ("strata-node", "strata-admin", "strata-client"), which is also
// the etcd user name when etcd runs with --client-cert-auth. A client's name
// is a URI SAN "strata://<role>/<name>".
//
// A certificate directory holds ca.crt (everywhere), ca.key (kept offline),
// cluster.key (on every node), node.crt/node.key on coordinators and workers,
// and client certificates (client.crt/client.key, or client.<name>.crt/.key).
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Role is what a certificate may do.
type Role string

// The roles a certificate can carry.
const (
	RoleNode   Role = "node"   // coordinators and workers: server+client auth
	RoleAdmin  Role = "admin"  // a client that may reconfigure the cluster
	RoleClient Role = "client" // a client that may read (FUSE node, S3 gateway)
)

// userPrefix makes a role's etcd user name and certificate CommonName.
const userPrefix = "strata-"

// User is the etcd user name of the role and the certificate's Subject
// CommonName: "strata-node", "strata-admin", "strata-client". (etcd with
// --client-cert-auth takes the CN as its user.)
func (r Role) User() string { return userPrefix + string(r) }

// valid reports whether r is one of the known roles.
func (r Role) valid() bool { return r == RoleNode || r == RoleAdmin || r == RoleClient }

// ParseRole parses a role name: "node", "admin" or "client" (the user names
// "strata-node", ... are accepted too). It returns an error wrapping
// ErrBadCert for anything else.
func ParseRole(s string) (Role, error) {
	r := Role(strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), userPrefix))
	if !r.valid() {
		return "", fmt.Errorf("%w: unknown role %q (want node, admin or client)", ErrBadCert, s)
	}
	return r, nil
}

// File names in a certificate directory.
const (
	CACertFile     = "ca.crt"
	CAKeyFile      = "ca.key"
	NodeCertFile   = "node.crt"
	NodeKeyFile    = "node.key"
	ClientCertFile = "client.crt"
	ClientKeyFile  = "client.key"
	ClusterKeyFile = "cluster.key" // 32 random bytes, used elsewhere to encrypt mount secrets and derive keys
)

// Sentinel errors.
var (
	ErrNoCert   = errors.New("pki: no certificate")       // a file is missing
	ErrExists   = errors.New("pki: file exists")          // refusing to overwrite
	ErrBadCert  = errors.New("pki: certificate rejected") // wrong CA, expired, bad role, bad signature
	ErrBadToken = errors.New("pki: data token rejected")
)

// Default lifetimes.
const (
	DefaultCALifetime   = 10 * 365 * 24 * time.Hour // 87600h
	DefaultLeafLifetime = 2 * 365 * 24 * time.Hour  // 17520h
)

// backdate is how far before "now" a new certificate becomes valid, so that
// peers whose clocks lag a little accept it at once.
const backdate = time.Hour

// ClusterKeySize is the length of the cluster key in bytes.
const ClusterKeySize = 32

// Options tune certificate creation.
type Options struct {
	Lifetime  time.Duration // 0 = default: CA 10 years, node/client 2 years (leaf lifetime is capped at the CA's NotAfter)
	Overwrite bool          // replace existing files instead of failing with ErrExists
}

func (o Options) lifetime(def time.Duration) (time.Duration, error) {
	switch {
	case o.Lifetime < 0:
		return 0, fmt.Errorf("pki: lifetime %s is negative", o.Lifetime)
	case o.Lifetime == 0:
		return def, nil
	}
	return o.Lifetime, nil
}

// CreateCA writes dir/ca.crt (0644) and dir/ca.key (0600): an ECDSA P-256,
// self-signed CA that may sign leaf certificates only (MaxPathLen 0), and,
// when absent, dir/cluster.key (0600, 32 random bytes). An existing
// cluster.key is never replaced, even with o.Overwrite. It creates dir (0700)
// if needed and returns ErrExists when ca.crt or ca.key exists and
// o.Overwrite is false.
func CreateCA(dir string, o Options) error { return createCA(dir, o, time.Now()) }

func createCA(dir string, o Options, now time.Time) error {
	life, err := o.lifetime(DefaultCALifetime)
	if err != nil {
		return err
	}
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	if err := mkdir(dir); err != nil {
		return err
	}
	if err := checkAbsent(o, certPath, keyPath); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pki: generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Strata CA", Organization: []string{"Strata"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(life),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return fmt.Errorf("pki: create CA certificate: %w", err)
	}
	keyPEM, err := marshalKey(key)
	if err != nil {
		return err
	}
	// The key first: a ca.crt without its key is less confusing to find
	// than the reverse, and the key is what must not be lost.
	if err := writeFileAtomic(keyPath, keyPEM, 0o600, o.Overwrite); err != nil {
		return err
	}
	if err := writeFileAtomic(certPath, pemCert(der), 0o644, o.Overwrite); err != nil {
		return err
	}
	err = GenerateClusterKey(filepath.Join(dir, ClusterKeyFile), Options{})
	if err != nil && !errors.Is(err, ErrExists) {
		return err
	}
	return nil
}

// CreateNode writes dir/node.crt (0644) and dir/node.key (0600) signed by
// dir/ca.key: CN "strata-node", ExtKeyUsage ServerAuth+ClientAuth, SANs from
// hosts (IP addresses as IPAddresses, the rest as DNSNames). hosts must be
// non-empty. It returns ErrNoCert when the CA files are missing and
// ErrExists when node.crt or node.key exists and o.Overwrite is false.
func CreateNode(dir string, hosts []string, o Options) error {
	return createNode(dir, hosts, o, time.Now())
}

func createNode(dir string, hosts []string, o Options, now time.Time) error {
	if len(hosts) == 0 {
		return errors.New("pki: a node certificate needs at least one host name or IP address")
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: RoleNode.User(), Organization: []string{"Strata"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	seen := map[string]bool{}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if seen[h] {
			continue
		}
		seen[h] = true
		if ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			continue
		}
		if err := checkDNSName(h); err != nil {
			return err
		}
		tmpl.DNSNames = append(tmpl.DNSNames, h)
	}
	_, err := signLeaf(dir, tmpl, filepath.Join(dir, NodeCertFile), filepath.Join(dir, NodeKeyFile), o, now)
	return err
}

// CreateClient writes a client certificate signed by dir/ca.key: CN
// role.User(), ExtKeyUsage ClientAuth, and the client's name as the URI SAN
// "strata://<role>/<name>" (name: 1–64 characters of [A-Za-z0-9._-]). The
// files are dir/client.<name>.crt and .key, or dir/client.crt and .key when
// asDefault is true; it returns the certificate's path. role must be
// RoleAdmin or RoleClient. It returns ErrNoCert when the CA files are missing
// and ErrExists when a file exists and o.Overwrite is false.
func CreateClient(dir, name string, role Role, asDefault bool, o Options) (certPath string, err error) {
	return createClient(dir, name, role, asDefault, o, time.Now())
}

func createClient(dir, name string, role Role, asDefault bool, o Options, now time.Time) (string, error) {
	if role != RoleAdmin && role != RoleClient {
		return "", fmt.Errorf("pki: a client certificate's role is admin or client, not %q", role)
	}
	if err := checkName(name); err != nil {
		return "", err
	}
	certPath, keyPath := clientFiles(dir, name, asDefault)
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: role.User(), Organization: []string{"Strata"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs:        []*url.URL{clientURI(role, name)},
	}
	return signLeaf(dir, tmpl, certPath, keyPath, o, now)
}

// clientFiles returns the certificate and key paths CreateClient writes for
// name in dir.
func clientFiles(dir, name string, asDefault bool) (certPath, keyPath string) {
	if asDefault {
		return filepath.Join(dir, ClientCertFile), filepath.Join(dir, ClientKeyFile)
	}
	return filepath.Join(dir, "client."+name+".crt"), filepath.Join(dir, "client."+name+".key")
}

func clientURI(role Role, name string) *url.URL {
	return &url.URL{Scheme: "strata", Host: string(role), Path: "/" + name}
}

// checkName validates a client name: 1–64 characters of [A-Za-z0-9._-].
func checkName(name string) error {
	if len(name) == 0 || len(name) > 64 {
		return fmt.Errorf("pki: client name %q must be 1 to 64 characters long", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("pki: client name %q may hold only letters, digits, '.', '_' and '-'", name)
		}
	}
	if name == "." || name == ".." {
		return fmt.Errorf("pki: client name %q is reserved", name)
	}
	return nil
}

// checkDNSName rejects what cannot be a host name in a certificate.
func checkDNSName(h string) error {
	if h == "" {
		return errors.New("pki: empty host name")
	}
	if strings.Contains(h, ":") {
		return fmt.Errorf("pki: host %q: give a host name or IP address without a port or scheme", h)
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == '*') {
			return fmt.Errorf("pki: host %q is not a valid DNS name", h)
		}
	}
	return nil
}

// signLeaf completes tmpl (serial, validity, key usage), signs it with the
// CA of dir and writes the certificate and a new key.
func signLeaf(dir string, tmpl *x509.Certificate, certPath, keyPath string, o Options, now time.Time) (string, error) {
	life, err := o.lifetime(DefaultLeafLifetime)
	if err != nil {
		return "", err
	}
	if err := checkAbsent(o, certPath, keyPath); err != nil {
		return "", err
	}
	caCert, caKey, err := loadCA(dir)
	if err != nil {
		return "", err
	}
	if !now.Before(caCert.NotAfter) {
		return "", fmt.Errorf("%w: CA %s expired on %s; create a new CA with `strata cert create-ca --overwrite` and reissue every certificate",
			ErrBadCert, filepath.Join(dir, CACertFile), caCert.NotAfter.UTC().Format(time.RFC3339))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", fmt.Errorf("pki: generate key: %w", err)
	}
	if tmpl.SerialNumber, err = newSerial(); err != nil {
		return "", err
	}
	tmpl.NotBefore = now.Add(-backdate)
	tmpl.NotAfter = now.Add(life)
	if tmpl.NotAfter.After(caCert.NotAfter) {
		tmpl.NotAfter = caCert.NotAfter
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		return "", fmt.Errorf("pki: sign certificate: %w", err)
	}
	keyPEM, err := marshalKey(key)
	if err != nil {
		return "", err
	}
	if err := writeFileAtomic(keyPath, keyPEM, 0o600, o.Overwrite); err != nil {
		return "", err
	}
	if err := writeFileAtomic(certPath, pemCert(der), 0o644, o.Overwrite); err != nil {
		return "", err
	}
	return certPath, nil
}

// loadCA reads dir/ca.crt and dir/ca.key and checks that they belong
// together.
func loadCA(dir string) (*x509.Certificate, crypto.Signer, error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	certs, err := readCerts(certPath, "run `strata cert create-ca` first")
	if err != nil {
		return nil, nil, err
	}
	ca := certs[0]
	if !ca.IsCA {
		return nil, nil, fmt.Errorf("%w: %s is not a CA certificate", ErrBadCert, certPath)
	}
	key, err := readKey(keyPath, "signing needs the CA key; run this where ca.key is kept")
	if err != nil {
		return nil, nil, err
	}
	if !publicKeysEqual(ca.PublicKey, key.Public()) {
		return nil, nil, fmt.Errorf("%w: %s does not match %s", ErrBadCert, keyPath, certPath)
	}
	return ca, key, nil
}

// newSerial returns a random, positive 128-bit serial number.
func newSerial() (*big.Int, error) {
	var b [16]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("pki: serial number: %w", err)
		}
		if n := new(big.Int).SetBytes(b[:]); n.Sign() > 0 {
			return n, nil
		}
	}
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// marshalKey encodes a private key as PKCS#8 PEM ("PRIVATE KEY").
func marshalKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// GenerateClusterKey writes a 32-byte random key to path (0600), creating its
// directory (0700) if needed. It returns ErrExists when path exists and
// o.Overwrite is false.
func GenerateClusterKey(path string, o Options) error {
	if err := mkdir(filepath.Dir(path)); err != nil {
		return err
	}
	if err := checkAbsent(o, path); err != nil {
		return err
	}
	key := make([]byte, ClusterKeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("pki: cluster key: %w", err)
	}
	return writeFileAtomic(path, key, 0o600, o.Overwrite)
}

// ReadClusterKey reads a cluster key file: exactly 32 bytes, not readable by
// group or other. A missing file gives ErrNoCert; a file with a too-open mode
// gives an error wrapping fs.ErrPermission that says to chmod 600 it.
func ReadClusterKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: cluster key %s is missing; copy cluster.key from the CA's certs directory (made by `strata cert create-ca`)", ErrNoCert, path)
		}
		return nil, fmt.Errorf("pki: cluster key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("pki: cluster key: %w", err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: cluster key %s has mode %#o, readable by group or other; run `chmod 600 %s` (in Kubernetes, mount the secret with defaultMode 0400)",
			fs.ErrPermission, path, st.Mode().Perm(), path)
	}
	if st.Size() != ClusterKeySize {
		return nil, fmt.Errorf("pki: cluster key %s holds %d bytes, want exactly %d; copy the original cluster.key", path, st.Size(), ClusterKeySize)
	}
	key := make([]byte, ClusterKeySize)
	if _, err := io.ReadFull(f, key); err != nil {
		return nil, fmt.Errorf("pki: cluster key %s: %w", path, err)
	}
	return key, nil
}

// mkdir creates dir with mode 0700 if it does not exist.
func mkdir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pki: create directory: %w", err)
	}
	return nil
}

// checkAbsent returns ErrExists naming the first path that exists, unless
// o.Overwrite.
func checkAbsent(o Options, paths ...string) error {
	if o.Overwrite {
		return nil
	}
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%w: %s (pass --overwrite to replace it)", ErrExists, p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("pki: %w", err)
		}
	}
	return nil
}

// writeFileAtomic writes data to path with mode through a temporary file in
// the same directory, so readers see the old file or the whole new one. When
// overwrite is false an existing path gives ErrExists, also when it appears
// concurrently.
func writeFileAtomic(path string, data []byte, mode fs.FileMode, overwrite bool) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(mode); err == nil {
		if _, err = f.Write(data); err == nil {
			err = f.Sync()
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	if !overwrite {
		// A hard link never replaces an existing file.
		lerr := os.Link(tmp, path)
		if lerr == nil {
			_ = os.Remove(tmp)
			syncDir(dir)
			return nil
		}
		if errors.Is(lerr, fs.ErrExist) {
			err = fmt.Errorf("%w: %s (pass --overwrite to replace it)", ErrExists, path)
			return err
		}
		// No hard links on this file system: check, then rename.
		if _, serr := os.Lstat(path); serr == nil {
			err = fmt.Errorf("%w: %s (pass --overwrite to replace it)", ErrExists, path)
			return err
		}
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename in dir durable, where the platform allows.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
