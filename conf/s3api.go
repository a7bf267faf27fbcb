package conf

import (
	"fmt"
	"net"
	"strings"
)

// Anonymous access levels of the S3 front-end (S3API.Anonymous).
const (
	// S3AnonymousOff rejects every unsigned request with AccessDenied.
	S3AnonymousOff = "off"
	// S3AnonymousRead lets unsigned requests list and read (GET, HEAD).
	S3AnonymousRead = "read"
	// S3AnonymousReadWrite lets unsigned requests do everything a key can.
	S3AnonymousReadWrite = "read-write"
)

// S3API configures the S3-compatible front-end (`strata s3 serve`, and the
// listener of `strata local`). Top-level directories of the namespace are its
// buckets; keys are the paths below them.
type S3API struct {
	// Enabled turns the S3 listener on in `strata local`.
	Enabled bool `yaml:"enabled"`
	// Listen is the S3 API address (host:port; port 0 picks a free one).
	Listen string `yaml:"listen"`
	// Region is the region clients sign requests for (and GetBucketLocation
	// answers).
	Region string `yaml:"region"`
	// AccessKeys are the credentials accepted for AWS Signature V4, each
	// "ACCESS_KEY_ID:SECRET_ACCESS_KEY" (from the environment:
	// STRATA_S3_ACCESS_KEYS=id1:secret1,id2:secret2). Every key may do
	// everything. With none and anonymous off, `strata local` and
	// `strata s3 serve` generate a development key pair and print it.
	AccessKeys []string `yaml:"access_keys"`
	// Anonymous says what unsigned requests may do: off (default), read or
	// read-write.
	Anonymous string `yaml:"anonymous"`
	// Domains are the base domains of virtual-host-style addressing: with
	// s3.example.com, a request for mybucket.s3.example.com addresses bucket
	// mybucket. Requests to any other host are path-style.
	Domains []string `yaml:"domains"`
	// MaxObjectSize bounds the body of a PutObject and the size of an object
	// made by CopyObject or CompleteMultipartUpload.
	MaxObjectSize Size `yaml:"max_object_size"`
	// MaxPartSize bounds one part of a multipart upload.
	MaxPartSize Size `yaml:"max_part_size"`
	// MinPartSize is the smallest part (all but the last) that
	// CompleteMultipartUpload accepts; S3 uses 5MiB.
	MinPartSize Size `yaml:"min_part_size"`
	// MaxXMLBodySize bounds the XML bodies of DeleteObjects and
	// CompleteMultipartUpload.
	MaxXMLBodySize Size `yaml:"max_xml_body_size"`
	// MaxHeaderBytes bounds the request line and headers of a request.
	MaxHeaderBytes Size `yaml:"max_header_bytes"`
	// MultipartDir stages the parts of multipart uploads until they are
	// completed (relative paths are under data_dir). It needs room for the
	// uploads in progress.
	MultipartDir string `yaml:"multipart_dir"`
	// MultipartExpiry is how long an upload that is neither completed nor
	// aborted keeps its parts on disk.
	MultipartExpiry Duration `yaml:"multipart_expiry"`
	// ReadBufferBudget bounds the memory of the read buffers of all GETs and
	// copies in flight; requests wait for room beyond it.
	ReadBufferBudget Size `yaml:"read_buffer_budget"`
	// ClockSkew is how far a request's signing time may be from the server's
	// clock.
	ClockSkew Duration `yaml:"clock_skew"`
	// ReadHeaderTimeout bounds the time to read a request's headers;
	// IdleTimeout closes keep-alive connections idle that long.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	IdleTimeout       Duration `yaml:"idle_timeout"`
}

// DefaultS3API is the S3 front-end's default configuration.
func DefaultS3API() S3API {
	return S3API{
		Enabled:           true,
		Listen:            "127.0.0.1:7480",
		Region:            "us-east-1",
		Anonymous:         S3AnonymousOff,
		MaxObjectSize:     5 << 40,
		MaxPartSize:       5 << 30,
		MinPartSize:       5 << 20,
		MaxXMLBodySize:    4 << 20,
		MaxHeaderBytes:    64 << 10,
		MultipartDir:      "s3-multipart",
		MultipartExpiry:   Duration(24 * 3600e9),
		ReadBufferBudget:  256 << 20,
		ClockSkew:         Duration(15 * 60e9),
		ReadHeaderTimeout: Duration(30e9),
		IdleTimeout:       Duration(120e9),
	}
}

// S3AccessKey is one parsed entry of S3API.AccessKeys.
type S3AccessKey struct {
	ID     string
	Secret string
}

// ParseS3AccessKey splits "ACCESS_KEY_ID:SECRET_ACCESS_KEY" and checks both
// halves: the id is 3 to 128 letters, digits or ._- and the secret at least 8
// printable characters without spaces. Errors wrap ErrInvalid and never
// contain the secret.
func ParseS3AccessKey(s string) (S3AccessKey, error) {
	id, secret, ok := strings.Cut(s, ":")
	if !ok {
		return S3AccessKey{}, fmt.Errorf("%w: an access key must be ACCESS_KEY_ID:SECRET_ACCESS_KEY", ErrInvalid)
	}
	if len(id) < 3 || len(id) > 128 || strings.IndexFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}) >= 0 {
		return S3AccessKey{}, fmt.Errorf("%w: access key id %q: want 3 to 128 letters, digits, '.', '_' or '-'", ErrInvalid, id)
	}
	if len(secret) < 8 || len(secret) > 256 || strings.IndexFunc(secret, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
		return S3AccessKey{}, fmt.Errorf("%w: secret of access key %q: want 8 to 256 printable ASCII characters without spaces", ErrInvalid, id)
	}
	return S3AccessKey{ID: id, Secret: secret}, nil
}

// Keys parses AccessKeys (which Validate has checked); bad entries are left
// out.
func (s S3API) Keys() []S3AccessKey {
	var out []S3AccessKey
	for _, k := range s.AccessKeys {
		if ak, err := ParseS3AccessKey(k); err == nil {
			out = append(out, ak)
		}
	}
	return out
}

func (s S3API) validate() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: s3.%s: %s", ErrInvalid, field, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(s.Listen); err != nil {
		bad("listen", "%q is not host:port", s.Listen)
	}
	if s.Region == "" || strings.ContainsAny(s.Region, "/ \t\n") {
		bad("region", "%q must be a non-empty word such as us-east-1", s.Region)
	}
	seen := map[string]bool{}
	for i, k := range s.AccessKeys {
		ak, err := ParseS3AccessKey(k)
		if err != nil {
			bad(fmt.Sprintf("access_keys[%d]", i), "%v", err)
			continue
		}
		if seen[ak.ID] {
			bad(fmt.Sprintf("access_keys[%d]", i), "access key id %q is listed twice", ak.ID)
		}
		seen[ak.ID] = true
	}
	switch s.Anonymous {
	case S3AnonymousOff, S3AnonymousRead, S3AnonymousReadWrite:
	default:
		bad("anonymous", "%q is not one of off, read, read-write", s.Anonymous)
	}
	for i, d := range s.Domains {
		if d == "" || strings.ContainsAny(d, "/: \t") || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") {
			bad(fmt.Sprintf("domains[%d]", i), "%q is not a domain name such as s3.example.com (no scheme, port or dots at the ends)", d)
		}
	}
	const (
		mib = 1 << 20
		gib = 1 << 30
	)
	if s.MaxObjectSize < 1 {
		bad("max_object_size", "must be positive")
	}
	if s.MinPartSize < 1 {
		bad("min_part_size", "must be positive")
	}
	if s.MaxPartSize < s.MinPartSize {
		bad("max_part_size", "%s is below min_part_size (%s)", s.MaxPartSize, s.MinPartSize)
	}
	if s.MaxPartSize > 5*gib {
		bad("max_part_size", "%s is above S3's 5GiB", s.MaxPartSize)
	}
	if s.MaxXMLBodySize < 64<<10 || s.MaxXMLBodySize > 64*mib {
		bad("max_xml_body_size", "%s must lie between 64KiB and 64MiB", s.MaxXMLBodySize)
	}
	if s.MaxHeaderBytes < 8<<10 || s.MaxHeaderBytes > 16*mib {
		bad("max_header_bytes", "%s must lie between 8KiB and 16MiB", s.MaxHeaderBytes)
	}
	if s.MultipartDir == "" {
		bad("multipart_dir", "must not be empty")
	}
	if s.MultipartExpiry < Duration(60e9) {
		bad("multipart_expiry", "%s is below the 1m minimum", s.MultipartExpiry)
	}
	if s.ReadBufferBudget < 8*mib {
		bad("read_buffer_budget", "%s is below the 8MiB minimum", s.ReadBufferBudget)
	}
	if s.ClockSkew < Duration(1e9) || s.ClockSkew > Duration(7*24*3600e9) {
		bad("clock_skew", "%s must lie between 1s and 7 days", s.ClockSkew)
	}
	if s.ReadHeaderTimeout <= 0 {
		bad("read_header_timeout", "must be positive")
	}
	if s.IdleTimeout <= 0 {
		bad("idle_timeout", "must be positive")
	}
	return errs
}
