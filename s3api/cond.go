package s3api

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// byteRange is the satisfiable part [Start, Start+Length) of an object that
// a Range header selects.
type byteRange struct {
	Start, Length int64
}

// parseRange interprets a Range header for an object of size bytes. partial
// is false when the whole object is to be sent: no header, a header that is
// not a single well-formed byte range (S3 serves the object then, as RFC 9110
// allows), or a range that covers it all. It returns InvalidRange (with
// Content-Range "bytes */size") when the range starts at or past the end.
func parseRange(h string, size int64) (r byteRange, partial bool, err *Error) {
	whole := byteRange{0, size}
	unit, spec, ok := strings.Cut(strings.TrimSpace(h), "=")
	if h == "" || !ok || !strings.EqualFold(strings.TrimSpace(unit), "bytes") || strings.Contains(spec, ",") {
		return whole, false, nil
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return whole, false, nil
	}
	first, last = strings.TrimSpace(first), strings.TrimSpace(last)
	unsatisfiable := func() (byteRange, bool, *Error) {
		e := apiErr("InvalidRange", "")
		e.Header = http.Header{"Content-Range": {"bytes */" + strconv.FormatInt(size, 10)}}
		e.extra = append(e.extra, xmlField{"RangeRequested", truncate(h, 64)}, xmlField{"ActualObjectSize", strconv.FormatInt(size, 10)})
		return byteRange{}, false, e
	}
	if first == "" { // suffix range: the last n bytes
		n, ok := parseDigits(last)
		if !ok {
			return whole, false, nil
		}
		if n == 0 || size == 0 {
			return unsatisfiable()
		}
		n = min(n, size)
		r = byteRange{size - n, n}
	} else {
		start, ok := parseDigits(first)
		if !ok {
			return whole, false, nil
		}
		end := size - 1
		if last != "" {
			e, ok := parseDigits(last)
			if !ok || e < start {
				return whole, false, nil
			}
			end = min(e, size-1)
		}
		if start >= size {
			return unsatisfiable()
		}
		r = byteRange{start, end - start + 1}
	}
	return r, true, nil
}

// parseDigits parses a non-negative decimal that fits in an int64.
func parseDigits(s string) (int64, bool) {
	if s == "" || len(s) > 19 {
		return 0, false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// etagMatches reports whether an If-Match / If-None-Match list matches etag
// (unquoted). "*" matches any object; weak validators compare by their value.
func etagMatches(list, etag string) bool {
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "*" {
			return true
		}
		item = strings.TrimPrefix(item, "W/")
		if strings.Trim(item, `"`) == etag && etag != "" {
			return true
		}
	}
	return false
}

// checkConditions evaluates the conditional headers (or, with copySource,
// the x-amz-copy-source-if-* ones) in the order of RFC 9110
// §13.2.2 (which is S3's): If-Match, else If-Unmodified-Since, then
// If-None-Match, else If-Modified-Since. It returns nil to proceed,
// PreconditionFailed (412), or NotModified (304) — which copy-source
// conditions report as PreconditionFailed too. Unparsable dates are ignored.
func checkConditions(h http.Header, etag string, mod time.Time, copySource bool) *Error {
	prefix := ""
	if copySource {
		prefix = "X-Amz-Copy-Source-"
	}
	mod = mod.Truncate(time.Second)
	if v := h.Get(prefix + "If-Match"); v != "" {
		if !etagMatches(v, etag) {
			return apiErr("PreconditionFailed", "")
		}
	} else if t, err := http.ParseTime(h.Get(prefix + "If-Unmodified-Since")); err == nil && mod.After(t) {
		return apiErr("PreconditionFailed", "")
	}
	notModified := false
	if v := h.Get(prefix + "If-None-Match"); v != "" {
		notModified = etagMatches(v, etag)
	} else if t, err := http.ParseTime(h.Get(prefix + "If-Modified-Since")); err == nil && !mod.After(t) {
		notModified = true
	}
	switch {
	case !notModified:
		return nil
	case copySource:
		return apiErr("PreconditionFailed", "")
	}
	return apiErr("NotModified", "")
}
