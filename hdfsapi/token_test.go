package hdfsapi

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stratafs/strata/pki"
)

// TestTokens checks signing and verifying WebHDFS tokens without a server:
// the signer's identity comes back; ttl bounds, expiry, tampering, another
// CA and a worker data token in its place are refused.
func TestTokens(t *testing.T) {
	dir := t.TempDir()
	if err := pki.CreateCA(dir, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	p, err := pki.CreateClient(dir, "bob", pki.RoleClient, false, pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := pki.Load(filepath.Join(dir, pki.CACertFile), p, strings.TrimSuffix(p, ".crt")+".key")
	if err != nil {
		t.Fatal(err)
	}
	v := newTokenVerifier(bob.CA)
	now := time.Now()
	tok, err := SignToken(bob, now, 2*time.Hour)
	if err != nil || !strings.HasPrefix(tok, tokenPrefix) {
		t.Fatalf("SignToken: %q %v", tok, err)
	}
	for range 2 { // the second time from the cache
		if id, err := v.Verify(tok, now.Add(time.Hour)); err != nil || id != (pki.Identity{Role: pki.RoleClient, Name: "bob"}) {
			t.Fatalf("Verify: %v %v", id, err)
		}
	}
	if _, err := v.Verify(tok, now.Add(3*time.Hour)); !errors.Is(err, ErrToken) {
		t.Errorf("expired token: %v", err)
	}
	for _, ttl := range []time.Duration{0, time.Millisecond, MaxTokenTTL + time.Second} {
		if _, err := SignToken(bob, now, ttl); !errors.Is(err, ErrToken) {
			t.Errorf("ttl %s: %v", ttl, err)
		}
	}
	if _, err := SignToken(nil, now, time.Hour); !errors.Is(err, ErrToken) {
		t.Errorf("no bundle: %v", err)
	}
	parts := strings.Split(strings.TrimPrefix(tok, tokenPrefix), ".")
	for name, bad := range map[string]string{
		"later expiry":  tokenPrefix + parts[0] + "." + "9" + parts[1][1:] + "." + parts[2],
		"no signature":  tokenPrefix + parts[0] + "." + parts[1] + ".",
		"three parts":   tokenPrefix + parts[0] + "." + parts[1],
		"bad cert":      tokenPrefix + "AAAA." + parts[1] + "." + parts[2],
		"data token":    mustDataToken(t, bob, now),
		"huge":          tokenPrefix + strings.Repeat("A", maxTokenLen),
		"leading zero":  tokenPrefix + parts[0] + ".0" + parts[1] + "." + parts[2],
		"wrong version": "wh2." + strings.Join(parts, "."),
	} {
		if _, err := v.Verify(bad, now); !errors.Is(err, ErrToken) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Another CA's verifier refuses it.
	other := otherCA(t)
	if _, err := newTokenVerifier(other.CA).Verify(tok, now); !errors.Is(err, ErrToken) || !strings.Contains(err.Error(), "cluster CA") {
		t.Errorf("another CA: %v", err)
	}
}

func mustDataToken(t *testing.T, b *pki.Bundle, now time.Time) string {
	t.Helper()
	tok, err := b.SignDataToken(now, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
