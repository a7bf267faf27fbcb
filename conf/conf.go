// Package conf holds Strata's configuration: plain structs with YAML tags, their
// defaults, validation that reports every problem at once, and loading with the
// precedence defaults < YAML file < STRATA_* environment < command-line flags.
//
// The package depends on the standard library and a YAML parser only.
package conf

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration of a Strata process. Each component reads the
// sections it needs; the CLI reads Etcd and Client.
type Config struct {
	// DataDir holds the embedded etcd data, worker identity and disk tiers unless
	// they name their own directories.
	DataDir     string      `yaml:"data_dir"`
	Log         Log         `yaml:"log"`
	Etcd        Etcd        `yaml:"etcd"`
	Coordinator Coordinator `yaml:"coordinator"`
	Worker      Worker      `yaml:"worker"`
	Client      Client      `yaml:"client"`
	S3          S3API       `yaml:"s3"`
	FUSE        FUSE        `yaml:"fuse"`
	TLS         TLS         `yaml:"tls"`
	HDFS        HDFS        `yaml:"hdfs"`
}

// Log configures log/slog output.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is text or json.
	Format string `yaml:"format"`
}

// Etcd says where the shared state lives.
type Etcd struct {
	// Endpoints of an external etcd cluster. `strata local` starts an embedded
	// single-node etcd on EmbedClientURL and uses that instead.
	Endpoints []string `yaml:"endpoints"`
	// Prefix is prepended to every key Strata writes, so several clusters can
	// share one etcd.
	Prefix      string   `yaml:"prefix"`
	DialTimeout Duration `yaml:"dial_timeout"`
	// EmbedClientURL and EmbedPeerURL are the listen addresses of the embedded etcd.
	EmbedClientURL string `yaml:"embed_client_url"`
	EmbedPeerURL   string `yaml:"embed_peer_url"`
	// Username and PasswordFile log in to an external etcd that checks
	// passwords (the password is read from the file, never from argv or
	// the YAML). Without them, etcd authenticates Strata by the TLS
	// certificate (tls.*), whose CommonName is the etcd user.
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
}

// Coordinator configures the control-plane server.
type Coordinator struct {
	// Listen is the gRPC address (host:port; port 0 picks a free one).
	Listen string `yaml:"listen"`
	// AdvertiseAddr is the address clients dial; defaults to the bound address.
	AdvertiseAddr string `yaml:"advertise_addr"`
	// MetricsListen serves Prometheus /metrics over HTTP; empty disables it.
	MetricsListen string `yaml:"metrics_listen"`
	// MountCheckTimeout bounds the reachability check of a new mount.
	MountCheckTimeout Duration `yaml:"mount_check_timeout"`
	// AllowedLocalRoots are the absolute directories under which file://
	// mounts may be made (symlinks resolved); "*" allows any directory.
	// Empty (the default for a cluster) refuses every file:// mount;
	// LocalDefaults sets "*" for `strata local`.
	AllowedLocalRoots []string `yaml:"allowed_local_roots"`
}

// Worker configures a cache worker.
type Worker struct {
	// ID is the worker's stable identity; empty means generated once and kept in
	// <data_dir>/worker/id.
	ID string `yaml:"id"`
	// Listen is the gRPC (metadata and control) address.
	Listen string `yaml:"listen"`
	// DataListen is the HTTP address that serves page data and /metrics.
	DataListen string `yaml:"data_listen"`
	// DataTLS serves the data port with mutual TLS (the node certificate)
	// instead of plain HTTP with signed data tokens: the bytes are
	// encrypted on the wire, at the cost of the kernel's sendfile. Needs
	// certificates; /metrics then needs a client certificate too.
	DataTLS bool `yaml:"data_tls"`
	// AdvertiseHost replaces the bound host in the addresses published in etcd.
	AdvertiseHost string `yaml:"advertise_host"`
	// LeaseTTL is how long the worker stays in the membership after its last
	// heartbeat.
	LeaseTTL Duration `yaml:"lease_ttl"`
	// MetadataTTL is how long stat and list results are cached unless the mount
	// sets its own metadata_ttl option.
	MetadataTTL Duration `yaml:"metadata_ttl"`
	// BlockSize is the placement unit: block i of a file lives on the owner of
	// (file, i).
	BlockSize Size `yaml:"block_size"`
	// PageSize is the caching, eviction and checksum unit.
	PageSize Size `yaml:"page_size"`
	// UFSConcurrency bounds concurrent fetches from the under-storage.
	UFSConcurrency int `yaml:"ufs_concurrency"`
	// Cache lists the tiers, fastest first.
	Cache Cache `yaml:"cache"`
}

// Client configures the routing client shared by the CLI and the front-ends.
type Client struct {
	// RequestTimeout bounds one request to a worker before the next owner, then
	// the UFS, is tried.
	RequestTimeout Duration `yaml:"request_timeout"`
	// UFSFallback lets the client read the UFS directly when no worker answers.
	UFSFallback bool `yaml:"ufs_fallback"`
	// Coordinator overrides the coordinator address found in etcd.
	Coordinator string `yaml:"coordinator"`
}

// Default returns the configuration `strata local` runs with.
func Default() Config {
	return Config{
		DataDir: ".strata",
		Log:     Log{Level: "info", Format: "text"},
		Etcd: Etcd{
			Endpoints:      []string{"http://127.0.0.1:2379"},
			Prefix:         "/strata",
			DialTimeout:    Duration(5e9),
			EmbedClientURL: "http://127.0.0.1:2379",
			EmbedPeerURL:   "http://127.0.0.1:2380",
		},
		Coordinator: Coordinator{
			Listen:            "127.0.0.1:7420",
			MetricsListen:     "127.0.0.1:7429",
			MountCheckTimeout: Duration(15e9),
		},
		Worker: Worker{
			Listen:         "127.0.0.1:7421",
			DataListen:     "127.0.0.1:7422",
			LeaseTTL:       Duration(10e9),
			MetadataTTL:    Duration(30e9),
			BlockSize:      64 << 20,
			PageSize:       1 << 20,
			UFSConcurrency: 32,
			Cache:          DefaultCache(),
		},
		Client: Client{
			RequestTimeout: Duration(30e9),
			UFSFallback:    true,
		},
		S3:   DefaultS3API(),
		FUSE: DefaultFUSE(),
		TLS:  DefaultTLS(),
		HDFS: DefaultHDFS(),
	}
}

// Validate reports every problem in the configuration, joined into one error.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalid, field, fmt.Sprintf(format, args...)))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "%q is not one of text, json", c.Log.Format)
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	if len(c.Etcd.Endpoints) == 0 {
		bad("etcd.endpoints", "at least one endpoint is needed")
	}
	for _, e := range c.Etcd.Endpoints {
		if err := checkURL(e); err != nil {
			bad("etcd.endpoints", "%q: %v", e, err)
		}
	}
	if !strings.HasPrefix(c.Etcd.Prefix, "/") || strings.HasSuffix(c.Etcd.Prefix, "/") {
		bad("etcd.prefix", "%q must start with / and not end with /", c.Etcd.Prefix)
	}
	if c.Etcd.DialTimeout <= 0 {
		bad("etcd.dial_timeout", "must be positive")
	}
	for name, u := range map[string]string{"etcd.embed_client_url": c.Etcd.EmbedClientURL, "etcd.embed_peer_url": c.Etcd.EmbedPeerURL} {
		if err := checkURL(u); err != nil {
			bad(name, "%q: %v", u, err)
		}
	}
	for name, a := range map[string]string{
		"coordinator.listen": c.Coordinator.Listen, "worker.listen": c.Worker.Listen,
		"worker.data_listen": c.Worker.DataListen,
	} {
		if _, _, err := net.SplitHostPort(a); err != nil {
			bad(name, "%q is not host:port", a)
		}
	}
	if a := c.Coordinator.MetricsListen; a != "" {
		if _, _, err := net.SplitHostPort(a); err != nil {
			bad("coordinator.metrics_listen", "%q is not host:port", a)
		}
	}
	if c.Coordinator.MountCheckTimeout <= 0 {
		bad("coordinator.mount_check_timeout", "must be positive")
	}
	errs = append(errs, c.Coordinator.validate()...)
	if c.Worker.LeaseTTL < Duration(2e9) {
		bad("worker.lease_ttl", "%s is below the 2s minimum", c.Worker.LeaseTTL)
	}
	if c.Worker.MetadataTTL < 0 {
		bad("worker.metadata_ttl", "must not be negative")
	}
	if c.Worker.PageSize < 4096 || c.Worker.PageSize&(c.Worker.PageSize-1) != 0 {
		bad("worker.page_size", "%s must be a power of two of at least 4KiB", c.Worker.PageSize)
	}
	if c.Worker.BlockSize < c.Worker.PageSize || (c.Worker.PageSize > 0 && c.Worker.BlockSize%c.Worker.PageSize != 0) {
		bad("worker.block_size", "%s must be a multiple of page_size (%s)", c.Worker.BlockSize, c.Worker.PageSize)
	}
	if c.Worker.UFSConcurrency < 1 {
		bad("worker.ufs_concurrency", "must be at least 1")
	}
	errs = append(errs, c.Worker.Cache.validate()...)
	errs = append(errs, c.S3.validate()...)
	errs = append(errs, c.FUSE.validate()...)
	errs = append(errs, c.TLS.validate()...)
	errs = append(errs, c.HDFS.validate()...)
	if c.Client.RequestTimeout <= 0 {
		bad("client.request_timeout", "must be positive")
	}
	return errors.Join(errs...)
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("want http:// or https://")
	}
	if u.Host == "" {
		return errors.New("missing host")
	}
	return nil
}

// LoadFile reads a YAML file over cfg. Unknown keys are errors, so a typo never
// goes unnoticed.
func LoadFile(cfg *Config, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("conf: read %s: %w", path, err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file changes nothing
		}
		return fmt.Errorf("%w: %s: %v", ErrInvalid, path, err)
	}
	return nil
}

// EnvPrefix is the prefix of environment variables that override the config.
const EnvPrefix = "STRATA_"

// ApplyEnv overrides cfg with STRATA_* variables from environ ("K=V" pairs, as
// os.Environ returns). The variable name is the YAML path in upper case joined by
// underscores: STRATA_ETCD_ENDPOINTS, STRATA_WORKER_CACHE_MEMORY_SIZE... Lists are
// comma-separated. Every bad value is reported.
func ApplyEnv(cfg *Config, environ []string) error {
	vars := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, EnvPrefix) {
			vars[k] = v
		}
	}
	if len(vars) == 0 {
		return nil
	}
	var errs []error
	applyEnv(reflect.ValueOf(cfg).Elem(), strings.TrimSuffix(EnvPrefix, "_"), vars, &errs)
	return errors.Join(errs...)
}

var (
	sizeType     = reflect.TypeFor[Size]()
	durationType = reflect.TypeFor[Duration]()
)

func applyEnv(v reflect.Value, name string, vars map[string]string, errs *[]error) {
	t := v.Type()
	if t.Kind() == reflect.Struct {
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if tag == "" || tag == "-" {
				continue
			}
			applyEnv(v.Field(i), name+"_"+strings.ToUpper(tag), vars, errs)
		}
		return
	}
	raw, ok := vars[name]
	if !ok {
		return
	}
	if err := setString(v, raw); err != nil {
		*errs = append(*errs, fmt.Errorf("%s: %w", name, err))
	}
}

func setString(v reflect.Value, raw string) error {
	switch {
	case v.Type() == sizeType:
		return v.Addr().Interface().(*Size).Set(raw)
	case v.Type() == durationType:
		return v.Addr().Interface().(*Duration).Set(raw)
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("%w: %q is not a boolean", ErrInvalid, raw)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return fmt.Errorf("%w: %q is not an integer", ErrInvalid, raw)
		}
		v.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return fmt.Errorf("%w: %q is not a number", ErrInvalid, raw)
		}
		v.SetFloat(f)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("%w: lists of this kind cannot be set from the environment; use the YAML file", ErrInvalid)
		}
		var parts []string
		for p := range strings.SplitSeq(raw, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		v.Set(reflect.ValueOf(parts))
	default:
		return fmt.Errorf("%w: cannot be set from the environment; use the YAML file", ErrInvalid)
	}
	return nil
}

// Load builds the configuration from defaults, an optional YAML file and the
// environment, and validates it. Flags are applied by the caller afterwards,
// followed by another Validate.
func Load(path string, environ []string) (Config, error) {
	cfg := Default()
	if path != "" {
		if err := LoadFile(&cfg, path); err != nil {
			return cfg, err
		}
	}
	if err := ApplyEnv(&cfg, environ); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// Resolve returns p relative to DataDir when p is relative, p otherwise.
func (c Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.DataDir, p)
}
