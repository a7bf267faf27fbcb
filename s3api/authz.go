package s3api

import (
	"net/http"

	"github.com/stratafs/strata/conf"
)

// Authorization: after authentication, every request is checked against the
// buckets it touches. An access key of s3.access_keys may do everything; one
// of s3.keys has a level per bucket (none, read or write; "*" for the
// buckets not named); unsigned requests have s3.anonymous raised per bucket
// by s3.anonymous_buckets. Read-only operations (readOnly) need read on
// their bucket, all others write; CopyObject and UploadPartCopy also need
// read on the bucket of x-amz-copy-source. ListBuckets lists only the buckets
// the identity may read (canRead).

// perm is a permission level on a bucket, ordered: write implies read.
type perm uint8

const (
	permNone perm = iota
	permRead
	permWrite
)

func parsePerm(s string) perm {
	switch s {
	case conf.S3PermRead:
		return permRead
	case conf.S3PermWrite:
		return permWrite
	}
	return permNone
}

// needs is the level an operation needs on the bucket it addresses.
func needs(op string) perm {
	if readOnly(op) {
		return permRead
	}
	return permWrite
}

// copiesFrom reports whether an operation reads the object named by
// x-amz-copy-source.
func copiesFrom(op string) bool {
	return op == "CopyObject" || op == "UploadPartCopy"
}

// permission is id's level on bucket (a key's level on "" is write: the
// service-level operations are ListBuckets, which filters its answer, and
// MethodNotAllowed).
func (s *Server) permission(id identity, bucket string) perm {
	if id.AccessKey == "" {
		return parsePerm(s.cfg.AnonymousPermission(bucket))
	}
	k, ok := s.cfg.BucketKey(id.AccessKey)
	if !ok || bucket == "" {
		return permWrite // a key of s3.access_keys
	}
	return parsePerm(k.Permission(bucket))
}

// canRead reports whether id may read bucket (for ListBuckets).
func (s *Server) canRead(id identity, bucket string) bool {
	return s.permission(id, bucket) >= permRead
}

// authorize checks that id may do op on the bucket the request addresses
// (and, for copies, read the source bucket). It returns AccessDenied with a
// message that names the key id and bucket, never a secret or a UFS URI.
func (s *Server) authorize(r *http.Request, op string, id identity) *Error {
	if id.AccessKey != "" && len(s.cfg.BucketKeys) == 0 {
		return nil // every key may do everything
	}
	t, aerr := splitTarget(r.Host, r.URL.Path, s.domains)
	if aerr != nil {
		return aerr // serve has checked it already
	}
	need := needs(op)
	if s.permission(id, t.Bucket) < need {
		return s.denied(id, t.Bucket, need)
	}
	if copiesFrom(op) {
		bucket, _, aerr := parseCopySource(r.Header.Get("X-Amz-Copy-Source"))
		if aerr != nil {
			return aerr
		}
		if s.permission(id, bucket) < permRead {
			e := s.denied(id, bucket, permRead)
			e.Message += " (the copy source)"
			return e
		}
	}
	return nil
}

// denied is the AccessDenied error of id lacking need on bucket.
func (s *Server) denied(id identity, bucket string, need perm) *Error {
	what := "read"
	if need == permWrite {
		what = "write to"
	}
	if id.AccessKey != "" {
		return apiErr("AccessDenied", "access key %s may not %s bucket '%s'", id.AccessKey, what, truncate(bucket, 64))
	}
	switch {
	case s.cfg.Anonymous == conf.S3AnonymousOff && len(s.cfg.AnonymousBuckets) == 0:
		return apiErr("AccessDenied", "anonymous access is disabled; sign the request with an access key (AWS Signature Version 4)")
	case need == permWrite && s.permission(id, bucket) == permRead:
		return apiErr("AccessDenied", "anonymous requests may only read; sign the request with an access key")
	case bucket == "":
		return apiErr("AccessDenied", "anonymous requests may not list buckets; sign the request with an access key")
	}
	return apiErr("AccessDenied", "anonymous requests may not %s bucket '%s'; sign the request with an access key", what, truncate(bucket, 64))
}
