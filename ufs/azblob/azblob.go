// Package azblob is the Azure Blob Storage under-storage: a container, or a
// prefix of one, mounted as a ufs.FS through
// github.com/Azure/azure-sdk-for-go/sdk/storage/azblob.
//
// Mount URIs:
//
//	azblob://container/prefix                                 (account from options or environment)
//	azblob://account.blob.core.windows.net/container/prefix   (account URL)
//	wasbs://container@account.blob.core.windows.net/prefix    (also wasb, abfs, abfss)
//
// Directories are prefixes: a prefix with children, a zero-byte "dir/" marker
// blob, or a blob with metadata hdi_isfolder=true (what Data Lake tools
// write) is a directory. The ETag of a file is the blob's ETag; a read pinned
// with ReadOptions.IfMatch sends If-Match and fails with ufs.ErrChanged once
// the blob has been overwritten. Files are written as block blobs.
package azblob

import (
	"context"
	"fmt"
	"io"
	"iter"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/stratafs/strata/ufs"
)

// schemes are the URI schemes this backend registers.
func schemes() []string { return []string{"azblob", "wasb", "wasbs", "abfs", "abfss"} }

// listPageSize is the number of entries fetched per List request.
const listPageSize = 1000

// folderMetadata marks a directory blob written by Data Lake (HNS) tools.
const folderMetadata = "hdi_isfolder"

// FS is one mounted container or container prefix. It is safe for concurrent
// use; Close must not run concurrently with other calls.
type FS struct {
	cont        *container.Client
	transport   *http.Transport
	serviceURL  string // blob service URL, for messages (no query)
	container   string
	prefix      string // clean blob-name prefix, "" for the whole container
	blockSize   int64
	concurrency int
	// listPageSize is the number of entries per List request; tests lower it.
	listPageSize int32
}

var (
	_ ufs.FS      = (*FS)(nil)
	_ ufs.Renamer = (*FS)(nil)
)

// New opens an Azure Blob location (schemes azblob, wasb, wasbs, abfs,
// abfss) with the mount's options (see the Opt* constants) and, when no
// credential option is given, the AZURE_STORAGE_* environment. It does not
// call the service; ufs.Check does. Errors wrap ufs.ErrInvalidURI for a
// malformed URI or option, ufs.ErrPermission when no credentials can be
// found; they never contain credentials. Safe for concurrent use.
func New(ctx context.Context, loc ufs.Location, opts ufs.Options) (*FS, error) {
	tg, err := parseTarget(loc)
	if err != nil {
		return nil, err
	}
	prefix, err := ufs.CleanPath(tg.prefix)
	if err != nil {
		return nil, fmt.Errorf("%w: azblob: %q: %w", ufs.ErrInvalidURI, loc.Raw, err)
	}
	cfg, err := parseConfig(tg, opts, os.Getenv)
	if err != nil {
		return nil, err
	}
	tr := newTransport()
	cont, err := cfg.newContainerClient(tr)
	if err != nil {
		tr.CloseIdleConnections()
		return nil, err
	}
	return &FS{
		cont: cont, transport: tr, serviceURL: cfg.serviceURL, container: cfg.container, prefix: prefix,
		blockSize: cfg.blockSize, concurrency: cfg.concurrency, listPageSize: listPageSize,
	}, nil
}

// Register adds the azblob, wasb, wasbs, abfs and abfss schemes to r. It
// panics if one is already registered. Safe for concurrent use (the registry
// locks).
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

// key is the blob name of a clean UFS path.
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
// root of a whole-container mount).
func (fs *FS) dirKey(p string) string {
	if k := fs.key(p); k != "" {
		return k + "/"
	}
	return ""
}

// uri names p for error messages.
func (fs *FS) uri(p string) string {
	u := "azblob://" + fs.container
	if k := fs.key(p); k != "" {
		u += "/" + k
	}
	return u
}

func (fs *FS) clean(op, p string) (string, error) {
	c, err := ufs.CleanPath(p)
	if err != nil {
		return "", &opError{op: op, uri: fs.uri(""), detail: err.Error(), cause: err}
	}
	return c, nil
}

func (fs *FS) blob(p string) *blob.Client { return fs.cont.NewBlobClient(fs.key(p)) }

// quoteETag puts an ETag in its quoted header form: listings return it bare,
// property headers quoted, and FileInfo must compare equal for both.
func quoteETag(e *azcore.ETag) string {
	if e == nil {
		return ""
	}
	s := string(*e)
	if s == "" || strings.HasPrefix(s, `"`) || strings.HasPrefix(s, `W/"`) {
		return s
	}
	return `"` + s + `"`
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// isFolder reports whether blob metadata marks a Data Lake directory.
func isFolder(md map[string]*string) bool {
	for k, v := range md {
		if strings.EqualFold(k, folderMetadata) && v != nil && strings.EqualFold(*v, "true") {
			return true
		}
	}
	return false
}

// Stat describes p: the blob p, else the directory p (a prefix with
// children, a marker or a folder blob), else ufs.ErrNotFound. Stat("")
// checks that the container exists and can be listed. Safe for concurrent
// use. Returns ufs.ErrNotFound, ufs.ErrPermission, ufs.ErrUnavailable.
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
	props, err := fs.blob(p).GetProperties(ctx, nil)
	if err == nil {
		if isFolder(props.Metadata) {
			return ufs.FileInfo{Path: p, IsDir: true}, nil
		}
		return ufs.FileInfo{Path: p, Size: deref(props.ContentLength), ModTime: deref(props.LastModified), ETag: quoteETag(props.ETag)}, nil
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

// rootErr maps an error of an operation on the container itself; a missing
// container is reported by name.
func (fs *FS) rootErr(ctx context.Context, op string, err error) error {
	c := classify(ctx, err)
	switch c.kind {
	case ufs.ErrNotFound:
		c.detail = fmt.Sprintf("container %q does not exist at %s", fs.container, fs.serviceURL)
	case ufs.ErrPermission, ufs.ErrUnavailable:
		c.detail += " (service " + fs.serviceURL + ")"
	}
	return &opError{op: op, uri: fs.uri(""), kind: c.kind, detail: c.detail, cause: err, ctxErr: ctx.Err()}
}

// firstNames returns up to n blob names starting with prefix.
func (fs *FS) firstNames(ctx context.Context, prefix string, n int32) ([]string, error) {
	opts := &container.ListBlobsFlatOptions{MaxResults: &n}
	if prefix != "" {
		opts.Prefix = &prefix
	}
	pager := fs.cont.NewListBlobsFlatPager(opts)
	if !pager.More() {
		return nil, nil
	}
	page, err := pager.NextPage(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, b := range page.Segment.BlobItems {
		if b != nil && b.Name != nil {
			names = append(names, *b.Name)
		}
	}
	return names, nil
}

// hasChildren reports whether any blob's name starts with prefix (a marker
// included).
func (fs *FS) hasChildren(ctx context.Context, prefix string) (bool, error) {
	names, err := fs.firstNames(ctx, prefix, 1)
	return len(names) > 0, err
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
		size := fs.listPageSize
		opts := &container.ListBlobsHierarchyOptions{Include: container.ListBlobsInclude{Metadata: true}, MaxResults: &size}
		if prefix != "" {
			opts.Prefix = &prefix
		}
		pager := fs.cont.NewListBlobsHierarchyPager("/", opts)
		seen := false
		// Folder blobs (hdi_isfolder) and their prefixes name one directory.
		folders := map[string]struct{}{}
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				if dir == "" {
					err = fs.rootErr(ctx, "list", err)
				} else {
					err = fs.mapErr(ctx, "list", dir, err)
				}
				yield(ufs.FileInfo{}, err)
				return
			}
			seg := page.Segment
			if seg == nil {
				continue
			}
			for _, b := range seg.BlobItems {
				if b == nil || b.Name == nil {
					continue
				}
				seen = true
				if *b.Name == prefix { // the directory's own marker
					continue
				}
				name := strings.TrimPrefix(*b.Name, prefix)
				if !validName(name) {
					continue
				}
				var fi ufs.FileInfo
				if isFolder(b.Metadata) {
					if _, dup := folders[name]; dup {
						continue
					}
					folders[name] = struct{}{}
					fi = ufs.FileInfo{Path: ufs.Join(dir, name), IsDir: true}
				} else {
					pr := b.Properties
					if pr == nil {
						pr = &container.BlobProperties{}
					}
					fi = ufs.FileInfo{Path: ufs.Join(dir, name), Size: deref(pr.ContentLength), ModTime: deref(pr.LastModified), ETag: quoteETag(pr.ETag)}
				}
				if !yield(fi, nil) {
					return
				}
			}
			for _, bp := range seg.BlobPrefixes {
				if bp == nil || bp.Name == nil {
					continue
				}
				seen = true
				name := strings.TrimSuffix(strings.TrimPrefix(*bp.Name, prefix), "/")
				if !validName(name) {
					continue
				}
				if _, dup := folders[name]; dup {
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
		// Nothing under dir/: a file, a folder blob, or nothing at all.
		props, err := fs.blob(dir).GetProperties(ctx, nil)
		switch {
		case err == nil && isFolder(props.Metadata):
			// An empty Data Lake directory.
		case err == nil:
			yield(ufs.FileInfo{}, fs.fail("list", dir, ufs.ErrNotDir, ""))
		case isNotFound(ctx, err):
			yield(ufs.FileInfo{}, fs.fail("list", dir, ufs.ErrNotFound, "no such directory"))
		default:
			yield(ufs.FileInfo{}, fs.mapErr(ctx, "list", dir, err))
		}
	}
}

// validName reports whether a listed name can be a UFS path element; names
// such as "a//b" or "a/./b" cannot be addressed and are skipped.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.Contains(name, "/")
}

// OpenRange reads n bytes of p from off (n < 0: to the end). A range past the
// end is cut; off at or beyond the size, or n == 0, gives an empty reader once
// the blob is known to exist. opts.IfMatch is an ETag from Stat, sent as
// If-Match: the read fails with ufs.ErrChanged when the blob has another
// ETag (or is gone: the error then also matches ufs.ErrNotFound). The reader
// resumes a broken download (pinned to the same ETag). Safe for concurrent
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
	var cond *blob.AccessConditions
	if opts.IfMatch != "" {
		et := azcore.ETag(opts.IfMatch)
		cond = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: &et}}
	}
	bc := fs.blob(p)
	if n == 0 {
		return fs.emptyRead(ctx, bc, p, cond)
	}
	count := n
	if n < 0 {
		count = 0 // azblob: to the end
	}
	resp, err := bc.DownloadStream(ctx, &blob.DownloadStreamOptions{Range: blob.HTTPRange{Offset: off, Count: count}, AccessConditions: cond})
	if err != nil {
		c := classify(ctx, err)
		switch {
		case c.status == http.StatusRequestedRangeNotSatisfiable:
			return fs.emptyRead(ctx, bc, p, cond)
		case c.kind == ufs.ErrNotFound:
			return nil, fs.readNotFound(ctx, p, cond != nil, err)
		}
		return nil, fs.mapErr(ctx, "read", p, err)
	}
	if isFolder(resp.Metadata) {
		resp.Body.Close()
		return nil, fs.fail("read", p, ufs.ErrIsDir, "")
	}
	body := resp.NewRetryReader(ctx, &blob.RetryReaderOptions{MaxRetries: 3})
	return &reader{r: body, fs: fs, ctx: ctx, p: p}, nil
}

// emptyRead checks that the blob exists (with cond) and returns an empty
// reader.
func (fs *FS) emptyRead(ctx context.Context, bc *blob.Client, p string, cond *blob.AccessConditions) (io.ReadCloser, error) {
	props, err := bc.GetProperties(ctx, &blob.GetPropertiesOptions{AccessConditions: cond})
	if err != nil {
		if isNotFound(ctx, err) {
			return nil, fs.readNotFound(ctx, p, cond != nil, err)
		}
		return nil, fs.mapErr(ctx, "read", p, err)
	}
	if isFolder(props.Metadata) {
		return nil, fs.fail("read", p, ufs.ErrIsDir, "")
	}
	return io.NopCloser(strings.NewReader("")), nil
}

// readNotFound explains a missing blob: a directory, a pinned version that
// is gone, or plain absence.
func (fs *FS) readNotFound(ctx context.Context, p string, pinned bool, err error) error {
	if dir, derr := fs.hasChildren(ctx, fs.dirKey(p)); derr == nil && dir {
		return fs.fail("read", p, ufs.ErrIsDir, "")
	}
	if pinned {
		return &opError{op: "read", uri: fs.uri(p), kind: ufs.ErrChanged, detail: "the blob was deleted",
			cause: fmt.Errorf("%w: %w", ufs.ErrNotFound, err), ctxErr: ctx.Err()}
	}
	return fs.mapErr(ctx, "read", p, err)
}

// reader maps the download's errors like every other error of FS.
type reader struct {
	r   io.ReadCloser
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

// Delete removes the file p, or the directory p when it is empty (its marker
// or folder blob, if any). Safe for concurrent use. Returns ufs.ErrNotFound,
// ufs.ErrNotEmpty, ufs.ErrNotSupported (the mount root), ufs.ErrPermission,
// ufs.ErrUnavailable.
func (fs *FS) Delete(ctx context.Context, p string) error {
	p, err := fs.clean("delete", p)
	if err != nil {
		return err
	}
	if p == "" {
		return fs.fail("delete", p, ufs.ErrNotSupported, "the mount root cannot be deleted")
	}
	bc := fs.blob(p)
	props, perr := bc.GetProperties(ctx, nil)
	folder := perr == nil && isFolder(props.Metadata)
	switch {
	case perr == nil && !folder:
		if err := fs.deleteBlob(ctx, bc); err != nil {
			return fs.mapErr(ctx, "delete", p, err)
		}
		return nil
	case perr != nil && !isNotFound(ctx, perr):
		return fs.mapErr(ctx, "delete", p, perr)
	}
	marker := fs.dirKey(p)
	names, err := fs.firstNames(ctx, marker, 2)
	if err != nil {
		return fs.mapErr(ctx, "delete", p, err)
	}
	hasMarker := false
	for _, n := range names {
		if n != marker {
			return fs.fail("delete", p, ufs.ErrNotEmpty, "directory has children")
		}
		hasMarker = true
	}
	if !hasMarker && !folder {
		return fs.mapErr(ctx, "delete", p, perr)
	}
	if hasMarker {
		if err := fs.deleteBlob(ctx, fs.cont.NewBlobClient(marker)); err != nil {
			return fs.mapErr(ctx, "delete", p, err)
		}
	}
	if folder {
		if err := fs.deleteBlob(ctx, bc); err != nil {
			return fs.mapErr(ctx, "delete", p, err)
		}
	}
	return nil
}

// deleteBlob deletes a blob and its snapshots; a blob already gone is fine.
func (fs *FS) deleteBlob(ctx context.Context, bc *blob.Client) error {
	inc := blob.DeleteSnapshotsOptionTypeInclude
	_, err := bc.Delete(ctx, &blob.DeleteOptions{DeleteSnapshots: &inc})
	if err != nil && isNotFound(ctx, err) {
		return nil
	}
	return err
}

// Mkdir creates p and its parents as zero-byte "dir/" marker blobs, leaving
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
		props, err := fs.blob(sub).GetProperties(ctx, nil)
		switch {
		case err == nil && isFolder(props.Metadata):
			continue
		case err == nil && i == len(parts)-1:
			return fs.fail("mkdir", sub, ufs.ErrExist, "a file exists there")
		case err == nil:
			return fs.fail("mkdir", p, ufs.ErrNotDir, fmt.Sprintf("parent %q is a file", sub))
		case !isNotFound(ctx, err):
			return fs.mapErr(ctx, "mkdir", sub, err)
		}
		anyTag := azcore.ETagAny
		_, err = fs.cont.NewBlockBlobClient(fs.dirKey(sub)).UploadBuffer(ctx, nil, &blockblob.UploadBufferOptions{
			AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: &anyTag}},
		})
		if err != nil {
			if c := classify(ctx, err); c.kind == ufs.ErrExist || c.kind == ufs.ErrChanged {
				continue // the marker exists
			}
			return fs.mapErr(ctx, "mkdir", sub, err)
		}
	}
	return nil
}

// copyPoll is how often Rename checks a pending server-side copy.
const copyPoll = 200 * time.Millisecond

// Rename moves the file src to dst, replacing dst, by a server-side copy
// (Copy Blob, pinned to src's ETag) and a delete of src (If-Match the same
// ETag). Not atomic: a reader may see both for a moment. Safe for concurrent
// use. Returns ufs.ErrNotFound, ufs.ErrIsDir (src is a directory or the
// root), ufs.ErrChanged (src changed during the rename; dst then holds the
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
	from := fs.blob(src)
	props, err := from.GetProperties(ctx, nil)
	if err != nil {
		if isNotFound(ctx, err) {
			if dir, derr := fs.hasChildren(ctx, fs.dirKey(src)); derr == nil && dir {
				return fs.fail("rename", src, ufs.ErrIsDir, "directories cannot be renamed on Azure Blob")
			}
		}
		return fs.mapErr(ctx, "rename", src, err)
	}
	if isFolder(props.Metadata) {
		return fs.fail("rename", src, ufs.ErrIsDir, "directories cannot be renamed on Azure Blob")
	}
	if src == dst {
		return nil
	}
	to := fs.blob(dst)
	resp, err := to.StartCopyFromURL(ctx, from.URL(), &blob.StartCopyFromURLOptions{
		SourceModifiedAccessConditions: &blob.SourceModifiedAccessConditions{SourceIfMatch: props.ETag},
	})
	if err != nil {
		return fs.mapErr(ctx, "rename", src, err)
	}
	status := deref(resp.CopyStatus)
	for status == blob.CopyStatusTypePending {
		select {
		case <-ctx.Done():
			if resp.CopyID != nil {
				_, _ = to.AbortCopyFromURL(context.WithoutCancel(ctx), *resp.CopyID, nil)
			}
			return &opError{op: "rename", uri: fs.uri(src), detail: "copy interrupted", cause: ctx.Err(), ctxErr: ctx.Err()}
		case <-time.After(copyPoll):
		}
		dp, err := to.GetProperties(ctx, nil)
		if err != nil {
			return fs.mapErr(ctx, "rename", dst, err)
		}
		status = deref(dp.CopyStatus)
	}
	if status != blob.CopyStatusTypeSuccess {
		return fs.fail("rename", src, nil, fmt.Sprintf("server-side copy to %s ended with status %q", fs.uri(dst), status))
	}
	_, err = from.Delete(ctx, &blob.DeleteOptions{AccessConditions: &blob.AccessConditions{
		ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: props.ETag},
	}})
	if err != nil {
		if c := classify(ctx, err); c.kind == ufs.ErrChanged || c.kind == ufs.ErrNotFound {
			return fs.fail("rename", src, ufs.ErrChanged, "source was overwritten or deleted during the rename")
		}
		return fs.mapErr(ctx, "rename", src, err)
	}
	return nil
}

// Close releases the FS's idle connections. Not safe to call concurrently
// with other methods.
func (fs *FS) Close() error {
	fs.transport.CloseIdleConnections()
	return nil
}
