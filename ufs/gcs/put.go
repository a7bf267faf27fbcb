package gcs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"cloud.google.com/go/storage"

	"github.com/stratafs/strata/ufs"
)

var (
	_ ufs.ConditionalPutter = (*FS)(nil)
	_ ufs.AttrStore         = (*FS)(nil)
)

// expiresKey is the metadata entry that holds Attrs.Expires: GCS has no
// Expires field of its own.
const expiresKey = "strata-expires"

// Put uploads r as p (size < 0: unknown). Objects larger than the chunk size
// go up as a resumable upload in chunks; smaller ones in one request. If r
// fails, or yields other than size bytes, the upload is cancelled and nothing
// becomes visible at p. Safe for concurrent use. Returns ufs.ErrIsDir (the
// root), ufs.ErrPermission, ufs.ErrUnavailable; a reader error is returned
// wrapped.
func (fs *FS) Put(ctx context.Context, p string, r io.Reader, size int64) (ufs.FileInfo, error) {
	return fs.put(ctx, p, r, size, ufs.Condition{}, ufs.Attrs{})
}

// PutIf is Put with a generation precondition that GCS checks when the
// object is committed: DoesNotExist for cond.NoneMatch, GenerationMatch for
// cond.Match (a generation, as Stat reports it). A 412 is
// ufs.ErrPrecondition (wrapping ufs.ErrNotFound when cond.Match named an
// object that does not exist). Safe for concurrent use.
func (fs *FS) PutIf(ctx context.Context, p string, r io.Reader, size int64, cond ufs.Condition) (ufs.FileInfo, error) {
	return fs.put(ctx, p, r, size, cond, ufs.Attrs{})
}

// PutAttrs is PutIf that stores attrs in the object's Content-Type,
// Content-Encoding, Content-Disposition, Content-Language, Cache-Control and
// custom metadata (Expires as the metadata entry "strata-expires"). Safe for
// concurrent use.
func (fs *FS) PutAttrs(ctx context.Context, p string, r io.Reader, size int64, cond ufs.Condition, attrs ufs.Attrs) (ufs.FileInfo, error) {
	return fs.put(ctx, p, r, size, cond, attrs)
}

// StatAttrs describes the object p with its headers and custom metadata.
// Returns ufs.ErrIsDir (p is a directory or the root), and Stat's errors.
// Safe for concurrent use.
func (fs *FS) StatAttrs(ctx context.Context, p string) (ufs.FileInfo, ufs.Attrs, error) {
	p, err := fs.clean("stat", p)
	if err != nil {
		return ufs.FileInfo{}, ufs.Attrs{}, err
	}
	if p == "" {
		return ufs.FileInfo{}, ufs.Attrs{}, fs.fail("stat", p, ufs.ErrIsDir, "the mount root is a directory")
	}
	a, err := fs.bucket.Object(fs.key(p)).Attrs(ctx)
	if err != nil {
		if isNotFound(ctx, err) {
			if dir, derr := fs.hasChildren(ctx, fs.dirKey(p)); derr == nil && dir {
				return ufs.FileInfo{}, ufs.Attrs{}, fs.fail("stat", p, ufs.ErrIsDir, "")
			}
		}
		return ufs.FileInfo{}, ufs.Attrs{}, fs.mapErr(ctx, "stat", p, err)
	}
	return fileInfo(p, a), attrsOf(a), nil
}

// attrsOf reads Attrs from an object's attributes.
func attrsOf(a *storage.ObjectAttrs) ufs.Attrs {
	meta := ufs.LowerMeta(a.Metadata)
	exp := meta[expiresKey]
	delete(meta, expiresKey)
	if len(meta) == 0 {
		meta = nil
	}
	return ufs.Attrs{
		ContentType: a.ContentType, ContentEncoding: a.ContentEncoding, ContentDisposition: a.ContentDisposition,
		ContentLanguage: a.ContentLanguage, CacheControl: a.CacheControl, Expires: exp, Meta: meta,
	}
}

// setAttrs puts attrs on an object writer.
func setAttrs(w *storage.Writer, a ufs.Attrs) error {
	w.ContentType, w.ContentEncoding, w.ContentDisposition = a.ContentType, a.ContentEncoding, a.ContentDisposition
	w.ContentLanguage, w.CacheControl = a.ContentLanguage, a.CacheControl
	if len(a.Meta) == 0 && a.Expires == "" {
		return nil
	}
	if _, ok := a.Meta[expiresKey]; ok {
		return fmt.Errorf("%w: the metadata name %q is reserved for Expires", ufs.ErrNotSupported, expiresKey)
	}
	w.Metadata = make(map[string]string, len(a.Meta)+1)
	for k, v := range a.Meta {
		w.Metadata[k] = v
	}
	if a.Expires != "" {
		w.Metadata[expiresKey] = a.Expires
	}
	return nil
}

func (fs *FS) put(ctx context.Context, p string, r io.Reader, size int64, cond ufs.Condition, attrs ufs.Attrs) (ufs.FileInfo, error) {
	p, err := fs.clean("put", p)
	if err != nil {
		return ufs.FileInfo{}, err
	}
	if p == "" {
		return ufs.FileInfo{}, fs.fail("put", p, ufs.ErrIsDir, "the mount root is a directory")
	}
	obj := fs.bucket.Object(fs.key(p))
	switch {
	case cond.NoneMatch && cond.Match != "":
		return ufs.FileInfo{}, fs.fail("put", p, ufs.ErrPrecondition, "If-None-Match: * and If-Match never hold together")
	case cond.NoneMatch:
		obj = obj.If(storage.Conditions{DoesNotExist: true})
	case cond.Match != "":
		gen, perr := strconv.ParseInt(cond.Match, 10, 64)
		if perr != nil || gen <= 0 {
			// Not a generation: no object has it.
			return ufs.FileInfo{}, fs.fail("put", p, ufs.ErrPrecondition, fmt.Sprintf("%q is not a generation", cond.Match))
		}
		obj = obj.If(storage.Conditions{GenerationMatch: gen})
	default:
		// Overwriting an object with the same bytes is safe to repeat. (With
		// a precondition the library's own policy applies: it retries the
		// preconditioned calls, which are idempotent.)
		obj = obj.Retryer(storage.WithPolicy(storage.RetryAlways))
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := obj.NewWriter(wctx)
	w.ChunkSize = fs.chunkSize
	if size >= 0 && size < int64(fs.chunkSize) {
		// One request; a buffer just big enough (the reader must hit EOF
		// inside the first chunk for a single-request upload).
		w.ChunkSize = roundChunk(int(size) + 1)
	}
	if err := setAttrs(w, attrs); err != nil {
		return ufs.FileInfo{}, fs.fail("put", p, ufs.ErrNotSupported, err.Error())
	}
	src := &exactReader{r: r, want: size}
	if _, err := io.Copy(w, src); err != nil {
		cancel()
		_ = w.Close() // reports the cancellation; nothing was committed
		if src.err != nil {
			return ufs.FileInfo{}, &opError{op: "put", uri: fs.uri(p), detail: "reading the source: " + src.err.Error(), cause: src.err}
		}
		if perr := fs.preconditionErr(ctx, p, cond, err); perr != nil {
			return ufs.FileInfo{}, perr
		}
		return ufs.FileInfo{}, fs.mapErr(ctx, "put", p, err)
	}
	if err := w.Close(); err != nil {
		if perr := fs.preconditionErr(ctx, p, cond, err); perr != nil {
			return ufs.FileInfo{}, perr
		}
		return ufs.FileInfo{}, fs.mapErr(ctx, "put", p, err)
	}
	return fileInfo(p, w.Attrs()), nil
}

// preconditionErr returns the ufs.ErrPrecondition error of a write whose
// condition GCS refused (412), or nil for another failure.
func (fs *FS) preconditionErr(ctx context.Context, p string, cond ufs.Condition, err error) error {
	switch kind := classify(ctx, err).kind; {
	case cond.IsZero():
		return nil
	case cond.Match != "" && kind == ufs.ErrNotFound:
		return &opError{op: "put", uri: fs.uri(p), kind: ufs.ErrPrecondition, detail: "the object does not exist (If-Match " + cond.Match + ")", cause: ufs.ErrNotFound}
	case kind != ufs.ErrChanged:
		return nil
	}
	if cond.NoneMatch {
		return fs.fail("put", p, ufs.ErrPrecondition, "the object exists (If-None-Match: *)")
	}
	_, aerr := fs.bucket.Object(fs.key(p)).Attrs(ctx)
	if errors.Is(aerr, storage.ErrObjectNotExist) {
		return &opError{op: "put", uri: fs.uri(p), kind: ufs.ErrPrecondition, detail: "the object does not exist (If-Match " + cond.Match + ")", cause: ufs.ErrNotFound}
	}
	return fs.fail("put", p, ufs.ErrPrecondition, "the object is not generation "+cond.Match)
}

// exactReader passes r through and fails when it yields other than want bytes
// (want < 0: any count), so a short or long source aborts the upload.
type exactReader struct {
	r    io.Reader
	want int64
	got  int64
	err  error // the error this reader returned, if any
}

func (e *exactReader) Read(b []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.r.Read(b)
	e.got += int64(n)
	switch {
	case e.want >= 0 && e.got > e.want:
		err = fmt.Errorf("source yielded more than the declared %d bytes", e.want)
	case err == io.EOF && e.want >= 0 && e.got < e.want:
		err = fmt.Errorf("source ended after %d of %d bytes: %w", e.got, e.want, io.ErrUnexpectedEOF)
	case err == io.EOF:
		return n, err
	}
	if err != nil {
		e.err = err
	}
	return n, err
}
