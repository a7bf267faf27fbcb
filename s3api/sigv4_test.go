package s3api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/stratafs/strata/conf"
)

// authServer runs only the authentication step of a Server behind a real
// HTTP listener and answers with the S3 error code ("OK" when it passes).
func authServer(t *testing.T, anonymous string) (*httptest.Server, *Server) {
	t.Helper()
	cfg := conf.DefaultS3API()
	cfg.Anonymous = anonymous
	s := &Server{cfg: cfg, keys: map[string]string{testKeyID: testKeySecret}}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, err := parseQuery(r.URL.RawQuery)
		if err != nil {
			io.WriteString(w, toAPIError(err, opRead).Code)
			return
		}
		tg, aerr := splitTarget(r.Host, r.URL.Path, nil)
		if aerr != nil {
			io.WriteString(w, aerr.Code)
			return
		}
		op := operation(r.Method, tg, q, r.Header)
		id, aerr := s.authenticate(r, q, op, time.Now())
		if aerr != nil {
			io.WriteString(w, aerr.Code+": "+aerr.Message)
			return
		}
		if id.PayloadHash != "" && isHexSignature(id.PayloadHash) {
			p, aerr := newPayload(r, id, r.ContentLength)
			if aerr != nil {
				io.WriteString(w, aerr.Code)
				return
			}
			if _, err := io.Copy(io.Discard, p); err != nil {
				io.WriteString(w, toAPIError(err, opWrite).Code)
				return
			}
		}
		io.WriteString(w, "OK "+id.String())
	}))
	t.Cleanup(hs.Close)
	return hs, s
}

func creds(id, secret string) aws.Credentials {
	return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}
}

func s3Signer() *v4.Signer {
	return v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
}

// newReq builds a request to path (unescaped key) and query the way the S3
// SDKs do: each path byte outside the unreserved set percent-encoded.
func newReq(t *testing.T, method, base, path, rawQuery string, body []byte) *http.Request {
	t.Helper()
	u, err := url.Parse(base + uriEncode(path, true))
	if err != nil {
		t.Fatal(err)
	}
	u.RawQuery = rawQuery
	r, err := http.NewRequest(method, u.String(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func do(t *testing.T, r *http.Request) string {
	t.Helper()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// TestSignatureV4HeaderMatchesSDK signs requests with aws-sdk-go-v2's signer
// and checks the server accepts exactly the right ones.
func TestSignatureV4HeaderMatchesSDK(t *testing.T) {
	hs, _ := authServer(t, conf.S3AnonymousOff)
	ctx := context.Background()
	now := time.Now().UTC()
	paths := []string{"/b/k", "/b/dir/with space/ü 名前.txt", "/b/a!b(c)*d'e+f=g&h$i,j;k:l@m", "/b/%2F literally", "/b", "/", "/b/trailing/"}
	queries := []string{"", "uploads", "list-type=2&prefix=a%20b&max-keys=10", "a=2&a=1&b=", "prefix=%2B%26%3D"}
	for _, p := range paths {
		for _, q := range queries {
			body := []byte("payload of " + p)
			r := newReq(t, http.MethodPut, hs.URL, p, q, body)
			r.Header.Set("X-Amz-Content-Sha256", sha256Hex(body))
			r.Header.Set("X-Amz-Meta-Spaced", "  a   b  c ")
			r.Header.Add("X-Amz-Meta-Multi", "one")
			r.Header.Add("X-Amz-Meta-Multi", "two")
			if err := s3Signer().SignHTTP(ctx, creds(testKeyID, testKeySecret), r, sha256Hex(body), "s3", "us-east-1", now); err != nil {
				t.Fatal(err)
			}
			if got := do(t, r); got != "OK key "+testKeyID {
				t.Errorf("PUT %s?%s: %s", p, q, got)
			}
		}
	}

	cases := []struct {
		name   string
		mutate func(r *http.Request) (id, secret, region string, at time.Time)
		want   string
	}{
		{"bad secret", func(r *http.Request) (string, string, string, time.Time) {
			return testKeyID, "wrong-secret-123", "us-east-1", now
		}, "SignatureDoesNotMatch"},
		{"unknown key", func(r *http.Request) (string, string, string, time.Time) {
			return "NOSUCHKEY", testKeySecret, "us-east-1", now
		}, "InvalidAccessKeyId"},
		{"wrong region", func(r *http.Request) (string, string, string, time.Time) {
			return testKeyID, testKeySecret, "eu-west-1", now
		}, "AuthorizationHeaderMalformed"},
		{"skewed clock", func(r *http.Request) (string, string, string, time.Time) {
			return testKeyID, testKeySecret, "us-east-1", now.Add(-time.Hour)
		}, "RequestTimeTooSkewed"},
	}
	for _, tc := range cases {
		r := newReq(t, http.MethodGet, hs.URL, "/b/k", "", nil)
		id, secret, region, at := tc.mutate(r)
		if err := s3Signer().SignHTTP(ctx, creds(id, secret), r, emptySHA256, "s3", region, at); err != nil {
			t.Fatal(err)
		}
		r.Header.Set("X-Amz-Content-Sha256", emptySHA256)
		if got := do(t, r); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: got %q, want %s", tc.name, got, tc.want)
		}
	}

	// A header changed after signing, and a body that is not the one signed.
	r := newReq(t, http.MethodGet, hs.URL, "/b/k", "", nil)
	r.Header.Set("Range", "bytes=0-1")
	_ = s3Signer().SignHTTP(ctx, creds(testKeyID, testKeySecret), r, emptySHA256, "s3", "us-east-1", now)
	r.Header.Set("X-Amz-Content-Sha256", emptySHA256)
	r.Header.Set("Range", "bytes=0-2")
	if got := do(t, r); !strings.HasPrefix(got, "SignatureDoesNotMatch") {
		t.Errorf("tampered signed header: %q", got)
	}
	body := []byte("signed body")
	r = newReq(t, http.MethodPut, hs.URL, "/b/k", "", []byte("other body!"))
	r.Header.Set("X-Amz-Content-Sha256", sha256Hex(body))
	_ = s3Signer().SignHTTP(ctx, creds(testKeyID, testKeySecret), r, sha256Hex(body), "s3", "us-east-1", now)
	if got := do(t, r); got != "XAmzContentSHA256Mismatch" {
		t.Errorf("body that is not the signed one: %q", got)
	}
	// Signature V2 and no signature at all.
	r = newReq(t, http.MethodGet, hs.URL, "/b/k", "", nil)
	r.Header.Set("Authorization", "AWS "+testKeyID+":c2lnbmF0dXJl")
	if got := do(t, r); !strings.HasPrefix(got, "InvalidRequest") {
		t.Errorf("signature v2: %q", got)
	}
	r = newReq(t, http.MethodGet, hs.URL, "/b/k", "", nil)
	if got := do(t, r); !strings.HasPrefix(got, "AccessDenied") {
		t.Errorf("anonymous with anonymous off: %q", got)
	}
}

func TestPresignedURL(t *testing.T) {
	hs, _ := authServer(t, conf.S3AnonymousOff)
	ctx := context.Background()
	presign := func(id, secret, path, query string, at time.Time, expires time.Duration) string {
		r := newReq(t, http.MethodGet, hs.URL, path, query, nil)
		q := r.URL.Query()
		q.Set("X-Amz-Expires", strconv.FormatInt(int64(expires/time.Second), 10))
		r.URL.RawQuery = q.Encode()
		u, _, err := s3Signer().PresignHTTP(ctx, creds(id, secret), r, unsignedPayload, "s3", "us-east-1", at)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	get := func(u string) string {
		r, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		return do(t, r)
	}
	now := time.Now().UTC()
	if got := get(presign(testKeyID, testKeySecret, "/b/dir/ü x+y.txt", "response-content-type=text%2Fplain", now, time.Hour)); got != "OK key "+testKeyID {
		t.Errorf("valid presigned URL: %q", got)
	}
	if got := get(presign(testKeyID, testKeySecret, "/b/k", "", now.Add(-2*time.Hour), time.Hour)); !strings.HasPrefix(got, "AccessDenied: Request has expired") {
		t.Errorf("expired presigned URL: %q", got)
	}
	if got := get(presign("NOSUCHKEY", testKeySecret, "/b/k", "", now, time.Hour)); !strings.HasPrefix(got, "InvalidAccessKeyId") {
		t.Errorf("unknown key: %q", got)
	}
	if got := get(presign(testKeyID, "bad-secret-xyz", "/b/k", "", now, time.Hour)); !strings.HasPrefix(got, "SignatureDoesNotMatch") {
		t.Errorf("bad signature: %q", got)
	}
	if got := get(presign(testKeyID, testKeySecret, "/b/k", "", now, 8*24*time.Hour)); !strings.HasPrefix(got, "AuthorizationQueryParametersError") {
		t.Errorf("expiry over a week: %q", got)
	}
	u := presign(testKeyID, testKeySecret, "/b/k", "", now, time.Hour)
	if got := get(strings.Replace(u, "/b/k", "/b/other", 1)); !strings.HasPrefix(got, "SignatureDoesNotMatch") {
		t.Errorf("presigned URL used for another key: %q", got)
	}
}

func TestAnonymousModes(t *testing.T) {
	for _, tc := range []struct {
		mode          string
		get, put, del string
	}{
		{conf.S3AnonymousOff, "AccessDenied", "AccessDenied", "AccessDenied"},
		{conf.S3AnonymousRead, "OK anonymous", "AccessDenied", "AccessDenied"},
		{conf.S3AnonymousReadWrite, "OK anonymous", "OK anonymous", "OK anonymous"},
	} {
		hs, _ := authServer(t, tc.mode)
		for method, want := range map[string]string{http.MethodGet: tc.get, http.MethodPut: tc.put, http.MethodDelete: tc.del} {
			r := newReq(t, method, hs.URL, "/b/k", "", nil)
			if got := do(t, r); !strings.HasPrefix(got, want) {
				t.Errorf("anonymous %s with mode %s: %q, want %s", method, tc.mode, got, want)
			}
		}
	}
}

func TestParseAuthorization(t *testing.T) {
	good := "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-date, Signature=" + strings.Repeat("ab", 32)
	a, err := parseAuthorization(good)
	if err != nil {
		t.Fatal(err)
	}
	if a.AccessKey != "AKID" || a.Date != "20130524" || a.Region != "us-east-1" || len(a.SignedHeaders) != 3 || a.Scope() != "20130524/us-east-1/s3/aws4_request" {
		t.Errorf("parsed %+v", a)
	}
	for _, bad := range []string{
		"", "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA256Credential=x", "Bearer x",
		strings.Replace(good, "s3/aws4", "ec2/aws4", 1),
		strings.Replace(good, "20130524", "2013-05-24", 1),
		strings.Replace(good, "host;range;x-amz-date", "range;host;x-amz-date", 1),
		strings.Replace(good, "host;range;x-amz-date", "range;x-amz-date", 1),
		strings.Replace(good, "host;range", "Host;range", 1),
		strings.Replace(good, "Signature=ab", "Signature=AB", 1),
		strings.Replace(good, ", Signature", ", Foo=bar, Signature", 1),
		"AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request, SignedHeaders=host",
		"AWS4-HMAC-SHA256 Credential=/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("ab", 32),
	} {
		if _, err := parseAuthorization(bad); err == nil || err.Code != "AuthorizationHeaderMalformed" {
			t.Errorf("parseAuthorization(%q) = %v, want AuthorizationHeaderMalformed", bad, err)
		}
	}
}
