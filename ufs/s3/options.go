package s3

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/ufs"
)

// Limits of the S3 API.
const (
	minPartSize = 5 << 20  // smallest part of a multipart upload but the last
	maxPartSize = 5 << 30  // largest part, and largest single CopyObject
	maxParts    = 10000    // most parts in one multipart upload
	maxListKeys = 1000     // most keys in one ListObjectsV2 page
	defPartSize = 16 << 20 // s3.part_size default
)

// settings are the parsed mount options.
type settings struct {
	endpoint          string
	region            string // "" lets the SDK decide (AWS_REGION, profile), then us-east-1
	pathStyle         bool
	accessKeyID       string
	secretAccessKey   string
	sessionToken      string
	credentials       string // credStatic, credAmbient or credAnonymous
	partSize          int64
	uploadConcurrency int
	maxKeys           int32
	maxAttempts       int
	responseTimeout   time.Duration
	staleUploads      time.Duration // 0: never abort
}

// knownOptions lists the option keys of this backend.
const knownOptions = "s3.endpoint, s3.region, s3.path_style, s3.credentials, s3.access_key_id, " +
	"s3.secret_access_key, s3.session_token, s3.part_size, s3.upload_concurrency, " +
	"s3.max_keys, s3.max_attempts, s3.response_timeout, s3.abort_stale_uploads"

// Values of s3.credentials: where the credentials of a mount come from.
const (
	// credStatic signs with s3.access_key_id and s3.secret_access_key (the
	// default when they are given).
	credStatic = "static"
	// credAmbient uses the SDK's default chain on the host that opens the
	// mount: environment, shared config and credentials files, SSO, web
	// identity, ECS or EC2 instance role. Only on request: a mount must not
	// borrow a server's identity by accident.
	credAmbient = "ambient"
	// credAnonymous sends unsigned requests (public buckets).
	credAnonymous = "anonymous"
)

// defStaleUploads is the age from which multipart uploads under a mount's
// prefix are taken for the remains of a dead writer and aborted; an upload
// still in progress is never that old. minStaleUploads is the least age
// accepted, so that no live upload of another writer is cut.
const (
	defStaleUploads = 24 * time.Hour
	minStaleUploads = time.Hour
)

// defResponseTimeout bounds the wait for a response's headers after the
// request was sent: a server that accepts a connection and never answers
// fails the request instead of hanging a read forever.
const defResponseTimeout = 2 * time.Minute

// parseOptions reads and validates the s3.* options of the mount of uri,
// reporting every problem at once. Messages never contain the values of
// secret options. Keys of other backends are ignored.
func parseOptions(uri string, opts ufs.Options) (settings, error) {
	s := settings{
		partSize:          defPartSize,
		uploadConcurrency: 4,
		maxKeys:           maxListKeys,
		maxAttempts:       3,
		responseTimeout:   defResponseTimeout,
		staleUploads:      defStaleUploads,
	}
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	intOpt := func(key string, lo, hi int64) (int64, bool) {
		v, ok := opts[key]
		if !ok {
			return 0, false
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < lo || n > hi {
			bad("%s=%q: want an integer from %d to %d", key, v, lo, hi)
			return 0, false
		}
		return n, true
	}

	if v, ok := opts["s3.endpoint"]; ok && v != "" {
		u, err := url.Parse(v)
		switch {
		case err != nil:
			bad("s3.endpoint=%q: %v", v, err)
		case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
			bad("s3.endpoint=%q: want a URL such as http://127.0.0.1:9000 or https://s3.example.com", v)
		case u.Path != "" && u.Path != "/", u.RawQuery != "", u.User != nil:
			bad("s3.endpoint=%q: want scheme://host[:port] only, without path, query or user info", v)
		default:
			s.endpoint = strings.TrimSuffix(v, "/")
		}
	}
	s.region = strings.TrimSpace(opts["s3.region"])
	s.pathStyle = s.endpoint != ""
	if v, ok := opts["s3.path_style"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad("s3.path_style=%q: want true or false", v)
		}
		s.pathStyle = b
	}
	s.accessKeyID = opts["s3.access_key_id"]
	s.secretAccessKey = opts["s3.secret_access_key"]
	s.sessionToken = opts["s3.session_token"]
	if (s.accessKeyID == "") != (s.secretAccessKey == "") {
		bad("s3.access_key_id and s3.secret_access_key must be given together")
	}
	if s.sessionToken != "" && s.accessKeyID == "" {
		bad("s3.session_token needs s3.access_key_id and s3.secret_access_key")
	}
	keys := s.accessKeyID != "" || s.secretAccessKey != "" || s.sessionToken != ""
	switch v, ok := opts["s3.credentials"]; {
	case !ok && keys:
		s.credentials = credStatic
	case !ok:
		bad("no credentials for %s: give s3.access_key_id and s3.secret_access_key, "+
			"or s3.credentials=ambient to use the host's AWS credentials (env, ~/.aws, instance role), "+
			"or s3.credentials=anonymous", uri)
	case v == credStatic:
		s.credentials = v
		if !keys {
			bad("s3.credentials=static needs s3.access_key_id and s3.secret_access_key")
		}
	case v == credAmbient || v == credAnonymous:
		s.credentials = v
		if keys {
			bad("s3.credentials=%s contradicts s3.access_key_id, s3.secret_access_key and s3.session_token: "+
				"drop the keys, or the s3.credentials option to sign with them", v)
		}
	default:
		bad("s3.credentials=%q: want static (the keys given), ambient (the host's AWS credentials) or anonymous (unsigned requests)", v)
	}
	if v, ok := opts["s3.part_size"]; ok {
		ps, err := conf.ParseSize(v)
		switch {
		case err != nil:
			bad("s3.part_size=%q: %v", v, err)
		case ps < minPartSize || ps > maxPartSize:
			bad("s3.part_size=%q: want from 5MiB to 5GiB", v)
		default:
			s.partSize = int64(ps)
		}
	}
	if n, ok := intOpt("s3.upload_concurrency", 1, 256); ok {
		s.uploadConcurrency = int(n)
	}
	if n, ok := intOpt("s3.max_keys", 1, maxListKeys); ok {
		s.maxKeys = int32(n)
	}
	if n, ok := intOpt("s3.max_attempts", 1, 100); ok {
		s.maxAttempts = int(n)
	}
	if v, ok := opts["s3.response_timeout"]; ok {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d < 100*time.Millisecond || d > time.Hour {
			bad("s3.response_timeout=%q: want a duration from 100ms to 1h, e.g. 2m", v)
		} else {
			s.responseTimeout = d
		}
	}
	if v, ok := opts["s3.abort_stale_uploads"]; ok {
		v = strings.TrimSpace(v)
		d, err := time.ParseDuration(v)
		switch {
		case v == "0" || v == "off":
			s.staleUploads = 0
		case err != nil || d < minStaleUploads:
			bad("s3.abort_stale_uploads=%q: want 0 (never) or a duration of at least %s, e.g. 24h", v, minStaleUploads)
		default:
			s.staleUploads = d
		}
	}
	for k := range opts {
		if strings.HasPrefix(k, "s3.") && !slices.Contains(strings.Split(knownOptions, ", "), k) {
			bad("unknown option %q (known: %s)", k, knownOptions)
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return settings{}, fmt.Errorf("%w: s3: %s", ufs.ErrInvalidURI, strings.Join(problems, "; "))
	}
	return s, nil
}
