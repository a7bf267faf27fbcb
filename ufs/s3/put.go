package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/stratafs/strata/ufs"
)

var (
	_ ufs.ConditionalPutter = (*FS)(nil)
	_ ufs.AttrStore         = (*FS)(nil)
)

// Put stores r at p. Up to s3.part_size bytes go in one PutObject from a
// buffer the size of the data; larger or longer streams go through the SDK's
// multipart uploader (parts of s3.part_size, or more when a known size needs
// it to stay within 10,000 parts; an unknown size is limited to 10,000
// parts). A reader that fails, a stream shorter or longer than a known size,
// or a cancelled ctx leave nothing at p: no PutObject is sent, or the
// multipart upload is aborted (an abort that fails is reported in the error,
// and the upload is left to AbortStaleUploads). The returned FileInfo comes
// from a HeadObject of the version written (If-Match its ETag, or a plain
// one when the store's HEAD reports another ETag). Put does not
// look for a directory at p: an object store lets a key sit beside a prefix
// of the same name. Returns ErrIsDir (the root), ErrPermission, ErrNotFound
// (missing bucket), ErrUnavailable; a reader's own error is wrapped as is.
// Safe for concurrent use.
func (f *FS) Put(ctx context.Context, p string, r io.Reader, size int64) (ufs.FileInfo, error) {
	return f.put(ctx, p, r, size, ufs.Condition{}, ufs.Attrs{})
}

// PutIf is Put with S3's conditional writes: If-None-Match: * or If-Match on
// the PutObject, or on the CompleteMultipartUpload of a multipart upload, so
// the condition is checked by the store when the object becomes visible. A
// 412, a 409 ConditionalRequestConflict, or (If-Match) a missing key is
// ErrPrecondition; a missing key wraps ErrNotFound too. Safe for concurrent
// use.
func (f *FS) PutIf(ctx context.Context, p string, r io.Reader, size int64, cond ufs.Condition) (ufs.FileInfo, error) {
	return f.put(ctx, p, r, size, cond, ufs.Attrs{})
}

// PutAttrs is PutIf that stores attrs as the object's Content-Type,
// Content-Encoding, Content-Disposition, Content-Language, Cache-Control,
// Expires (an HTTP date; ErrNotSupported otherwise) and x-amz-meta-*
// metadata. Safe for concurrent use.
func (f *FS) PutAttrs(ctx context.Context, p string, r io.Reader, size int64, cond ufs.Condition, attrs ufs.Attrs) (ufs.FileInfo, error) {
	return f.put(ctx, p, r, size, cond, attrs)
}

// StatAttrs is a HeadObject of the file p with its headers and metadata.
// Returns ErrIsDir (p is a directory), and Stat's errors. Safe for concurrent
// use.
func (f *FS) StatAttrs(ctx context.Context, p string) (ufs.FileInfo, ufs.Attrs, error) {
	if err := f.begin(ctx, "stat", p); err != nil {
		return ufs.FileInfo{}, ufs.Attrs{}, err
	}
	if p == "" {
		return ufs.FileInfo{}, ufs.Attrs{}, fmt.Errorf("s3: stat %q: %w: the mount root", f.uri(p), ufs.ErrIsDir)
	}
	out, err := f.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &f.bucket, Key: aws.String(f.key(p))})
	if err != nil {
		return ufs.FileInfo{}, ufs.Attrs{}, f.missing(ctx, "stat", p, "", err)
	}
	fi := ufs.FileInfo{Path: p, Size: aws.ToInt64(out.ContentLength), ModTime: modTime(out.LastModified), ETag: etag(out.ETag)}
	a := ufs.Attrs{
		ContentType: aws.ToString(out.ContentType), ContentEncoding: aws.ToString(out.ContentEncoding),
		ContentDisposition: aws.ToString(out.ContentDisposition), ContentLanguage: aws.ToString(out.ContentLanguage),
		CacheControl: aws.ToString(out.CacheControl), Expires: aws.ToString(out.ExpiresString),
		Meta: ufs.LowerMeta(out.Metadata),
	}
	return fi, a, nil
}

// setAttrs puts attrs on a PutObject (the uploader copies them to its
// CreateMultipartUpload).
func setAttrs(in *awss3.PutObjectInput, a ufs.Attrs) error {
	str := func(s string) *string {
		if s == "" {
			return nil
		}
		return aws.String(s)
	}
	in.ContentType, in.ContentEncoding = str(a.ContentType), str(a.ContentEncoding)
	in.ContentDisposition, in.ContentLanguage = str(a.ContentDisposition), str(a.ContentLanguage)
	in.CacheControl = str(a.CacheControl)
	if a.Expires != "" {
		t, err := http.ParseTime(a.Expires)
		if err != nil {
			return fmt.Errorf("%w: Expires %q is not an HTTP date", ufs.ErrNotSupported, a.Expires)
		}
		in.Expires = aws.Time(t)
	}
	if len(a.Meta) > 0 {
		in.Metadata = a.Meta
	}
	return nil
}

func (f *FS) put(ctx context.Context, p string, r io.Reader, size int64, cond ufs.Condition, attrs ufs.Attrs) (ufs.FileInfo, error) {
	if err := f.begin(ctx, "put", p); err != nil {
		return ufs.FileInfo{}, err
	}
	if p == "" {
		return ufs.FileInfo{}, fmt.Errorf("s3: put %q: %w: the mount root", f.uri(p), ufs.ErrIsDir)
	}
	if cond.NoneMatch && cond.Match != "" {
		return ufs.FileInfo{}, fmt.Errorf("s3: put %q: %w: If-None-Match: * and If-Match never hold together", f.uri(p), ufs.ErrPrecondition)
	}
	f.startSweeper() // a writer cleans up after the dead ones
	in := &awss3.PutObjectInput{Bucket: &f.bucket, Key: aws.String(f.key(p))}
	if err := setAttrs(in, attrs); err != nil {
		return ufs.FileInfo{}, fmt.Errorf("s3: put %q: %w", f.uri(p), err)
	}
	if cond.NoneMatch {
		in.IfNoneMatch = aws.String("*")
	}
	if cond.Match != "" {
		in.IfMatch = quote(cond.Match)
	}
	src := &sizedReader{ctx: ctx, r: r, want: size}
	var (
		tag string
		err error
	)
	if size >= 0 && size > f.partSize {
		tag, err = f.upload(ctx, in, src, max(f.partSize, (size+maxParts-1)/maxParts))
	} else {
		var head []byte
		var whole bool
		head, whole, err = readHead(src, size, f.partSize)
		switch {
		case err != nil:
		case whole:
			in.Body, in.ContentLength = bytes.NewReader(head), aws.Int64(int64(len(head)))
			var out *awss3.PutObjectOutput
			if out, err = f.client.PutObject(ctx, in); err == nil {
				tag = etag(out.ETag)
			}
		default:
			tag, err = f.upload(ctx, in, io.MultiReader(bytes.NewReader(head), src), f.partSize)
		}
	}
	if err != nil {
		if src.err != nil {
			return ufs.FileInfo{}, fmt.Errorf("s3: put %q: reading the data: %w", f.uri(p), src.err)
		}
		if !cond.IsZero() {
			if perr := f.preconditionErr(ctx, p, cond, err); perr != nil {
				return ufs.FileInfo{}, perr
			}
		}
		return ufs.FileInfo{}, f.mapErr("put", p, err)
	}
	fi, err := f.head(ctx, "put", p, tag)
	if errors.Is(err, ufs.ErrChanged) {
		// Overwritten or deleted since, or a store whose HEAD reports
		// another ETag than its PUT did: what HEAD says now, else what
		// this Put wrote, but for its time (the fingerprint of a version
		// gone no longer matters).
		if fi, err = f.head(ctx, "put", p, ""); err != nil {
			return ufs.FileInfo{Path: p, Size: src.n, ModTime: time.Now().UTC().Truncate(time.Second), ETag: tag}, nil
		}
	}
	return fi, err
}

// preconditionErr returns the ErrPrecondition error of a conditional write
// that S3 refused for its condition (nil when err is another failure).
func (f *FS) preconditionErr(ctx context.Context, p string, cond ufs.Condition, err error) error {
	var ae smithy.APIError
	conflict := errors.As(err, &ae) && ae.ErrorCode() == "ConditionalRequestConflict"
	s, _ := classify(err, f.bucket)
	switch {
	case s == ufs.ErrChanged, conflict:
	case cond.Match != "" && isNotFound(err, f.bucket):
		return fmt.Errorf("s3: put %q: %w: %w: If-Match %s", f.uri(p), ufs.ErrPrecondition, ufs.ErrNotFound, cond.Match)
	default:
		return nil
	}
	if cond.Match != "" {
		// Some servers answer 412 rather than 404 to If-Match of a missing
		// key; say which it was.
		if _, herr := f.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &f.bucket, Key: aws.String(f.key(p))}); isNotFound(herr, f.bucket) {
			return fmt.Errorf("s3: put %q: %w: %w: If-Match %s", f.uri(p), ufs.ErrPrecondition, ufs.ErrNotFound, cond.Match)
		}
		return fmt.Errorf("s3: put %q: %w: the object is not version %s", f.uri(p), ufs.ErrPrecondition, cond.Match)
	}
	return fmt.Errorf("s3: put %q: %w: the object exists (If-None-Match: *)", f.uri(p), ufs.ErrPrecondition)
}

// upload streams body through the SDK's multipart uploader with the
// parameters (attributes, conditions) of in, and returns the ETag of the
// object. A failed upload is aborted here, on a context of its own (the
// caller's may be done), so that no parts are left behind; an abort that
// fails is part of the returned error.
func (f *FS) upload(ctx context.Context, in *awss3.PutObjectInput, body io.Reader, partSize int64) (string, error) {
	params := *in
	params.Body = body
	out, err := f.uploader.Upload(ctx, &params, func(u *manager.Uploader) {
		u.PartSize = partSize
		u.LeavePartsOnError = true // aborted below, where a failure is seen
	})
	if err == nil {
		return etag(out.ETag), nil
	}
	var mf manager.MultiUploadFailure
	if errors.As(err, &mf) && mf.UploadID() != "" {
		if aerr := f.abort(ctx, aws.ToString(in.Key), mf.UploadID()); aerr != nil {
			return "", errors.Join(err, aerr)
		}
	}
	return "", err
}

// abort aborts a multipart upload on a context of its own (30 s), so that
// it runs even when the caller's context is done.
func (f *FS) abort(ctx context.Context, key, uploadID string) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_, err := f.client.AbortMultipartUpload(actx, &awss3.AbortMultipartUploadInput{
		Bucket: &f.bucket, Key: aws.String(key), UploadId: aws.String(uploadID),
	})
	if err != nil {
		return fmt.Errorf("s3: abort the multipart upload %s of %q (it stays in the bucket until aborted): %w",
			uploadID, "s3://"+f.bucket+"/"+key, err)
	}
	return nil
}

// readHead reads a stream of a known size (at most limit) whole, or the
// first limit+1 bytes of a stream of unknown size; whole reports that the
// stream ended within limit.
func readHead(src io.Reader, size, limit int64) (buf []byte, whole bool, err error) {
	if size >= 0 {
		buf = make([]byte, size)
		if _, err := io.ReadFull(src, buf); err != nil {
			return nil, false, err
		}
		var probe [1]byte
		if _, err := io.ReadFull(src, probe[:]); err != io.EOF {
			return nil, false, err // the sizedReader reports a longer stream
		}
		return buf, true, nil
	}
	var b bytes.Buffer
	n, err := io.CopyN(&b, src, limit+1)
	if err == io.EOF {
		return b.Bytes(), true, nil
	}
	if err != nil {
		return nil, false, err
	}
	return b.Bytes(), n <= limit, nil
}

// errSize marks a stream that does not have its declared size.
var errSize = errors.New("the stream does not have the declared size")

// sizedReader enforces the declared size, stops on ctx, and remembers the
// first error it returned, so Put can tell the source's failure from the
// store's.
type sizedReader struct {
	ctx  context.Context
	r    io.Reader
	want int64 // < 0: unknown
	n    int64
	mu   sync.Mutex
	err  error
}

func (s *sizedReader) fail(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
	return err
}

func (s *sizedReader) Read(p []byte) (int, error) {
	if err := s.ctx.Err(); err != nil {
		return 0, s.fail(err)
	}
	n, err := s.r.Read(p)
	s.n += int64(n)
	switch {
	case s.want >= 0 && s.n > s.want:
		return n, s.fail(fmt.Errorf("%w: more than %d bytes", errSize, s.want))
	case err == io.EOF && s.want >= 0 && s.n < s.want:
		return n, s.fail(fmt.Errorf("%w: ended after %d of %d bytes: %w", errSize, s.n, s.want, io.ErrUnexpectedEOF))
	case err != nil && err != io.EOF:
		return n, s.fail(err)
	}
	return n, err
}
