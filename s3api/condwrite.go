package s3api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/ufs"
)

// Conditional writes: PutObject, CompleteMultipartUpload and CopyObject
// with If-None-Match: * (create only) or If-Match: <etag> (replace only that
// version). The condition is checked twice: against the namespace before
// the body is read (a refused request costs no upload, and a client waiting
// on Expect: 100-continue gets its 412 before sending the body), then by the
// UFS itself, atomically with the write (ufs.ConditionalPutter), so it holds
// against writers that bypass Strata.

// writeCond is the condition of a write request.
type writeCond struct {
	// noneMatch: If-None-Match: *.
	noneMatch bool
	// match: the ETag of If-Match, unquoted ("*": any existing object).
	match string
}

func (w writeCond) isZero() bool { return !w.noneMatch && w.match == "" }

// parseWriteCond reads If-None-Match and If-Match of a write. S3 accepts
// only "*" in If-None-Match on writes: other values are NotImplemented.
func parseWriteCond(h http.Header) (writeCond, *Error) {
	var w writeCond
	if v := strings.TrimSpace(h.Get("If-None-Match")); v != "" {
		if v != "*" {
			return w, apiErr("NotImplemented", "a write takes If-None-Match: * only (create the object if it does not exist)")
		}
		w.noneMatch = true
	}
	if v := strings.TrimSpace(h.Get("If-Match")); v != "" {
		if strings.Contains(v, ",") {
			return w, apiErr("NotImplemented", "a write takes a single ETag in If-Match")
		}
		w.match = strings.Trim(strings.TrimPrefix(v, "W/"), `"`)
		if w.match == "" {
			return w, apiErr("InvalidArgument", "If-Match is empty")
		}
	}
	return w, nil
}

// checkWriteCond checks a write's condition against the file at p as the
// UFS has it now, and returns the condition for the UFS to check again when
// it writes: PreconditionFailed (412) when it does not hold, NoSuchKey for
// If-Match of a missing key.
func (s *Server) checkWriteCond(ctx context.Context, p string, w writeCond) (ufs.Condition, error) {
	if w.isZero() {
		return ufs.Condition{}, nil
	}
	fi, err := s.c.Stat(ctx, p, true)
	exists := err == nil && !fi.IsDir
	switch {
	case err == nil, errors.Is(err, ufs.ErrNotFound), errors.Is(err, ufs.ErrNotDir), errors.Is(err, namespace.ErrInvalidPath):
	default:
		return ufs.Condition{}, err
	}
	var c ufs.Condition
	if w.noneMatch {
		if exists {
			return c, apiErr("PreconditionFailed", "the object exists (If-None-Match: *)")
		}
		c.NoneMatch = true
	}
	if w.match != "" {
		if !exists {
			return c, apiErr("NoSuchKey", "")
		}
		if w.match != "*" && strings.Trim(s3ETag(fi), `"`) != w.match {
			return c, apiErr("PreconditionFailed", "the object's ETag is %s (If-Match)", s3ETag(fi))
		}
		c.Match = fi.ETag
	}
	return c, nil
}

// writeErr translates the errors of a write with a condition and
// attributes: the UFS's refusal of the condition (ufs.ErrPrecondition), and
// a UFS that cannot make writes conditional or keep the attributes.
func writeErr(err error, w writeCond, a ufs.Attrs) error {
	var e *Error
	switch {
	case w.match != "" && errors.Is(err, ufs.ErrPrecondition) && errors.Is(err, ufs.ErrNotFound):
		e = apiErr("NoSuchKey", "")
	case errors.Is(err, ufs.ErrPrecondition):
		e = apiErr("PreconditionFailed", "")
	case !errors.Is(err, ufs.ErrNotSupported):
		return err
	case !w.isZero() && a.OnlyContentType():
		e = apiErr("NotImplemented", "the under-storage of this bucket cannot make a write conditional; send it without If-Match / If-None-Match")
	case w.isZero() && !a.OnlyContentType():
		e = apiErr("NotImplemented", "the under-storage of this bucket cannot store this object's metadata (x-amz-meta-*, Content-Encoding, Content-Disposition, Content-Language, Cache-Control, Expires); see docs/s3-api.md")
	case !w.isZero():
		e = apiErr("NotImplemented", "the under-storage of this bucket cannot make this write conditional or store its metadata; see docs/s3-api.md")
	default:
		return err
	}
	e.err = err
	return e
}
