package conf

import (
	"fmt"
	"net"
	"strings"
)

// Anonymous access levels of the WebHDFS front-end (HDFS.Anonymous).
const (
	// HDFSAnonymousOff refuses every request that presents neither a client
	// certificate nor a delegation token (HTTP 401).
	HDFSAnonymousOff = "off"
	// HDFSAnonymousRead lets unauthenticated requests list, stat and read.
	HDFSAnonymousRead = "read"
	// HDFSAnonymousReadWrite lets unauthenticated requests do everything.
	HDFSAnonymousReadWrite = "read-write"
)

// TLS modes of the WebHDFS listener (HDFS.TLS).
const (
	// HDFSTLSAuto serves HTTPS whenever the process has certificates (the
	// node certificate, or HDFS.CertFile), and plain HTTP otherwise.
	HDFSTLSAuto = "auto"
	// HDFSTLSOff serves plain HTTP even where certificates exist: client
	// certificates cannot be presented then, only tokens.
	HDFSTLSOff = "off"
)

// HDFSAnyClient in HDFS.Writers lets every client certificate of the
// cluster CA write.
const HDFSAnyClient = "*"

// HDFS configures the WebHDFS front-end (`strata hdfs serve`, and the
// listener of `strata local`): the namespace under /webhdfs/v1/. See
// docs/hdfs.md.
type HDFS struct {
	// Enabled turns the WebHDFS listener on in `strata local`.
	Enabled bool `yaml:"enabled"`
	// Listen is the WebHDFS address (host:port; port 0 picks a free one).
	// 9870 is the port of Hadoop 3's namenode HTTP server.
	Listen string `yaml:"listen"`
	// TLS is auto (HTTPS when the process has certificates; callers may
	// then present a client certificate of the cluster CA) or off (plain
	// HTTP; on a non-loopback address only with tls.insecure).
	TLS string `yaml:"tls"`
	// CertFile and KeyFile are the server certificate of the HTTPS
	// listener (for example one of your organisation's CA that browsers and
	// JVMs already trust); by default the node certificate of tls.dir.
	// Client certificates are checked against the cluster CA either way.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Anonymous says what requests without a client certificate or a
	// delegation token may do: off (default), read or read-write. Hadoop's
	// user.name parameter is not authentication and grants nothing.
	Anonymous string `yaml:"anonymous"`
	// Writers are the names of client certificates (their strata://client/
	// NAME) that may write; "*" lets every client certificate write. Admin
	// and node certificates may always write; other client certificates
	// may only read.
	Writers []string `yaml:"writers"`
	// MaxAppendSize bounds the file an APPEND produces: an append rewrites
	// the whole file in the under-storage (object stores cannot append), so
	// a bound keeps a client that appends in small pieces from copying a
	// huge file again and again. 0 refuses every APPEND.
	MaxAppendSize Size `yaml:"max_append_size"`
	// ListBatchSize is the number of entries of one LISTSTATUS_BATCH page.
	ListBatchSize int `yaml:"list_batch_size"`
	// ReadBufferBudget bounds the memory of the read buffers of all OPEN
	// and GETFILECHECKSUM requests in flight; requests wait beyond it.
	ReadBufferBudget Size `yaml:"read_buffer_budget"`
	// ReadHeaderTimeout bounds the time to read a request's headers;
	// IdleTimeout closes keep-alive connections idle that long.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	IdleTimeout       Duration `yaml:"idle_timeout"`
}

// DefaultHDFS is the WebHDFS front-end's default configuration.
func DefaultHDFS() HDFS {
	return HDFS{
		Enabled:           true,
		Listen:            "127.0.0.1:9870",
		TLS:               HDFSTLSAuto,
		Anonymous:         HDFSAnonymousOff,
		MaxAppendSize:     1 << 30,
		ListBatchSize:     1000,
		ReadBufferBudget:  256 << 20,
		ReadHeaderTimeout: Duration(30e9),
		IdleTimeout:       Duration(120e9),
	}
}

// checkClientName describes what is wrong with a client certificate name
// ("" if nothing): 1 to 64 letters, digits, '.', '_' or '-', as `strata
// cert create-client` accepts.
func checkClientName(n string) string {
	if len(n) < 1 || len(n) > 64 || strings.IndexFunc(n, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}) >= 0 {
		return "is not a client name (1 to 64 letters, digits, '.', '_' or '-') nor \"*\""
	}
	return ""
}

func (h HDFS) validate() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: hdfs.%s: %s", ErrInvalid, field, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(h.Listen); err != nil {
		bad("listen", "%q is not host:port", h.Listen)
	}
	switch h.TLS {
	case HDFSTLSAuto, HDFSTLSOff:
	default:
		bad("tls", "%q is not one of auto, off", h.TLS)
	}
	if (h.CertFile == "") != (h.KeyFile == "") {
		bad("cert_file", "cert_file and key_file must be given together")
	}
	if h.CertFile != "" && h.TLS == HDFSTLSOff {
		bad("cert_file", "a server certificate is set but tls is off")
	}
	switch h.Anonymous {
	case HDFSAnonymousOff, HDFSAnonymousRead, HDFSAnonymousReadWrite:
	default:
		bad("anonymous", "%q is not one of off, read, read-write", h.Anonymous)
	}
	for i, w := range h.Writers {
		if w == HDFSAnyClient {
			continue
		}
		if msg := checkClientName(w); msg != "" {
			bad(fmt.Sprintf("writers[%d]", i), "%q %s", w, msg)
		}
	}
	if h.MaxAppendSize < 0 {
		bad("max_append_size", "must not be negative (0 refuses APPEND)")
	}
	if h.ListBatchSize < 1 || h.ListBatchSize > 100000 {
		bad("list_batch_size", "%d must lie between 1 and 100000", h.ListBatchSize)
	}
	if h.ReadBufferBudget < 8<<20 {
		bad("read_buffer_budget", "%s is below the 8MiB minimum", h.ReadBufferBudget)
	}
	if h.ReadHeaderTimeout <= 0 {
		bad("read_header_timeout", "must be positive")
	}
	if h.IdleTimeout <= 0 {
		bad("idle_timeout", "must be positive")
	}
	return errs
}
