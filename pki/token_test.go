package pki

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// tokenSetup returns a client bundle and a verifier for its CA.
func tokenSetup(t testing.TB) (*Bundle, *TokenVerifier, string) {
	t.Helper()
	dir := t.TempDir()
	if err := CreateCA(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := CreateClient(dir, "reader", RoleClient, true, Options{}); err != nil {
		t.Fatal(err)
	}
	b, err := LoadDir(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	return b, NewTokenVerifier(b.CA, 5*time.Second), dir
}

func TestDataToken(t *testing.T) {
	b, v, _ := tokenSetup(t)
	now := time.Now()
	tok, err := b.SignDataToken(now, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "v1.") || strings.Count(tok, ".") != 3 || strings.ContainsAny(tok, "+/= ") {
		t.Errorf("token format %q", tok)
	}
	want := Identity{RoleClient, "reader"}
	for i := 0; i < 2; i++ { // the second time from the cache
		if id, err := v.Verify(tok, now); err != nil || id != want {
			t.Fatalf("verify #%d: %+v %v", i, id, err)
		}
	}
	// Within the skew allowance after expiry, then past it (cached and not).
	if _, err := v.Verify(tok, now.Add(time.Minute+4*time.Second)); err != nil {
		t.Errorf("within skew: %v", err)
	}
	for _, vv := range []*TokenVerifier{v, NewTokenVerifier(b.CA, 5*time.Second)} {
		if _, err := vv.Verify(tok, now.Add(time.Minute+6*time.Second)); !errors.Is(err, ErrBadToken) || !strings.Contains(err.Error(), "expired") {
			t.Errorf("expired: %v", err)
		}
	}
	for _, ttl := range []time.Duration{0, time.Millisecond, time.Hour + time.Second, -time.Minute} {
		if _, err := b.SignDataToken(now, ttl); !errors.Is(err, ErrBadToken) {
			t.Errorf("ttl %s: %v", ttl, err)
		}
	}
	if _, err := b.SignDataToken(now, time.Hour); err != nil {
		t.Errorf("ttl 1h: %v", err)
	}
	if _, err := b.SignDataToken(b.Cert.Leaf.NotAfter.Add(time.Second), time.Minute); !errors.Is(err, ErrBadCert) {
		t.Errorf("sign with an expired certificate: %v", err)
	}
}

func TestDataTokenNode(t *testing.T) {
	_, v, dir := tokenSetup(t)
	node := newNode(t, dir)
	tok, err := node.SignDataToken(time.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := v.Verify(tok, time.Now()); err != nil || id.Role != RoleNode {
		t.Fatalf("node token: %+v %v", id, err)
	}
}

func TestDataTokenRejected(t *testing.T) {
	b, v, _ := tokenSetup(t)
	now := time.Now()
	tok, err := b.SignDataToken(now, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	enc := base64.RawURLEncoding
	sig, _ := enc.DecodeString(parts[3])
	sig[len(sig)/2] ^= 1
	other, _, _ := tokenSetup(t)
	otherTok, err := other.SignDataToken(now, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	op := strings.Split(otherTok, ".")
	cases := map[string]struct {
		tok, why string
		at       time.Time
	}{
		"tampered signature": {strings.Join([]string{parts[0], parts[1], parts[2], enc.EncodeToString(sig)}, "."), "bad signature", now},
		"later expiry":       {strings.Join([]string{parts[0], parts[1], fmt.Sprint(now.Unix() + 600), parts[3]}, "."), "bad signature", now},
		"swapped cert":       {strings.Join([]string{parts[0], op[1], parts[2], parts[3]}, "."), "bad signature", now},
		"other CA":           {otherTok, "certificate", now},
		"expired":            {tok, "expired", now.Add(2 * time.Minute)},
		"too far ahead":      {tok, "ahead", now.Add(-2 * time.Hour)},
		"empty":              {"", "malformed", now},
		"version":            {"v2" + tok[2:], "malformed", now},
		"parts":              {tok + ".x", "malformed", now},
		"base64":             {parts[0] + ".!!." + parts[2] + "." + parts[3], "malformed", now},
		"expiry":             {parts[0] + "." + parts[1] + ".+" + parts[2] + "." + parts[3], "malformed", now},
		"huge":               {strings.Repeat("a", 20000), "malformed", now},
		"not a cert":         {parts[0] + ".AAAA." + parts[2] + "." + parts[3], "malformed", now},
	}
	for name, c := range cases {
		_, err := v.Verify(c.tok, c.at)
		if !errors.Is(err, ErrBadToken) || !strings.Contains(err.Error(), c.why) {
			t.Errorf("%s: %v, want ErrBadToken: %s", name, err, c.why)
		}
	}
}

// TestDataTokenExpiredCert: a token whose certificate has expired is
// rejected even though the token claims a fresh expiry.
func TestDataTokenExpiredCert(t *testing.T) {
	dir := t.TempDir()
	start := time.Now().Add(-10 * time.Hour)
	if err := createCA(dir, Options{}, start); err != nil {
		t.Fatal(err)
	}
	p, err := createClient(dir, "gone", RoleClient, false, Options{Lifetime: time.Hour}, start.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	at := start.Add(2*time.Hour + 30*time.Minute)
	b, err := load(dir+"/"+CACertFile, p, strings.TrimSuffix(p, ".crt")+".key", at)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := b.SignDataToken(at, 20*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	v := NewTokenVerifier(b.CA, 0)
	if _, err := v.Verify(tok, at); err != nil {
		t.Fatalf("at signing time: %v", err)
	}
	// The signer's certificate ends 1h after creation: at+30m is past it,
	// though the token (20m) would end at at+20m; check at+35m with
	// a fresh verifier and skew so that only the certificate is at fault.
	v2 := NewTokenVerifier(b.CA, time.Hour)
	if _, err := v2.Verify(tok, at.Add(35*time.Minute)); !errors.Is(err, ErrBadToken) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("expired certificate: %v", err)
	}
	// The cached entry of v follows the certificate too.
	if _, err := v.Verify(tok, at.Add(35*time.Minute)); !errors.Is(err, ErrBadToken) {
		t.Errorf("cached, expired: %v", err)
	}
	// Tokens are capped at the certificate's NotAfter.
	late := b.Cert.Leaf.NotAfter.Add(-10 * time.Second)
	tok2, err := b.SignDataToken(late, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	exp := strings.Split(tok2, ".")[2]
	if exp != fmt.Sprint(b.Cert.Leaf.NotAfter.Unix()) {
		t.Errorf("token expiry %s, certificate NotAfter %d", exp, b.Cert.Leaf.NotAfter.Unix())
	}
}

func TestTokenSource(t *testing.T) {
	b, v, _ := tokenSetup(t)
	s := NewTokenSource(b, 30*time.Second)
	now := time.Now()
	t1, err := s.Token(now)
	if err != nil {
		t.Fatal(err)
	}
	if t2, _ := s.Token(now.Add(19 * time.Second)); t2 != t1 {
		t.Error("re-signed with more than a third of the life left")
	}
	t3, err := s.Token(now.Add(21 * time.Second))
	if err != nil || t3 == t1 {
		t.Errorf("did not re-sign with less than a third left: %v", err)
	}
	if _, err := v.Verify(t3, now.Add(40*time.Second)); err != nil {
		t.Errorf("renewed token: %v", err)
	}
	if _, err := NewTokenSource(b, 2*time.Hour).Token(now); !errors.Is(err, ErrBadToken) {
		t.Errorf("2h ttl: %v", err)
	}
	if tok, err := NewTokenSource(b, 0).Token(now); err != nil || tok == "" {
		t.Errorf("default ttl: %v", err)
	}

	// Concurrent use (run with -race).
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				at := now.Add(time.Duration(g*50+i) * 100 * time.Millisecond)
				tok, err := s.Token(at)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := v.Verify(tok, at); err != nil {
					t.Error(err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

func TestTokenVerifierCacheBound(t *testing.T) {
	b, v, _ := tokenSetup(t)
	now := time.Now()
	tok, err := b.SignDataToken(now, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(tok, now)
	if err != nil {
		t.Fatal(err)
	}
	e := v.cache[tok]
	for i := 0; i < 3*maxCachedToks; i++ {
		if i%2 == 0 {
			v.store(fmt.Sprint("live", i), e, now)
		} else {
			v.store(fmt.Sprint("dead", i), verifiedToken{id: id, notAfter: now.Add(-time.Second)}, now)
		}
		if n := len(v.cache); n > maxCachedToks {
			t.Fatalf("cache holds %d entries", n)
		}
	}
	if _, ok := v.cache["live"+fmt.Sprint(3*maxCachedToks-2)]; !ok {
		t.Error("latest entry missing")
	}
	// Still correct after evictions.
	if got, err := v.Verify(tok, now); err != nil || got != id {
		t.Errorf("verify after eviction: %v", err)
	}
}

func FuzzVerifyDataToken(f *testing.F) {
	b, v, _ := tokenSetup(f)
	now := time.Now()
	tok, err := b.SignDataToken(now, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	f.Add("")
	f.Add("v1...")
	f.Add("v1.AAAA.1.AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := v.Verify(s, now)
		if err == nil {
			if id.Role == "" || id.Name == "" {
				t.Fatalf("accepted %q with empty identity", s)
			}
			return
		}
		if !errors.Is(err, ErrBadToken) {
			t.Fatalf("error %v does not wrap ErrBadToken", err)
		}
	})
}

func BenchmarkVerifyCached(b *testing.B) {
	bu, v, _ := tokenSetup(b)
	now := time.Now()
	tok, _ := bu.SignDataToken(now, time.Hour)
	if _, err := v.Verify(tok, now); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(tok, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkTokenSource(b *testing.B) {
	bu, _, _ := tokenSetup(b)
	s := NewTokenSource(bu, time.Hour)
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Token(now); err != nil {
				b.Fatal(err)
			}
		}
	})
}
