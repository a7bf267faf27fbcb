package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/ufs"
	"github.com/stratafs/strata/ufs/local"
	ufss3 "github.com/stratafs/strata/ufs/s3"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// globals are the flags every command shares.
type globals struct {
	configFile    string
	etcdEndpoints []string
	etcdPrefix    string
	logLevel      string
	logFormat     string
	dataDir       string
	certsDir      string
	insecure      bool
}

func (g *globals) register(root *cobra.Command) {
	f := root.PersistentFlags()
	f.StringVar(&g.configFile, "config", os.Getenv("STRATA_CONFIG"), "YAML config file (env STRATA_CONFIG)")
	f.StringSliceVar(&g.etcdEndpoints, "etcd-endpoints", nil, "etcd endpoints, comma-separated (default http://127.0.0.1:2379, where strata local serves)")
	f.StringVar(&g.etcdPrefix, "etcd-prefix", "", "key prefix in etcd (default /strata)")
	f.StringVar(&g.logLevel, "log-level", "", "log level: debug, info, warn, error")
	f.StringVar(&g.logFormat, "log-format", "", "log format: text or json")
	f.StringVar(&g.dataDir, "data-dir", "", "directory for etcd data, worker identity and disk tiers (default ./.strata)")
	f.StringVar(&g.certsDir, "certs-dir", "", "directory of ca.crt, node.crt, client.crt and cluster.key (default <data-dir>/certs; see `strata cert --help`)")
	f.BoolVar(&g.insecure, "insecure", false, "run without TLS even on a non-loopback address: any caller that reaches a port may read and reconfigure the cluster")
}

// config builds the configuration: defaults < file < STRATA_* env < flags.
func (g *globals) config(flags *pflag.FlagSet) (conf.Config, error) {
	cfg, err := conf.Load(g.configFile, os.Environ())
	if err != nil {
		return cfg, err
	}
	if flags.Changed("etcd-endpoints") {
		cfg.Etcd.Endpoints = g.etcdEndpoints
	}
	if flags.Changed("etcd-prefix") {
		cfg.Etcd.Prefix = g.etcdPrefix
	}
	if flags.Changed("log-level") {
		cfg.Log.Level = g.logLevel
	}
	if flags.Changed("log-format") {
		cfg.Log.Format = g.logFormat
	}
	if flags.Changed("data-dir") {
		cfg.DataDir = g.dataDir
	}
	if flags.Changed("certs-dir") {
		cfg.TLS.Dir = g.certsDir
	}
	if flags.Changed("insecure") {
		cfg.TLS.Insecure = g.insecure
	}
	return cfg, nil
}

func newLogger(cfg conf.Log) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// newRegistry knows every under-storage scheme this binary supports.
func newRegistry(log *slog.Logger) *ufs.Registry {
	r := &ufs.Registry{Logger: log}
	local.Register(r)
	ufss3.Register(r)
	registerMore(r)
	return r
}

// dialEtcd connects to etcd: with the process's certificate when it has one
// (etcd takes the certificate's CommonName as the user), and with
// etcd.username / etcd.password_file when set.
func dialEtcd(ctx context.Context, cfg conf.Config, sec security) (*clientv3.Client, error) {
	ecfg := clientv3.Config{
		Endpoints:   cfg.Etcd.Endpoints,
		DialTimeout: cfg.Etcd.DialTimeout.D(),
		Logger:      zap.NewNop(),
		Context:     context.WithoutCancel(ctx),
	}
	if sec.bundle != nil {
		ecfg.TLS = sec.bundle.ClientTLS("")
		ecfg.Endpoints = httpsURLs(cfg.Etcd.Endpoints)
	}
	if cfg.Etcd.Username != "" {
		pw, err := os.ReadFile(cfg.Etcd.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("etcd.password_file: %w", err)
		}
		ecfg.Username, ecfg.Password = cfg.Etcd.Username, strings.TrimRight(string(pw), "\r\n")
	}
	cli, err := clientv3.New(ecfg)
	if err != nil {
		return nil, fmt.Errorf("connect to etcd at %s: %w", strings.Join(cfg.Etcd.Endpoints, ","), err)
	}
	// The client dials lazily: prove the cluster answers before going on.
	sctx, cancel := context.WithTimeout(ctx, cfg.Etcd.DialTimeout.D())
	defer cancel()
	if _, err := cli.Get(sctx, cfg.Etcd.Prefix+"/meta/ping"); err != nil {
		cli.Close()
		if sec.bundle == nil {
			return nil, fmt.Errorf("%w: etcd at %s does not answer (%v); is `strata local` running, or pass --etcd-endpoints; "+
				"this process found no certificates in %s: a cluster that uses TLS refuses it (pass --certs-dir)",
				ufs.ErrUnavailable, strings.Join(ecfg.Endpoints, ","), err, sec.dir)
		}
		return nil, fmt.Errorf("%w: etcd at %s does not answer or refuses this certificate (%s, from %s): %v; is `strata local` running, or pass --etcd-endpoints",
			ufs.ErrUnavailable, strings.Join(ecfg.Endpoints, ","), sec.bundle.Identity, sec.dir, err)
	}
	return cli, nil
}

// withClient runs fn with a connected client.
func (g *globals) withClient(cmd *cobra.Command, fn func(ctx context.Context, c *client.Client) error) error {
	cfg, err := g.config(cmd.Flags())
	if err != nil {
		return err
	}
	if cfg.Log.Level == "info" && !cmd.Flags().Changed("log-level") {
		cfg.Log.Level = "warn" // client commands stay quiet unless asked
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	ctx := cmd.Context()
	c, closeClient, err := openClient(ctx, cfg, newLogger(cfg.Log))
	if err != nil {
		return err
	}
	defer closeClient()
	return fn(ctx, c)
}

// openClient dials etcd and starts a client for cfg; closeClient releases
// both.
func openClient(ctx context.Context, cfg conf.Config, log *slog.Logger) (c *client.Client, closeClient func(), err error) {
	sec, err := loadSecurity(cfg, false)
	if err != nil {
		return nil, nil, err
	}
	etcd, err := dialEtcd(ctx, cfg, sec)
	if err != nil {
		return nil, nil, err
	}
	c, err = client.New(ctx, client.Options{Etcd: etcd, Config: cfg, Registry: newRegistry(log), Logger: log, TLS: sec.bundle, Secrets: sec.box})
	if err != nil {
		etcd.Close()
		return nil, nil, err
	}
	return c, func() { _ = c.Close(); etcd.Close() }, nil
}

// withCoordinator runs fn with a coordinator connection.
func (g *globals) withCoordinator(cmd *cobra.Command, fn func(ctx context.Context, cc rpcpb.CoordinatorClient) error) error {
	return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
		coord, conn, err := c.Coordinator(ctx)
		if err != nil {
			return err
		}
		defer func(conn *grpc.ClientConn) { _ = conn.Close() }(conn)
		rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		return fn(rctx, coord)
	})
}

// explain adds what to do to common errors.
func explain(err error) string {
	msg := err.Error()
	switch {
	case errors.Is(err, rpcpb.ErrReadOnly):
		return msg + "\n  hint: the mount is read-only; `strata fs mount --read-only=false` it again or write elsewhere"
	case errors.Is(err, ufs.ErrPermission) && strings.Contains(msg, "allowed_local_roots"):
		return msg
	case errors.Is(err, ufs.ErrPermission) && (strings.Contains(msg, "certificate") || strings.Contains(msg, "admin")):
		return msg + "\n  hint: see `strata cert --help` and docs/security.md"
	case errors.Is(err, ufs.ErrPermission):
		return msg + "\n  hint: check the credentials (--option s3.access_key_id=... --option s3.secret_access_key=...) and the bucket policy"
	case errors.Is(err, namespace.ErrMountConflict):
		return msg + "\n  hint: `strata fs mounts` lists the mount points in use"
	case errors.Is(err, ufs.ErrInvalidURI):
		return msg + "\n  hint: URIs look like s3://bucket/prefix, gs://bucket/prefix, azblob://container/prefix or file:///dir"
	}
	return msg
}
