package s3api

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
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
