package s3api

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// identity is who sent a request, and what the body's framing and integrity
// checks are.
type identity struct {
	// AccessKey is "" for an anonymous request.
	AccessKey string
	// PayloadHash is the x-amz-content-sha256 the request was signed with:
	// a hex SHA-256, UNSIGNED-PAYLOAD or one of the STREAMING-* modes ("" for
	// anonymous requests and presigned URLs without one).
	PayloadHash string
	// chunk signing state for STREAMING-AWS4-HMAC-SHA256-PAYLOAD(-TRAILER).
	key     []byte
	amzDate string
	scope   string
	seed    string
}

// authenticate checks a request's SigV4 signature (Authorization header or
// presigned query) against the access keys, or takes it as anonymous, then
// checks that the identity may do op on the buckets it touches (authorize).
// now is the server's clock.
func (s *Server) authenticate(r *http.Request, q query, op string, now time.Time) (identity, *Error) {
	id, aerr := s.identify(r, q, now)
	if aerr != nil {
		return identity{}, aerr
	}
	if aerr := s.authorize(r, op, id); aerr != nil {
		return identity{}, aerr
	}
	return id, nil
}

// identify checks a request's SigV4 signature, if it has one; a request
// without one is anonymous.
func (s *Server) identify(r *http.Request, q query, now time.Time) (identity, *Error) {
	authz := r.Header.Get("Authorization")
	presigned := q.Has("X-Amz-Algorithm") || q.Has("X-Amz-Credential") || q.Has("X-Amz-Signature")
	switch {
	case authz != "" && presigned:
		return identity{}, apiErr("InvalidArgument", "only one auth mechanism is allowed; send either the Authorization header or X-Amz-* query parameters")
	case strings.HasPrefix(authz, "AWS "), q.Has("AWSAccessKeyId") && q.Has("Signature"):
		return identity{}, apiErr("InvalidRequest", "the authorization mechanism you have provided is not supported; please use AWS4-HMAC-SHA256 (Signature Version 4)")
	case authz != "":
		return s.authHeader(r, q, authz, now)
	case presigned:
		return s.authPresigned(r, q, now)
	}
	return identity{}, nil
}

// wrongRegion is the error of a scope with another region.
func (s *Server) wrongRegion(code, region string) *Error {
	e := apiErr(code, "the authorization header is malformed; the region '%s' is wrong; expecting '%s'", truncate(region, 64), s.cfg.Region)
	e.extra = append(e.extra, xmlField{"Region", s.cfg.Region})
	return e
}

func (s *Server) authHeader(r *http.Request, q query, authz string, now time.Time) (identity, *Error) {
	a, aerr := parseAuthorization(authz)
	if aerr != nil {
		return identity{}, aerr
	}
	secret, ok := s.keys[a.AccessKey]
	if !ok {
		e := apiErr("InvalidAccessKeyId", "")
		e.extra = append(e.extra, xmlField{"AWSAccessKeyId", a.AccessKey})
		return identity{}, e
	}
	if a.Region != s.cfg.Region {
		return identity{}, s.wrongRegion("AuthorizationHeaderMalformed", a.Region)
	}
	amzDate := r.Header.Get("X-Amz-Date")
	if amzDate == "" {
		amzDate = r.Header.Get("Date")
	}
	t, ok := parseAmzDate(amzDate)
	if !ok {
		return identity{}, apiErr("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")
	}
	amzDate = t.Format(amzDateFormat)
	if amzDate[:8] != a.Date {
		return identity{}, apiErr("AuthorizationHeaderMalformed", "the date in the credential scope (%s) does not match the request's date (%s)", a.Date, amzDate[:8])
	}
	if d := now.Sub(t); d > s.cfg.ClockSkew.D() || -d > s.cfg.ClockSkew.D() {
		e := apiErr("RequestTimeTooSkewed", "")
		e.extra = append(e.extra, xmlField{"RequestTime", amzDate}, xmlField{"ServerTime", now.UTC().Format(time.RFC3339)})
		return identity{}, e
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	switch {
	case payload == "":
		return identity{}, apiErr("InvalidRequest", "missing required header for this request: x-amz-content-sha256")
	case payload == unsignedPayload, payload == streamingSigned, payload == streamingSignedTrailer, payload == streamingUnsignedTrail:
	case isHexSignature(payload):
	default:
		return identity{}, apiErr("InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING-* mode of AWS4-HMAC-SHA256 or the hex SHA-256 of the body")
	}
	key := signingKey(secret, a.Date, a.Region, a.Service)
	id, err := s.checkSignature(r, q, a, key, amzDate, payload)
	if err != nil {
		return identity{}, err
	}
	id.PayloadHash = payload
	return id, nil
}

// checkSignature compares the signature of every canonical URI the client may
// have signed with the one it sent.
func (s *Server) checkSignature(r *http.Request, q query, a authHeader, key []byte, amzDate, payload string) (identity, *Error) {
	cq := canonicalQuery(q)
	var first, firstSTS string
	for _, uri := range canonicalURIs(r) {
		creq := canonicalRequest(r, uri, cq, a.SignedHeaders, payload)
		sts := stringToSign(amzDate, a.Scope(), creq)
		if hmacEqual(signHex(key, sts), a.Signature) {
			return identity{AccessKey: a.AccessKey, key: key, amzDate: amzDate, scope: a.Scope(), seed: a.Signature}, nil
		}
		if first == "" {
			first, firstSTS = creq, sts
		}
	}
	e := apiErr("SignatureDoesNotMatch", "")
	e.extra = append(e.extra,
		xmlField{"AWSAccessKeyId", a.AccessKey}, xmlField{"StringToSign", firstSTS},
		xmlField{"SignatureProvided", a.Signature}, xmlField{"CanonicalRequest", first})
	return identity{}, e
}

func (s *Server) authPresigned(r *http.Request, q query, now time.Time) (identity, *Error) {
	const code = "AuthorizationQueryParametersError"
	if alg := q.Get("X-Amz-Algorithm"); alg != sigV4Algorithm {
		return identity{}, apiErr(code, "X-Amz-Algorithm must be %s", sigV4Algorithm)
	}
	for _, k := range []string{"X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"} {
		if !q.Has(k) {
			return identity{}, apiErr(code, "query-string authentication requires the %s parameter", k)
		}
	}
	var a authHeader
	if err := a.setCredential(q.Get("X-Amz-Credential"), code); err != nil {
		return identity{}, err
	}
	if err := a.setSignedHeaders(q.Get("X-Amz-SignedHeaders"), code); err != nil {
		return identity{}, err
	}
	a.Signature = q.Get("X-Amz-Signature")
	if !isHexSignature(a.Signature) {
		return identity{}, apiErr(code, "X-Amz-Signature must be 64 lower-case hex digits")
	}
	secret, ok := s.keys[a.AccessKey]
	if !ok {
		e := apiErr("InvalidAccessKeyId", "")
		e.extra = append(e.extra, xmlField{"AWSAccessKeyId", a.AccessKey})
		return identity{}, e
	}
	if a.Region != s.cfg.Region {
		return identity{}, s.wrongRegion(code, a.Region)
	}
	amzDate := q.Get("X-Amz-Date")
	t, err := time.Parse(amzDateFormat, amzDate)
	if err != nil {
		return identity{}, apiErr(code, "X-Amz-Date must be in the ISO8601 basic format YYYYMMDD'T'HHMMSS'Z'")
	}
	if amzDate[:8] != a.Date {
		return identity{}, apiErr(code, "the date in X-Amz-Credential (%s) does not match X-Amz-Date (%s)", a.Date, amzDate[:8])
	}
	secs, err := strconv.ParseInt(q.Get("X-Amz-Expires"), 10, 64)
	if err != nil || secs < 0 {
		return identity{}, apiErr(code, "X-Amz-Expires must be a non-negative number of seconds")
	}
	if time.Duration(secs)*time.Second > maxPresignExpiry {
		return identity{}, apiErr(code, "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds")
	}
	if t.Sub(now) > s.cfg.ClockSkew.D() {
		return identity{}, apiErr("AccessDenied", "request is not valid yet")
	}
	if expires := t.Add(time.Duration(secs) * time.Second); now.After(expires) {
		e := apiErr("AccessDenied", "Request has expired")
		e.extra = append(e.extra, xmlField{"X-Amz-Expires", strconv.FormatInt(secs, 10)},
			xmlField{"Expires", expires.UTC().Format(time.RFC3339)}, xmlField{"ServerTime", now.UTC().Format(time.RFC3339)})
		return identity{}, e
	}
	payload := unsignedPayload
	if v := q.Get("X-Amz-Content-Sha256"); v != "" {
		payload = v
	}
	for _, h := range a.SignedHeaders {
		if h == "x-amz-content-sha256" {
			payload = r.Header.Get("X-Amz-Content-Sha256")
		}
	}
	if payload != unsignedPayload && !isHexSignature(payload) {
		return identity{}, apiErr(code, "a presigned request's payload must be UNSIGNED-PAYLOAD or a hex SHA-256")
	}
	key := signingKey(secret, a.Date, a.Region, a.Service)
	id, aerr := s.checkSignature(r, q, a, key, amzDate, payload)
	if aerr != nil {
		return identity{}, aerr
	}
	id.PayloadHash = payload
	return id, nil
}

// hmacEqual compares two hex signatures in constant time.
func hmacEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// String describes the identity for logs; it never contains a secret.
func (id identity) String() string {
	if id.AccessKey == "" {
		return "anonymous"
	}
	return fmt.Sprintf("key %s", id.AccessKey)
}
