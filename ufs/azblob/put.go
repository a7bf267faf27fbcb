package azblob

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"

	"github.com/stratafs/strata/ufs"
)

var (
	_ ufs.ConditionalPutter = (*FS)(nil)
	_ ufs.AttrStore         = (*FS)(nil)
)

// expiresKey is the metadata entry that holds Attrs.Expires: Azure has no
// Expires header of its own.
const expiresKey = "strata_expires"

// encodedPrefix starts the metadata names that encode a name Azure cannot
// carry (Azure metadata names are C# identifiers: no "-", no leading digit).
const encodedPrefix = "s3x_"

// Put uploads r as the block blob p (size < 0: unknown): blocks of the block
// size are staged, up to the configured concurrency at a time, and committed
// at the end; content smaller than one block goes up in one request. If r
// fails, or yields other than size bytes, the block list is not committed and
// nothing becomes visible at p. Safe for concurrent use. Returns ufs.ErrIsDir
// (the root), ufs.ErrPermission, ufs.ErrUnavailable; a reader error is
// returned wrapped.
func (fs *FS) Put(ctx context.Context, p string, r io.Reader, size int64) (ufs.FileInfo, error) {
	return fs.put(ctx, p, r, size, ufs.Condition{}, ufs.Attrs{})
}

// PutIf is Put with an access condition that Azure checks when the blob is
// committed: If-None-Match: * for cond.NoneMatch, If-Match for cond.Match (an
// ETag as Stat reports it). A refusal (412 ConditionNotMet, 409
// BlobAlreadyExists) is ufs.ErrPrecondition, wrapping ufs.ErrNotFound when
// cond.Match named a blob that does not exist. Safe for concurrent use.
func (fs *FS) PutIf(ctx context.Context, p string, r io.Reader, size int64, cond ufs.Condition) (ufs.FileInfo, error) {
	return fs.put(ctx, p, r, size, cond, ufs.Attrs{})
}

// PutAttrs is PutIf that stores attrs as the blob's HTTP headers
// (Content-Type, -Encoding, -Disposition, -Language, Cache-Control) and
// metadata (Expires as "strata_expires"; a user metadata name that is not a
// C# identifier is stored encoded, see metaName). Safe for concurrent use.
func (fs *FS) PutAttrs(ctx context.Context, p string, r io.Reader, size int64, cond ufs.Condition, attrs ufs.Attrs) (ufs.FileInfo, error) {
	return fs.put(ctx, p, r, size, cond, attrs)
}

// StatAttrs describes the blob p with its headers and metadata. Returns
// ufs.ErrIsDir (a directory or the root), and Stat's errors. Safe for
// concurrent use.
func (fs *FS) StatAttrs(ctx context.Context, p string) (ufs.FileInfo, ufs.Attrs, error) {
	p, err := fs.clean("stat", p)
	if err != nil {
		return ufs.FileInfo{}, ufs.Attrs{}, err
	}
	if p == "" {
		return ufs.FileInfo{}, ufs.Attrs{}, fs.fail("stat", p, ufs.ErrIsDir, "the mount root is a directory")
	}
	props, err := fs.blob(p).GetProperties(ctx, nil)
	if err != nil {
		if isNotFound(ctx, err) {
			if dir, derr := fs.hasChildren(ctx, fs.dirKey(p)); derr == nil && dir {
				return ufs.FileInfo{}, ufs.Attrs{}, fs.fail("stat", p, ufs.ErrIsDir, "")
			}
		}
		return ufs.FileInfo{}, ufs.Attrs{}, fs.mapErr(ctx, "stat", p, err)
	}
	if isFolder(props.Metadata) {
		return ufs.FileInfo{}, ufs.Attrs{}, fs.fail("stat", p, ufs.ErrIsDir, "a Data Lake folder")
	}
	fi := ufs.FileInfo{Path: p, Size: deref(props.ContentLength), ModTime: deref(props.LastModified), ETag: quoteETag(props.ETag)}
	a := ufs.Attrs{
		ContentType: deref(props.ContentType), ContentEncoding: deref(props.ContentEncoding),
		ContentDisposition: deref(props.ContentDisposition), ContentLanguage: deref(props.ContentLanguage),
		CacheControl: deref(props.CacheControl),
	}
	for k, v := range props.Metadata {
		k = strings.ToLower(k)
		if k == expiresKey {
			a.Expires = deref(v)
			continue
		}
		if a.Meta == nil {
			a.Meta = map[string]string{}
		}
		a.Meta[decodeMetaName(k)] = deref(v)
	}
	return fi, a, nil
}

// isIdent reports whether s is a lower-case C# identifier.
func isIdent(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || 'a' <= c && c <= 'z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}

// metaName is the Azure metadata name of a user metadata name: the name
// itself when it is a lower-case C# identifier that cannot be mistaken for
// another (Strata's own or Data Lake's), else "s3x_" followed by the name
// with "_" doubled and every byte other than a-z and 0-9 as "_" and two hex
// digits ("content-sha" → "s3x_content_2dsha").
func metaName(k string) string {
	if isIdent(k) && !strings.HasPrefix(k, encodedPrefix) && k != expiresKey && k != folderMetadata {
		return k
	}
	const hex = "0123456789abcdef"
	var b strings.Builder
	b.WriteString(encodedPrefix)
	for i := 0; i < len(k); i++ {
		switch c := k[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			b.WriteByte(c)
		case c == '_':
			b.WriteString("__")
		default:
			b.WriteByte('_')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// decodeMetaName reverses metaName; other names are returned as they are.
func decodeMetaName(k string) string {
	rest, ok := strings.CutPrefix(k, encodedPrefix)
	if !ok {
		return k
	}
	var b strings.Builder
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		switch {
		case c != '_':
			b.WriteByte(c)
		case i+1 < len(rest) && rest[i+1] == '_':
			b.WriteByte('_')
			i++
		case i+2 < len(rest):
			v, err := strconv.ParseUint(rest[i+1:i+3], 16, 8)
			if err != nil {
				return k // not ours after all
			}
			b.WriteByte(byte(v))
			i += 2
		default:
			return k
		}
	}
	return b.String()
}

// uploadOptions are the headers, metadata and conditions of a write.
func uploadOptions(cond ufs.Condition, a ufs.Attrs) *blockblob.UploadStreamOptions {
	o := &blockblob.UploadStreamOptions{}
	str := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	if !a.IsZero() {
		o.HTTPHeaders = &blob.HTTPHeaders{
			BlobContentType: str(a.ContentType), BlobContentEncoding: str(a.ContentEncoding),
			BlobContentDisposition: str(a.ContentDisposition), BlobContentLanguage: str(a.ContentLanguage),
			BlobCacheControl: str(a.CacheControl),
		}
	}
	if len(a.Meta) > 0 || a.Expires != "" {
		o.Metadata = make(map[string]*string, len(a.Meta)+1)
		for k, v := range a.Meta {
			o.Metadata[metaName(k)] = str(v)
		}
		if a.Expires != "" {
			o.Metadata[expiresKey] = str(a.Expires)
		}
	}
	switch {
	case cond.NoneMatch:
		star := azcore.ETagAny
		o.AccessConditions = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: &star}}
	case cond.Match != "":
		m := azcore.ETag(cond.Match)
		o.AccessConditions = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: &m}}
	}
	return o
}

func (fs *FS) put(ctx context.Context, p string, r io.Reader, size int64, cond ufs.Condition, attrs ufs.Attrs) (ufs.FileInfo, error) {
	p, err := fs.clean("put", p)
	if err != nil {
		return ufs.FileInfo{}, err
	}
	if p == "" {
		return ufs.FileInfo{}, fs.fail("put", p, ufs.ErrIsDir, "the mount root is a directory")
	}
	if cond.NoneMatch && cond.Match != "" {
		return ufs.FileInfo{}, fs.fail("put", p, ufs.ErrPrecondition, "If-None-Match: * and If-Match never hold together")
	}
	opts := uploadOptions(cond, attrs)
	opts.BlockSize, opts.Concurrency = fs.uploadBlockSize(size), fs.concurrency
	src := &exactReader{r: r, want: size}
	resp, err := fs.cont.NewBlockBlobClient(fs.key(p)).UploadStream(ctx, src, opts)
	if err != nil {
		if src.err != nil {
			return ufs.FileInfo{}, &opError{op: "put", uri: fs.uri(p), detail: "reading the source: " + src.err.Error(), cause: src.err, ctxErr: ctx.Err()}
		}
		if perr := fs.preconditionErr(ctx, p, cond, err); perr != nil {
			return ufs.FileInfo{}, perr
		}
		return ufs.FileInfo{}, fs.mapErr(ctx, "put", p, err)
	}
	return ufs.FileInfo{Path: p, Size: src.got, ModTime: deref(resp.LastModified), ETag: quoteETag(resp.ETag)}, nil
}

// preconditionErr returns the ufs.ErrPrecondition error of a write whose
// access condition Azure refused, or nil for another failure.
func (fs *FS) preconditionErr(ctx context.Context, p string, cond ufs.Condition, err error) error {
	c := classify(ctx, err)
	switch {
	case cond.IsZero():
		return nil
	case cond.Match != "" && c.kind == ufs.ErrNotFound:
		return &opError{op: "put", uri: fs.uri(p), kind: ufs.ErrPrecondition, detail: "the blob does not exist (If-Match " + cond.Match + ")", cause: ufs.ErrNotFound}
	case c.kind != ufs.ErrChanged && c.kind != ufs.ErrExist:
		return nil
	case cond.NoneMatch:
		return fs.fail("put", p, ufs.ErrPrecondition, "the blob exists (If-None-Match: *)")
	}
	if _, perr := fs.blob(p).GetProperties(ctx, nil); perr != nil && isNotFound(ctx, perr) {
		return &opError{op: "put", uri: fs.uri(p), kind: ufs.ErrPrecondition, detail: "the blob does not exist (If-Match " + cond.Match + ")", cause: ufs.ErrNotFound}
	}
	return fs.fail("put", p, ufs.ErrPrecondition, "the blob is not version "+cond.Match)
}

// uploadBlockSize is the block size for an upload of size bytes (< 0:
// unknown): the configured size, lowered for content that fits one block (a
// buffer just big enough: the reader must reach EOF inside the first block
// for a single-request upload), raised when the content would need more
// than the 50,000 blocks a blob may have.
func (fs *FS) uploadBlockSize(size int64) int64 {
	switch {
	case size >= 0 && size < fs.blockSize:
		return max(minBlockSize, size+1)
	case size > fs.blockSize*maxBlocks:
		return (size + maxBlocks - 1) / maxBlocks
	}
	return fs.blockSize
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
