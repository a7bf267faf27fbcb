// Package s3api is Strata's S3-compatible front-end: it serves the unified
// namespace over the S3 REST API through the shared client, so reads come
// from the workers' caches and writes go through to the under-storage.
//
// Top-level directories of the namespace are buckets and the paths below them
// are keys; both path-style (http://host/bucket/key) and virtual-host-style
// (http://bucket.domain/key) addressing work. Requests are authenticated with
// AWS Signature Version 4 (header or presigned query, with aws-chunked
// streaming payloads) against the configured access keys; anonymous access
// is opt-in. Errors are S3 XML error documents, translated from Strata's
// sentinel errors by one table (errors.go).
//
// Listing implements S3 semantics on top of directory listings: a
// delimiter-less ListObjects walks the tree depth-first in lexical key order,
// holding at most one bounded batch of names per directory level; with the
// delimiter "/" it lists one directory. Multipart uploads are staged on local
// disk and land in the under-storage as one object on completion.
package s3api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/ufs"
)

// Deps are the S3 front-end's collaborators.
type Deps struct {
	// Client serves the namespace; the server does not close it.
	Client *client.Client
	// Logger receives the server's logs (nil: discard).
	Logger *slog.Logger
	// Metrics registers the server's Prometheus series (nil: a private
	// registry).
	Metrics prometheus.Registerer
}

// Server is the S3 API server. ServeHTTP is safe for concurrent use; Start
// and Close are called once each.
type Server struct {
	cfg     conf.S3API
	c       *client.Client
	log     *slog.Logger
	keys    map[string]string // access key id → secret
	metrics *metrics
	bufs    *buffers
	mp      *multipartStore
	attrs   *attrCache
	domains []string
	ops     map[string]handlerFunc

	// keepaliveAfter and keepaliveEvery pace the whitespace a long
	// CompleteMultipartUpload or CopyObject sends to keep its client waiting.
	keepaliveAfter, keepaliveEvery time.Duration

	idPrefix string
	seq      atomic.Uint64

	srv    *http.Server
	ln     net.Listener
	stop   chan struct{}
	wg     sync.WaitGroup // the serve loop and the upload sweeper
	closed atomic.Bool
}

// New prepares an S3 server for cfg.S3 (its staging directory for multipart
// uploads is cfg.S3.MultipartDir, under cfg.DataDir when relative). It does
// not listen yet: see Start, or use the Server as an http.Handler. Returns
// conf.ErrInvalid for a bad configuration.
func New(ctx context.Context, cfg conf.Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("s3api: %w", err)
	}
	if deps.Client == nil {
		return nil, errors.New("s3api: a client is required")
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "s3api")
	m, err := newMetrics(deps.Metrics)
	if err != nil {
		return nil, fmt.Errorf("s3api: register metrics: %w", err)
	}
	s3 := cfg.S3
	s := &Server{
		cfg: s3, c: deps.Client, log: log, keys: map[string]string{}, metrics: m,
		bufs:           newBuffers(int64(s3.ReadBufferBudget)),
		attrs:          newAttrCache(attrCacheSize),
		keepaliveAfter: 5 * time.Second, keepaliveEvery: 10 * time.Second,
		stop: make(chan struct{}),
	}
	s.ops = s.handlers()
	for _, k := range s3.Keys() {
		s.keys[k.ID] = k.Secret
	}
	for _, d := range s3.Domains {
		s.domains = append(s.domains, strings.ToLower(d))
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	s.idPrefix = strings.ToUpper(hex.EncodeToString(rnd[:]))
	s.mp, err = newMultipartStore(cfg.Resolve(s3.MultipartDir), s3.MultipartExpiry.D())
	if err != nil {
		return nil, err
	}
	s.wg.Go(s.sweepUploads)
	return s, nil
}

// Start listens on the configured address and serves until Close.
func (s *Server) Start(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("s3api: listen on %s: %w", s.cfg.Listen, err)
	}
	s.Serve(ln)
	return nil
}

// Serve serves the S3 API on ln (which Close closes) in the background.
func (s *Server) Serve(ln net.Listener) {
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout.D(),
		IdleTimeout:       s.cfg.IdleTimeout.D(),
		MaxHeaderBytes:    int(s.cfg.MaxHeaderBytes),
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.wg.Go(func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("S3 API server stopped", "err", err)
		}
	})
}

// Addr is the address the server listens on (after Start or Serve).
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close stops accepting requests, waits for the requests in progress (until
// ctx ends, when they are cut off) and for the server's goroutines.
func (s *Server) Close(ctx context.Context) error {
	if s.closed.Swap(true) {
		return nil
	}
	close(s.stop)
	var err error
	if s.srv != nil {
		if err = s.srv.Shutdown(ctx); err != nil {
			_ = s.srv.Close()
		}
	}
	s.wg.Wait()
	return err
}

// request is one request being served.
type request struct {
	r     *http.Request
	w     *responseWriter
	op    string
	t     target
	q     query
	id    identity
	reqID string
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.metrics.inflight.Inc()
	defer s.metrics.inflight.Dec()
	rw := &responseWriter{ResponseWriter: w}
	body := &countingReader{r: r.Body}
	r.Body = body
	// Give net/http its own body back before it finishes the response: a
	// body not read to its end then closes the connection, rather than
	// being drained after the answer, which for a request with Expect:
	// 100-continue would send "100 Continue" and make the client upload a
	// body that was refused already.
	defer func() { r.Body = body.r }()
	rq := &request{r: r, w: rw, op: "Unknown", reqID: fmt.Sprintf("%s%012X", s.idPrefix, s.seq.Add(1))}
	h := rw.Header()
	h.Set("X-Amz-Request-Id", rq.reqID)
	h.Set("Server", "Strata")
	err := s.serve(r.Context(), rq, start)
	aborted := false
	if err != nil {
		aborted = s.fail(rq, err)
	}
	status := rw.status
	if status == 0 {
		status = http.StatusOK
	}
	s.metrics.observe(rq.op, status, time.Since(start).Seconds(), body.n, rw.n)
	if aborted {
		// The response has begun: cut the connection so the client sees a
		// short body, never a truncated success.
		panic(http.ErrAbortHandler)
	}
}

// serve parses, authenticates and dispatches a request.
func (s *Server) serve(ctx context.Context, rq *request, now time.Time) error {
	r := rq.r
	var aerr *Error
	if rq.t, aerr = splitTarget(r.Host, r.URL.Path, s.domains); aerr != nil {
		return aerr
	}
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return err
	}
	rq.q = q
	rq.op = operation(r.Method, rq.t, rq.q, r.Header)
	if rq.id, aerr = s.authenticate(r, rq.q, rq.op, now); aerr != nil {
		return aerr
	}
	handler, ok := s.ops[rq.op]
	if !ok {
		switch rq.op {
		case "MethodNotAllowed":
			return apiErr("MethodNotAllowed", "")
		default:
			return apiErr("NotImplemented", "Strata's S3 API does not implement this operation (%s %s); see docs/s3-api.md", r.Method, describeQuery(rq.q))
		}
	}
	return handler(ctx, rq)
}

// describeQuery names the subresources of a query for error messages.
func describeQuery(q query) string {
	var keys []string
	for _, p := range q {
		if !strings.HasPrefix(p.Key, "X-Amz-") {
			keys = append(keys, p.Key)
		}
	}
	if len(keys) == 0 {
		return "without subresource"
	}
	return "?" + truncate(strings.Join(keys, "&"), 128)
}

type handlerFunc func(ctx context.Context, rq *request) error

func (s *Server) handlers() map[string]handlerFunc {
	return map[string]handlerFunc{
		"ListBuckets":             s.listBuckets,
		"HeadBucket":              s.headBucket,
		"GetBucketLocation":       s.getBucketLocation,
		"GetBucketVersioning":     s.getBucketVersioning,
		"GetBucketAcl":            s.getACL,
		"GetObjectAcl":            s.getACL,
		"CreateBucket":            s.createBucket,
		"DeleteBucket":            s.deleteBucket,
		"ListObjects":             s.listObjectsV1,
		"ListObjectsV2":           s.listObjectsV2,
		"GetObject":               s.getObject,
		"HeadObject":              s.getObject,
		"PutObject":               s.putObject,
		"CopyObject":              s.copyObject,
		"DeleteObject":            s.deleteObject,
		"DeleteObjects":           s.deleteObjects,
		"CreateMultipartUpload":   s.createMultipartUpload,
		"UploadPart":              s.uploadPart,
		"UploadPartCopy":          s.uploadPartCopy,
		"CompleteMultipartUpload": s.completeMultipartUpload,
		"AbortMultipartUpload":    s.abortMultipartUpload,
		"ListParts":               s.listParts,
		"ListMultipartUploads":    s.listMultipartUploads,
	}
}

// fail sends err as an S3 error document, unless the response has begun; it
// reports whether the connection must be cut instead.
func (s *Server) fail(rq *request, err error) bool {
	kind := opWrite
	if readOnly(rq.op) {
		kind = opRead
	}
	e := toAPIError(err, kind)
	if e.Status >= 500 && rq.r.Context().Err() == nil {
		s.log.Warn("S3 request failed", "op", rq.op, "method", rq.r.Method, "bucket", rq.t.Bucket, "key", rq.t.Key,
			"request_id", rq.reqID, "code", e.Code, "err", err)
	} else {
		s.log.Debug("S3 request refused", "op", rq.op, "method", rq.r.Method, "bucket", rq.t.Bucket, "key", rq.t.Key,
			"request_id", rq.reqID, "code", e.Code, "err", err)
	}
	if rq.w.status != 0 {
		return true
	}
	s.writeError(rq, e, true)
	return false
}

// writeError writes an S3 error document; withHeader false writes only the
// body (the response has begun with 200, as a long operation's keepalive
// does).
func (s *Server) writeError(rq *request, e *Error, withHeader bool) {
	if withHeader {
		h := rq.w.Header()
		for k, v := range e.Header {
			h[k] = v
		}
		if e.Status == http.StatusNotModified {
			rq.w.WriteHeader(e.Status)
			return
		}
		h.Set("Content-Type", "application/xml")
		h.Del("Content-Length")
		h.Del("ETag")
		h.Del("Last-Modified")
		if rq.r.Method == http.MethodHead {
			h.Set("X-Amz-Error-Code", e.Code)
		}
		rq.w.WriteHeader(e.Status)
		if rq.r.Method == http.MethodHead {
			return
		}
	}
	var b strings.Builder
	if withHeader {
		b.WriteString(xml.Header)
	}
	b.WriteString("<Error><Code>")
	xmlEscape(&b, e.Code)
	b.WriteString("</Code><Message>")
	xmlEscape(&b, e.Message)
	b.WriteString("</Message>")
	field := func(name, v string) {
		b.WriteString("<" + name + ">")
		xmlEscape(&b, v)
		b.WriteString("</" + name + ">")
	}
	if rq.t.Bucket != "" {
		field("BucketName", rq.t.Bucket)
	}
	if rq.t.Key != "" {
		field("Key", rq.t.Key)
	}
	for _, f := range e.extra {
		field(f.Name, f.Value)
	}
	field("Resource", rq.r.URL.Path)
	field("RequestId", rq.reqID)
	field("HostId", s.idPrefix)
	b.WriteString("</Error>")
	_, _ = io.WriteString(rq.w, b.String())
}

func xmlEscape(b *strings.Builder, s string) {
	_ = xml.EscapeText(b, []byte(s))
}

// writeXML sends a 200 response with an XML document.
func (s *Server) writeXML(rq *request, v any) error {
	out, err := xml.Marshal(v)
	if err != nil {
		return fmt.Errorf("s3api: encode %T: %w", v, err)
	}
	h := rq.w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", fmt.Sprint(len(xml.Header)+len(out)))
	rq.w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(rq.w, xml.Header)
	_, _ = rq.w.Write(out)
	return nil
}

// readXML decodes a request body of at most cfg.MaxXMLBodySize bytes
// (checked like any body: Content-MD5, signatures, checksums).
func (s *Server) readXML(rq *request, v any) error {
	size, aerr := bodySize(rq.r, rq.id)
	if aerr != nil {
		return aerr
	}
	if size > int64(s.cfg.MaxXMLBodySize) {
		return apiErr("MaxMessageLengthExceeded", "the XML body is %d bytes; the limit is %d", size, int64(s.cfg.MaxXMLBodySize))
	}
	p, aerr := newPayload(rq.r, rq.id, size)
	if aerr != nil {
		return aerr
	}
	data, err := io.ReadAll(p)
	if err != nil {
		return err
	}
	if len(data) == 0 {
		return apiErr("MalformedXML", "the request body is empty")
	}
	if err := xml.Unmarshal(data, v); err != nil {
		return apiErr("MalformedXML", "")
	}
	return nil
}

// bucketPath checks that the request's bucket exists and returns its
// namespace path. Returns NoSuchBucket.
func (s *Server) bucketPath(ctx context.Context, rq *request) (string, error) {
	p := "/" + rq.t.Bucket
	mounts := s.c.Mounts()
	if _, ok := mounts.ByPath(p); ok {
		return p, nil
	}
	if _, virtual := mounts.VirtualChildren(p); virtual {
		return p, nil
	}
	if _, _, err := mounts.Resolve(p); err == nil {
		fi, err := s.c.Stat(ctx, p, false)
		switch {
		case err == nil && fi.IsDir:
			return p, nil
		case err != nil && !errors.Is(err, ufs.ErrNotFound) && !errors.Is(err, ufs.ErrNotDir):
			return "", err
		}
	}
	e := apiErr("NoSuchBucket", "")
	e.err = fmt.Errorf("%s: %w", p, namespace.ErrNoMount)
	return "", e
}

// objectPath checks the bucket and maps the key to its namespace path. A key
// that cannot be a namespace path is NoSuchKey for reads and InvalidArgument
// for writes.
func (s *Server) objectPath(ctx context.Context, rq *request, write bool) (p string, dir bool, err error) {
	if _, err := s.bucketPath(ctx, rq); err != nil {
		return "", false, err
	}
	p, dir, ok := keyPath(rq.t.Bucket, rq.t.Key)
	if !ok {
		if write {
			return "", false, apiErr("InvalidArgument", "the key %q cannot be a path of the namespace: it has an empty, '.' or '..' element", truncate(rq.t.Key, 128))
		}
		return "", false, apiErr("NoSuchKey", "")
	}
	return p, dir, nil
}

// responseWriter counts what a handler sends and remembers its status.
type responseWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

// WriteHeader implements http.ResponseWriter.
func (w *responseWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (w *responseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

// ReadFrom lets net/http move file data with sendfile.
func (w *responseWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(w.ResponseWriter, r)
	}
	w.n += n
	return n, err
}

// Flush sends buffered data to the client.
func (w *responseWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countingReader counts request body bytes.
type countingReader struct {
	r io.ReadCloser
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }

// longOp runs fn, whose result is an XML document to send with 200. When fn
// takes longer than keepaliveAfter, the 200 response begins and a space goes
// out every keepaliveEvery, as S3 does for long copies and completions, so
// clients and proxies keep waiting; an error then goes into the body as an
// S3 error document (SDKs look for one in a 200 answer of these operations).
func (s *Server) longOp(rq *request, fn func() (any, error)) error {
	stop, done := make(chan struct{}), make(chan struct{})
	started := false
	go func() {
		defer close(done)
		t := time.NewTimer(s.keepaliveAfter)
		defer t.Stop()
		select {
		case <-stop:
			return
		case <-t.C:
		}
		h := rq.w.Header()
		h.Set("Content-Type", "application/xml")
		h.Del("Content-Length")
		rq.w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(rq.w, xml.Header)
		rq.w.Flush()
		started = true
		tick := time.NewTicker(s.keepaliveEvery)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				_, _ = io.WriteString(rq.w, " ")
				rq.w.Flush()
			}
		}
	}()
	res, err := fn()
	close(stop)
	<-done
	if !started {
		if err != nil {
			return err
		}
		return s.writeXML(rq, res)
	}
	if err != nil {
		e := toAPIError(err, opWrite)
		s.log.Warn("S3 request failed after its response began", "op", rq.op, "bucket", rq.t.Bucket, "key", rq.t.Key,
			"request_id", rq.reqID, "code", e.Code, "err", err)
		s.writeError(rq, e, false)
		return nil
	}
	out, merr := xml.Marshal(res)
	if merr != nil {
		return fmt.Errorf("s3api: encode %T: %w", res, merr)
	}
	_, _ = rq.w.Write(out)
	return nil
}
