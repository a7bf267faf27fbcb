package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Data tokens authorise requests on a worker's plain-HTTP data port (kept
// plain so the kernel can sendfile). A client signs a token with its own
// certificate key; a worker verifies it with the CA alone.
//
// A token is one header value: "v1.<cert>.<expiry>.<sig>", where <cert> is
// the signer's certificate DER in unpadded URL-safe base64, <expiry> the
// expiry as decimal Unix seconds, and <sig> (unpadded URL-safe base64) a
// signature with the certificate's key over
// "strata-data-token/v1|" + certDER + "|" + <expiry>: ECDSA (ASN.1) or RSA
// PKCS#1 v1.5 over its SHA-256, or Ed25519 over the message itself.

// DataTokenHeader is the HTTP header that carries a data token.
const DataTokenHeader = "X-Strata-Token"

const (
	tokenVersion  = "v1"
	tokenContext  = "strata-data-token/v1|"
	minTokenTTL   = time.Second
	maxTokenTTL   = time.Hour
	maxTokenLen   = 16 << 10 // a token larger than this is malformed
	maxCachedToks = 4096
)

// DefaultTokenTTL is the token lifetime NewTokenSource uses for ttl 0.
const DefaultTokenTTL = 10 * time.Minute

// tokenMessage is what a token's signature covers.
func tokenMessage(certDER []byte, expiry string) []byte {
	m := make([]byte, 0, len(tokenContext)+len(certDER)+1+len(expiry))
	m = append(m, tokenContext...)
	m = append(m, certDER...)
	m = append(m, '|')
	return append(m, expiry...)
}

// SignDataToken makes a token valid until now+ttl (ttl from 1s to 1h), or
// until the certificate's NotAfter if that is sooner. It returns an error
// wrapping ErrBadToken for a ttl out of range and ErrBadCert when the
// certificate has expired or its key cannot sign. Safe for concurrent use.
func (b *Bundle) SignDataToken(now time.Time, ttl time.Duration) (string, error) {
	tok, _, err := b.signDataToken(now, ttl)
	return tok, err
}

func (b *Bundle) signDataToken(now time.Time, ttl time.Duration) (string, time.Time, error) {
	if ttl < minTokenTTL || ttl > maxTokenTTL {
		return "", time.Time{}, fmt.Errorf("%w: ttl %s is out of range %s..%s", ErrBadToken, ttl, minTokenTTL, maxTokenTTL)
	}
	leaf := b.Cert.Leaf
	if leaf == nil || len(b.Cert.Certificate) == 0 {
		return "", time.Time{}, fmt.Errorf("%w: the bundle has no certificate", ErrBadCert)
	}
	exp := now.Add(ttl)
	if exp.After(leaf.NotAfter) {
		exp = leaf.NotAfter
	}
	if !exp.After(now) {
		return "", time.Time{}, fmt.Errorf("%w: certificate expired on %s", ErrBadCert, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	// Truncate to whole seconds: the token says seconds, and the cache must
	// not think a token lives longer than it does.
	expUnix := exp.Unix()
	expiry := strconv.FormatInt(expUnix, 10)
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
		return "", time.Time{}, fmt.Errorf("%w: cannot sign data tokens with a %T key", ErrBadCert, b.Cert.PrivateKey)
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("pki: sign data token: %w", err)
	}
	enc := base64.RawURLEncoding
	var sb strings.Builder
	sb.Grow(len(tokenVersion) + enc.EncodedLen(len(certDER)) + len(expiry) + enc.EncodedLen(len(sig)) + 3)
	sb.WriteString(tokenVersion)
	sb.WriteByte('.')
	sb.WriteString(enc.EncodeToString(certDER))
	sb.WriteByte('.')
	sb.WriteString(expiry)
	sb.WriteByte('.')
	sb.WriteString(enc.EncodeToString(sig))
	return sb.String(), time.Unix(expUnix, 0), nil
}

// TokenSource hands out a cached data token and signs a new one when less
// than a third of the cached token's life is left. It is safe for concurrent
// use; a fresh cached token costs an atomic load.
type TokenSource struct {
	b   *Bundle
	ttl time.Duration
	cur atomic.Pointer[sourceToken]
	mu  sync.Mutex // serialises signing
}

type sourceToken struct {
	token   string
	renewAt time.Time // when less than a third of the life is left
}

// NewTokenSource returns a TokenSource that signs tokens with b, each valid
// for ttl (0 means DefaultTokenTTL; a ttl outside 1s..1h makes Token fail).
func NewTokenSource(b *Bundle, ttl time.Duration) *TokenSource {
	if ttl == 0 {
		ttl = DefaultTokenTTL
	}
	return &TokenSource{b: b, ttl: ttl}
}

// Token returns a token valid at now, signing a new one when the cached one
// has less than a third of its life left. Errors are those of
// Bundle.SignDataToken.
func (s *TokenSource) Token(now time.Time) (string, error) {
	if t := s.cur.Load(); t != nil && now.Before(t.renewAt) {
		return t.token, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.cur.Load(); t != nil && now.Before(t.renewAt) {
		return t.token, nil
	}
	tok, exp, err := s.b.signDataToken(now, s.ttl)
	if err != nil {
		return "", err
	}
	life := exp.Sub(now)
	s.cur.Store(&sourceToken{token: tok, renewAt: now.Add(life - life/3)})
	return tok, nil
}

// TokenVerifier checks data tokens: format, signature, expiry (allowing
// maxSkew of clock difference), the signer's certificate chain to the CA
// with ExtKeyUsageClientAuth, and that certificate's validity. Verified
// tokens are cached (at most 4096), so verifying a token again is a map
// lookup under a read lock. Safe for concurrent use.
type TokenVerifier struct {
	ca      *x509.CertPool
	maxSkew time.Duration

	mu    sync.RWMutex
	cache map[string]verifiedToken
}

type verifiedToken struct {
	id Identity
	// The token is good while notBefore <= now <= notAfter: the chain's
	// validity, and the token's expiry plus the allowed skew.
	notBefore, notAfter time.Time
}

// NewTokenVerifier returns a TokenVerifier that trusts the CA certificates
// of ca and tolerates maxSkew of clock difference to the signer.
func NewTokenVerifier(ca *x509.CertPool, maxSkew time.Duration) *TokenVerifier {
	if maxSkew < 0 {
		maxSkew = 0
	}
	return &TokenVerifier{ca: ca, maxSkew: maxSkew, cache: make(map[string]verifiedToken)}
}

// Verify checks token at now and returns the identity of its signer. Every
// failure wraps ErrBadToken and says why: malformed, expired, bad
// signature, or a certificate the CA did not sign (or that has expired or
// has no Strata role).
func (v *TokenVerifier) Verify(token string, now time.Time) (Identity, error) {
	v.mu.RLock()
	e, ok := v.cache[token]
	v.mu.RUnlock()
	if ok {
		if now.Before(e.notBefore) || now.After(e.notAfter) {
			return Identity{}, fmt.Errorf("%w: expired or not yet valid", ErrBadToken)
		}
		return e.id, nil
	}
	e, err := v.verify(token, now)
	if err != nil {
		return Identity{}, err
	}
	v.store(token, e, now)
	return e.id, nil
}

func (v *TokenVerifier) verify(token string, now time.Time) (verifiedToken, error) {
	if len(token) > maxTokenLen {
		return verifiedToken{}, fmt.Errorf("%w: malformed: %d bytes long", ErrBadToken, len(token))
	}
	parts := strings.Split(token, ".")
	if len(parts) != 4 {
		return verifiedToken{}, fmt.Errorf("%w: malformed: want 4 dot-separated parts, got %d", ErrBadToken, len(parts))
	}
	if parts[0] != tokenVersion {
		return verifiedToken{}, fmt.Errorf("%w: malformed: unknown version %.10q", ErrBadToken, parts[0])
	}
	enc := base64.RawURLEncoding
	certDER, err := enc.DecodeString(parts[1])
	if err != nil || len(certDER) == 0 {
		return verifiedToken{}, fmt.Errorf("%w: malformed certificate", ErrBadToken)
	}
	expiry := parts[2]
	expUnix, err := strconv.ParseInt(expiry, 10, 64)
	if err != nil || expiry != strconv.FormatInt(expUnix, 10) || expUnix <= 0 {
		return verifiedToken{}, fmt.Errorf("%w: malformed expiry", ErrBadToken)
	}
	sig, err := enc.DecodeString(parts[3])
	if err != nil || len(sig) == 0 {
		return verifiedToken{}, fmt.Errorf("%w: malformed signature", ErrBadToken)
	}
	exp := time.Unix(expUnix, 0)
	if now.After(exp.Add(v.maxSkew)) {
		return verifiedToken{}, fmt.Errorf("%w: expired at %s", ErrBadToken, exp.UTC().Format(time.RFC3339))
	}
	if exp.Sub(now) > maxTokenTTL+v.maxSkew {
		return verifiedToken{}, fmt.Errorf("%w: expiry %s is more than %s ahead", ErrBadToken, exp.UTC().Format(time.RFC3339), maxTokenTTL)
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return verifiedToken{}, fmt.Errorf("%w: malformed certificate: %v", ErrBadToken, err)
	}
	if !checkTokenSignature(cert.PublicKey, tokenMessage(certDER, expiry), sig) {
		return verifiedToken{}, fmt.Errorf("%w: bad signature", ErrBadToken)
	}
	chains, err := cert.Verify(x509.VerifyOptions{
		Roots:       v.ca,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return verifiedToken{}, fmt.Errorf("%w: certificate: %v", ErrBadToken, err)
	}
	id, err := IdentityOf(cert)
	if err != nil {
		return verifiedToken{}, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	e := verifiedToken{id: id, notBefore: cert.NotBefore, notAfter: exp.Add(v.maxSkew)}
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

// store caches a verified token. When the cache is full it drops the
// expired entries and then, if that freed too little, arbitrary ones down to
// 7/8 of the bound, so a burst of new tokens does not rescan on every store.
func (v *TokenVerifier) store(token string, e verifiedToken, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.cache) >= maxCachedToks {
		for k, old := range v.cache {
			if now.After(old.notAfter) {
				delete(v.cache, k)
			}
		}
		if len(v.cache) >= maxCachedToks {
			for k := range v.cache {
				if len(v.cache) <= maxCachedToks*7/8 {
					break
				}
				delete(v.cache, k)
			}
		}
	}
	v.cache[token] = e
}

// checkTokenSignature verifies sig over msg with pub.
func checkTokenSignature(pub crypto.PublicKey, msg, sig []byte) bool {
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
