package conf

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"unicode/utf8"
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

// Permission levels on one bucket: of an access key (S3Key.Buckets) and of
// unsigned requests (S3API.AnonymousBuckets).
const (
	// S3PermNone allows nothing on the bucket (access keys only).
	S3PermNone = "none"
	// S3PermRead allows listing and reading: GET, HEAD, ListObjects,
	// ListParts, ListMultipartUploads.
	S3PermRead = "read"
	// S3PermWrite allows everything, reading included.
	S3PermWrite = "write"
)

// S3AllBuckets is the key of S3Key.Buckets that gives the level of the
// buckets not named.
const S3AllBuckets = "*"

// S3Key is an access key with permissions per bucket (an entry of
// S3API.BucketKeys, YAML s3.keys).
type S3Key struct {
	// AccessKeyID is 3 to 128 letters, digits, '.', '_' or '-'.
	AccessKeyID string `yaml:"access_key_id"`
	// SecretAccessKey is the secret (8 to 256 printable ASCII characters
	// without spaces). Set it or SecretFile, not both.
	SecretAccessKey string `yaml:"secret_access_key"`
	// SecretFile names a file that holds the secret (surrounding whitespace
	// is ignored), so that it need not sit in the configuration. It is read
	// by Validate and when the S3 server starts (S3API.Keys); a relative
	// path is relative to the working directory.
	SecretFile string `yaml:"secret_file"`
	// Buckets maps bucket names to none, read or write (write implies read).
	// The entry "*" is the level of every bucket not named; without it,
	// those are none.
	Buckets map[string]string `yaml:"buckets"`
}

// Permission is the key's level on bucket: S3PermNone, S3PermRead or
// S3PermWrite.
func (k S3Key) Permission(bucket string) string {
	if p, ok := k.Buckets[bucket]; ok {
		return p
	}
	if p, ok := k.Buckets[S3AllBuckets]; ok {
		return p
	}
	return S3PermNone
}

// secret returns the key's secret, reading SecretFile when set. Its errors
// describe the problem for Validate and never contain the secret.
func (k S3Key) secret() (string, error) {
	secret := k.SecretAccessKey
	switch {
	case k.SecretFile != "" && k.SecretAccessKey != "":
		return "", errors.New("set secret_access_key or secret_file, not both")
	case k.SecretFile != "":
		data, err := os.ReadFile(k.SecretFile)
		if err != nil {
			return "", fmt.Errorf("secret_file: %w", err)
		}
		secret = strings.TrimSpace(string(data))
		if secret == "" {
			return "", fmt.Errorf("secret_file %s is empty", k.SecretFile)
		}
	case secret == "":
		return "", errors.New("the secret is empty: set secret_access_key or secret_file")
	}
	if msg := checkS3Secret(secret); msg != "" {
		return "", fmt.Errorf("secret: %s", msg)
	}
	return secret, nil
}

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
	// STRATA_S3_ACCESS_KEYS=id1:secret1,id2:secret2). Each of these keys
	// may do everything on every bucket. With none and anonymous off,
	// `strata local` and `strata s3 serve` generate a development key pair
	// and print it.
	AccessKeys []string `yaml:"access_keys"`
	// BucketKeys (YAML s3.keys; not settable from the environment) are
	// access keys with permissions per bucket. Their ids must differ from
	// each other and from those of AccessKeys.
	BucketKeys []S3Key `yaml:"keys"`
	// Anonymous says what unsigned requests may do on every bucket: off
	// (default), read or read-write.
	Anonymous string `yaml:"anonymous"`
	// AnonymousBuckets (YAML only) grants unsigned requests read or write
	// on the buckets named, in addition to Anonymous.
	AnonymousBuckets map[string]string `yaml:"anonymous_buckets"`
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

// S3AccessKey is an access key the S3 server accepts: a parsed entry of
// S3API.AccessKeys, or an entry of S3API.BucketKeys with its secret read.
type S3AccessKey struct {
	ID     string
	Secret string
}

// checkS3KeyID describes what is wrong with an access key id ("" if
// nothing).
func checkS3KeyID(id string) string {
	if len(id) < 3 || len(id) > 128 || strings.IndexFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}) >= 0 {
		return "want 3 to 128 letters, digits, '.', '_' or '-'"
	}
	return ""
}

// checkS3Secret describes what is wrong with a secret ("" if nothing),
// without quoting it.
func checkS3Secret(secret string) string {
	if len(secret) < 8 || len(secret) > 256 || strings.IndexFunc(secret, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
		return "want 8 to 256 printable ASCII characters without spaces"
	}
	return ""
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
	if msg := checkS3KeyID(id); msg != "" {
		return S3AccessKey{}, fmt.Errorf("%w: access key id %q: %s", ErrInvalid, id, msg)
	}
	if msg := checkS3Secret(secret); msg != "" {
		return S3AccessKey{}, fmt.Errorf("%w: secret of access key %q: %s", ErrInvalid, id, msg)
	}
	return S3AccessKey{ID: id, Secret: secret}, nil
}

// Keys returns every access key the server accepts: the entries of
// AccessKeys, then those of BucketKeys with their secrets (secret files are
// read now). Validate has checked them; bad entries, and keys whose secret
// file cannot be read any more, are left out.
func (s S3API) Keys() []S3AccessKey {
	var out []S3AccessKey
	for _, k := range s.AccessKeys {
		if ak, err := ParseS3AccessKey(k); err == nil {
			out = append(out, ak)
		}
	}
	for _, k := range s.BucketKeys {
		if checkS3KeyID(k.AccessKeyID) != "" {
			continue
		}
		if secret, err := k.secret(); err == nil {
			out = append(out, S3AccessKey{ID: k.AccessKeyID, Secret: secret})
		}
	}
	return out
}

// BucketKey returns the entry of BucketKeys with the access key id, if any;
// an accepted key without one is an entry of AccessKeys, which may do
// everything. It scans the list: the lists are short.
func (s S3API) BucketKey(id string) (S3Key, bool) {
	for _, k := range s.BucketKeys {
		if k.AccessKeyID == id {
			return k, true
		}
	}
	return S3Key{}, false
}

// AnonymousPermission is what unsigned requests may do on bucket ("": the
// service itself, as ListBuckets): S3PermNone, S3PermRead or S3PermWrite,
// the higher of Anonymous and the bucket's entry of AnonymousBuckets.
func (s S3API) AnonymousPermission(bucket string) string {
	p := S3PermNone
	switch s.Anonymous {
	case S3AnonymousRead:
		p = S3PermRead
	case S3AnonymousReadWrite:
		p = S3PermWrite
	}
	if bucket == "" || p == S3PermWrite {
		return p
	}
	if b := s.AnonymousBuckets[bucket]; b == S3PermWrite || b == S3PermRead && p == S3PermNone {
		return b
	}
	return p
}

// checkS3Bucket describes what is wrong with a bucket name of the
// permission maps ("" if nothing): the names a top-level directory of the
// namespace can have.
func checkS3Bucket(b string) string {
	if b == "" || b == "." || b == ".." || len(b) > 255 || !utf8.ValidString(b) || strings.ContainsAny(b, "\x00/") {
		return "is not a bucket name (a top-level directory: no '/', not empty, '.' or '..')"
	}
	return ""
}

// sortedKeys returns the keys of m in order, so that problems are reported
// in a stable order.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
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
	for i, k := range s.BucketKeys {
		field := fmt.Sprintf("keys[%d]", i)
		if msg := checkS3KeyID(k.AccessKeyID); msg != "" {
			bad(field+".access_key_id", "%q: %s", k.AccessKeyID, msg)
		} else {
			if seen[k.AccessKeyID] {
				bad(field+".access_key_id", "access key id %q is listed twice (in access_keys or keys)", k.AccessKeyID)
			}
			seen[k.AccessKeyID] = true
		}
		if _, err := k.secret(); err != nil {
			bad(field, "%v", err)
		}
		if len(k.Buckets) == 0 {
			bad(field+".buckets", "grants nothing: map bucket names (or \"*\" for every other bucket) to read or write")
		}
		for _, b := range sortedKeys(k.Buckets) {
			if b != S3AllBuckets {
				if msg := checkS3Bucket(b); msg != "" {
					bad(field+".buckets", "%q %s", b, msg)
				}
			}
			switch p := k.Buckets[b]; p {
			case S3PermNone, S3PermRead, S3PermWrite:
			default:
				bad(field+".buckets", "bucket %q: %q is not one of none, read, write (write implies read)", b, p)
			}
		}
	}
	switch s.Anonymous {
	case S3AnonymousOff, S3AnonymousRead, S3AnonymousReadWrite:
	default:
		bad("anonymous", "%q is not one of off, read, read-write", s.Anonymous)
	}
	for _, b := range sortedKeys(s.AnonymousBuckets) {
		if b == S3AllBuckets {
			bad("anonymous_buckets", "%q: set s3.anonymous for every bucket", b)
		} else if msg := checkS3Bucket(b); msg != "" {
			bad("anonymous_buckets", "%q %s", b, msg)
		}
		switch p := s.AnonymousBuckets[b]; p {
		case S3PermRead, S3PermWrite:
		default:
			bad("anonymous_buckets", "bucket %q: %q is not one of read, write (write implies read)", b, p)
		}
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
