package s3api

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// MaxKeyLength is the longest object key accepted, in bytes (S3's limit).
const MaxKeyLength = 1024

// maxBucketLength bounds a bucket name (a top-level directory name).
const maxBucketLength = 255

// maxQueryParams bounds the parameters of one query string.
const maxQueryParams = 64

// queryParam is one decoded key=value of a query string, in request order.
type queryParam struct {
	Key, Value string
	// HasValue is false for a bare "key" (no "=").
	HasValue bool
}

// parseQuery decodes a raw query string without reordering or merging
// parameters ('+' is a space, as in form encoding). It fails on a malformed
// escape or more than maxQueryParams parameters.
func parseQuery(raw string) ([]queryParam, error) {
	if raw == "" {
		return nil, nil
	}
	var out []queryParam
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		if len(out) == maxQueryParams {
			return nil, apiErr("InvalidArgument", "the query string has more than %d parameters", maxQueryParams)
		}
		k, v, has := strings.Cut(part, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil {
			return nil, apiErr("InvalidURI", "malformed query parameter %q", truncate(k, 64))
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			return nil, apiErr("InvalidURI", "malformed value of query parameter %q", truncate(dk, 64))
		}
		out = append(out, queryParam{Key: dk, Value: dv, HasValue: has})
	}
	return out, nil
}

// query is a parsed query string.
type query []queryParam

// Get returns the first value of key.
func (q query) Get(key string) string {
	for _, p := range q {
		if p.Key == key {
			return p.Value
		}
	}
	return ""
}

// Has reports whether key is present (with or without a value).
func (q query) Has(key string) bool {
	for _, p := range q {
		if p.Key == key {
			return true
		}
	}
	return false
}

// target is what a request addresses.
type target struct {
	// Bucket is "" for the service (ListBuckets).
	Bucket string
	// Key is "" for a bucket.
	Key string
	// VirtualHost is true when the bucket came from the Host header.
	VirtualHost bool
}

// splitTarget finds the bucket and key of a request: from the Host header when
// it is a subdomain of one of domains (virtual-host style), else from the
// first element of the (decoded) path. It checks bucket names and key length
// and encoding.
func splitTarget(host, path string, domains []string) (target, *Error) {
	var t target
	h := strings.ToLower(host)
	if hh, _, err := net.SplitHostPort(h); err == nil {
		h = hh
	}
	for _, d := range domains {
		if b, ok := strings.CutSuffix(h, "."+d); ok && b != "" {
			t.Bucket, t.VirtualHost = b, true
			break
		}
	}
	p, ok := strings.CutPrefix(path, "/")
	if !ok && path != "" {
		return t, apiErr("InvalidURI", "the path must start with /")
	}
	if t.VirtualHost {
		t.Key = p
	} else {
		t.Bucket, t.Key, _ = strings.Cut(p, "/")
	}
	if t.Bucket != "" {
		if err := checkBucketName(t.Bucket); err != nil {
			return t, err
		}
	}
	if len(t.Key) > MaxKeyLength {
		return t, apiErr("KeyTooLongError", "the key is %d bytes long; the limit is %d", len(t.Key), MaxKeyLength)
	}
	if !utf8.ValidString(t.Key) || strings.ContainsRune(t.Key, 0) {
		return t, apiErr("InvalidArgument", "the key is not valid UTF-8 or contains a NUL byte")
	}
	return t, nil
}

// checkBucketName accepts any name a top-level directory of the namespace
// can have.
func checkBucketName(b string) *Error {
	if b == "." || b == ".." || len(b) > maxBucketLength || !utf8.ValidString(b) || strings.ContainsAny(b, "\x00/") {
		return apiErr("InvalidBucketName", "%q is not a valid bucket name", truncate(b, 64))
	}
	return nil
}

// keyPath maps a bucket and a key to a namespace path. A key is a path below
// the bucket: it cannot have empty, "." or ".." elements, except that a final
// "/" marks a directory (dir is then true).
func keyPath(bucket, key string) (p string, dir bool, ok bool) {
	k, dir := strings.CutSuffix(key, "/")
	if k == "" {
		return "", dir, false
	}
	for el := range strings.SplitSeq(k, "/") {
		if el == "" || el == "." || el == ".." {
			return "", dir, false
		}
	}
	return "/" + bucket + "/" + k, dir, true
}

// operation names the S3 operation of a request, for dispatch and metrics.
// Unknown subresources and methods give "NotImplemented" and
// "MethodNotAllowed".
func operation(method string, t target, q query, h http.Header) string {
	switch {
	case t.Bucket == "":
		if method == http.MethodGet || method == http.MethodHead {
			return "ListBuckets"
		}
		return "MethodNotAllowed"
	case t.Key == "":
		return bucketOperation(method, q)
	}
	switch method {
	case http.MethodGet:
		switch {
		case q.Has("uploadId"):
			return "ListParts"
		case q.Has("acl"):
			return "GetObjectAcl"
		case hasAny(q, "tagging", "retention", "legal-hold", "attributes", "torrent", "versionId"):
			return "NotImplemented"
		}
		return "GetObject"
	case http.MethodHead:
		if q.Has("versionId") {
			return "NotImplemented"
		}
		return "HeadObject"
	case http.MethodPut:
		switch {
		case q.Has("partNumber") && q.Has("uploadId"):
			if h.Get("X-Amz-Copy-Source") != "" {
				return "UploadPartCopy"
			}
			return "UploadPart"
		case hasAny(q, "tagging", "acl", "retention", "legal-hold", "uploadId", "partNumber", "versionId"):
			return "NotImplemented"
		case h.Get("X-Amz-Copy-Source") != "":
			return "CopyObject"
		}
		return "PutObject"
	case http.MethodPost:
		switch {
		case q.Has("uploads"):
			return "CreateMultipartUpload"
		case q.Has("uploadId"):
			return "CompleteMultipartUpload"
		}
		return "NotImplemented"
	case http.MethodDelete:
		switch {
		case q.Has("uploadId"):
			return "AbortMultipartUpload"
		case hasAny(q, "tagging", "versionId"):
			return "NotImplemented"
		}
		return "DeleteObject"
	}
	return "MethodNotAllowed"
}

// bucketSubresources are the bucket subresources S3 has and Strata does not.
var bucketSubresources = []string{
	"accelerate", "analytics", "cors", "encryption", "intelligent-tiering", "inventory", "lifecycle",
	"logging", "metrics", "notification", "object-lock", "ownershipControls", "policy", "policyStatus",
	"publicAccessBlock", "replication", "requestPayment", "tagging", "versions", "website", "select",
}

func bucketOperation(method string, q query) string {
	switch method {
	case http.MethodGet:
		switch {
		case q.Has("location"):
			return "GetBucketLocation"
		case q.Has("uploads"):
			return "ListMultipartUploads"
		case q.Has("versioning"):
			return "GetBucketVersioning"
		case q.Has("acl"):
			return "GetBucketAcl"
		case hasAny(q, bucketSubresources...):
			return "NotImplemented"
		case q.Get("list-type") == "2":
			return "ListObjectsV2"
		}
		return "ListObjects"
	case http.MethodHead:
		return "HeadBucket"
	case http.MethodPost:
		if q.Has("delete") {
			return "DeleteObjects"
		}
		return "NotImplemented"
	case http.MethodPut:
		if len(q) == 0 {
			return "CreateBucket"
		}
		return "NotImplemented"
	case http.MethodDelete:
		if len(q) == 0 {
			return "DeleteBucket"
		}
		return "NotImplemented"
	}
	return "MethodNotAllowed"
}

func hasAny(q query, keys ...string) bool {
	for _, k := range keys {
		if q.Has(k) {
			return true
		}
	}
	return false
}

// readOnly reports whether an operation only reads (for anonymous "read").
func readOnly(op string) bool {
	switch op {
	case "ListBuckets", "HeadBucket", "GetBucketLocation", "GetBucketVersioning", "GetBucketAcl",
		"ListObjects", "ListObjectsV2", "ListMultipartUploads", "ListParts", "GetObject", "GetObjectAcl", "HeadObject":
		return true
	}
	return false
}

// truncate shortens s for messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
