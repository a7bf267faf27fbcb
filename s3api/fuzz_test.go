package s3api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stratafs/strata/conf"
)

// FuzzRequestParsing feeds arbitrary request parts to every parser of the
// request path: the bucket/key split, query strings and their canonical
// form, Range headers, SigV4 Authorization headers and aws-chunked bodies
// (signed and with trailers). None may panic, and what they accept must be
// well-formed. `go test` runs the seeds; `go test -fuzz FuzzRequestParsing`
// explores.
func FuzzRequestParsing(f *testing.F) {
	seedAuth := "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + strings.Repeat("0a", 32)
	f.Add("127.0.0.1:7480", "/bucket/key/with space", "list-type=2&prefix=a%20b&max-keys=10", "bytes=0-99", seedAuth, awsExampleBody())
	f.Add("b.s3.example.com", "/k", "uploads", "bytes=-5", "AWS4-HMAC-SHA256 Credential=a/b/c/d/e", unsignedTrailerChunks([]byte("hello"), 2, crc32B64([]byte("hello"))))
	f.Add("", "", "%zz=1&&=&a", "bytes=5-", "", []byte("5\r\nhello\r\n0\r\n\r\n"))
	f.Add("h:1", "/../..//%00", "a=%", "bytes=1-0,2-3", "AWS4-HMAC-SHA256  ,,,", []byte("ffffffffffffffff;chunk-signature=x\r\n"))
	f.Add("s3.example.com:80", "/b/"+strings.Repeat("k", 1100), strings.Repeat("x=1&", 70), "bytes=99999999999999999999-", seedAuth, []byte("0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"))
	f.Fuzz(func(t *testing.T, host, path, rawQuery, rangeHdr, authz string, body []byte) {
		tg, err := splitTarget(host, path, []string{"s3.example.com"})
		if err == nil {
			if len(tg.Key) > MaxKeyLength || !utf8.ValidString(tg.Key) || checkBucketName(tg.Bucket) != nil && tg.Bucket != "" {
				t.Fatalf("splitTarget accepted %+v", tg)
			}
			if p, _, ok := keyPath(tg.Bucket, tg.Key); ok && (strings.Contains(p, "//") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..")) {
				t.Fatalf("keyPath(%q) = %q", tg.Key, p)
			}
		}
		q, qerr := parseQuery(rawQuery)
		if qerr == nil {
			cq := canonicalQuery(q)
			if strings.ContainsAny(cq, " \n") {
				t.Fatalf("canonical query %q has unencoded characters", cq)
			}
			_ = operation(http.MethodGet, tg, q, http.Header{})
			_, _ = parseListParams(q)
		}
		for _, size := range []int64{0, 1, 1000} {
			r, partial, rerr := parseRange(rangeHdr, size)
			if rerr == nil && (r.Start < 0 || r.Length < 0 || r.Start+r.Length > size || (partial && r.Length == 0)) {
				t.Fatalf("parseRange(%q, %d) = %+v %v", rangeHdr, size, r, partial)
			}
		}
		if a, aerr := parseAuthorization(authz); aerr == nil {
			if !isHexSignature(a.Signature) || a.AccessKey == "" || len(a.SignedHeaders) == 0 {
				t.Fatalf("parseAuthorization accepted %+v", a)
			}
		}
		for _, id := range []identity{awsExampleIdentity(), {PayloadHash: streamingUnsignedTrail}} {
			const limit = 1 << 20
			c := newChunkedReader(bytes.NewReader(body), id, limit)
			n, _ := io.Copy(io.Discard, c)
			if n > limit {
				t.Fatalf("decoded %d bytes past the limit", n)
			}
			r, _ := http.NewRequest(http.MethodPut, "http://h/b/k", bytes.NewReader(body))
			r.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
			if p, perr := newPayload(r, id, int64(len(body)/2)); perr == nil {
				got, err := io.ReadAll(p)
				if err == nil && int64(len(got)) != int64(len(body)/2) {
					t.Fatalf("payload returned %d bytes without error, declared %d", len(got), len(body)/2)
				}
			}
		}
	})
}

// FuzzParseAuthorization checks the SigV4 Authorization header parser: no
// panic; what it accepts has the shape SigV4 gives it (an access key without
// "/", a YYYYMMDD date, service s3, sorted unique lower-case signed headers
// with host, a 64-digit lower-case hex signature); a refusal is
// AuthorizationHeaderMalformed; and the accepted fields, written back in the
// canonical form, parse to themselves.
func FuzzParseAuthorization(f *testing.F) {
	sig := strings.Repeat("0a", 32)
	for _, s := range []string{
		"AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-date, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=" + sig + ",Credential=B/20000101/r/s3/aws4_request",
		"AWS4-HMAC-SHA256\tCredential=a=b/20130524/x/s3/aws4_request , SignedHeaders = host , Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=//////, SignedHeaders=;;, Signature=",
		"AWS AKID:signature",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		a, aerr := parseAuthorization(h)
		if aerr != nil {
			if aerr.Code != "AuthorizationHeaderMalformed" || aerr.Status != http.StatusBadRequest {
				t.Fatalf("parseAuthorization(%q): %s %d", h, aerr.Code, aerr.Status)
			}
			return
		}
		if a.AccessKey == "" || strings.ContainsAny(a.AccessKey, "/,") || a.Region == "" || a.Service != "s3" || !isHexSignature(a.Signature) {
			t.Fatalf("parseAuthorization(%q) accepted %+v", h, a)
		}
		if _, err := time.Parse(scopeDateFmt, a.Date); err != nil {
			t.Fatalf("parseAuthorization(%q): date %q: %v", h, a.Date, err)
		}
		if !slices.IsSorted(a.SignedHeaders) || !slices.Contains(a.SignedHeaders, "host") {
			t.Fatalf("parseAuthorization(%q): signed headers %q", h, a.SignedHeaders)
		}
		for i, n := range a.SignedHeaders {
			if n == "" || n != strings.ToLower(n) || strings.ContainsAny(n, " \t:;,") || i > 0 && a.SignedHeaders[i-1] == n {
				t.Fatalf("parseAuthorization(%q): signed header %q", h, n)
			}
		}
		canon := sigV4Algorithm + " Credential=" + a.AccessKey + "/" + a.Scope() + ", SignedHeaders=" +
			strings.Join(a.SignedHeaders, ";") + ", Signature=" + a.Signature
		b, berr := parseAuthorization(canon)
		if berr != nil || !reflect.DeepEqual(a, b) {
			t.Fatalf("parseAuthorization(%q) = %+v; its canonical form %q parses to %+v, %v", h, a, canon, b, berr)
		}
	})
}

// FuzzPresignedQuery checks presigned-URL (query-string) authentication.
// Arbitrary X-Amz-* queries never panic and are refused with a code of the
// error table; a URL presigned by aws-sdk-go-v2 for any key, query value
// and allowed expiry is accepted, and the same URL with another signature,
// expiry or date is refused.
func FuzzPresignedQuery(f *testing.F) {
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=TESTKEY0001%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature="+strings.Repeat("ab", 32),
		"dir/ü x+y.txt", "text/plain", uint32(3600), uint8(5))
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=-1", "k", "", uint32(1), uint8(0))
	f.Add("X-Amz-Credential=a/b/c/d/e&X-Amz-Date=2024&X-Amz-Signature=x&X-Amz-Expires=99999999999999999999", "a/../b//c", "%zz", uint32(604800), uint8(200))
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=TESTKEY0001%2F20240101%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-SignedHeaders=host%3Bx-amz-content-sha256&X-Amz-Content-Sha256=STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
		"", "&=?#", uint32(0), uint8(63))
	cfg := conf.DefaultS3API()
	s := &Server{cfg: cfg, keys: map[string]string{testKeyID: testKeySecret}}
	now := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC) // tampered dates stay on the day
	f.Fuzz(func(t *testing.T, rawQuery, key, prefix string, expires uint32, tamper uint8) {
		// Arbitrary queries.
		if q, qerr := parseQuery(rawQuery); qerr == nil && len(key) < 2048 {
			r := httptest.NewRequest(http.MethodGet, "http://s3.example.com/b/k?"+url.PathEscape(rawQuery), nil)
			if id, aerr := s.authPresigned(r, q, now); aerr == nil {
				t.Fatalf("%q accepted without a valid signature as %v", rawQuery, id)
			} else if _, ok := codes[aerr.Code]; !ok || aerr.Status < 400 || aerr.Status >= 500 {
				t.Fatalf("%q: %s %d", rawQuery, aerr.Code, aerr.Status)
			}
		}

		// A URL presigned by the SDK.
		if len(key) > 512 || len(prefix) > 512 {
			return
		}
		exp := int64(expires % (7*24*3600 + 1))
		if exp == 0 {
			exp = 1
		}
		u, err := url.Parse("http://s3.example.com/b/" + uriEncode(key, true))
		if err != nil {
			t.Fatalf("key %q: %v", key, err)
		}
		q := url.Values{}
		q.Set("prefix", prefix)
		q.Set("X-Amz-Expires", strconv.FormatInt(exp, 10))
		u.RawQuery = q.Encode()
		r0, err := http.NewRequest(http.MethodGet, u.String(), nil)
		if err != nil {
			t.Fatalf("key %q: %v", key, err)
		}
		signed, _, err := s3Signer().PresignHTTP(context.Background(), creds(testKeyID, testKeySecret), r0, unsignedPayload, "s3", cfg.Region, now)
		if err != nil {
			t.Fatal(err)
		}
		try := func(signedURL string) (identity, *Error) {
			pu, err := url.Parse(signedURL)
			if err != nil {
				t.Fatalf("presigned URL %q: %v", signedURL, err)
			}
			r := httptest.NewRequest(http.MethodGet, pu.RequestURI(), nil)
			r.Host = pu.Host
			q, qerr := parseQuery(pu.RawQuery)
			if qerr != nil {
				t.Fatalf("presigned URL %q: %v", signedURL, qerr)
			}
			return s.authPresigned(r, q, now)
		}
		id, aerr := try(signed)
		if aerr != nil || id.AccessKey != testKeyID || id.PayloadHash != unsignedPayload {
			t.Fatalf("key %q, prefix %q, expires %d: presigned URL %q refused: %v", key, prefix, exp, signed, aerr)
		}
		// Tampered: another signature digit, expiry or date.
		pu, _ := url.Parse(signed)
		pq := pu.Query()
		switch tamper % 3 {
		case 0:
			sig := []byte(pq.Get("X-Amz-Signature"))
			i := int(tamper) % len(sig)
			sig[i] = "0123456789abcdef"[(strings.IndexByte("0123456789abcdef", sig[i])+1+int(tamper)%15)%16]
			pq.Set("X-Amz-Signature", string(sig))
		case 1:
			pq.Set("X-Amz-Expires", strconv.FormatInt(exp%604800+1+int64(tamper)%2, 10))
			if pq.Get("X-Amz-Expires") == strconv.FormatInt(exp, 10) {
				return
			}
		case 2:
			pq.Set("X-Amz-Date", now.Add(-time.Duration(1+int(tamper))*time.Second).Format(amzDateFormat))
		}
		pu.RawQuery = pq.Encode()
		if id, aerr := try(pu.String()); aerr == nil {
			t.Fatalf("tampered presigned URL %q accepted as %v", pu.String(), id)
		} else if aerr.Code != "SignatureDoesNotMatch" && !(tamper%3 == 2 && aerr.Code == "AccessDenied") {
			// An earlier date may also have expired the URL.
			t.Fatalf("tampered presigned URL %q: %s, want SignatureDoesNotMatch", pu.String(), aerr.Code)
		}
	})
}

// FuzzChunkedBody checks aws-chunked bodies both ways: data encoded as a
// signed STREAMING-AWS4-HMAC-SHA256-PAYLOAD body, in chunks of any size,
// decodes to itself; the same body with any byte changed either fails or
// still decodes to the same data (a hex digit's case), never to other data;
// an unsigned body with a CRC32 trailer round-trips through newPayload and a
// wrong trailer is BadDigest.
func FuzzChunkedBody(f *testing.F) {
	f.Add([]byte("hello, world"), uint16(5), uint32(7), byte(1))
	f.Add([]byte{}, uint16(0), uint32(0), byte(0xff))
	f.Add(bytes.Repeat([]byte("a"), 70000), uint16(65535), uint32(65600), byte(0x20))
	f.Fuzz(func(t *testing.T, data []byte, n uint16, pos uint32, x byte) {
		chunk := int(n)%(64<<10) + 1
		id := awsExampleIdentity()
		body := signedChunks(id, data, chunk)
		got, err := io.ReadAll(newChunkedReader(bytes.NewReader(body), id, int64(len(data))))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes in %d-byte chunks: decoded %d bytes, %v", len(data), chunk, len(got), err)
		}
		if x != 0 {
			bad := bytes.Clone(body)
			bad[int(pos)%len(bad)] ^= x
			got, err := io.ReadAll(newChunkedReader(bytes.NewReader(bad), id, int64(len(data))))
			if err == nil && !bytes.Equal(got, data) {
				t.Fatalf("byte %d of the body changed: decoded other data without error", int(pos)%len(bad))
			}
		}

		uid := identity{PayloadHash: streamingUnsignedTrail}
		for _, crc := range []string{crc32B64(data), crc32B64(append(bytes.Clone(data), 'x'))} {
			r, _ := http.NewRequest(http.MethodPut, "http://h/b/k", bytes.NewReader(unsignedTrailerChunks(data, chunk, crc)))
			r.Header.Set("Content-Encoding", "aws-chunked")
			r.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
			p, aerr := newPayload(r, uid, int64(len(data)))
			if aerr != nil {
				t.Fatalf("newPayload: %v", aerr)
			}
			got, err := io.ReadAll(p)
			good := crc == crc32B64(data)
			var ae *Error
			switch {
			case good && (err != nil || !bytes.Equal(got, data)):
				t.Fatalf("unsigned trailer body of %d bytes in %d-byte chunks: %d bytes, %v", len(data), chunk, len(got), err)
			case !good && (!errors.As(err, &ae) || ae.Code != "BadDigest"):
				t.Fatalf("wrong CRC32 trailer: %v", err)
			}
		}
	})
}
