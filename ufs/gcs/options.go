package gcs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/option"

	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/ufs"
)

// Option keys understood by this backend. Values are strings, as every mount
// option; sizes accept units ("16MiB").
const (
	// OptEndpoint is the JSON API endpoint, for emulators and private
	// endpoints: "http://127.0.0.1:4443" (the "/storage/v1/" path is added
	// when missing). An emulator takes gcs.credentials=anonymous.
	OptEndpoint = "gcs.endpoint"
	// OptCredentials says where the credentials come from: CredStatic (the
	// key of OptCredentialsFile or OptCredentialsJSON, the default when one
	// is given), CredAmbient (the host's Application Default Credentials)
	// or CredAnonymous (no authentication). A mount with neither a key nor
	// this option is refused: a mount never borrows the server's identity
	// by accident.
	OptCredentials = "gcs.credentials"
	// OptCredentialsFile is the path of a service account, authorized user,
	// impersonated service account or external account JSON key file.
	OptCredentialsFile = "gcs.credentials_file"
	// OptCredentialsJSON is the content of such a JSON key, inline.
	OptCredentialsJSON = "gcs.credentials_json"
	// OptProject is the project billed for requests (requester-pays buckets).
	OptProject = "gcs.project"
	// OptAnonymous ("true") is the older spelling of
	// gcs.credentials=anonymous.
	OptAnonymous = "gcs.anonymous"
	// OptChunkSize is the resumable upload chunk size (default 16MiB, rounded
	// up to a multiple of 256KiB). Each running upload buffers one chunk.
	OptChunkSize = "gcs.chunk_size"
	// OptMaxAttempts bounds the attempts of one request, retries included
	// (default 5).
	OptMaxAttempts = "gcs.max_attempts"
)

// Values of OptCredentials.
const (
	CredStatic    = "static"
	CredAmbient   = "ambient"
	CredAnonymous = "anonymous"
)

const (
	defaultChunkSize   = 16 << 20
	minChunkSize       = 256 << 10
	maxChunkSize       = 1 << 30
	defaultMaxAttempts = 5
)

// emulatorEnv is the variable the Google client libraries read to talk to an
// emulator; the storage library honours it itself.
const emulatorEnv = "STORAGE_EMULATOR_HOST"

// config is the parsed form of a mount's options.
type config struct {
	endpoint    string
	credsJSON   []byte
	credsType   option.CredentialsType
	credsSource string // option name the credentials came from, for messages
	project     string
	creds       string // CredStatic, CredAmbient or CredAnonymous
	chunkSize   int
	maxAttempts int
}

// knownOptions lists every key of this backend; any other "gcs." key is a typo.
func knownOptions() []string {
	return []string{OptEndpoint, OptCredentials, OptCredentialsFile, OptCredentialsJSON, OptProject, OptAnonymous, OptChunkSize, OptMaxAttempts}
}

// parseOptions validates the options of the mount of uri and reports every
// problem at once. Errors wrap ufs.ErrInvalidURI and never contain credential
// material.
func parseOptions(uri string, opts ufs.Options) (config, error) {
	cfg := config{chunkSize: defaultChunkSize, maxAttempts: defaultMaxAttempts}
	var problems []string
	for k := range opts {
		if strings.HasPrefix(k, "gcs.") && !isKnown(k) {
			problems = append(problems, fmt.Sprintf("unknown option %q (known: %s)", k, strings.Join(knownOptions(), ", ")))
		}
	}
	if ep := strings.TrimSpace(opts.Get(OptEndpoint, "")); ep != "" {
		norm, err := normaliseEndpoint(ep)
		if err != nil {
			problems = append(problems, err.Error())
		}
		cfg.endpoint = norm
	}
	cfg.project = strings.TrimSpace(opts.Get(OptProject, ""))
	anonymous := false
	if v := opts.Get(OptAnonymous, ""); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s=%q: want true or false", OptAnonymous, v))
		}
		anonymous = b
	}
	if v := opts.Get(OptChunkSize, ""); v != "" {
		s, err := conf.ParseSize(v)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s: %v", OptChunkSize, err))
		case s < minChunkSize || s > maxChunkSize:
			problems = append(problems, fmt.Sprintf("%s=%q: want between 256KiB and 1GiB", OptChunkSize, v))
		default:
			cfg.chunkSize = roundChunk(int(s))
		}
	}
	if v := opts.Get(OptMaxAttempts, ""); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			problems = append(problems, fmt.Sprintf("%s=%q: want a whole number from 1 to 100", OptMaxAttempts, v))
		}
		cfg.maxAttempts = n
	}
	file, inline := opts.Get(OptCredentialsFile, ""), opts.Get(OptCredentialsJSON, "")
	switch {
	case file != "" && inline != "":
		problems = append(problems, fmt.Sprintf("%s and %s are both set; give one", OptCredentialsFile, OptCredentialsJSON))
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", OptCredentialsFile, err))
			break
		}
		cfg.credsSource = OptCredentialsFile + " " + strconv.Quote(file)
		cfg.credsJSON = b
	case inline != "":
		cfg.credsSource = OptCredentialsJSON
		cfg.credsJSON = []byte(inline)
	}
	if cfg.credsJSON != nil {
		t, err := credentialsType(cfg.credsJSON)
		if err != nil {
			problems = append(problems, cfg.credsSource+": "+err.Error())
		}
		cfg.credsType = t
	}
	keyFrom := ""
	switch {
	case file != "":
		keyFrom = OptCredentialsFile
	case inline != "":
		keyFrom = OptCredentialsJSON
	}
	problems = append(problems, cfg.credentialsMode(uri, opts, anonymous, keyFrom)...)
	if len(problems) > 0 {
		return config{}, fmt.Errorf("%w: gcs options: %s", ufs.ErrInvalidURI, strings.Join(problems, "; "))
	}
	return cfg, nil
}

func isKnown(k string) bool { return slices.Contains(knownOptions(), k) }

// roundChunk rounds up to the 256 KiB multiple the upload protocol requires.
func roundChunk(n int) int {
	return (n + minChunkSize - 1) / minChunkSize * minChunkSize
}

// normaliseEndpoint turns "host:port", "http://host:port" or a full
// ".../storage/v1/" URL into the JSON API base URL the client wants.
func normaliseEndpoint(ep string) (string, error) {
	if !strings.Contains(ep, "://") {
		ep = "http://" + ep
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("%s=%q: want a URL such as http://127.0.0.1:4443 or https://storage.googleapis.com", OptEndpoint, ep)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%s=%q: query strings, fragments and user info are not allowed", OptEndpoint, ep)
	}
	p := strings.TrimSuffix(u.Path, "/")
	if !strings.HasSuffix(p, "/storage/v1") {
		p += "/storage/v1"
	}
	u.Path = p + "/"
	return u.String(), nil
}

// credentialsType checks that b is a JSON credential of a type this backend
// accepts and returns it. Messages name the problem, never the content.
func credentialsType(b []byte) (option.CredentialsType, error) {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return "", fmt.Errorf("not valid JSON (syntax error at byte %d); want a Google credentials JSON key", se.Offset)
		}
		return "", fmt.Errorf("not a JSON object; want a Google credentials JSON key")
	}
	switch t := option.CredentialsType(head.Type); t {
	case option.ServiceAccount, option.AuthorizedUser, option.ImpersonatedServiceAccount, option.ExternalAccount:
		return t, nil
	case "":
		return "", fmt.Errorf(`has no "type" field; want a Google credentials JSON key (service_account, authorized_user, impersonated_service_account or external_account)`)
	default:
		return "", fmt.Errorf("credential type %q is not supported (want service_account, authorized_user, impersonated_service_account or external_account)", head.Type)
	}
}

// credentialsMode sets c.creds from gcs.credentials, the older gcs.anonymous
// and the option a key was given in (keyFrom, "" for none), and returns the
// problems.
func (c *config) credentialsMode(uri string, opts ufs.Options, anonymous bool, keyFrom string) []string {
	key := keyFrom != ""
	var problems []string
	mode, set := opts[OptCredentials]
	switch mode {
	case CredStatic, CredAmbient, CredAnonymous:
	default:
		if set {
			return []string{fmt.Sprintf("%s=%q: want %s (the key of %s or %s), %s (the host's Application Default Credentials) or %s (no authentication)",
				OptCredentials, mode, CredStatic, OptCredentialsFile, OptCredentialsJSON, CredAmbient, CredAnonymous)}
		}
	}
	if anonymous {
		if set && mode != CredAnonymous {
			problems = append(problems, fmt.Sprintf("%s=true contradicts %s=%s", OptAnonymous, OptCredentials, mode))
		}
		mode, set = CredAnonymous, true
	}
	switch {
	case key && !set:
		mode = CredStatic
	case key && mode != CredStatic:
		what := OptCredentials + "=" + mode
		if anonymous {
			what = OptAnonymous + "=true"
		}
		problems = append(problems, fmt.Sprintf("%s contradicts %s; give one", what, keyFrom))
	case key:
		// static, with its key
	case !set:
		problems = append(problems, fmt.Sprintf("no credentials for %s: give %s or %s, "+
			"or %s=%s to use the host's Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud, metadata server), "+
			"or %s=%s", uri, OptCredentialsFile, OptCredentialsJSON, OptCredentials, CredAmbient, OptCredentials, CredAnonymous))
	case mode == CredStatic:
		problems = append(problems, fmt.Sprintf("%s=%s needs %s or %s", OptCredentials, CredStatic, OptCredentialsFile, OptCredentialsJSON))
	case mode == CredAmbient && strings.HasPrefix(c.endpoint, "http://"):
		problems = append(problems, fmt.Sprintf("%s=%s would send the host's Google credentials to the plain-HTTP endpoint %s; "+
			"use an https:// endpoint, or %s=%s for an emulator", OptCredentials, CredAmbient, c.endpoint, OptCredentials, CredAnonymous))
	}
	c.creds = mode
	return problems
}

// clientOptions turns the config into storage client options: the key
// (static), no authentication (anonymous) or, for ambient only, what the
// library finds itself: STORAGE_EMULATOR_HOST, then Application Default
// Credentials.
func (c config) clientOptions() []option.ClientOption {
	opts := []option.ClientOption{storage.WithDisabledClientMetrics(), option.WithTelemetryDisabled()}
	if c.endpoint != "" {
		opts = append(opts, option.WithEndpoint(c.endpoint))
	}
	switch c.creds {
	case CredStatic:
		opts = append(opts, option.WithAuthCredentialsJSON(c.credsType, c.credsJSON))
	case CredAnonymous:
		opts = append(opts, option.WithoutAuthentication())
	}
	return opts
}

// retryOptions bounds retries so that an unreachable store fails in seconds
// instead of retrying until the caller's deadline.
func (c config) retryOptions() []storage.RetryOption {
	return []storage.RetryOption{
		storage.WithMaxAttempts(c.maxAttempts),
		storage.WithBackoff(gax.Backoff{Initial: 200 * time.Millisecond, Max: 10 * time.Second, Multiplier: 2}),
	}
}

// newClient opens the storage client. It reads credentials but does not call
// the storage API.
func (c config) newClient(ctx context.Context) (*storage.Client, error) {
	cl, err := storage.NewClient(ctx, c.clientOptions()...)
	if err != nil {
		return nil, err
	}
	cl.SetRetry(c.retryOptions()...)
	return cl, nil
}
