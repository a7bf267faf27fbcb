package hdfsapi

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stratafs/strata/pki"
)

// WebHDFS delegation tokens let a client without its certificate at hand
// (fsspec, curl, a Spark job) act as the holder of a Strata certificate
// for a while: `strata hdfs token` signs one with the CLI's certificate, and
// the client passes it as Hadoop clients pass delegation tokens, in the
// "delegation" query parameter. The token is purpose-bound: it is signed
// over a context of its own, so neither a worker's data token (which travels
// in plain HTTP to the data port) nor anything else Strata signs can pass
// for it, and it cannot pass for those.
//
// A token is "wh1.<cert>.<expiry>.<sig>": the signer's certificate DER in
// unpadded URL-safe base64, the expiry in decimal Unix seconds, and a
// signature (unpadded URL-safe base64) with the certificate's key over
// "strata-webhdfs-token/v1|" + certDER + "|" + <expiry>: ECDSA (ASN.1) or
// RSA PKCS#1 v1.5 over its SHA-256, or Ed25519 over the message itself.

// ErrToken is wrapped by every token that is refused or cannot be signed.
var ErrToken = errors.New("hdfsapi: delegation token rejected")

const (
	tokenPrefix  = "wh1."
	tokenContext = "strata-webhdfs-token/v1|"
	// MaxTokenTTL is the longest life of a WebHDFS delegation token.
	MaxTokenTTL = 24 * time.Hour
	// DefaultTokenTTL is the life `strata hdfs token` gives a token.
	DefaultTokenTTL = time.Hour
	minTokenTTL     = time.Second
	maxTokenLen     = 16 << 10
	maxCachedTokens = 4096
	// tokenSkew is the clock difference tolerated to the signer.
	tokenSkew = time.Minute
)

func tokenMessage(certDER []byte, expiry string) []byte {
	m := make([]byte, 0, len(tokenContext)+len(certDER)+1+len(expiry))
	m = append(m, tokenContext...)
	m = append(m, certDER...)
	m = append(m, '|')
	return append(m, expiry...)
}

// SignToken makes a WebHDFS delegation token of b's certificate, valid
// until now+ttl (1s to MaxTokenTTL) or the certificate's NotAfter if that is
// sooner. It grants what the certificate would over mutual TLS. Returns
// errors wrapping ErrToken. Safe for concurrent use.
func SignToken(b *pki.Bundle, now time.Time, ttl time.Duration) (string, error) {
	if ttl < minTokenTTL || ttl > MaxTokenTTL {
		return "", fmt.Errorf("%w: ttl %s is out of range %s..%s", ErrToken, ttl, minTokenTTL, MaxTokenTTL)
	}
	if b == nil || b.Cert.Leaf == nil || len(b.Cert.Certificate) == 0 {
		return "", fmt.Errorf("%w: no certificate to sign with", ErrToken)
	}
	exp := now.Add(ttl)
	if exp.After(b.Cert.Leaf.NotAfter) {
		exp = b.Cert.Leaf.NotAfter
	}
	if !exp.After(now) {
		return "", fmt.Errorf("%w: the certificate expired on %s", ErrToken, b.Cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	expiry := strconv.FormatInt(exp.Unix(), 10)
	certDER := b.Cert.Certificate[0]
	msg := tokenMessage(certDER, expiry)
	var sig []byte
	var err error
	switch k := b.Cert.PrivateKey.(type) {
	case ed25519.PrivateKey:
		sig = ed25519.Sign(k, msg)
	case *ecdsa.PrivateKey:
		h := sha256.Sum256(msg)
		sig, err = ecdsa.SignASN1(rand.Reader, k, h[:])
	case *rsa.PrivateKey:
		h := sha256.Sum256(msg)
		sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, h[:])
	default:
		return "", fmt.Errorf("%w: cannot sign with a %T key", ErrToken, b.Cert.PrivateKey)
	}
	if err != nil {
		return "", fmt.Errorf("%w: sign: %v", ErrToken, err)
	}
	enc := base64.RawURLEncoding
	return tokenPrefix + enc.EncodeToString(certDER) + "." + expiry + "." + enc.EncodeToString(sig), nil
}

// VerifyToken checks a WebHDFS token against the CA certificates of ca at
// now and returns the identity of its signer (what the token grants is
// what that certificate grants). Errors wrap ErrToken and say why, without
// the token. Servers use a caching verifier instead; this one checks from
// scratch each time.
func VerifyToken(ca *x509.CertPool, token string, now time.Time) (pki.Identity, error) {
	return newTokenVerifier(ca).Verify(token, now)
}

// tokenVerifier checks WebHDFS tokens against the cluster CA and caches the
// verified ones (at most maxCachedTokens), so a token seen again costs a map
// lookup. Safe for concurrent use.
type tokenVerifier struct {
	ca *x509.CertPool

	mu    sync.RWMutex
	cache map[string]cachedToken
}

type cachedToken struct {
	id                  pki.Identity
	notBefore, notAfter time.Time
}

func newTokenVerifier(ca *x509.CertPool) *tokenVerifier {
	return &tokenVerifier{ca: ca, cache: map[string]cachedToken{}}
}

// Verify checks token at now and returns the identity of its signer. Every
// failure wraps ErrToken and says why (malformed, expired, bad signature,
// a certificate the CA did not sign), never echoing the token.
func (v *tokenVerifier) Verify(token string, now time.Time) (pki.Identity, error) {
	v.mu.RLock()
	e, ok := v.cache[token]
	v.mu.RUnlock()
	if !ok {
		var err error
		if e, err = v.verify(token, now); err != nil {
			return pki.Identity{}, err
		}
		v.store(token, e, now)
	}
	if now.Before(e.notBefore) || now.After(e.notAfter) {
		return pki.Identity{}, fmt.Errorf("%w: expired or not yet valid", ErrToken)
	}
	return e.id, nil
}

func (v *tokenVerifier) verify(token string, now time.Time) (cachedToken, error) {
	if len(token) > maxTokenLen {
		return cachedToken{}, fmt.Errorf("%w: malformed: %d bytes long", ErrToken, len(token))
	}
	body, ok := strings.CutPrefix(token, tokenPrefix)
	if !ok {
		return cachedToken{}, fmt.Errorf("%w: malformed: not a Strata WebHDFS token", ErrToken)
	}
	parts := strings.Split(body, ".")
	if len(parts) != 3 {
		return cachedToken{}, fmt.Errorf("%w: malformed: want 4 dot-separated parts", ErrToken)
	}
	enc := base64.RawURLEncoding
	certDER, err := enc.DecodeString(parts[0])
	if err != nil || len(certDER) == 0 {
		return cachedToken{}, fmt.Errorf("%w: malformed certificate", ErrToken)
	}
	expiry := parts[1]
	expUnix, err := strconv.ParseInt(expiry, 10, 64)
	if err != nil || expiry != strconv.FormatInt(expUnix, 10) || expUnix <= 0 {
		return cachedToken{}, fmt.Errorf("%w: malformed expiry", ErrToken)
	}
	sig, err := enc.DecodeString(parts[2])
	if err != nil || len(sig) == 0 {
		return cachedToken{}, fmt.Errorf("%w: malformed signature", ErrToken)
	}
	exp := time.Unix(expUnix, 0)
	if now.After(exp.Add(tokenSkew)) {
		return cachedToken{}, fmt.Errorf("%w: expired at %s", ErrToken, exp.UTC().Format(time.RFC3339))
	}
	if exp.Sub(now) > MaxTokenTTL+tokenSkew {
		return cachedToken{}, fmt.Errorf("%w: expiry %s is more than %s ahead", ErrToken, exp.UTC().Format(time.RFC3339), MaxTokenTTL)
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return cachedToken{}, fmt.Errorf("%w: malformed certificate", ErrToken)
	}
	if !checkSignature(cert.PublicKey, tokenMessage(certDER, expiry), sig) {
		return cachedToken{}, fmt.Errorf("%w: bad signature", ErrToken)
	}
	if v.ca == nil {
		return cachedToken{}, fmt.Errorf("%w: this server has no cluster CA to check it against", ErrToken)
	}
	chains, err := cert.Verify(x509.VerifyOptions{Roots: v.ca, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return cachedToken{}, fmt.Errorf("%w: its certificate does not verify against the cluster CA: %v", ErrToken, err)
	}
	id, err := pki.IdentityOf(cert)
	if err != nil {
		return cachedToken{}, fmt.Errorf("%w: %v", ErrToken, err)
	}
	e := cachedToken{id: id, notBefore: cert.NotBefore, notAfter: exp.Add(tokenSkew)}
	for _, c := range chains[0] {
		if c.NotBefore.After(e.notBefore) {
			e.notBefore = c.NotBefore
		}
		if c.NotAfter.Before(e.notAfter) {
			e.notAfter = c.NotAfter
		}
	}
	return e, nil
}

// store caches a verified token; a full cache drops its expired entries,
// then arbitrary ones down to 7/8 of the bound.
func (v *tokenVerifier) store(token string, e cachedToken, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.cache) >= maxCachedTokens {
		for k, old := range v.cache {
			if now.After(old.notAfter) {
				delete(v.cache, k)
			}
		}
		for k := range v.cache {
			if len(v.cache) <= maxCachedTokens*7/8 {
				break
			}
			delete(v.cache, k)
		}
	}
	v.cache[token] = e
}

func checkSignature(pub crypto.PublicKey, msg, sig []byte) bool {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return len(k) == ed25519.PublicKeySize && ed25519.Verify(k, msg, sig)
	case *ecdsa.PublicKey:
		h := sha256.Sum256(msg)
		return ecdsa.VerifyASN1(k, h[:], sig)
	case *rsa.PublicKey:
		h := sha256.Sum256(msg)
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, h[:], sig) == nil
	}
	return false
}
