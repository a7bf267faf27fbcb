package s3api

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/ufs"
)

// maxParts is S3's limit on the parts of an upload (and on part numbers).
const maxParts = 10000

// uploadMeta describes a multipart upload in progress (upload.json).
type uploadMeta struct {
	Bucket    string    `json:"bucket"`
	Key       string    `json:"key"`
	Initiated time.Time `json:"initiated"`
	// Attrs are the object's headers and metadata, from the
	// CreateMultipartUpload request.
	Attrs ufs.Attrs `json:"attrs"`
}

// completedMeta is what a completed upload leaves behind (completed.json,
// until the upload expires): the answer to give a retried
// CompleteMultipartUpload.
type completedMeta struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	ETag   string `json:"etag"`
}

// partInfo is one staged part.
type partInfo struct {
	Number  int
	ETag    string // hex MD5
	Size    int64
	ModTime time.Time
	path    string
}

// multipartStore stages multipart uploads on local disk: one directory per
// upload (named by its random id) holding upload.json and one file per part,
// named "NNNNN.<md5>" so that listing the directory lists the parts. A part
// is written to a temporary file and renamed into place, so a part is either
// whole or absent. Safe for concurrent use; one process per directory.
type multipartStore struct {
	dir    string
	expiry time.Duration

	mu    sync.Mutex
	locks map[string]*uploadLock
}

type uploadLock struct {
	mu   sync.Mutex
	refs int
}

func newMultipartStore(dir string, expiry time.Duration) (*multipartStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("s3api: multipart staging directory: %w", err)
	}
	return &multipartStore{dir: dir, expiry: expiry, locks: map[string]*uploadLock{}}, nil
}

// validUploadID accepts the ids newUploadID makes (32 hex digits), so an id
// from a request can never name another path.
func validUploadID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && strings.ToLower(id) == id
}

// lock serialises the changes to one upload; call the returned function to
// unlock.
func (m *multipartStore) lock(id string) func() {
	m.mu.Lock()
	l, ok := m.locks[id]
	if !ok {
		l = &uploadLock{}
		m.locks[id] = l
	}
	l.refs++
	m.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		m.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(m.locks, id)
		}
		m.mu.Unlock()
	}
}

func (m *multipartStore) uploadDir(id string) string { return filepath.Join(m.dir, id) }

// create starts an upload of bucket/key, with the attributes the object
// will have, and returns its id.
func (m *multipartStore) create(bucket, key string, attrs ufs.Attrs, now time.Time) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b[:])
	dir := m.uploadDir(id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("s3api: stage upload: %w", err)
	}
	data, err := json.Marshal(uploadMeta{Bucket: bucket, Key: key, Initiated: now.UTC(), Attrs: attrs})
	if err == nil {
		err = writeFileAtomic(filepath.Join(dir, "upload.json"), data)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("s3api: stage upload: %w", err)
	}
	return id, nil
}

// writeFileAtomic writes data to a temporary file beside path and renames it.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// meta reads an upload's description. Returns NoSuchUpload.
func (m *multipartStore) meta(id string) (uploadMeta, error) {
	var um uploadMeta
	if !validUploadID(id) {
		return um, apiErr("NoSuchUpload", "")
	}
	data, err := os.ReadFile(filepath.Join(m.uploadDir(id), "upload.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return um, apiErr("NoSuchUpload", "")
	}
	if err != nil {
		return um, fmt.Errorf("s3api: read upload %s: %w", id, err)
	}
	if err := json.Unmarshal(data, &um); err != nil {
		return um, fmt.Errorf("s3api: upload %s: bad upload.json: %w", id, err)
	}
	return um, nil
}

// check returns NoSuchUpload unless id is an upload of bucket/key.
func (m *multipartStore) check(id, bucket, key string) (uploadMeta, error) {
	um, err := m.meta(id)
	if err != nil {
		return um, err
	}
	if um.Bucket != bucket || um.Key != key {
		return um, apiErr("NoSuchUpload", "")
	}
	return um, nil
}

// putPart stages part n of an upload from r; sum returns the part's hex MD5
// once r is read to its end. A part uploaded again replaces the old one.
func (m *multipartStore) putPart(id string, n int, r io.Reader, sum func() string) (string, error) {
	dir := m.uploadDir(id)
	f, err := os.CreateTemp(dir, "tmp-")
	if errors.Is(err, fs.ErrNotExist) {
		return "", apiErr("NoSuchUpload", "")
	}
	if err != nil {
		return "", fmt.Errorf("s3api: stage part: %w", err)
	}
	tmp := f.Name()
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return "", err
	}
	etag := sum()
	unlock := m.lock(id)
	defer unlock()
	if _, err := os.Stat(filepath.Join(dir, "upload.json")); err != nil {
		_ = os.Remove(tmp)
		return "", apiErr("NoSuchUpload", "")
	}
	old, _ := filepath.Glob(filepath.Join(dir, fmt.Sprintf("%05d.*", n)))
	final := filepath.Join(dir, fmt.Sprintf("%05d.%s", n, etag))
	if err := os.Rename(tmp, final); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("s3api: stage part: %w", err)
	}
	for _, o := range old {
		if o != final {
			_ = os.Remove(o)
		}
	}
	return etag, nil
}

// parts lists the staged parts of an upload by part number.
func (m *multipartStore) parts(id string) ([]partInfo, error) {
	dir := m.uploadDir(id)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, apiErr("NoSuchUpload", "")
	}
	if err != nil {
		return nil, fmt.Errorf("s3api: list parts: %w", err)
	}
	var out []partInfo
	for _, e := range ents {
		num, etag, ok := strings.Cut(e.Name(), ".")
		if !ok || len(num) != 5 || len(etag) != 32 {
			continue
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 || n > maxParts {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // replaced meanwhile
		}
		out = append(out, partInfo{Number: n, ETag: etag, Size: fi.Size(), ModTime: fi.ModTime(), path: filepath.Join(dir, e.Name())})
	}
	slices.SortFunc(out, func(a, b partInfo) int { return a.Number - b.Number })
	return out, nil
}

// finish marks an upload completed: its parts and upload.json go, and
// completed.json keeps the answer for a retried completion until the upload
// directory expires. Call it holding the upload's lock.
func (m *multipartStore) finish(id string, c completedMeta) error {
	dir := m.uploadDir(id)
	data, err := json.Marshal(c)
	if err == nil {
		err = writeFileAtomic(filepath.Join(dir, "completed.json"), data)
	}
	if err == nil {
		err = os.Remove(filepath.Join(dir, "upload.json"))
	}
	if err != nil {
		return m.remove(id)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("s3api: remove the parts of upload %s: %w", id, err)
	}
	var errs []error
	for _, e := range ents {
		if e.Name() != "completed.json" {
			errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("s3api: remove the parts of upload %s: %w", id, err)
	}
	// The directory's mtime now dates the completion, for sweep.
	now := time.Now()
	_ = os.Chtimes(dir, now, now)
	return nil
}

// completed returns what the completion of upload id of bucket/key
// answered, when it completed.
func (m *multipartStore) completed(id, bucket, key string) (completedMeta, bool) {
	var c completedMeta
	if !validUploadID(id) {
		return c, false
	}
	data, err := os.ReadFile(filepath.Join(m.uploadDir(id), "completed.json"))
	if err != nil || json.Unmarshal(data, &c) != nil || c.Bucket != bucket || c.Key != key {
		return completedMeta{}, false
	}
	return c, true
}

// remove deletes an upload and its parts.
func (m *multipartStore) remove(id string) error {
	if err := os.RemoveAll(m.uploadDir(id)); err != nil {
		return fmt.Errorf("s3api: remove upload %s: %w", id, err)
	}
	return nil
}

// uploads lists the uploads in progress.
func (m *multipartStore) uploads() ([]string, error) {
	ents, err := os.ReadDir(m.dir)
	if err != nil {
		return nil, fmt.Errorf("s3api: list uploads: %w", err)
	}
	var ids []string
	for _, e := range ents {
		if e.IsDir() && validUploadID(e.Name()) {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// sweep removes the uploads started more than the expiry ago.
func (m *multipartStore) sweep(now time.Time) (removed int) {
	ids, err := m.uploads()
	if err != nil {
		return 0
	}
	for _, id := range ids {
		um, err := m.meta(id)
		var ae *Error
		if errors.As(err, &ae) {
			// No upload.json: a create that failed half-way.
			if fi, serr := os.Stat(m.uploadDir(id)); serr == nil && now.Sub(fi.ModTime()) > m.expiry {
				_ = m.remove(id)
				removed++
			}
			continue
		}
		if err == nil && now.Sub(um.Initiated) > m.expiry {
			unlock := m.lock(id)
			if m.remove(id) == nil {
				removed++
			}
			unlock()
		}
	}
	return removed
}

// sweepUploads removes expired uploads until the server closes.
func (s *Server) sweepUploads() {
	every := min(s.cfg.MultipartExpiry.D()/4, time.Hour)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n := s.mp.sweep(time.Now()); n > 0 {
			s.log.Info("removed expired multipart uploads", "count", n, "expiry", s.cfg.MultipartExpiry.D())
		}
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

// partNumber parses the partNumber query parameter.
func partNumber(q query) (int, *Error) {
	n, err := strconv.Atoi(q.Get("partNumber"))
	if err != nil || n < 1 || n > maxParts {
		return 0, apiErr("InvalidArgument", "part number must be an integer between 1 and %d, inclusive", maxParts)
	}
	return n, nil
}

func (s *Server) createMultipartUpload(ctx context.Context, rq *request) error {
	if _, dir, err := s.objectPath(ctx, rq, true); err != nil {
		return err
	} else if dir {
		return apiErr("InvalidArgument", "a key ending in '/' names a directory; it cannot hold data")
	}
	attrs, aerr := attrsFromHeaders(rq.r.Header)
	if aerr != nil {
		return aerr
	}
	if aerr := checkExpires(attrs); aerr != nil {
		return aerr
	}
	id, err := s.mp.create(rq.t.Bucket, rq.t.Key, attrs, time.Now())
	if err != nil {
		return err
	}
	return s.writeXML(rq, initiateMultipartUploadResult{NS: s3NS, Bucket: rq.t.Bucket, Key: rq.t.Key, UploadID: id})
}

func (s *Server) uploadPart(ctx context.Context, rq *request) error {
	if _, err := s.bucketPath(ctx, rq); err != nil {
		return err
	}
	n, aerr := partNumber(rq.q)
	if aerr != nil {
		return aerr
	}
	id := rq.q.Get("uploadId")
	if _, err := s.mp.check(id, rq.t.Bucket, rq.t.Key); err != nil {
		return err
	}
	size, aerr := bodySize(rq.r, rq.id)
	if aerr != nil {
		return aerr
	}
	if size > int64(s.cfg.MaxPartSize) {
		return apiErr("EntityTooLarge", "the part is %d bytes; the limit is %d", size, int64(s.cfg.MaxPartSize))
	}
	body, aerr := newPayload(rq.r, rq.id, size)
	if aerr != nil {
		return aerr
	}
	etag, err := s.mp.putPart(id, n, body, body.ETag)
	if berr := body.Err(); berr != nil {
		return berr
	}
	if err != nil {
		return err
	}
	h := rq.w.Header()
	h.Set("ETag", `"`+etag+`"`)
	if name, v := body.Checksum(); name != "" {
		h.Set(name, v)
	}
	rq.w.WriteHeader(http.StatusOK)
	return nil
}

// md5Reader computes the MD5 of what it reads.
type md5Reader struct {
	r io.Reader
	h hash.Hash
}

func (m *md5Reader) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	m.h.Write(p[:n])
	return n, err
}

func (m *md5Reader) sum() string { return hex.EncodeToString(m.h.Sum(nil)) }

// uploadPartCopy stages a part from (a range of) an object of the namespace.
func (s *Server) uploadPartCopy(ctx context.Context, rq *request) error {
	if _, err := s.bucketPath(ctx, rq); err != nil {
		return err
	}
	n, aerr := partNumber(rq.q)
	if aerr != nil {
		return aerr
	}
	id := rq.q.Get("uploadId")
	if _, err := s.mp.check(id, rq.t.Bucket, rq.t.Key); err != nil {
		return err
	}
	f, err := s.openCopySource(ctx, rq)
	if err != nil {
		return err
	}
	size := f.Size()
	rng := byteRange{0, size}
	if v := rq.r.Header.Get("X-Amz-Copy-Source-Range"); v != "" {
		first, last, ok := strings.Cut(strings.TrimPrefix(v, "bytes="), "-")
		a, aok := parseDigits(first)
		b, bok := parseDigits(last)
		if !strings.HasPrefix(v, "bytes=") || !ok || !aok || !bok || b < a {
			return apiErr("InvalidArgument", "x-amz-copy-source-range must be bytes=first-last")
		}
		if b >= size {
			return apiErr("InvalidRange", "the x-amz-copy-source-range %s lies outside the %d-byte source", truncate(v, 64), size)
		}
		rng = byteRange{a, b - a + 1}
	}
	if rng.Length > int64(s.cfg.MaxPartSize) {
		return apiErr("EntityTooLarge", "")
	}
	st := newObjectStream(ctx, f, s.bufs, rng.Start, rng.Length)
	defer st.Close()
	mr := &md5Reader{r: st, h: md5.New()}
	etag, err := s.mp.putPart(id, n, mr, mr.sum)
	if err != nil {
		return err
	}
	return s.writeXML(rq, copyPartResult{NS: s3NS, ETag: `"` + etag + `"`, LastModified: isoTime(time.Now())})
}

// partsReader reads staged parts one after the other, checking each has the
// size it had when the upload was completed.
type partsReader struct {
	parts []partInfo
	cur   *os.File
	left  int64
}

func (p *partsReader) Read(b []byte) (int, error) {
	for p.cur == nil || p.left == 0 {
		if p.cur != nil {
			_ = p.cur.Close()
			p.cur = nil
		}
		if len(p.parts) == 0 {
			return 0, io.EOF
		}
		f, err := os.Open(p.parts[0].path)
		if err != nil {
			return 0, fmt.Errorf("s3api: part %d: %w", p.parts[0].Number, err)
		}
		p.cur, p.left = f, p.parts[0].Size
		p.parts = p.parts[1:]
	}
	n, err := p.cur.Read(b[:min(int64(len(b)), p.left)])
	p.left -= int64(n)
	if err == io.EOF && p.left > 0 {
		return n, fmt.Errorf("s3api: a staged part is shorter than it was: %w", io.ErrUnexpectedEOF)
	}
	if err == io.EOF {
		err = nil
	}
	return n, err
}

func (p *partsReader) Close() error {
	if p.cur != nil {
		return p.cur.Close()
	}
	return nil
}

// completeMultipartUpload checks the parts list, then streams the parts,
// concatenated, into client.CreateWith (with the attributes of
// CreateMultipartUpload and the request's If-None-Match / If-Match): the
// object appears in the under-storage whole, or not at all. The ETag
// answered is the one the UFS stored (it may have cut the object into other
// parts than the client's), which GET and HEAD serve afterwards. A retried
// completion of an upload that completed answers the same.
func (s *Server) completeMultipartUpload(ctx context.Context, rq *request) error {
	p, dir, err := s.objectPath(ctx, rq, true)
	if err != nil {
		return err
	}
	if dir {
		return apiErr("InvalidArgument", "a key ending in '/' names a directory; it cannot hold data")
	}
	wc, aerr := parseWriteCond(rq.r.Header)
	if aerr != nil {
		return aerr
	}
	id := rq.q.Get("uploadId")
	if _, err := s.mp.check(id, rq.t.Bucket, rq.t.Key); err != nil {
		return s.completedAgain(rq, id, err)
	}
	cond, err := s.checkWriteCond(ctx, p, wc)
	if err != nil {
		return err
	}
	ock, aerr := takeObjectChecksum(rq.r.Header)
	if aerr != nil {
		return aerr
	}
	var req completeMultipartUpload
	if err := s.readXML(rq, &req); err != nil {
		return err
	}
	if len(req.Parts) == 0 {
		return apiErr("MalformedXML", "you must specify at least one part")
	}
	if len(req.Parts) > maxParts {
		return apiErr("MalformedXML", "an upload has at most %d parts", maxParts)
	}
	unlock := s.mp.lock(id)
	defer unlock()
	um, err := s.mp.check(id, rq.t.Bucket, rq.t.Key)
	if err != nil {
		return s.completedAgain(rq, id, err) // completed or aborted while the body arrived
	}
	staged, err := s.mp.parts(id)
	if err != nil {
		return err
	}
	byNum := map[int]partInfo{}
	for _, pi := range staged {
		byNum[pi.Number] = pi
	}
	chosen := make([]partInfo, 0, len(req.Parts))
	var total int64
	for i, cp := range req.Parts {
		if i > 0 && cp.PartNumber <= req.Parts[i-1].PartNumber {
			return apiErr("InvalidPartOrder", "")
		}
		pi, ok := byNum[cp.PartNumber]
		if !ok || strings.Trim(strings.TrimSpace(cp.ETag), `"`) != pi.ETag {
			e := apiErr("InvalidPart", "")
			e.extra = append(e.extra, xmlField{"PartNumber", strconv.Itoa(cp.PartNumber)}, xmlField{"UploadId", id})
			return e
		}
		if i < len(req.Parts)-1 && pi.Size < int64(s.cfg.MinPartSize) {
			e := apiErr("EntityTooSmall", "part %d is %d bytes; every part but the last must be at least %d", cp.PartNumber, pi.Size, int64(s.cfg.MinPartSize))
			e.extra = append(e.extra, xmlField{"PartNumber", strconv.Itoa(cp.PartNumber)},
				xmlField{"ProposedSize", strconv.FormatInt(pi.Size, 10)}, xmlField{"MinSizeAllowed", strconv.FormatInt(int64(s.cfg.MinPartSize), 10)})
			return e
		}
		total += pi.Size
		chosen = append(chosen, pi)
	}
	if total > int64(s.cfg.MaxObjectSize) {
		return apiErr("EntityTooLarge", "")
	}
	location := s.location(rq)
	return s.longOp(rq, func() (any, error) {
		pr := &partsReader{parts: chosen}
		defer pr.Close()
		var src io.Reader = pr
		var ck *checkingReader
		if ock != nil {
			ck = ock.reader(pr)
			src = ck
		}
		fi, err := s.c.CreateWith(ctx, p, src, total, client.CreateOptions{Cond: cond, Attrs: um.Attrs})
		if err != nil {
			return nil, writeErr(err, wc, um.Attrs)
		}
		if ck != nil && !ck.done {
			// The store stopped at the declared size: check now, and take
			// the object back if the checksum is wrong.
			if _, cerr := io.Copy(io.Discard, ck); cerr != nil {
				if rerr := s.c.Remove(context.WithoutCancel(ctx), p, false); rerr != nil {
					s.log.Warn("remove an object whose checksum failed", "path", p, "err", rerr)
				}
				return nil, cerr
			}
		}
		etag := s3ETag(fi)
		if err := s.mp.finish(id, completedMeta{Bucket: rq.t.Bucket, Key: rq.t.Key, ETag: etag}); err != nil {
			s.log.Warn("remove the parts of a completed upload", "upload", id, "err", err)
		}
		res := completeMultipartUploadResult{NS: s3NS, Location: location, Bucket: rq.t.Bucket, Key: rq.t.Key, ETag: etag}
		if ock != nil {
			res.setChecksum(ock.alg, ock.want)
		}
		return res, nil
	})
}

// location is the URL of the object a request addresses.
func (s *Server) location(rq *request) string {
	scheme := "http"
	if rq.r.TLS != nil {
		scheme = "https"
	}
	if rq.t.VirtualHost {
		return scheme + "://" + rq.r.Host + "/" + uriEncode(rq.t.Key, true)
	}
	return scheme + "://" + rq.r.Host + "/" + uriEncode(rq.t.Bucket, false) + "/" + uriEncode(rq.t.Key, true)
}

// completedAgain answers a CompleteMultipartUpload of an upload that is
// not in progress: as its completion did when it completed (S3 answers a
// retried completion so), else err (NoSuchUpload).
func (s *Server) completedAgain(rq *request, id string, err error) error {
	c, ok := s.mp.completed(id, rq.t.Bucket, rq.t.Key)
	if !ok {
		return err
	}
	return s.writeXML(rq, completeMultipartUploadResult{NS: s3NS, Location: s.location(rq), Bucket: c.Bucket, Key: c.Key, ETag: c.ETag})
}

func (s *Server) abortMultipartUpload(ctx context.Context, rq *request) error {
	if _, err := s.bucketPath(ctx, rq); err != nil {
		return err
	}
	id := rq.q.Get("uploadId")
	unlock := s.mp.lock(id)
	defer unlock()
	if _, err := s.mp.check(id, rq.t.Bucket, rq.t.Key); err != nil {
		return err
	}
	if err := s.mp.remove(id); err != nil {
		return err
	}
	rq.w.WriteHeader(http.StatusNoContent)
	return nil
}

// listLimit parses a max-parts / max-uploads parameter (default and cap
// 1000).
func listLimit(q query, name string) (int, *Error) {
	v := q.Get(name)
	if v == "" {
		return maxListKeys, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, apiErr("InvalidArgument", "%s must be a non-negative integer", name)
	}
	return min(n, maxListKeys), nil
}

func (s *Server) listParts(ctx context.Context, rq *request) error {
	if _, err := s.bucketPath(ctx, rq); err != nil {
		return err
	}
	id := rq.q.Get("uploadId")
	if _, err := s.mp.check(id, rq.t.Bucket, rq.t.Key); err != nil {
		return err
	}
	limit, aerr := listLimit(rq.q, "max-parts")
	if aerr != nil {
		return aerr
	}
	marker := 0
	if v := rq.q.Get("part-number-marker"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return apiErr("InvalidArgument", "part-number-marker must be a non-negative integer")
		}
		marker = n
	}
	parts, err := s.mp.parts(id)
	if err != nil {
		return err
	}
	res := listPartsResult{NS: s3NS, Bucket: rq.t.Bucket, Key: rq.t.Key, UploadID: id, Initiator: strataOwner(), Owner: strataOwner(),
		StorageClass: "STANDARD", PartNumberMarker: marker, MaxParts: limit}
	for _, pi := range parts {
		if pi.Number <= marker {
			continue
		}
		if len(res.Parts) == limit {
			res.IsTruncated = true
			break
		}
		res.Parts = append(res.Parts, partResult{PartNumber: pi.Number, LastModified: isoTime(pi.ModTime), ETag: `"` + pi.ETag + `"`, Size: pi.Size})
		res.NextPartNumberMarker = pi.Number
	}
	return s.writeXML(rq, res)
}

func (s *Server) listMultipartUploads(ctx context.Context, rq *request) error {
	if _, err := s.bucketPath(ctx, rq); err != nil {
		return err
	}
	limit, aerr := listLimit(rq.q, "max-uploads")
	if aerr != nil {
		return aerr
	}
	prefix, delim := rq.q.Get("prefix"), rq.q.Get("delimiter")
	keyMarker, idMarker := rq.q.Get("key-marker"), rq.q.Get("upload-id-marker")
	ids, err := s.mp.uploads()
	if err != nil {
		return err
	}
	type upload struct {
		id string
		um uploadMeta
	}
	var ups []upload
	for _, id := range ids {
		um, err := s.mp.meta(id)
		if err != nil || um.Bucket != rq.t.Bucket || !strings.HasPrefix(um.Key, prefix) {
			continue
		}
		if keyMarker != "" && (um.Key < keyMarker || (um.Key == keyMarker && (idMarker == "" || id <= idMarker))) {
			continue
		}
		ups = append(ups, upload{id, um})
	}
	slices.SortFunc(ups, func(a, b upload) int {
		if c := strings.Compare(a.um.Key, b.um.Key); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	res := listMultipartUploadsResult{NS: s3NS, Bucket: rq.t.Bucket, KeyMarker: keyMarker, UploadIDMarker: idMarker,
		Prefix: prefix, Delimiter: delim, MaxUploads: limit}
	lastCP := ""
	count := 0
	for _, u := range ups {
		if count == limit {
			res.IsTruncated = true
			break
		}
		if delim != "" {
			if i := strings.Index(u.um.Key[len(prefix):], delim); i >= 0 {
				cp := u.um.Key[:len(prefix)+i+len(delim)]
				if cp != lastCP {
					res.CommonPrefixes = append(res.CommonPrefixes, commonPrefix{Prefix: cp})
					lastCP = cp
					count++
				}
				res.NextKeyMarker, res.NextUploadIDMarker = u.um.Key, u.id
				continue
			}
		}
		res.Uploads = append(res.Uploads, uploadResult{Key: u.um.Key, UploadID: u.id, Initiator: strataOwner(), Owner: strataOwner(),
			StorageClass: "STANDARD", Initiated: isoTime(u.um.Initiated)})
		res.NextKeyMarker, res.NextUploadIDMarker = u.um.Key, u.id
		count++
	}
	if !res.IsTruncated {
		res.NextKeyMarker, res.NextUploadIDMarker = "", ""
	}
	return s.writeXML(rq, res)
}
