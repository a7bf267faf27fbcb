package s3api

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/ufs"
)

// emptyMD5 is the ETag of an empty object.
const emptyMD5 = "d41d8cd98f00b204e9800998ecf8427e"

// maxDeleteObjects is S3's limit on the keys of one DeleteObjects.
const maxDeleteObjects = 1000

// s3ETag is the quoted S3 ETag of a namespace file: its under-storage ETag
// when that has the form of an S3 ETag (the MD5 of an object stored in one
// piece, "md5-of-md5s-N" of a multipart one) or at least carries a "-" (a
// file system's version stamp); else — a GCS generation, an Azure ETag, one
// with characters an ETag cannot carry — a hash of the version with "-1"
// after it. Clients (s3cmd, rclone) take an ETag without "-" for the MD5 of
// the content and check it: only an MD5 may look like one.
func s3ETag(fi namespace.FileInfo) string {
	e := fi.ETag
	unsafe := strings.IndexFunc(e, func(r rune) bool { return r <= ' ' || r > '~' || r == '"' }) >= 0
	if e == "" || unsafe || (!strings.Contains(e, "-") && !isMD5Hex(e)) {
		sum := md5.Sum([]byte(fi.ETag + "\x00" + strconv.FormatInt(fi.Size, 10) + "\x00" + strconv.FormatInt(fi.ModTime.UnixNano(), 10)))
		e = hex.EncodeToString(sum[:]) + "-1"
	}
	return `"` + e + `"`
}

// isMD5Hex reports whether s is 32 hex digits.
func isMD5Hex(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// contentType guesses a key's media type from its extension.
func contentType(key string) string {
	if t := mime.TypeByExtension(path.Ext(key)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// lastModified is the HTTP date of a modification time.
func lastModified(t time.Time) string {
	if t.IsZero() {
		t = time.Unix(0, 0)
	}
	return t.UTC().Format(http.TimeFormat)
}

// responseOverrides are the query parameters of GetObject that set response
// headers.
var responseOverrides = map[string]string{
	"response-content-type":        "Content-Type",
	"response-content-language":    "Content-Language",
	"response-expires":             "Expires",
	"response-cache-control":       "Cache-Control",
	"response-content-disposition": "Content-Disposition",
	"response-content-encoding":    "Content-Encoding",
}

// getObject serves GetObject and HeadObject: conditional headers, a single
// Range, and the body streamed from the cluster in bounded buffers (or, when
// a worker in this process holds the whole file on disk, handed to the
// kernel with sendfile).
func (s *Server) getObject(ctx context.Context, rq *request) error {
	p, dir, err := s.objectPath(ctx, rq, false)
	if err != nil {
		return err
	}
	if dir {
		return s.getDirMarker(ctx, rq, p)
	}
	f, err := s.c.Open(ctx, p, false)
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		err := s.sendObject(ctx, rq, f)
		if attempt < getAttempts && errors.Is(err, ufs.ErrChanged) && rq.w.status == 0 {
			// The object changed since the metadata cache saw it (or
			// while it was read, before any byte went out): look again
			// in the UFS itself.
			if f, err = s.c.Open(ctx, p, true); err != nil {
				return err
			}
			continue
		}
		return err
	}
}

// getAttempts bounds the opens of one GET whose object keeps changing under
// it: each later one reads the UFS's metadata, not the cache's.
const getAttempts = 3

// sendObject answers a GET or HEAD of the version of the file f has open.
func (s *Server) sendObject(ctx context.Context, rq *request, f *client.File) error {
	r, h := rq.r, rq.w.Header()
	info := f.Info()
	etag := s3ETag(info)
	h.Set("ETag", etag)
	h.Set("Last-Modified", lastModified(info.ModTime))
	if err := checkConditions(r.Header, strings.Trim(etag, `"`), info.ModTime, false); err != nil {
		return err
	}
	rng, partial, aerr := parseRange(r.Header.Get("Range"), info.Size)
	if aerr != nil {
		return aerr
	}
	if pn := rq.q.Get("partNumber"); pn != "" {
		n, ok := parseDigits(pn)
		switch {
		case !ok || n < 1 || n > maxParts:
			return apiErr("InvalidArgument", "partNumber must be an integer between 1 and %d", maxParts)
		case n != 1:
			return apiErr("InvalidPartNumber", "")
		case r.Header.Get("Range") != "":
			return apiErr("InvalidRequest", "cannot specify both Range and partNumber")
		}
		h.Set("X-Amz-Mp-Parts-Count", "1")
	}
	attrs, err := s.objectAttrs(ctx, info.Path, info)
	if err != nil {
		return err
	}
	setAttrHeaders(h, attrs, rq.t.Key)
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Length", strconv.FormatInt(rng.Length, 10))
	for q, header := range responseOverrides {
		if v := rq.q.Get(q); v != "" {
			h.Set(header, v)
		}
	}
	status := http.StatusOK
	if partial {
		status = http.StatusPartialContent
		h.Set("Content-Range", "bytes "+strconv.FormatInt(rng.Start, 10)+"-"+strconv.FormatInt(rng.Start+rng.Length-1, 10)+"/"+strconv.FormatInt(info.Size, 10))
	}
	if r.Method == http.MethodHead || rng.Length == 0 {
		rq.w.WriteHeader(status)
		return nil
	}
	if file, release, ok := f.OpenLocal(); ok {
		defer release()
		if _, err := file.Seek(rng.Start, io.SeekStart); err == nil {
			rq.w.WriteHeader(status)
			_, err = io.Copy(rq.w, io.LimitReader(file, rng.Length))
			return err
		}
	}
	st := newObjectStream(ctx, f, s.bufs, rng.Start, rng.Length)
	defer st.Close()
	if err := st.Prime(); err != nil {
		return err
	}
	rq.w.WriteHeader(status)
	_, err = st.WriteTo(rq.w)
	return err
}

// getDirMarker answers a GET or HEAD of "dir/": an empty object when the
// directory exists.
func (s *Server) getDirMarker(ctx context.Context, rq *request, p string) error {
	fi, err := s.c.Stat(ctx, p, false)
	if err != nil {
		return err
	}
	if !fi.IsDir {
		return apiErr("NoSuchKey", "")
	}
	h := rq.w.Header()
	h.Set("ETag", `"`+emptyMD5+`"`)
	h.Set("Last-Modified", lastModified(fi.ModTime))
	if err := checkConditions(rq.r.Header, emptyMD5, fi.ModTime, false); err != nil {
		return err
	}
	h.Set("Content-Type", "application/x-directory")
	h.Set("Content-Length", "0")
	rq.w.WriteHeader(http.StatusOK)
	return nil
}

// putObject streams the body through its checks into client.CreateWith,
// with the request's condition and attributes: the under-storage shows the
// object only when the whole body arrived intact (and the condition held).
// Everything that can refuse the request is checked before the body is
// read. The ETag answered is the one the UFS stored, which GET and HEAD
// serve afterwards.
func (s *Server) putObject(ctx context.Context, rq *request) error {
	p, dir, err := s.objectPath(ctx, rq, true)
	if err != nil {
		return err
	}
	size, aerr := bodySize(rq.r, rq.id)
	if aerr != nil {
		return aerr
	}
	if size > int64(s.cfg.MaxObjectSize) {
		return apiErr("EntityTooLarge", "the object is %d bytes; the limit is %d", size, int64(s.cfg.MaxObjectSize))
	}
	wc, aerr := parseWriteCond(rq.r.Header)
	if aerr != nil {
		return aerr
	}
	attrs, aerr := attrsFromHeaders(rq.r.Header)
	if aerr != nil {
		return aerr
	}
	if aerr := checkExpires(attrs); aerr != nil {
		return aerr
	}
	h := rq.w.Header()
	if dir {
		if size != 0 {
			return apiErr("InvalidArgument", "a key ending in '/' names a directory; it cannot hold data")
		}
		if err := s.checkDirCond(ctx, p, wc); err != nil {
			return err
		}
		body, aerr := newPayload(rq.r, rq.id, size)
		if aerr != nil {
			return aerr
		}
		if _, err := io.Copy(io.Discard, body); err != nil {
			return err
		}
		if err := s.c.Mkdir(ctx, p); err != nil {
			return err
		}
		h.Set("ETag", `"`+emptyMD5+`"`)
		rq.w.WriteHeader(http.StatusOK)
		return nil
	}
	cond, err := s.checkWriteCond(ctx, p, wc)
	if err != nil {
		return err
	}
	body, aerr := newPayload(rq.r, rq.id, size)
	if aerr != nil {
		return aerr
	}
	fi, err := s.create(ctx, p, body, size, client.CreateOptions{Cond: cond, Attrs: attrs})
	if err != nil {
		return writeErr(err, wc, attrs)
	}
	h.Set("ETag", s3ETag(fi))
	if name, v := body.Checksum(); name != "" {
		h.Set(name, v)
	}
	rq.w.WriteHeader(http.StatusOK)
	return nil
}

// checkExpires refuses an Expires header that is not an HTTP date (the
// stores keep a date).
func checkExpires(a ufs.Attrs) *Error {
	if a.Expires == "" {
		return nil
	}
	if _, err := http.ParseTime(a.Expires); err != nil {
		return apiErr("InvalidArgument", "Expires %q is not an HTTP date", truncate(a.Expires, 64))
	}
	return nil
}

// checkDirCond checks the condition of a write of the directory marker p
// ("dir/"), whose ETag is that of an empty object.
func (s *Server) checkDirCond(ctx context.Context, p string, wc writeCond) error {
	if wc.isZero() {
		return nil
	}
	fi, err := s.c.Stat(ctx, p, true)
	if err != nil && !errors.Is(err, ufs.ErrNotFound) && !errors.Is(err, ufs.ErrNotDir) {
		return err
	}
	exists := err == nil && fi.IsDir
	switch {
	case wc.noneMatch && exists:
		return apiErr("PreconditionFailed", "the directory exists (If-None-Match: *)")
	case wc.match != "" && !exists:
		return apiErr("NoSuchKey", "")
	case wc.match != "" && wc.match != "*" && wc.match != emptyMD5:
		return apiErr("PreconditionFailed", "")
	}
	return nil
}

// create writes a checked body as the file at p. A failed check of the body
// is the error reported (the under-storage has not published anything).
func (s *Server) create(ctx context.Context, p string, body *payload, size int64, opts client.CreateOptions) (namespace.FileInfo, error) {
	fi, err := s.c.CreateWith(ctx, p, body, size, opts)
	if berr := body.Err(); berr != nil {
		return fi, berr
	}
	if err != nil {
		return fi, err
	}
	if !body.done {
		// The store stopped reading at the declared size; finish the checks
		// now and take the object back if they fail.
		if _, berr := io.Copy(io.Discard, body); berr != nil {
			if rerr := s.c.Remove(context.WithoutCancel(ctx), p, false); rerr != nil {
				s.log.Warn("remove an object whose body failed its checks", "path", p, "err", rerr)
			}
			return fi, berr
		}
	}
	return fi, nil
}

// parseCopySource splits x-amz-copy-source ("[/]bucket/key[?versionId=v]",
// URL-encoded).
func parseCopySource(v string) (bucket, key string, err *Error) {
	raw, version, _ := strings.Cut(v, "?")
	if version != "" {
		vid, _ := strings.CutPrefix(version, "versionId=")
		if vid != "null" && vid != "" {
			return "", "", apiErr("NotImplemented", "Strata does not keep object versions; x-amz-copy-source cannot name a versionId")
		}
	}
	dec, uerr := url.PathUnescape(raw)
	if uerr != nil {
		return "", "", apiErr("InvalidArgument", "x-amz-copy-source is not URL-encoded correctly")
	}
	dec = strings.TrimPrefix(dec, "/")
	bucket, key, ok := strings.Cut(dec, "/")
	if !ok || bucket == "" || key == "" {
		return "", "", apiErr("InvalidArgument", "x-amz-copy-source must be bucket/key")
	}
	if e := checkBucketName(bucket); e != nil {
		return "", "", e
	}
	if len(key) > MaxKeyLength {
		return "", "", apiErr("KeyTooLongError", "")
	}
	return bucket, key, nil
}

// openCopySource opens the object named by x-amz-copy-source and checks the
// x-amz-copy-source-if-* conditions.
func (s *Server) openCopySource(ctx context.Context, rq *request) (*client.File, error) {
	bucket, key, aerr := parseCopySource(rq.r.Header.Get("X-Amz-Copy-Source"))
	if aerr != nil {
		return nil, aerr
	}
	src := &request{r: rq.r, t: target{Bucket: bucket, Key: key}}
	sp, dir, err := s.objectPath(ctx, src, false)
	if err != nil {
		return nil, err
	}
	if dir {
		return nil, apiErr("NoSuchKey", "the copy source %s/%s is a directory", bucket, truncate(key, 128))
	}
	f, err := s.c.Open(ctx, sp, false)
	if err != nil {
		return nil, toAPIError(err, opRead)
	}
	info := f.Info()
	if aerr := checkConditions(rq.r.Header, strings.Trim(s3ETag(info), `"`), info.ModTime, true); aerr != nil {
		return nil, aerr
	}
	return f, nil
}

// copyObject copies through the cluster: the source streams from the cache
// into client.CreateWith of the destination, with the source's attributes
// (x-amz-metadata-directive COPY, the default) or the request's (REPLACE),
// under the request's If-None-Match / If-Match on the destination.
func (s *Server) copyObject(ctx context.Context, rq *request) error {
	dp, dir, err := s.objectPath(ctx, rq, true)
	if err != nil {
		return err
	}
	if dir {
		return apiErr("InvalidArgument", "a key ending in '/' names a directory; it cannot be a copy destination")
	}
	wc, aerr := parseWriteCond(rq.r.Header)
	if aerr != nil {
		return aerr
	}
	replace := false
	switch d := rq.r.Header.Get("X-Amz-Metadata-Directive"); {
	case d == "" || strings.EqualFold(d, "COPY"):
	case strings.EqualFold(d, "REPLACE"):
		replace = true
	default:
		return apiErr("InvalidArgument", "x-amz-metadata-directive must be COPY or REPLACE")
	}
	f, err := s.openCopySource(ctx, rq)
	if err != nil {
		return err
	}
	info := f.Info()
	if info.Size > int64(s.cfg.MaxObjectSize) {
		return apiErr("EntityTooLarge", "")
	}
	var attrs ufs.Attrs
	if replace {
		if attrs, aerr = attrsFromHeaders(rq.r.Header); aerr != nil {
			return aerr
		}
		if aerr := checkExpires(attrs); aerr != nil {
			return aerr
		}
	} else if attrs, err = s.sourceAttrs(ctx, info); err != nil {
		return err
	}
	self := info.Path == dp
	if self && !replace {
		return apiErr("InvalidRequest", "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
	}
	cond, err := s.checkWriteCond(ctx, dp, wc)
	if err != nil {
		return err
	}
	guarded := false
	if self && cond.IsZero() {
		// Rewriting an object with new metadata: only the version read.
		cond, guarded = ufs.Condition{Match: info.ETag}, true
	}
	return s.longOp(rq, func() (any, error) {
		st := newObjectStream(ctx, f, s.bufs, 0, info.Size)
		defer st.Close()
		fi, err := s.c.CreateWith(ctx, dp, st, info.Size, client.CreateOptions{Cond: cond, Attrs: attrs})
		if guarded && errors.Is(err, ufs.ErrPrecondition) {
			e := apiErr("OperationAborted", "the object changed while its metadata was replaced; try again")
			e.err = err
			return nil, e
		}
		if err != nil {
			return nil, writeErr(err, wc, attrs)
		}
		return copyObjectResult{NS: s3NS, ETag: s3ETag(fi), LastModified: isoTime(fi.ModTime)}, nil
	})
}

// sourceAttrs are the attributes of the version of a copy source that info
// describes; unlike a GET, a copy fails when they cannot be read, rather
// than drop them.
func (s *Server) sourceAttrs(ctx context.Context, info namespace.FileInfo) (ufs.Attrs, error) {
	fp := info.UFS("").Fingerprint()
	if e, ok := s.attrs.get(info.Path, fp, time.Now()); ok && e.expires.IsZero() {
		return e.attrs, nil
	}
	cur, a, err := s.c.StatAttrs(ctx, info.Path)
	switch {
	case errors.Is(err, ufs.ErrNotFound), err == nil && cur.UFS("").Fingerprint() != fp:
		e := apiErr("OperationAborted", "the copy source changed while it was being copied; try again")
		e.err = errVersionGone
		return ufs.Attrs{}, e
	case err != nil:
		return ufs.Attrs{}, err
	}
	s.attrs.put(info.Path, attrEntry{fp: fp, attrs: a})
	return a, nil
}

// deleteKey deletes one key; a missing key, or one that names a directory,
// is not an error (S3 deletes are idempotent). "dir/" removes an empty
// directory.
func (s *Server) deleteKey(ctx context.Context, bucket, key string) error {
	p, dir, ok := keyPath(bucket, key)
	if !ok {
		return nil
	}
	fi, err := s.c.Stat(ctx, p, true)
	switch {
	case errors.Is(err, ufs.ErrNotFound), errors.Is(err, ufs.ErrNotDir), errors.Is(err, namespace.ErrInvalidPath):
		return nil
	case err != nil:
		return err
	case fi.IsDir != dir, fi.MountPoint, fi.Virtual:
		return nil
	}
	err = s.c.Remove(ctx, p, false)
	if errors.Is(err, ufs.ErrNotFound) || errors.Is(err, ufs.ErrNotEmpty) {
		return nil
	}
	return err
}

func (s *Server) deleteObject(ctx context.Context, rq *request) error {
	if _, err := s.bucketPath(ctx, rq); err != nil {
		return err
	}
	if err := s.deleteKey(ctx, rq.t.Bucket, rq.t.Key); err != nil {
		return err
	}
	rq.w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteObjects deletes up to 1000 keys, a few at a time.
func (s *Server) deleteObjects(ctx context.Context, rq *request) error {
	if _, err := s.bucketPath(ctx, rq); err != nil {
		return err
	}
	var req deleteRequest
	if err := s.readXML(rq, &req); err != nil {
		return err
	}
	if len(req.Objects) == 0 || len(req.Objects) > maxDeleteObjects {
		return apiErr("MalformedXML", "a Delete request names 1 to %d objects", maxDeleteObjects)
	}
	errs := make([]error, len(req.Objects))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, o := range req.Objects {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			switch {
			case o.VersionID != "" && o.VersionID != "null":
				errs[i] = apiErr("NotImplemented", "Strata does not keep object versions")
			case len(o.Key) > MaxKeyLength:
				errs[i] = apiErr("KeyTooLongError", "")
			default:
				errs[i] = s.deleteKey(ctx, rq.t.Bucket, o.Key)
			}
		})
	}
	wg.Wait()
	res := deleteResult{NS: s3NS}
	for i, o := range req.Objects {
		if errs[i] != nil {
			e := toAPIError(errs[i], opWrite)
			res.Errors = append(res.Errors, deleteErrorResult{Key: o.Key, Code: e.Code, Message: e.Message})
		} else if !req.Quiet {
			res.Deleted = append(res.Deleted, deletedResult{Key: o.Key})
		}
	}
	return s.writeXML(rq, res)
}
