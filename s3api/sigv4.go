package s3api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// AWS Signature Version 4, verified as the AWS reference describes it:
// https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-authenticating-requests.html

const (
	sigV4Algorithm = "AWS4-HMAC-SHA256"
	amzDateFormat  = "20060102T150405Z"
	scopeDateFmt   = "20060102"

	unsignedPayload        = "UNSIGNED-PAYLOAD"
	streamingSigned        = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingSignedTrailer = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamingUnsignedTrail = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

	// emptySHA256 is the hex SHA-256 of no bytes.
	emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

	// maxPresignExpiry is S3's limit on X-Amz-Expires (7 days).
	maxPresignExpiry = 7 * 24 * time.Hour
)

// authHeader is a parsed "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
// Signature=..." header, or the same fields of a presigned URL.
type authHeader struct {
	AccessKey     string
	Date          string // scope date, YYYYMMDD
	Region        string
	Service       string
	SignedHeaders []string
	Signature     string
}

// Scope is the credential scope "date/region/service/aws4_request".
func (a authHeader) Scope() string {
	return a.Date + "/" + a.Region + "/" + a.Service + "/aws4_request"
}

// parseAuthorization parses a SigV4 Authorization header. It returns
// AuthorizationHeaderMalformed for anything that does not follow the format.
func parseAuthorization(h string) (authHeader, *Error) {
	var a authHeader
	rest, ok := strings.CutPrefix(h, sigV4Algorithm)
	if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
		return a, apiErr("AuthorizationHeaderMalformed", "the authorization header must start with %s", sigV4Algorithm)
	}
	var cred, signed, sig string
	var haveCred, haveSigned, haveSig bool
	for field := range strings.SplitSeq(rest, ",") {
		field = strings.TrimSpace(field)
		k, v, ok := strings.Cut(field, "=")
		if !ok {
			return a, apiErr("AuthorizationHeaderMalformed", "the authorization header has a field without '=': %q", truncate(field, 64))
		}
		switch strings.TrimSpace(k) {
		case "Credential":
			cred, haveCred = v, true
		case "SignedHeaders":
			signed, haveSigned = v, true
		case "Signature":
			sig, haveSig = v, true
		default:
			return a, apiErr("AuthorizationHeaderMalformed", "the authorization header has an unknown field %q", truncate(k, 64))
		}
	}
	if !haveCred || !haveSigned || !haveSig {
		return a, apiErr("AuthorizationHeaderMalformed", "the authorization header needs Credential, SignedHeaders and Signature")
	}
	if err := a.setCredential(cred, "AuthorizationHeaderMalformed"); err != nil {
		return a, err
	}
	if err := a.setSignedHeaders(signed, "AuthorizationHeaderMalformed"); err != nil {
		return a, err
	}
	if !isHexSignature(sig) {
		return a, apiErr("AuthorizationHeaderMalformed", "the signature must be 64 lower-case hex digits")
	}
	a.Signature = sig
	return a, nil
}

// setCredential parses "AKID/YYYYMMDD/region/s3/aws4_request".
func (a *authHeader) setCredential(cred, code string) *Error {
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || parts[0] == "" || parts[2] == "" {
		return apiErr(code, "the credential %q must look like ACCESS_KEY_ID/YYYYMMDD/REGION/s3/aws4_request", truncate(cred, 128))
	}
	if _, err := time.Parse(scopeDateFmt, parts[1]); err != nil {
		return apiErr(code, "the credential's date %q is not YYYYMMDD", truncate(parts[1], 16))
	}
	if parts[3] != "s3" {
		return apiErr(code, "the credential's service is %q; expecting s3", truncate(parts[3], 32))
	}
	if parts[4] != "aws4_request" {
		return apiErr(code, "the credential must end with aws4_request")
	}
	a.AccessKey, a.Date, a.Region, a.Service = parts[0], parts[1], parts[2], parts[3]
	return nil
}

// setSignedHeaders parses "host;range;x-amz-date": lower-case, sorted names
// that include host.
func (a *authHeader) setSignedHeaders(s, code string) *Error {
	if s == "" {
		return apiErr(code, "SignedHeaders is empty")
	}
	names := strings.Split(s, ";")
	if len(names) > 64 {
		return apiErr(code, "too many signed headers")
	}
	for i, n := range names {
		if n == "" || n != strings.ToLower(n) || strings.ContainsAny(n, " \t:") {
			return apiErr(code, "the signed header %q is not a lower-case header name", truncate(n, 64))
		}
		if i > 0 && names[i-1] >= n {
			return apiErr(code, "SignedHeaders must be sorted and unique")
		}
	}
	if !slices.Contains(names, "host") {
		return apiErr(code, "SignedHeaders must include host")
	}
	a.SignedHeaders = names
	return nil
}

func isHexSignature(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// uriEncode percent-encodes s as SigV4 wants: everything but A-Z a-z 0-9 - _
// . ~ is encoded (upper-case hex); '/' is kept when path is true.
func uriEncode(s string, path bool) string {
	const hexdig = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := range len(s) {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' || (path && c == '/') {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexdig[c>>4])
		b.WriteByte(hexdig[c&15])
	}
	return b.String()
}

// canonicalQuery encodes the parameters sorted by key, then value, leaving out
// X-Amz-Signature.
func canonicalQuery(q query) string {
	type kv struct{ k, v string }
	list := make([]kv, 0, len(q))
	for _, p := range q {
		if p.Key == "X-Amz-Signature" {
			continue
		}
		list = append(list, kv{uriEncode(p.Key, false), uriEncode(p.Value, false)})
	}
	slices.SortFunc(list, func(a, b kv) int {
		if c := strings.Compare(a.k, b.k); c != 0 {
			return c
		}
		return strings.Compare(a.v, b.v)
	})
	var b strings.Builder
	for i, e := range list {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(e.k)
		b.WriteByte('=')
		b.WriteString(e.v)
	}
	return b.String()
}

// canonicalHeaderValue is the trimmed, space-collapsed, comma-joined value of
// a signed header. Host, Content-Length and Transfer-Encoding, which net/http
// moves out of the header map, are read from the request.
func canonicalHeaderValue(r *http.Request, name string) string {
	var vals []string
	switch name {
	case "host":
		vals = []string{r.Host}
	case "transfer-encoding":
		vals = r.TransferEncoding
	default:
		vals = r.Header.Values(name)
		if len(vals) == 0 && name == "content-length" && r.ContentLength >= 0 {
			vals = []string{strconv.FormatInt(r.ContentLength, 10)}
		}
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(out, ",")
}

// canonicalRequest builds the SigV4 canonical request.
func canonicalRequest(r *http.Request, canonURI, canonQuery string, signed []string, payloadHash string) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(canonURI)
	b.WriteByte('\n')
	b.WriteString(canonQuery)
	b.WriteByte('\n')
	for _, h := range signed {
		b.WriteString(h)
		b.WriteByte(':')
		b.WriteString(canonicalHeaderValue(r, h))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signed, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

// stringToSign is the SigV4 string to sign of a canonical request.
func stringToSign(amzDate, scope, canonReq string) string {
	h := sha256.Sum256([]byte(canonReq))
	return sigV4Algorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(h[:])
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// signingKey derives the SigV4 signing key of a secret for a scope.
func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, "aws4_request")
}

// signHex is the hex HMAC-SHA256 of data under key.
func signHex(key []byte, data string) string {
	return hex.EncodeToString(hmacSHA256(key, data))
}

// canonicalURIs are the canonical URIs a client may have signed for a path:
// the path exactly as it was sent (S3 signs the path without normalising or
// encoding it again), and the decoded path encoded strictly, for clients
// that send characters such as '!' or '(' unencoded but sign them encoded.
func canonicalURIs(r *http.Request) []string {
	raw := r.RequestURI
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	if strings.HasPrefix(raw, "http://") || strings.HasPrefix(raw, "https://") {
		raw = r.URL.EscapedPath() // absolute-form request line (proxies)
	}
	if raw == "" {
		raw = "/"
	}
	strict := uriEncode(r.URL.Path, true)
	if strict == "" {
		strict = "/"
	}
	if strict == raw {
		return []string{raw}
	}
	return []string{raw, strict}
}

// parseAmzDate parses an x-amz-date value, or an HTTP date from the Date
// header.
func parseAmzDate(v string) (time.Time, bool) {
	if t, err := time.Parse(amzDateFormat, v); err == nil {
		return t, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return t.UTC(), true
	}
	return time.Time{}, false
}
