package s3api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/ufs"
)

// Object attributes: the headers an S3 object is served with (Content-Type,
// Content-Encoding, Content-Disposition, Content-Language, Cache-Control,
// Expires) and its user metadata (x-amz-meta-*). PutObject,
// CreateMultipartUpload and CopyObject (x-amz-metadata-directive REPLACE)
// take them from the request and store them in the UFS with the object
// (client.CreateWith); GetObject and HeadObject return them. The workers'
// metadata caches do not hold them, so they are read from the UFS
// (client.StatAttrs) once per object version and kept in a bounded cache
// keyed by path and fingerprint.

// metaPrefix starts the headers of user metadata.
const metaPrefix = "X-Amz-Meta-"

// maxUserMetadata is S3's limit on the user metadata of one object: names
// (without the prefix) and values, in bytes.
const maxUserMetadata = 2048

// attrHeaders are the object headers kept with an object, in the order of
// ufs.Attrs.
var attrHeaders = []string{"Content-Type", "Content-Encoding", "Content-Disposition", "Content-Language", "Cache-Control", "Expires"}

// attrsFromHeaders reads the attributes of a new object from a request's
// headers. Content-Encoding loses the aws-chunked coding (a transfer detail
// of the request, not the object's). It returns MetadataTooLarge beyond
// S3's 2 KiB of user metadata.
func attrsFromHeaders(h http.Header) (ufs.Attrs, *Error) {
	var a ufs.Attrs
	a.ContentType = h.Get("Content-Type")
	if isDefaultContentType(a.ContentType) {
		a.ContentType = "" // guessed from the key when read, as MinIO does
	}
	a.ContentEncoding = contentEncoding(h.Get("Content-Encoding"))
	a.ContentDisposition = h.Get("Content-Disposition")
	a.ContentLanguage = h.Get("Content-Language")
	a.CacheControl = h.Get("Cache-Control")
	a.Expires = h.Get("Expires")
	for k, vs := range h {
		name, ok := strings.CutPrefix(k, metaPrefix)
		if !ok || name == "" {
			continue
		}
		if a.Meta == nil {
			a.Meta = map[string]string{}
		}
		a.Meta[strings.ToLower(name)] = strings.Join(vs, ",")
	}
	if n := a.Size(); n > maxUserMetadata {
		return a, apiErr("MetadataTooLarge", "the user metadata takes %d bytes; the limit is %d", n, maxUserMetadata)
	}
	return a, nil
}

// isDefaultContentType reports the Content-Type SDKs send when their caller
// gives none (aws-sdk-go-v2: application/octet-stream; S3's own default is
// binary/octet-stream): it says nothing about the object, and is not kept.
func isDefaultContentType(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == "application/octet-stream" || mt == "binary/octet-stream"
}

// contentEncoding drops aws-chunked from a Content-Encoding list.
func contentEncoding(v string) string {
	var keep []string
	for e := range strings.SplitSeq(v, ",") {
		if e = strings.TrimSpace(e); e != "" && !strings.EqualFold(e, "aws-chunked") {
			keep = append(keep, e)
		}
	}
	return strings.Join(keep, ",")
}

// setAttrHeaders puts an object's attributes on a GET or HEAD response;
// without a stored Content-Type (or with a default one, see
// isDefaultContentType), the type is guessed from the key.
func setAttrHeaders(h http.Header, a ufs.Attrs, key string) {
	ct := a.ContentType
	if ct == "" || isDefaultContentType(ct) {
		ct = contentType(key)
	}
	vals := []string{ct, a.ContentEncoding, a.ContentDisposition, a.ContentLanguage, a.CacheControl, a.Expires}
	for i, name := range attrHeaders {
		if vals[i] != "" {
			h.Set(name, vals[i])
		}
	}
	for k, v := range a.Meta {
		// Lower case, as S3 sends them (boto3 keeps the case it gets).
		h["x-amz-meta-"+strings.ToLower(k)] = []string{v}
	}
}

// attrCacheSize bounds the attribute cache (entries).
const attrCacheSize = 65536

// attrFailTTL is how long a failure to read an object's attributes (an
// unreachable UFS, a client without the mount's credentials) is remembered:
// reads of cached data go on meanwhile, served without them.
const attrFailTTL = 30 * time.Second

// attrLookupTimeout bounds one read of an object's attributes from the UFS.
const attrLookupTimeout = 10 * time.Second

type attrEntry struct {
	fp      string // fingerprint of the version
	attrs   ufs.Attrs
	expires time.Time // zero: valid for the version; else a failure's end
}

// attrCache remembers the attributes of object versions. Safe for
// concurrent use.
type attrCache struct {
	mu  sync.Mutex
	lru *simplelru.LRU[string, attrEntry]
}

func newAttrCache(size int) *attrCache {
	l, _ := simplelru.NewLRU[string, attrEntry](size, nil)
	return &attrCache{lru: l}
}

func (c *attrCache) get(p, fp string, now time.Time) (attrEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.lru.Get(p)
	if !ok || e.fp != fp || (!e.expires.IsZero() && now.After(e.expires)) {
		return attrEntry{}, false
	}
	return e, true
}

func (c *attrCache) put(p string, e attrEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Add(p, e)
}

// objectAttrs returns the attributes of the version of the file at p that
// fi describes. When the UFS holds another version now, it returns an error
// matching ufs.ErrChanged (the caller opens the file again); when the UFS
// cannot be asked, zero Attrs for a while (attrFailTTL).
func (s *Server) objectAttrs(ctx context.Context, p string, fi namespace.FileInfo) (ufs.Attrs, error) {
	fp := fi.UFS("").Fingerprint()
	now := time.Now()
	if e, ok := s.attrs.get(p, fp, now); ok {
		return e.attrs, nil
	}
	lctx, cancel := context.WithTimeout(ctx, attrLookupTimeout)
	defer cancel()
	cur, a, err := s.c.StatAttrs(lctx, p)
	switch {
	case err == nil && cur.UFS("").Fingerprint() != fp:
		return ufs.Attrs{}, errVersionGone
	case errors.Is(err, ufs.ErrNotFound), errors.Is(err, ufs.ErrIsDir):
		return ufs.Attrs{}, errVersionGone
	case err != nil && ctx.Err() != nil:
		return ufs.Attrs{}, err
	case err != nil:
		s.log.Debug("read object attributes; serving without them", "path", p, "err", err)
		s.attrs.put(p, attrEntry{fp: fp, expires: now.Add(attrFailTTL)})
		return ufs.Attrs{}, nil
	}
	s.attrs.put(p, attrEntry{fp: fp, attrs: a})
	return a, nil
}

// errVersionGone: the UFS no longer holds the version being served.
var errVersionGone = errors.Join(ufs.ErrChanged, errors.New("s3api: the object changed since its metadata was cached"))
