package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Identity is who a verified certificate speaks for.
type Identity struct {
	Role Role
	Name string // the URI SAN name for clients, "node:<first SAN>" for nodes
}

// String returns "<role>:<name>" ("admin:alice"), or Name alone when it
// already starts with the role ("node:worker-1").
func (i Identity) String() string {
	if strings.HasPrefix(i.Name, string(i.Role)+":") {
		return i.Name
	}
	return string(i.Role) + ":" + i.Name
}

// IdentityOf reads the role (from the Subject CommonName) and name of a
// certificate that was already verified against the CA. A node's name is
// "node:" and its first DNS SAN, else its first IP SAN; a client's or
// admin's is the name in its URI SAN "strata://<role>/<name>". It returns
// ErrBadCert when the role is unknown or the name is missing.
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	if cert == nil {
		return Identity{}, fmt.Errorf("%w: no certificate", ErrBadCert)
	}
	cn := cert.Subject.CommonName
	if !strings.HasPrefix(cn, userPrefix) || !Role(strings.TrimPrefix(cn, userPrefix)).valid() {
		return Identity{}, fmt.Errorf("%w: common name %q is not a Strata role (want strata-node, strata-admin or strata-client)", ErrBadCert, cn)
	}
	role := Role(strings.TrimPrefix(cn, userPrefix))
	if role == RoleNode {
		switch {
		case len(cert.DNSNames) > 0:
			return Identity{Role: role, Name: "node:" + cert.DNSNames[0]}, nil
		case len(cert.IPAddresses) > 0:
			return Identity{Role: role, Name: "node:" + cert.IPAddresses[0].String()}, nil
		}
		return Identity{}, fmt.Errorf("%w: node certificate without a DNS or IP SAN", ErrBadCert)
	}
	name := ""
	for _, u := range cert.URIs {
		if u == nil || u.Scheme != "strata" {
			continue
		}
		if u.Host != string(role) {
			return Identity{}, fmt.Errorf("%w: URI SAN %q does not match the role %s", ErrBadCert, u.String(), role)
		}
		n := strings.TrimPrefix(u.Path, "/")
		if err := checkName(n); err != nil || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return Identity{}, fmt.Errorf("%w: URI SAN %q does not hold a valid client name", ErrBadCert, u.String())
		}
		if name != "" && name != n {
			return Identity{}, fmt.Errorf("%w: more than one strata:// URI SAN", ErrBadCert)
		}
		name = n
	}
	if name == "" {
		return Identity{}, fmt.Errorf("%w: %s certificate without a strata://%s/<name> URI SAN", ErrBadCert, role, role)
	}
	return Identity{Role: role, Name: name}, nil
}

// Bundle is the TLS material of one process: the CA it trusts and its own
// certificate. A Bundle is not modified after Load and is safe for
// concurrent use.
type Bundle struct {
	CA       *x509.CertPool
	CACert   *x509.Certificate
	Cert     tls.Certificate // with Leaf set
	Identity Identity
}

// Load reads a CA file, a certificate and its key (PKCS#8, SEC 1 "EC PRIVATE
// KEY" or PKCS#1 PEM; ECDSA, Ed25519 or RSA), and checks them. Errors name
// the file, the cause and what to do: a missing file gives ErrNoCert; a
// certificate that is expired, not yet valid, not signed by this CA, has an
// unknown role, or whose key does not match gives ErrBadCert.
func Load(caFile, certFile, keyFile string) (*Bundle, error) {
	return load(caFile, certFile, keyFile, time.Now())
}

func load(caFile, certFile, keyFile string, now time.Time) (*Bundle, error) {
	cmd := createCommand(certFile)
	fix := "run `" + cmd + "`"
	cas, err := readCerts(caFile, "copy ca.crt from the machine where `strata cert create-ca` ran")
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	var caCert *x509.Certificate
	for _, c := range cas {
		pool.AddCert(c)
		if caCert == nil && c.IsCA {
			caCert = c
		}
	}
	if caCert == nil {
		return nil, fmt.Errorf("%w: %s holds no CA certificate", ErrBadCert, caFile)
	}
	chain, err := readCerts(certFile, fix)
	if err != nil {
		return nil, err
	}
	leaf := chain[0]
	key, err := readKey(keyFile, fix)
	if err != nil {
		return nil, err
	}
	if !publicKeysEqual(leaf.PublicKey, key.Public()) {
		return nil, fmt.Errorf("%w: key %s does not match certificate %s; use the key that was created with it, or %s", ErrBadCert, keyFile, certFile, fix)
	}
	if err := checkValidity(leaf, certFile, now, cmd); err != nil {
		return nil, err
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         pool,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		var ua x509.UnknownAuthorityError
		if errors.As(err, &ua) {
			return nil, fmt.Errorf("%w: certificate %s is not signed by the CA in %s; %s with this CA", ErrBadCert, certFile, caFile, fix)
		}
		return nil, fmt.Errorf("%w: certificate %s does not verify against %s: %v", ErrBadCert, certFile, caFile, err)
	}
	id, err := IdentityOf(leaf)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", certFile, err)
	}
	raw := make([][]byte, len(chain))
	for i, c := range chain {
		raw[i] = c.Raw
	}
	return &Bundle{
		CA:       pool,
		CACert:   caCert,
		Cert:     tls.Certificate{Certificate: raw, PrivateKey: key, Leaf: leaf},
		Identity: id,
	}, nil
}

// checkValidity reports a certificate outside its validity period.
func checkValidity(c *x509.Certificate, file string, now time.Time, cmd string) error {
	if now.Before(c.NotBefore) {
		return fmt.Errorf("%w: certificate %s is not valid before %s (now %s); check this machine's clock",
			ErrBadCert, file, c.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if now.After(c.NotAfter) {
		return fmt.Errorf("%w: certificate %s expired on %s; make a new one with `%s --overwrite`",
			ErrBadCert, file, c.NotAfter.UTC().Format(time.RFC3339), cmd)
	}
	return nil
}

// createCommand says which command makes a certificate file like file.
func createCommand(file string) string {
	base := filepath.Base(file)
	switch {
	case strings.HasPrefix(base, "node"):
		return "strata cert create-node HOST..."
	case strings.HasPrefix(base, "ca"):
		return "strata cert create-ca"
	}
	return "strata cert create-client NAME"
}

// LoadDir loads dir/ca.crt with dir/node.crt and dir/node.key (node true),
// or with the client certificate of dir: dir/client.crt, else the one
// dir/client.<name>.crt when exactly one exists. With several and no
// client.crt it returns an error wrapping ErrNoCert that says to pass the
// file explicitly.
func LoadDir(dir string, node bool) (*Bundle, error) {
	ca := filepath.Join(dir, CACertFile)
	if node {
		return Load(ca, filepath.Join(dir, NodeCertFile), filepath.Join(dir, NodeKeyFile))
	}
	def := filepath.Join(dir, ClientCertFile)
	if _, err := os.Stat(def); err == nil {
		return Load(ca, def, filepath.Join(dir, ClientKeyFile))
	}
	matches, err := filepath.Glob(filepath.Join(dir, "client.*.crt"))
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	sort.Strings(matches)
	switch len(matches) {
	case 0:
		return nil, fmt.Errorf("%w: no client certificate in %s; run `strata cert create-client NAME --default`", ErrNoCert, dir)
	case 1:
		return Load(ca, matches[0], strings.TrimSuffix(matches[0], ".crt")+".key")
	}
	names := make([]string, len(matches))
	for i, m := range matches {
		names[i] = filepath.Base(m)
	}
	return nil, fmt.Errorf("%w: %s holds %d client certificates (%s) and no %s; pass the certificate and key files explicitly, or make one the default with `strata cert create-client NAME --default`",
		ErrNoCert, dir, len(matches), strings.Join(names, ", "), ClientCertFile)
}

// ServerTLS returns a server configuration: TLS 1.3 at least, this bundle's
// certificate, and a verified client certificate from the CA required. A
// client certificate without a Strata role is refused during the handshake.
// Each call returns a new Config.
func (b *Bundle) ServerTLS() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{b.Cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    b.CA,
		// VerifyConnection runs on every handshake, resumed ones included
		// (VerifyPeerCertificate does not).
		VerifyConnection: func(st tls.ConnectionState) error {
			_, err := PeerIdentity(st)
			return err
		},
	}
}

// ClientTLS returns a client configuration: TLS 1.3 at least, the CA as the
// only root and this bundle's certificate. serverName "" lets crypto/tls
// derive the name from the dialed address (tls.Dial; set it for tls.Client).
// Each call returns a new Config.
func (b *Bundle) ClientTLS(serverName string) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{b.Cert},
		RootCAs:      b.CA,
		ServerName:   serverName,
	}
}

// PeerIdentity returns the identity of the verified peer of a TLS connection
// (VerifiedChains[0][0]). It returns ErrBadCert when the peer presented no
// verified certificate or one without a Strata role.
func PeerIdentity(st tls.ConnectionState) (Identity, error) {
	if len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		return Identity{}, fmt.Errorf("%w: the peer presented no verified certificate", ErrBadCert)
	}
	return IdentityOf(st.VerifiedChains[0][0])
}

// readCerts reads every CERTIFICATE block of a PEM file.
func readCerts(path, fix string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s is missing; %s", ErrNoCert, path, fix)
		}
		return nil, fmt.Errorf("pki: read %s: %w", path, err)
	}
	var certs []*x509.Certificate
	for rest := data; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBadCert, path, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: %s holds no PEM certificate", ErrBadCert, path)
	}
	return certs, nil
}

// readKey reads a PEM private key: PKCS#8 ("PRIVATE KEY"), SEC 1 ("EC
// PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY").
func readKey(path, fix string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: key %s is missing; %s", ErrNoCert, path, fix)
		}
		return nil, fmt.Errorf("pki: read %s: %w", path, err)
	}
	for rest := data; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		var key any
		switch blk.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(blk.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, fmt.Errorf("%w: key %s is encrypted; store it unencrypted with mode 0600", ErrBadCert, path)
		default:
			continue // e.g. "EC PARAMETERS" before the key
		}
		if err != nil {
			return nil, fmt.Errorf("%w: key %s: %v", ErrBadCert, path, err)
		}
		switch k := key.(type) {
		case *ecdsa.PrivateKey:
			return k, nil
		case ed25519.PrivateKey:
			return k, nil
		case *rsa.PrivateKey:
			return k, nil
		}
		return nil, fmt.Errorf("%w: key %s: unsupported key type %T", ErrBadCert, path, key)
	}
	return nil, fmt.Errorf("%w: %s holds no PEM private key", ErrBadCert, path)
}

// publicKeysEqual compares two public keys.
func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if e, ok := a.(equaler); ok {
		return e.Equal(b)
	}
	ad, err1 := x509.MarshalPKIXPublicKey(a)
	bd, err2 := x509.MarshalPKIXPublicKey(b)
	return err1 == nil && err2 == nil && bytes.Equal(ad, bd)
}
