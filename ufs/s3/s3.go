// Package s3 is the ufs backend for Amazon S3 and S3-compatible stores such as
// MinIO (scheme "s3", URIs s3://bucket/prefix), built on aws-sdk-go-v2.
//
// Directories are key prefixes: a prefix with at least one key under it is a
// directory, and Mkdir writes zero-byte "dir/" markers so empty directories
// exist too. ETags are the objects' ETags without quotes; ModTime is
// LastModified cut to whole seconds, so HEAD and LIST give one Fingerprint.
//
// Options (ufs.Options):
//
//	s3.endpoint            http(s)://host[:port] of an S3-compatible server (default: AWS)
//	s3.region              region (default: AWS_REGION or the shared profile, else us-east-1)
//	s3.path_style          path-style addressing (default true when s3.endpoint is set)
//	s3.credentials         static (the keys below; the default when they are given),
//	                       ambient (the SDK's default chain on the host: environment,
//	                       ~/.aws, instance role) or anonymous (unsigned requests);
//	                       with neither keys nor this option the mount is refused
//	s3.access_key_id       static credentials
//	s3.secret_access_key
//	s3.session_token
//	s3.part_size           multipart part size, 5MiB..5GiB (default 16MiB)
//	s3.upload_concurrency  parts uploaded at once per Put (default 4)
//	s3.max_keys            keys per list page, 1..1000 (default 1000)
//	s3.max_attempts        attempts per request, retries included (default 3)
//	s3.response_timeout    how long to wait for a response's headers (default 2m)
//	s3.abort_stale_uploads abort multipart uploads under the prefix older than this
//	                       (default 24h; 0 never; at least 1h), see uploads.go
//
// Secrets are never logged nor put in errors.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/stratafs/strata/ufs"
)

// Scheme is the URI scheme of this backend.
const Scheme = "s3"

// FS is a bucket (or a prefix in it) mounted as a ufs.FS. It is safe for
// concurrent use.
type FS struct {
	client    *awss3.Client
	uploader  *manager.Uploader
	transport *http.Transport
	bucket    string
	prefix    string // clean, without slashes at either end; "" for the bucket root
	partSize  int64
	maxKeys   int32
	copyConc  int
	// Objects above copyThreshold are copied in parts of copyPartSize
	// (UploadPartCopy); a single CopyObject is limited to 5 GiB.
	copyThreshold int64
	copyPartSize  int64

	log *slog.Logger
	// staleAfter is the age from which multipart uploads under the prefix
	// are aborted (s3.abort_stale_uploads; 0: never); see uploads.go.
	staleAfter time.Duration
	sweepOnce  sync.Once
	sweepers   sync.WaitGroup
	stop       chan struct{}
	closeOnce  sync.Once
}

var (
	_ ufs.FS      = (*FS)(nil)
	_ ufs.Renamer = (*FS)(nil)
)

// New returns an FS for loc (scheme "s3") with the mount's options. It loads
// the AWS SDK configuration but does not touch the network: ufs.Check (a Stat
// of the root) does. Bad options, or a location of another scheme, return an
// error wrapping ufs.ErrInvalidURI.
func New(ctx context.Context, loc ufs.Location, opts ufs.Options) (*FS, error) {
	if loc.Scheme != Scheme {
		return nil, fmt.Errorf("%w: s3: scheme %q, want %q", ufs.ErrInvalidURI, loc.Scheme, Scheme)
	}
	if loc.Bucket == "" {
		return nil, fmt.Errorf("%w: s3: %q has no bucket; write s3://bucket/prefix", ufs.ErrInvalidURI, loc.Raw)
	}
	prefix, err := ufs.CleanPath(loc.Prefix)
	if err != nil {
		return nil, fmt.Errorf("%w: s3: prefix %q: %v", ufs.ErrInvalidURI, loc.Prefix, err)
	}
	set, err := parseOptions(loc.String(), opts)
	if err != nil {
		return nil, err
	}

	bc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConns = 256
		tr.MaxIdleConnsPerHost = 64
		tr.ResponseHeaderTimeout = set.responseTimeout
	})
	lopts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(bc),
		config.WithRetryMaxAttempts(set.maxAttempts),
	}
	if set.region != "" {
		lopts = append(lopts, config.WithRegion(set.region))
	}
	switch set.credentials {
	case credStatic:
		lopts = append(lopts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(set.accessKeyID, set.secretAccessKey, set.sessionToken)))
	case credAnonymous:
		lopts = append(lopts, config.WithCredentialsProvider(aws.AnonymousCredentials{}))
	case credAmbient:
		// No provider: LoadDefaultConfig resolves the default chain.
	default:
		return nil, fmt.Errorf("%w: s3: %s: no credentials mode", ufs.ErrInvalidURI, loc) // parseOptions sets one
	}
	cfg, err := config.LoadDefaultConfig(ctx, lopts...)
	if err != nil {
		return nil, fmt.Errorf("s3: %s: load the AWS SDK configuration: %w", loc, err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	// Our own client on the configured transport (custom CA bundle included),
	// so that Close can release its connections. Redirects are not followed:
	// the SDK reports them (a bucket in another region).
	var tr *http.Transport
	if b, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok {
		tr = b.GetTransport()
	} else {
		tr = bc.GetTransport()
	}
	cfg.HTTPClient = &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	client := awss3.NewFromConfig(cfg, func(o *awss3.Options) {
		if set.endpoint != "" {
			o.BaseEndpoint = aws.String(set.endpoint)
		}
		o.UsePathStyle = set.pathStyle
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	f := &FS{
		client:        client,
		transport:     tr,
		bucket:        loc.Bucket,
		prefix:        prefix,
		partSize:      set.partSize,
		maxKeys:       set.maxKeys,
		copyConc:      set.uploadConcurrency,
		copyThreshold: maxPartSize,
		copyPartSize:  max(set.partSize, 512<<20),
		log:           ufs.LoggerFrom(ctx).With("component", "ufs-s3"),
		staleAfter:    set.staleUploads,
		stop:          make(chan struct{}),
	}
	f.uploader = manager.NewUploader(client, func(u *manager.Uploader) {
		u.PartSize = set.partSize
		u.Concurrency = set.uploadConcurrency
	})
	return f, nil
}

// Register adds the "s3" scheme to r.
func Register(r *ufs.Registry) {
	r.Register(Scheme, func(ctx context.Context, loc ufs.Location, opts ufs.Options) (ufs.FS, error) {
		f, err := New(ctx, loc, opts)
		if err != nil {
			return nil, err
		}
		return f, nil
	})
}

// Close stops the stale-upload sweeper (waiting for it) and releases idle
// connections. Call it when no other call is in flight; the FS must not be
// used afterwards.
func (f *FS) Close() error {
	f.closeOnce.Do(func() { close(f.stop) })
	f.sweepers.Wait()
	f.transport.CloseIdleConnections()
	return nil
}

// ---- keys and paths ----

func (f *FS) key(p string) string {
	switch {
	case f.prefix == "":
		return p
	case p == "":
		return f.prefix
	}
	return f.prefix + "/" + p
}

// dirKey is the prefix of p's children ("" for the root of a bucket).
func (f *FS) dirKey(p string) string {
	if k := f.key(p); k != "" {
		return k + "/"
	}
	return ""
}

func (f *FS) uri(p string) string {
	return "s3://" + f.bucket + "/" + f.key(p)
}

// begin checks ctx and that p is a clean UFS path.
func (f *FS) begin(ctx context.Context, op, p string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3: %s %q: %w", op, f.uri(p), err)
	}
	if c, err := ufs.CleanPath(p); err != nil || c != p {
		return fmt.Errorf("s3: %s %q: %w: not a clean relative path", op, p, ufs.ErrInvalidPath)
	}
	return nil
}

func etag(s *string) string { return strings.Trim(aws.ToString(s), `"`) }

func quote(etag string) *string { return aws.String(`"` + etag + `"`) }

// modTime cuts to seconds: HEAD reports seconds, LIST milliseconds.
func modTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Second)
}

// validName reports whether a listed name can be a UFS path element.
func validName(name string) bool {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return false
	}
	return true
}

// ---- helpers that talk to S3 ----

// head is HeadObject of the file p (with If-Match when ifMatch is set). A
// missing key is ErrIsDir when p is a directory, ErrChanged (and ErrNotFound)
// when ifMatch was given, else ErrNotFound.
func (f *FS) head(ctx context.Context, op, p, ifMatch string) (ufs.FileInfo, error) {
	in := &awss3.HeadObjectInput{Bucket: &f.bucket, Key: aws.String(f.key(p))}
	if ifMatch != "" {
		in.IfMatch = quote(ifMatch)
	}
	out, err := f.client.HeadObject(ctx, in)
	if err == nil {
		return ufs.FileInfo{Path: p, Size: aws.ToInt64(out.ContentLength), ModTime: modTime(out.LastModified), ETag: etag(out.ETag)}, nil
	}
	return ufs.FileInfo{}, f.missing(ctx, op, p, ifMatch, err)
}

// missing turns the error of a file operation into the right sentinel: a
// missing key may be a directory or a changed version.
func (f *FS) missing(ctx context.Context, op, p, ifMatch string, err error) error {
	if !isNotFound(err, f.bucket) {
		return f.mapErr(op, p, err)
	}
	if ifMatch != "" {
		return fmt.Errorf("s3: %s %q: %w: %w", op, f.uri(p), ufs.ErrChanged, ufs.ErrNotFound)
	}
	marker, children, derr := f.dirState(ctx, p)
	switch {
	case derr != nil:
		return f.mapErr(op, p, derr)
	case marker || children:
		return fmt.Errorf("s3: %s %q: %w", op, f.uri(p), ufs.ErrIsDir)
	}
	return fmt.Errorf("s3: %s %q: %w", op, f.uri(p), ufs.ErrNotFound)
}

// dirState reports whether p has a "p/" marker and whether it has other keys
// under it.
func (f *FS) dirState(ctx context.Context, p string) (marker, children bool, err error) {
	dk := f.dirKey(p)
	out, err := f.client.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{
		Bucket: &f.bucket, Prefix: aws.String(dk), MaxKeys: aws.Int32(2),
	})
	if err != nil {
		return false, false, err
	}
	for _, o := range out.Contents {
		if aws.ToString(o.Key) == dk {
			marker = true
		} else {
			children = true
		}
	}
	return marker, children || len(out.CommonPrefixes) > 0, nil
}

// ---- ufs.FS ----

// Stat describes p: HeadObject of its key, else a directory when keys exist
// under "p/" (its marker included). The root is a directory when the bucket
// can be listed. Returns ErrNotFound (with `bucket "x" does not exist` for a
// missing bucket), ErrPermission (naming the cause: unknown key id, wrong
// secret, access denied), ErrUnavailable (connection refused, DNS, timeouts),
// ErrInvalidPath. Safe for concurrent use.
func (f *FS) Stat(ctx context.Context, p string) (ufs.FileInfo, error) {
	if err := f.begin(ctx, "stat", p); err != nil {
		return ufs.FileInfo{}, err
	}
	if p == "" {
		_, err := f.client.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{
			Bucket: &f.bucket, Prefix: aws.String(f.dirKey("")), MaxKeys: aws.Int32(1),
		})
		if err != nil {
			return ufs.FileInfo{}, f.mapErr("stat", p, err)
		}
		return ufs.FileInfo{IsDir: true}, nil
	}
	out, err := f.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &f.bucket, Key: aws.String(f.key(p))})
	if err == nil {
		return ufs.FileInfo{Path: p, Size: aws.ToInt64(out.ContentLength), ModTime: modTime(out.LastModified), ETag: etag(out.ETag)}, nil
	}
	if !isNotFound(err, f.bucket) {
		return ufs.FileInfo{}, f.mapErr("stat", p, err)
	}
	marker, children, err := f.dirState(ctx, p)
	if err != nil {
		return ufs.FileInfo{}, f.mapErr("stat", p, err)
	}
	if marker || children {
		return ufs.FileInfo{Path: p, IsDir: true}, nil
	}
	return ufs.FileInfo{}, fmt.Errorf("s3: stat %q: %w", f.uri(p), ufs.ErrNotFound)
}

// List streams the children of dir, one ListObjectsV2 page (s3.max_keys keys)
// at a time, with "/" as delimiter: common prefixes are directories, the
// directory's own marker is skipped, and keys that cannot be path elements
// ("a//b", "..") are left out. Yields ErrNotFound (no keys under dir and no
// marker), ErrNotDir (dir is a file), and the errors of Stat. Safe for
// concurrent use.
func (f *FS) List(ctx context.Context, dir string) iter.Seq2[ufs.FileInfo, error] {
	return func(yield func(ufs.FileInfo, error) bool) {
		if err := f.begin(ctx, "list", dir); err != nil {
			yield(ufs.FileInfo{}, err)
			return
		}
		prefix := f.dirKey(dir)
		pg := awss3.NewListObjectsV2Paginator(f.client, &awss3.ListObjectsV2Input{
			Bucket: &f.bucket, Prefix: aws.String(prefix), Delimiter: aws.String("/"), MaxKeys: aws.Int32(f.maxKeys),
		})
		seen := false
		for pg.HasMorePages() {
			page, err := pg.NextPage(ctx)
			if err != nil {
				yield(ufs.FileInfo{}, f.mapErr("list", dir, err))
				return
			}
			for _, o := range page.Contents {
				seen = true
				k := aws.ToString(o.Key)
				name := strings.TrimPrefix(k, prefix)
				if k == prefix || !validName(name) {
					continue
				}
				fi := ufs.FileInfo{Path: ufs.Join(dir, name), Size: aws.ToInt64(o.Size), ModTime: modTime(o.LastModified), ETag: etag(o.ETag)}
				if !yield(fi, nil) {
					return
				}
			}
			for _, cp := range page.CommonPrefixes {
				seen = true
				name := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), prefix), "/")
				if !validName(name) {
					continue
				}
				if !yield(ufs.FileInfo{Path: ufs.Join(dir, name), IsDir: true}, nil) {
					return
				}
			}
		}
		if seen || dir == "" {
			return
		}
		// Nothing under dir/: a file, or nothing at all.
		_, err := f.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &f.bucket, Key: aws.String(f.key(dir))})
		switch {
		case err == nil:
			yield(ufs.FileInfo{}, fmt.Errorf("s3: list %q: %w", f.uri(dir), ufs.ErrNotDir))
		case isNotFound(err, f.bucket):
			yield(ufs.FileInfo{}, fmt.Errorf("s3: list %q: %w", f.uri(dir), ufs.ErrNotFound))
		default:
			yield(ufs.FileInfo{}, f.mapErr("list", dir, err))
		}
	}
}

// OpenRange reads n bytes of p from off (n < 0: to the end) with one ranged
// GetObject; the body streams from the server. A range that starts at or past
// the end yields an empty reader (after checking the object exists).
// opts.IfMatch is sent as If-Match: a 412, or a deleted object, is ErrChanged.
// Returns ErrNotFound, ErrIsDir, ErrChanged, ErrPermission, ErrUnavailable.
// Read errors of the body are mapped the same way. Safe for concurrent use.
func (f *FS) OpenRange(ctx context.Context, p string, off, n int64, opts ufs.ReadOptions) (io.ReadCloser, error) {
	if err := f.begin(ctx, "open", p); err != nil {
		return nil, err
	}
	if p == "" {
		return nil, fmt.Errorf("s3: open %q: %w", f.uri(p), ufs.ErrIsDir)
	}
	if off < 0 {
		return nil, fmt.Errorf("s3: open %q: negative offset %d", f.uri(p), off)
	}
	if n == 0 {
		if _, err := f.head(ctx, "open", p, opts.IfMatch); err != nil {
			return nil, err
		}
		return http.NoBody, nil
	}
	if n > math.MaxInt64-off {
		n = -1
	}
	in := &awss3.GetObjectInput{Bucket: &f.bucket, Key: aws.String(f.key(p))}
	switch {
	case n > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	case off > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", off))
	}
	if opts.IfMatch != "" {
		in.IfMatch = quote(opts.IfMatch)
	}
	out, err := f.client.GetObject(ctx, in)
	if err != nil {
		if isInvalidRange(err) {
			// The range starts at or after the end (any range of an empty
			// object): empty, once the object is known to exist.
			if _, err := f.head(ctx, "open", p, opts.IfMatch); err != nil {
				return nil, err
			}
			return http.NoBody, nil
		}
		return nil, f.missing(ctx, "open", p, opts.IfMatch, err)
	}
	var body io.Reader = out.Body
	if in.Range != nil && aws.ToString(out.ContentRange) == "" {
		// The server ignored the range and sent the whole object.
		if _, err := io.CopyN(io.Discard, out.Body, off); err != nil && err != io.EOF {
			out.Body.Close()
			return nil, f.mapErr("read", p, err)
		}
		if n > 0 {
			body = io.LimitReader(out.Body, n)
		}
	}
	return &bodyReader{r: body, c: out.Body, f: f, p: p}, nil
}

// bodyReader maps the read errors of a GetObject body.
type bodyReader struct {
	r io.Reader
	c io.Closer
	f *FS
	p string
}

func (b *bodyReader) Read(buf []byte) (int, error) {
	n, err := b.r.Read(buf)
	if err != nil && err != io.EOF {
		err = b.f.mapErr("read", b.p, err)
	}
	return n, err
}

func (b *bodyReader) Close() error { return b.c.Close() }

// Delete removes the file p (HeadObject first: a missing key is ErrNotFound),
// or the directory p when nothing but its marker is under it. Returns
// ErrNotFound, ErrNotEmpty, ErrNotSupported (the root), ErrPermission,
// ErrUnavailable. Safe for concurrent use.
func (f *FS) Delete(ctx context.Context, p string) error {
	if err := f.begin(ctx, "delete", p); err != nil {
		return err
	}
	if p == "" {
		return fmt.Errorf("s3: delete %q: %w: the mount root cannot be deleted", f.uri(p), ufs.ErrNotSupported)
	}
	key := f.key(p)
	_, err := f.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &f.bucket, Key: &key})
	if err == nil {
		if _, err := f.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &f.bucket, Key: &key}); err != nil {
			return f.mapErr("delete", p, err)
		}
		return nil
	}
	if !isNotFound(err, f.bucket) {
		return f.mapErr("delete", p, err)
	}
	marker, children, err := f.dirState(ctx, p)
	switch {
	case err != nil:
		return f.mapErr("delete", p, err)
	case children:
		return fmt.Errorf("s3: delete %q: %w", f.uri(p), ufs.ErrNotEmpty)
	case !marker:
		return fmt.Errorf("s3: delete %q: %w", f.uri(p), ufs.ErrNotFound)
	}
	if _, err := f.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &f.bucket, Key: aws.String(f.dirKey(p))}); err != nil {
		return f.mapErr("delete", p, err)
	}
	return nil
}

// Mkdir writes zero-byte "dir/" markers for p and each of its parents, so the
// directories stay when their other children go. Returns ErrExist (a file at
// p), ErrNotDir (a file at a parent), ErrPermission, ErrUnavailable. Safe for
// concurrent use.
func (f *FS) Mkdir(ctx context.Context, p string) error {
	if err := f.begin(ctx, "mkdir", p); err != nil {
		return err
	}
	if p == "" {
		_, err := f.Stat(ctx, "")
		return err
	}
	var dirs []string
	for i := 0; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			dirs = append(dirs, p[:i])
		}
	}
	for _, d := range dirs {
		_, err := f.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &f.bucket, Key: aws.String(f.key(d))})
		switch {
		case err == nil && d == p:
			return fmt.Errorf("s3: mkdir %q: %w: a file is there", f.uri(p), ufs.ErrExist)
		case err == nil:
			return fmt.Errorf("s3: mkdir %q: %w: %q is a file", f.uri(p), ufs.ErrNotDir, d)
		case !isNotFound(err, f.bucket):
			return f.mapErr("mkdir", p, err)
		}
	}
	for _, d := range dirs {
		_, err := f.client.PutObject(ctx, &awss3.PutObjectInput{
			Bucket: &f.bucket, Key: aws.String(f.dirKey(d)), Body: bytes.NewReader(nil), ContentLength: aws.Int64(0),
		})
		if err != nil {
			return f.mapErr("mkdir", d, err)
		}
	}
	return nil
}

// Rename copies the file src to dst (CopyObject, or UploadPartCopy in parts
// above 5 GiB), guarded by the source's ETag, then deletes src. It is not
// atomic: a reader may see both for a moment, and a failure between the copy
// and the delete leaves both. Returns ErrNotFound, ErrIsDir (src is a
// directory: object stores cannot rename those), ErrChanged (src changed
// during the copy), ErrPermission, ErrUnavailable. Safe for concurrent use.
func (f *FS) Rename(ctx context.Context, src, dst string) error {
	if err := f.begin(ctx, "rename", src); err != nil {
		return err
	}
	if err := f.begin(ctx, "rename", dst); err != nil {
		return err
	}
	if src == "" || dst == "" {
		return fmt.Errorf("s3: rename %q to %q: %w: the mount root", f.uri(src), f.uri(dst), ufs.ErrIsDir)
	}
	fi, err := f.head(ctx, "rename", src, "")
	if err != nil {
		return err
	}
	if src == dst {
		return nil
	}
	if fi.Size > f.copyThreshold {
		err = f.copyParts(ctx, src, dst, fi)
	} else {
		_, err = f.client.CopyObject(ctx, &awss3.CopyObjectInput{
			Bucket: &f.bucket, Key: aws.String(f.key(dst)),
			CopySource: aws.String(f.copySource(src)), CopySourceIfMatch: quote(fi.ETag),
		})
		if err != nil {
			err = f.mapErr("rename", src, err)
		}
	}
	if err != nil {
		return err
	}
	if _, err := f.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &f.bucket, Key: aws.String(f.key(src))}); err != nil {
		return f.mapErr("rename", src, err)
	}
	return nil
}

// copySource is the x-amz-copy-source value: bucket/key, percent-encoded
// except for unreserved characters and "/".
func (f *FS) copySource(p string) string {
	s := f.bucket + "/" + f.key(p)
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~/", c) >= 0 {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// copyParts copies a large object with a multipart upload of UploadPartCopy
// calls (copyConc at once), and aborts the upload on failure.
func (f *FS) copyParts(ctx context.Context, src, dst string, fi ufs.FileInfo) error {
	dstKey := aws.String(f.key(dst))
	cmu, err := f.client.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: &f.bucket, Key: dstKey})
	if err != nil {
		return f.mapErr("rename", dst, err)
	}
	abort := func(err error) error {
		if aerr := f.abort(ctx, aws.ToString(dstKey), aws.ToString(cmu.UploadId)); aerr != nil {
			return errors.Join(err, aerr)
		}
		return err
	}
	ps := max(f.copyPartSize, (fi.Size+maxParts-1)/maxParts)
	nparts := int((fi.Size + ps - 1) / ps)
	parts := make([]types.CompletedPart, nparts)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		next     = make(chan int)
	)
	for range min(f.copyConc, nparts) {
		wg.Go(func() {
			for i := range next {
				start := int64(i) * ps
				end := min(start+ps, fi.Size) - 1
				out, err := f.client.UploadPartCopy(cctx, &awss3.UploadPartCopyInput{
					Bucket: &f.bucket, Key: dstKey, UploadId: cmu.UploadId, PartNumber: aws.Int32(int32(i + 1)),
					CopySource: aws.String(f.copySource(src)), CopySourceIfMatch: quote(fi.ETag),
					CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", start, end)),
				})
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = f.mapErr("rename", src, err)
					}
					mu.Unlock()
					cancel()
					continue
				}
				parts[i] = types.CompletedPart{ETag: out.CopyPartResult.ETag, PartNumber: aws.Int32(int32(i + 1))}
			}
		})
	}
feed:
	for i := range nparts {
		select {
		case next <- i:
		case <-cctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr == nil && cctx.Err() != nil {
		firstErr = f.mapErr("rename", src, cctx.Err())
	}
	if firstErr != nil {
		return abort(firstErr)
	}
	_, err = f.client.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{
		Bucket: &f.bucket, Key: dstKey, UploadId: cmu.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return abort(f.mapErr("rename", dst, err))
	}
	return nil
}
