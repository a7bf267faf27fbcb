package ufs

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// Options are a mount's backend options ("s3.endpoint", "s3.region", ...).
// Secrets live here too: print them only through Options.Masked.
type Options map[string]string

// Get returns the option or def when it is absent.
func (o Options) Get(key, def string) string {
	if v, ok := o[key]; ok {
		return v
	}
	return def
}

// secretWords mark option keys whose values must never be printed or logged.
var secretWords = []string{"secret", "password", "token", "key", "credential", "sas", "connection_string"}

// IsSecret reports whether the option key holds a credential. The
// "<scheme>.credentials" option names a mode (static, ambient, anonymous),
// not a secret.
func IsSecret(key string) bool {
	k := strings.ToLower(key)
	if strings.HasSuffix(k, "access_key_id") || strings.HasSuffix(k, "account_name") ||
		k == "credentials" || strings.HasSuffix(k, ".credentials") {
		return false
	}
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// Masked returns a copy with every secret value replaced by "****".
func (o Options) Masked() Options {
	m := make(Options, len(o))
	for k, v := range o {
		if IsSecret(k) && v != "" {
			v = "****"
		}
		m[k] = v
	}
	return m
}

// Location is a parsed mount URI: scheme://bucket/prefix, or file:///dir.
type Location struct {
	// Scheme in lower case: s3, gs, azblob, hdfs, file.
	Scheme string
	// Bucket (or container, or HDFS name node host:port); empty for file://.
	Bucket string
	// Prefix is the clean path inside the bucket (or the absolute directory for
	// file://, without its leading "/").
	Prefix string
	// Raw is the URI as given.
	Raw string
}

// String renders the location in canonical form.
func (l Location) String() string {
	if l.Scheme == "file" {
		return "file:///" + l.Prefix
	}
	if l.Prefix == "" {
		return l.Scheme + "://" + l.Bucket
	}
	return l.Scheme + "://" + l.Bucket + "/" + l.Prefix
}

// ParseURI parses a mount URI. Errors wrap ErrInvalidURI and say what a valid
// URI looks like.
func ParseURI(raw string) (Location, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return Location{}, fmt.Errorf("%w: %q: %v", ErrInvalidURI, raw, err)
	}
	if u.Scheme == "" {
		return Location{}, fmt.Errorf("%w: %q has no scheme; write it as s3://bucket/prefix, gs://bucket/prefix, azblob://container/prefix or file:///dir", ErrInvalidURI, raw)
	}
	loc := Location{Scheme: strings.ToLower(u.Scheme), Raw: raw}
	// Azure's wasb(s)/abfs(s) URIs name the container as the user part
	// (wasbs://container@account.blob.core.windows.net/path); a password there
	// would be a credential, which belongs in --option.
	_, hasPassword := u.User.Password()
	userOK := u.User != nil && !hasPassword && azureAccountSchemes[loc.Scheme]
	if u.RawQuery != "" || u.Fragment != "" || (u.User != nil && !userOK) {
		return Location{}, fmt.Errorf("%w: %q: query strings, fragments and user info are not allowed; pass credentials as --option", ErrInvalidURI, raw)
	}
	prefix, err := CleanPath(u.Path)
	if err != nil {
		return Location{}, fmt.Errorf("%w: %q: %v", ErrInvalidURI, raw, err)
	}
	loc.Prefix = prefix
	if loc.Scheme == "file" {
		if u.Host != "" {
			return Location{}, fmt.Errorf("%w: %q: a file URI has no host; write file:///absolute/dir", ErrInvalidURI, raw)
		}
		return loc, nil
	}
	if u.Host == "" {
		return Location{}, fmt.Errorf("%w: %q has no bucket; write it as %s://bucket/prefix", ErrInvalidURI, raw, loc.Scheme)
	}
	loc.Bucket = u.Host
	return loc, nil
}

// azureAccountSchemes put the container in the user part of the URI.
var azureAccountSchemes = map[string]bool{"wasb": true, "wasbs": true, "abfs": true, "abfss": true}

// Factory opens an FS for a parsed location with the mount's options. It should
// not touch the network; Check does. The FS logs its background work through
// LoggerFrom(ctx).
type Factory func(ctx context.Context, loc Location, opts Options) (FS, error)

// Registry maps URI schemes to backends. The zero value is empty and ready; it
// is safe for concurrent use.
type Registry struct {
	// Logger receives the logs of the FSes the registry opens (their
	// background work, such as aborting stale uploads); nil means
	// slog.Default(). Set it before the first Open.
	Logger *slog.Logger

	mu        sync.RWMutex
	factories map[string]Factory
}

// Register adds a backend for scheme; a second registration of one scheme panics
// (it is a programming error).
func (r *Registry) Register(scheme string, f Factory) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.factories == nil {
		r.factories = map[string]Factory{}
	}
	if _, dup := r.factories[scheme]; dup {
		panic("ufs: scheme registered twice: " + scheme)
	}
	r.factories[scheme] = f
}

// Schemes lists the registered schemes, sorted.
func (r *Registry) Schemes() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.factories))
}

// Open parses uri and opens it with the scheme's backend.
func (r *Registry) Open(ctx context.Context, uri string, opts Options) (FS, error) {
	loc, err := ParseURI(uri)
	if err != nil {
		return nil, err
	}
	r.mu.RLock()
	f, ok := r.factories[loc.Scheme]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: unknown scheme %q in %q (known: %s)", ErrInvalidURI, loc.Scheme, uri, strings.Join(r.Schemes(), ", "))
	}
	log := r.Logger
	if log == nil {
		log = slog.Default()
	}
	return f(WithLogger(ctx, log), loc, opts)
}

// Check verifies that fs is reachable with its credentials and that its root
// exists, by a Stat of the root. It is what `strata fs mount` runs before
// storing a mount.
func Check(ctx context.Context, fs FS) error {
	fi, err := fs.Stat(ctx, "")
	if err != nil {
		return err
	}
	if !fi.IsDir {
		return fmt.Errorf("%w: the mount root is a file, not a directory", ErrNotDir)
	}
	return nil
}
