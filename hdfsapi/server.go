// Package hdfsapi is Strata's HDFS-compatible front-end. This first part
// serves WebHDFS, Hadoop's REST API: /webhdfs/v1/<path>?op=... over the
// unified namespace, through the shared client, so reads come from the
// workers' caches and writes go through to the under-storage.
//
// The JSON bodies and the RemoteException errors are shaped as a Hadoop
// namenode shapes them, so Hadoop's own WebHdfsFileSystem, Python's fsspec
// and hdfs packages and curl work unchanged. Strata's workers are not
// WebHDFS datanodes: where a namenode redirects to a datanode (OPEN, CREATE,
// APPEND, GETFILECHECKSUM), this server redirects to itself, to the same URL
// with datanode=true, which carries the bytes.
//
// Every request authenticates: a client certificate of the cluster CA over
// HTTPS, a delegation token (SignToken, `strata hdfs token`), or, only when
// configured, anonymous access. Errors name namespace paths only, never an
// under-storage URI or endpoint; one table (errors.go) translates Strata's
// sentinel errors.
package hdfsapi

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/pki"
)

// Deps are the WebHDFS front-end's collaborators.
type Deps struct {
	// Client serves the namespace; the server does not close it.
	Client *client.Client
	// Logger receives the server's logs (nil: discard).
	Logger *slog.Logger
	// Metrics registers the server's Prometheus series (nil: a private
	// registry).
	Metrics prometheus.Registerer
	// TLS is the process's certificate bundle. Its CA checks client
	// certificates and delegation tokens, and with hdfs.tls auto its
	// certificate serves HTTPS (unless ServerCert is set). nil: plain HTTP,
	// no tokens: only anonymous access, if configured, gets in.
	TLS *pki.Bundle
	// ServerCert, when set, is the HTTPS listener's certificate instead of
	// TLS's (hdfs.cert_file).
	ServerCert *tls.Certificate
}

// Server is the WebHDFS server. ServeHTTP is safe for concurrent use; Start
// (or Serve) and Close are called once each.
type Server struct {
	cfg        conf.HDFS
	blockSize  int64
	c          *client.Client
	log        *slog.Logger
	metrics    *metrics
	anonymous  access
	tokens     *tokenVerifier     // nil without a CA
	dataTokens *pki.TokenVerifier // nil without a CA
	tlsConfig  *tls.Config        // nil: plain HTTP
	bufs       *buffers
	handlers   map[string]handlerFunc

	idPrefix string
	seq      atomic.Uint64

	srv    *http.Server
	ln     net.Listener
	wg     sync.WaitGroup
	closed atomic.Bool
}

// New prepares a WebHDFS server for cfg.HDFS. It does not listen yet: see
// Start, or Serve, or use the Server as an http.Handler (then the caller's
// server decides about TLS). Returns conf.ErrInvalid for a bad configuration.
func New(_ context.Context, cfg conf.Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("hdfsapi: %w", err)
	}
	if deps.Client == nil {
		return nil, errors.New("hdfsapi: a client is required")
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "hdfsapi")
	m, err := newMetrics(deps.Metrics)
	if err != nil {
		return nil, fmt.Errorf("hdfsapi: register metrics: %w", err)
	}
	s := &Server{
		cfg: cfg.HDFS, blockSize: int64(cfg.Worker.BlockSize), c: deps.Client, log: log, metrics: m,
		anonymous: anonymousLevel(cfg.HDFS.Anonymous),
		bufs:      newBuffers(int64(cfg.HDFS.ReadBufferBudget)),
	}
	s.handlers = s.handlerTable()
	if deps.TLS != nil {
		s.tokens = newTokenVerifier(deps.TLS.CA)
		s.dataTokens = pki.NewTokenVerifier(deps.TLS.CA, tokenSkew)
	}
	if cfg.HDFS.TLS == conf.HDFSTLSAuto && (deps.TLS != nil || deps.ServerCert != nil) {
		s.tlsConfig = serverTLS(deps.TLS, deps.ServerCert)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	s.idPrefix = strings.ToUpper(hex.EncodeToString(rnd[:]))
	return s, nil
}

// serverTLS is the HTTPS configuration: TLS 1.3, the server certificate,
// and a client certificate of the cluster CA verified when one is given
// (not required: callers may authenticate with a token instead). A
// certificate without a Strata role fails the handshake.
func serverTLS(b *pki.Bundle, cert *tls.Certificate) *tls.Config {
	var cfg *tls.Config
	if b != nil {
		cfg = b.ServerTLS()
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		cfg.VerifyConnection = func(st tls.ConnectionState) error {
			if len(st.PeerCertificates) == 0 {
				return nil
			}
			_, err := pki.PeerIdentity(st)
			return err
		}
	} else {
		cfg = &tls.Config{MinVersion: tls.VersionTLS13}
	}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return cfg
}

// TLS reports whether Start serves HTTPS.
func (s *Server) TLS() bool { return s.tlsConfig != nil }

// Start listens on the configured address and serves until Close.
func (s *Server) Start(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("hdfsapi: listen on %s: %w", s.cfg.Listen, err)
	}
	s.Serve(ln)
	return nil
}

// Serve serves WebHDFS on ln (which Close closes) in the background, with
// TLS when the server has certificates (see TLS).
func (s *Server) Serve(ln net.Listener) {
	s.ln = ln
	if s.tlsConfig != nil {
		ln = tls.NewListener(ln, s.tlsConfig)
	}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout.D(),
		IdleTimeout:       s.cfg.IdleTimeout.D(),
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.wg.Go(func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("WebHDFS server stopped", "err", err)
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

// URL is the server's base URL: http:// or https:// and Addr.
func (s *Server) URL() string {
	if s.tlsConfig != nil {
		return "https://" + s.Addr()
	}
	return "http://" + s.Addr()
}

// Close stops accepting requests and waits for those in progress (until ctx
// ends, when they are cut off) and for the serve loop.
func (s *Server) Close(ctx context.Context) error {
	if s.closed.Swap(true) {
		return nil
	}
	var err error
	if s.srv != nil {
		if err = s.srv.Shutdown(ctx); err != nil {
			_ = s.srv.Close()
		}
	}
	s.wg.Wait()
	return err
}

// handlerFunc serves one parsed, authorized request.
type handlerFunc func(ctx context.Context, w *responseWriter, r *http.Request, rq *request) error

func (s *Server) handlerTable() map[string]handlerFunc {
	return map[string]handlerFunc{
		"OPEN":              s.open,
		"GETFILESTATUS":     s.getFileStatus,
		"LISTSTATUS":        s.listStatus,
		"LISTSTATUS_BATCH":  s.listStatusBatch,
		"GETCONTENTSUMMARY": s.contentSummary,
		"GETFILECHECKSUM":   s.fileChecksum,
		"GETHOMEDIRECTORY":  s.homeDirectory,
		"GETACLSTATUS":      s.aclStatus,
		"CREATE":            s.create,
		"APPEND":            s.appendFile,
		"MKDIRS":            s.mkdirs,
		"RENAME":            s.rename,
		"DELETE":            s.delete,
	}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.metrics.inflight.Inc()
	defer s.metrics.inflight.Dec()
	rw := &responseWriter{ResponseWriter: w}
	body := &countingReader{r: r.Body}
	r.Body = body
	// Hand net/http its own body back before the response ends: a body not
	// read to its end then closes the connection rather than being drained
	// (a refused upload is not received).
	defer func() { r.Body = body.r }()
	reqID := fmt.Sprintf("%s%012X", s.idPrefix, s.seq.Add(1))
	rw.Header().Set("X-Strata-Request-Id", reqID)
	rw.Header().Set("Server", "Strata")
	op, path := "unknown", ""
	err := s.serve(r.Context(), rw, r, start, &op, &path)
	aborted := false
	if err != nil {
		aborted = s.fail(rw, r, reqID, op, path, err)
	}
	status := rw.status
	if status == 0 {
		status = http.StatusOK
	}
	s.metrics.observe(op, status, time.Since(start).Seconds(), body.n, rw.n)
	if aborted {
		// The response has begun: cut the connection so the client sees a
		// short body, never a truncated success.
		panic(http.ErrAbortHandler)
	}
}

// serve authenticates, parses, authorizes and dispatches a request. The
// caller is authenticated before anything about the request is answered,
// so a caller without credentials learns nothing, not even whether its path
// or operation is valid.
func (s *Server) serve(ctx context.Context, w *responseWriter, r *http.Request, now time.Time, op, path *string) error {
	rq, perr := parseRequest(r.Method, r.URL.Path, r.URL.RawQuery)
	token := ""
	if rq != nil {
		token = rq.token
	} else {
		token = delegationOf(r.URL.RawQuery)
	}
	c, aerr := s.authenticate(r, token, now)
	if aerr != nil {
		return aerr
	}
	if perr != nil {
		return perr
	}
	*op, *path = rq.op, rq.path
	if err := authorize(c, rq); err != nil {
		return err
	}
	if !rq.spec.supported {
		return s.unsupported(ctx, rq)
	}
	return s.handlers[rq.op](ctx, w, r, rq)
}

// delegationOf finds the delegation parameter of a query that does not
// parse as a whole.
func delegationOf(rawQuery string) string {
	q, _ := url.ParseQuery(rawQuery)
	for k, vs := range q {
		if strings.EqualFold(k, "delegation") && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}

// fail sends err as a RemoteException, unless the response has begun; it
// reports whether the connection must be cut instead.
func (s *Server) fail(w *responseWriter, r *http.Request, reqID, op, path string, err error) bool {
	e := toRemote(err, path)
	if e.Status >= 500 && r.Context().Err() == nil {
		s.log.Warn("WebHDFS request failed", "op", op, "method", r.Method, "path", path, "request_id", reqID,
			"exception", e.Exception, "err", err)
	} else {
		s.log.Debug("WebHDFS request refused", "op", op, "method", r.Method, "path", path, "request_id", reqID,
			"exception", e.Exception, "err", err)
	}
	if w.status != 0 {
		return true
	}
	msg := e.Message
	if e.Status >= 500 {
		msg += " (request id " + reqID + ")"
	}
	body, _ := json.Marshal(map[string]any{"RemoteException": map[string]string{
		"exception": e.Exception, "javaClassName": e.JavaClassName(), "message": msg,
	}})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Del("Location")
	if e.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="strata-webhdfs"`)
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
	return false
}

// writeJSON sends a 200 response with v as JSON.
func writeJSON(w *responseWriter, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("hdfsapi: encode %T: %w", v, err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return nil
}

// writeBoolean sends Hadoop's {"boolean": v}.
func writeBoolean(w *responseWriter, v bool) error {
	return writeJSON(w, map[string]bool{"boolean": v})
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
