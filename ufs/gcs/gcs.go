// Package gcs is the Google Cloud Storage under-storage: a bucket, or a prefix
// of one, mounted as a ufs.FS through the JSON/XML APIs of
// cloud.google.com/go/storage.
//
// Mount URIs are gs://bucket/prefix (gcs://bucket/prefix is accepted too).
// Directories are prefixes: a prefix with children, or a zero-byte "dir/"
// marker object, is a directory. The ETag of a file is its object generation,
// so a read pinned with ReadOptions.IfMatch fails with ufs.ErrChanged once the
// object has been overwritten.
package gcs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strconv"
	"strings"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"

	"github.com/stratafs/strata/ufs"
)

// schemes are the URI schemes this backend registers.
func schemes() []string { return []string{"gs", "gcs"} }

// listPageSize is the number of entries fetched per List request (the API's
// maximum).
const listPageSize = 1000

// FS is one mounted bucket or bucket prefix. It is safe for concurrent use;
// Close must not run concurrently with other calls.
type FS struct {
	client    *storage.Client
	bucket    *storage.BucketHandle
	name      string // bucket name
	prefix    string // clean key prefix inside the bucket, "" for the whole bucket
	chunkSize int
	// listPageSize is the number of entries per List request; tests lower it.
	listPageSize int
}

var (
	_ ufs.FS      = (*FS)(nil)
	_ ufs.Renamer = (*FS)(nil)
)

// New opens a GCS location (scheme gs or gcs) with the mount's options (see
// the Opt* constants). It reads credentials but does not call the storage
// API; ufs.Check does. Errors wrap ufs.ErrInvalidURI for a malformed URI or
// option, ufs.ErrPermission when no credentials can be found; they never
// contain credentials. Safe for concurrent use.
func New(ctx context.Context, loc ufs.Location, opts ufs.Options) (*FS, error) {
	if loc.Scheme != "gs" && loc.Scheme != "gcs" {
		return nil, fmt.Errorf("%w: gcs: scheme %q is not gs or gcs", ufs.ErrInvalidURI, loc.Scheme)
	}
	if err := checkBucketName(loc.Bucket); err != nil {
		return nil, fmt.Errorf("%w: gcs: %q: %v", ufs.ErrInvalidURI, loc.Raw, err)
	}
	prefix, err := ufs.CleanPath(loc.Prefix)
	if err != nil {
		return nil, fmt.Errorf("%w: gcs: %q: %w", ufs.ErrInvalidURI, loc.Raw, err)
	}
	cfg, err := parseOptions(loc.String(), opts)
	if err != nil {
		return nil, err
	}
	fs := &FS{name: loc.Bucket, prefix: prefix, chunkSize: cfg.chunkSize, listPageSize: listPageSize}
	client, err := cfg.newClient(ctx)
	if err != nil {
		c := classify(ctx, err)
		kind := c.kind
		if kind == nil {
			kind = ufs.ErrPermission // NewClient fails only on credentials
		}
		return nil, &opError{op: "open", uri: fs.uri(""), kind: kind, cause: err,
			detail: "cannot set up Google credentials: " + c.detail + " (" + OptCredentials + "=" + CredAmbient +
				" found no usable Application Default Credentials on this host: fix them, or set " + OptCredentialsFile + " or " + OptCredentialsJSON + ")"}
	}
	fs.client = client
	fs.bucket = client.Bucket(loc.Bucket)
	if cfg.project != "" {
		fs.bucket = fs.bucket.UserProject(cfg.project)
	}
	return fs, nil
}

// Register adds the gs and gcs schemes to r. It panics if either is already
// registered. Safe for concurrent use (the registry locks).
func Register(r *ufs.Registry) {
	f := func(ctx context.Context, loc ufs.Location, opts ufs.Options) (ufs.FS, error) {
		fs, err := New(ctx, loc, opts)
		if err != nil {
			return nil, err
		}
		return fs, nil
	}
	for _, s := range schemes() {
		r.Register(s, f)
	}
}

// checkBucketName applies GCS's naming rules, so a typo fails at mount time
// with a reason instead of as a 400 later.
func checkBucketName(b string) error {
	if b == "" {
		return errors.New("no bucket; write gs://bucket/prefix")
	}
	if len(b) < 3 || len(b) > 222 {
		return fmt.Errorf("bucket name %q must be 3 to 63 characters (222 with dots)", b)
	}
	for _, part := range strings.Split(b, ".") {
		if part == "" || len(part) > 63 {
			return fmt.Errorf("bucket name %q: each dot-separated part must be 1 to 63 characters", b)
		}
	}
	for i, r := range b {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
		if !ok {
			return fmt.Errorf("bucket name %q: only lower-case letters, digits, '-', '_' and '.' are allowed", b)
		}
		alnum := r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
		if (i == 0 || i == len(b)-1) && !alnum {
			return fmt.Errorf("bucket name %q must start and end with a letter or digit", b)
		}
	}
	return nil
}

// key is the object name of a clean UFS path.
func (fs *FS) key(p string) string {
	switch {
	case fs.prefix == "":
		return p
	case p == "":
		return fs.prefix
	default:
		return fs.prefix + "/" + p
	}
}

// dirKey is the listing prefix of a directory: its key and "/" ("" for the
// root of a whole-bucket mount).
func (fs *FS) dirKey(p string) string {
	if k := fs.key(p); k != "" {
		return k + "/"
	}
	return ""
}

// uri names p for error messages.
func (fs *FS) uri(p string) string {
	if k := fs.key(p); k != "" {
		return "gs://" + fs.name + "/" + k
	}
	return "gs://" + fs.name
}

func (fs *FS) clean(op, p string) (string, error) {
	c, err := ufs.CleanPath(p)
	if err != nil {
		return "", &opError{op: op, uri: "gs://" + fs.name + "/" + fs.prefix, cause: err}
	}
	return c, nil
}

// etag renders a generation as the FileInfo ETag.
func etag(gen int64) string { return strconv.FormatInt(gen, 10) }

func fileInfo(p string, a *storage.ObjectAttrs) ufs.FileInfo {
	return ufs.FileInfo{Path: p, Size: a.Size, ModTime: a.Updated, ETag: etag(a.Generation)}
}

// Stat describes p: the object p, else the directory p (a prefix with
// children or a marker), else ufs.ErrNotFound. Stat("") checks that the
// bucket exists and can be listed. Safe for concurrent use. Returns
// ufs.ErrNotFound, ufs.ErrPermission, ufs.ErrUnavailable.
func (fs *FS) Stat(ctx context.Context, p string) (ufs.FileInfo, error) {
	p, err := fs.clean("stat", p)
	if err != nil {
		return ufs.FileInfo{}, err
	}
	if p == "" {
		if _, err := fs.hasChildren(ctx, fs.dirKey("")); err != nil {
			return ufs.FileInfo{}, fs.rootErr(ctx, "stat", err)
		}
		return ufs.FileInfo{IsDir: true}, nil
	}
	attrs, err := fs.bucket.Object(fs.key(p)).Attrs(ctx)
	if err == nil {
		return fileInfo(p, attrs), nil
	}
	if !isNotFound(ctx, err) {
		return ufs.FileInfo{}, fs.mapErr(ctx, "stat", p, err)
	}
	dir, derr := fs.hasChildren(ctx, fs.dirKey(p))
	if derr != nil {
		return ufs.FileInfo{}, fs.mapErr(ctx, "stat", p, derr)
	}
	if dir {
		return ufs.FileInfo{Path: p, IsDir: true}, nil
	}
	return ufs.FileInfo{}, fs.mapErr(ctx, "stat", p, err)
}

// rootErr maps an error of an operation on the bucket itself; a missing
// bucket is reported by name.
func (fs *FS) rootErr(ctx context.Context, op string, err error) error {
	c := classify(ctx, err)
	if c.kind == ufs.ErrNotFound {
		c.detail = fmt.Sprintf("bucket %q does not exist", fs.name)
	}
	return &opError{op: op, uri: fs.uri(""), kind: c.kind, detail: c.detail, cause: err, ctxErr: ctx.Err()}
}

// hasChildren reports whether any object's name starts with prefix (a marker
// included).
func (fs *FS) hasChildren(ctx context.Context, prefix string) (bool, error) {
	q := &storage.Query{Prefix: prefix}
	if err := q.SetAttrSelection([]string{"Name"}); err != nil {
		return false, err
	}
	it := fs.bucket.Objects(ctx, q)
	it.PageInfo().MaxSize = 1
	_, err := it.Next()
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, iterator.Done):
		return false, nil
	default:
		return false, err
	}
}

// List streams the children of dir page by page (delimiter "/"), skipping
// dir's own marker and names that are not clean paths. Safe for concurrent
// use. Yields ufs.ErrNotFound (no such directory), ufs.ErrNotDir (dir is a
// file), ufs.ErrPermission, ufs.ErrUnavailable.
func (fs *FS) List(ctx context.Context, dir string) iter.Seq2[ufs.FileInfo, error] {
	return func(yield func(ufs.FileInfo, error) bool) {
		dir, err := fs.clean("list", dir)
		if err != nil {
			yield(ufs.FileInfo{}, err)
			return
		}
		prefix := fs.dirKey(dir)
		q := &storage.Query{Prefix: prefix, Delimiter: "/"}
		if err := q.SetAttrSelection([]string{"Name", "Size", "Updated", "Generation"}); err != nil {
			yield(ufs.FileInfo{}, fs.mapErr(ctx, "list", dir, err))
			return
		}
		it := fs.bucket.Objects(ctx, q)
		it.PageInfo().MaxSize = fs.listPageSize
		seen := false
		// GCS reports each prefix once, but some servers (fake-gcs-server)
		// repeat it on every page: remember the subdirectories yielded.
		dirs := map[string]struct{}{}
		for {
			a, err := it.Next()
			if errors.Is(err, iterator.Done) {
				break
			}
			if err != nil {
				if dir == "" {
					err = fs.rootErr(ctx, "list", err)
				} else {
					err = fs.mapErr(ctx, "list", dir, err)
				}
				yield(ufs.FileInfo{}, err)
				return
			}
			seen = true
			var fi ufs.FileInfo
			if a.Prefix != "" {
				name := strings.TrimSuffix(strings.TrimPrefix(a.Prefix, prefix), "/")
				if _, dup := dirs[name]; dup || !validName(name) {
					continue
				}
				dirs[name] = struct{}{}
				fi = ufs.FileInfo{Path: ufs.Join(dir, name), IsDir: true}
			} else {
				if a.Name == prefix { // the directory's own marker
					continue
				}
				name := strings.TrimPrefix(a.Name, prefix)
				if !validName(name) {
					continue
				}
				fi = fileInfo(ufs.Join(dir, name), a)
			}
			if !yield(fi, nil) {
				return
			}
		}
		if seen || dir == "" {
			return
		}
		// Nothing under dir/: a file, or nothing at all.
		_, err = fs.bucket.Object(fs.key(dir)).Attrs(ctx)
		switch {
		case err == nil:
			yield(ufs.FileInfo{}, fs.fail("list", dir, ufs.ErrNotDir, ""))
		case isNotFound(ctx, err):
			yield(ufs.FileInfo{}, fs.fail("list", dir, ufs.ErrNotFound, "no such directory"))
		default:
			yield(ufs.FileInfo{}, fs.mapErr(ctx, "list", dir, err))
		}
	}
}

// validName reports whether a listed name can be a UFS path element; keys
// such as "a//b" or "a/./b" cannot be addressed and are skipped.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.Contains(name, "/")
}

// OpenRange reads n bytes of p from off (n < 0: to the end). A range past the
// end is cut; off at or beyond the size, or n == 0, gives an empty reader once
// the object is known to exist. opts.IfMatch is a generation from Stat: the
// read fails with ufs.ErrChanged when the object has another generation (or
// is gone: the error then also matches ufs.ErrNotFound). Safe for concurrent
// use; the returned reader is not. Returns ufs.ErrNotFound, ufs.ErrIsDir,
// ufs.ErrChanged, ufs.ErrPermission, ufs.ErrUnavailable; read errors are
// mapped the same way.
func (fs *FS) OpenRange(ctx context.Context, p string, off, n int64, opts ufs.ReadOptions) (io.ReadCloser, error) {
	p, err := fs.clean("read", p)
	if err != nil {
		return nil, err
	}
	if p == "" {
		return nil, fs.fail("read", p, ufs.ErrIsDir, "the mount root is a directory")
	}
	if off < 0 {
		return nil, fs.fail("read", p, nil, fmt.Sprintf("negative offset %d", off))
	}
	gen := int64(-1)
	if opts.IfMatch != "" {
		gen, err = strconv.ParseInt(opts.IfMatch, 10, 64)
		if err != nil || gen <= 0 {
			return nil, fs.fail("read", p, ufs.ErrChanged, fmt.Sprintf("ETag %q is not a GCS generation", opts.IfMatch))
		}
	}
	// Stored bytes, as Stat's size counts them: no decompressive
	// transcoding of objects uploaded with Content-Encoding: gzip.
	obj := fs.bucket.Object(fs.key(p)).ReadCompressed(true)
	if gen > 0 {
		obj = obj.If(storage.Conditions{GenerationMatch: gen})
	}
	if n == 0 {
		return fs.emptyRead(ctx, obj, p, gen)
	}
	length := n
	if n < 0 {
		length = -1
	}
	r, err := obj.NewRangeReader(ctx, off, length)
	if err != nil {
		c := classify(ctx, err)
		switch {
		case c.status == http.StatusRequestedRangeNotSatisfiable:
			return fs.emptyRead(ctx, obj, p, gen)
		case c.kind == ufs.ErrNotFound:
			return nil, fs.readNotFound(ctx, p, gen, err)
		}
		return nil, fs.mapErr(ctx, "read", p, err)
	}
	// The condition is enforced by GCS; checking the generation served also
	// covers servers that ignore read preconditions.
	if gen > 0 && r.Attrs.Generation != gen {
		r.Close()
		return nil, fs.fail("read", p, ufs.ErrChanged, fmt.Sprintf("generation is %d, want %s", r.Attrs.Generation, opts.IfMatch))
	}
	return &reader{r: r, fs: fs, ctx: ctx, p: p}, nil
}

// emptyRead checks that the object exists (at generation gen when gen > 0)
// and returns an empty reader.
func (fs *FS) emptyRead(ctx context.Context, obj *storage.ObjectHandle, p string, gen int64) (io.ReadCloser, error) {
	a, err := obj.Attrs(ctx)
	if err != nil {
		if isNotFound(ctx, err) {
			return nil, fs.readNotFound(ctx, p, gen, err)
		}
		return nil, fs.mapErr(ctx, "read", p, err)
	}
	if gen > 0 && a.Generation != gen {
		return nil, fs.fail("read", p, ufs.ErrChanged, fmt.Sprintf("generation is %d, want %d", a.Generation, gen))
	}
	return io.NopCloser(strings.NewReader("")), nil
}

// readNotFound explains a missing object: a directory, a pinned version that
// is gone, or plain absence.
func (fs *FS) readNotFound(ctx context.Context, p string, gen int64, err error) error {
	if dir, derr := fs.hasChildren(ctx, fs.dirKey(p)); derr == nil && dir {
		return fs.fail("read", p, ufs.ErrIsDir, "")
	}
	if gen > 0 {
		return &opError{op: "read", uri: fs.uri(p), kind: ufs.ErrChanged, detail: "the object was deleted", cause: fmt.Errorf("%w: %w", ufs.ErrNotFound, err)}
	}
	return fs.mapErr(ctx, "read", p, err)
}

// reader maps the storage reader's errors like every other error of FS.
type reader struct {
	r   *storage.Reader
	fs  *FS
	ctx context.Context
	p   string
}

func (r *reader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	if err != nil && err != io.EOF {
		err = r.fs.mapErr(r.ctx, "read", r.p, err)
	}
	return n, err
}

func (r *reader) Close() error { return r.r.Close() }

// Delete removes the file p, or the directory p when it is empty (its marker,
// if any). Safe for concurrent use. Returns ufs.ErrNotFound, ufs.ErrNotEmpty,
// ufs.ErrNotSupported (the mount root), ufs.ErrPermission, ufs.ErrUnavailable.
func (fs *FS) Delete(ctx context.Context, p string) error {
	p, err := fs.clean("delete", p)
	if err != nil {
		return err
	}
	if p == "" {
		return fs.fail("delete", p, ufs.ErrNotSupported, "the mount root cannot be deleted")
	}
	err = fs.bucket.Object(fs.key(p)).Delete(ctx)
	if err == nil {
		return nil
	}
	if !isNotFound(ctx, err) {
		return fs.mapErr(ctx, "delete", p, err)
	}
	marker := fs.dirKey(p)
	q := &storage.Query{Prefix: marker}
	if qerr := q.SetAttrSelection([]string{"Name"}); qerr != nil {
		return fs.mapErr(ctx, "delete", p, qerr)
	}
	it := fs.bucket.Objects(ctx, q)
	it.PageInfo().MaxSize = 2
	hasMarker := false
	for range 2 {
		a, lerr := it.Next()
		if errors.Is(lerr, iterator.Done) {
			break
		}
		if lerr != nil {
			return fs.mapErr(ctx, "delete", p, lerr)
		}
		if a.Name != marker {
			return fs.fail("delete", p, ufs.ErrNotEmpty, "directory has children")
		}
		hasMarker = true
	}
	if !hasMarker {
		return fs.mapErr(ctx, "delete", p, err)
	}
	if err := fs.bucket.Object(marker).Delete(ctx); err != nil && !isNotFound(ctx, err) {
		return fs.mapErr(ctx, "delete", p, err)
	}
	return nil
}

// Mkdir creates p and its parents as zero-byte "dir/" markers, leaving
// existing markers alone. Safe for concurrent use. Returns ufs.ErrExist (p is
// a file), ufs.ErrNotDir (a parent is a file), ufs.ErrPermission,
// ufs.ErrUnavailable.
func (fs *FS) Mkdir(ctx context.Context, p string) error {
	p, err := fs.clean("mkdir", p)
	if err != nil {
		return err
	}
	if p == "" {
		_, err := fs.Stat(ctx, "")
		return err
	}
	parts := strings.Split(p, "/")
	for i := range parts {
		sub := strings.Join(parts[:i+1], "/")
		_, err := fs.bucket.Object(fs.key(sub)).Attrs(ctx)
		switch {
		case err == nil && i == len(parts)-1:
			return fs.fail("mkdir", sub, ufs.ErrExist, "a file exists there")
		case err == nil:
			return fs.fail("mkdir", p, ufs.ErrNotDir, fmt.Sprintf("parent %q is a file", sub))
		case !isNotFound(ctx, err):
			return fs.mapErr(ctx, "mkdir", sub, err)
		}
		w := fs.bucket.Object(fs.dirKey(sub)).If(storage.Conditions{DoesNotExist: true}).NewWriter(ctx)
		w.ChunkSize = minChunkSize
		if err := w.Close(); err != nil && classify(ctx, err).kind != ufs.ErrChanged {
			return fs.mapErr(ctx, "mkdir", sub, err) // ErrChanged: the marker exists
		}
	}
	return nil
}

// Rename moves the file src to dst, replacing dst, by a server-side copy of
// src's current generation and a delete of that generation. Not atomic: a
// reader may see both for a moment. Safe for concurrent use. Returns
// ufs.ErrNotFound, ufs.ErrIsDir (src is a directory or the root),
// ufs.ErrChanged (src was overwritten during the rename; dst then holds the
// older version and src the newer), ufs.ErrPermission, ufs.ErrUnavailable.
func (fs *FS) Rename(ctx context.Context, src, dst string) error {
	src, err := fs.clean("rename", src)
	if err != nil {
		return err
	}
	dst, err = fs.clean("rename", dst)
	if err != nil {
		return err
	}
	if src == "" || dst == "" {
		return fs.fail("rename", src, ufs.ErrIsDir, "the mount root is a directory")
	}
	from := fs.bucket.Object(fs.key(src))
	a, err := from.Attrs(ctx)
	if err != nil {
		if isNotFound(ctx, err) {
			if dir, derr := fs.hasChildren(ctx, fs.dirKey(src)); derr == nil && dir {
				return fs.fail("rename", src, ufs.ErrIsDir, "directories cannot be renamed on GCS")
			}
		}
		return fs.mapErr(ctx, "rename", src, err)
	}
	if src == dst {
		return nil
	}
	from = from.Generation(a.Generation)
	if _, err := fs.bucket.Object(fs.key(dst)).CopierFrom(from).Run(ctx); err != nil {
		return fs.mapErr(ctx, "rename", src, err)
	}
	if err := from.Delete(ctx); err != nil {
		if isNotFound(ctx, err) {
			return fs.fail("rename", src, ufs.ErrChanged, "source was overwritten or deleted during the rename")
		}
		return fs.mapErr(ctx, "rename", src, err)
	}
	return nil
}

// Close releases the client's connections. Not safe to call concurrently
// with other methods.
func (fs *FS) Close() error {
	return fs.client.Close()
}
