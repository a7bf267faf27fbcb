package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/s3api"
)

// devKeysFile holds the development access key generated when none is
// configured, under the data dir, so it stays the same across restarts.
const devKeysFile = "s3-dev-credentials"

// startS3FrontEnd starts the S3 API of `strata local` when s3.enabled, and
// prints its endpoint and, when no access key is configured, the
// development key it generated.
func startS3FrontEnd(ctx context.Context, cfg conf.Config, opts localOptions, c *client.Client, log *slog.Logger, out io.Writer) (frontEnd, error) {
	if !cfg.S3.Enabled {
		return nil, nil
	}
	srv, err := runS3(ctx, cfg, c, log, out, opts.metrics)
	if err != nil {
		return nil, err
	}
	return srv, nil
}

// runS3 starts an S3 server and prints how to reach it. reg, when not nil,
// receives its metrics.
func runS3(ctx context.Context, cfg conf.Config, c *client.Client, log *slog.Logger, out io.Writer, reg prometheus.Registerer) (*s3api.Server, error) {
	var dev *conf.S3AccessKey
	if len(cfg.S3.AccessKeys) == 0 && len(cfg.S3.BucketKeys) == 0 && cfg.S3.Anonymous == conf.S3AnonymousOff {
		k, err := devAccessKey(cfg)
		if err != nil {
			return nil, err
		}
		dev = &k
		cfg.S3.AccessKeys = []string{k.ID + ":" + k.Secret}
	}
	srv, err := s3api.New(ctx, cfg, s3api.Deps{Client: c, Logger: log, Metrics: reg})
	if err != nil {
		return nil, err
	}
	if err := srv.Start(ctx); err != nil {
		_ = srv.Close(ctx)
		return nil, err
	}
	endpoint := "http://" + srv.Addr()
	fmt.Fprintf(out, "  S3 API:       %s   (region %s; buckets are the top-level directories)\n", endpoint, cfg.S3.Region)
	switch {
	case dev != nil:
		fmt.Fprintf(out, `  S3 dev key:   AccessKey: %s
                SecretKey: %s
                (generated, kept in %s; set s3.access_keys to use your own)
  e.g.          AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s aws --endpoint-url %s s3 ls
`, dev.ID, dev.Secret, filepath.Join(cfg.DataDir, devKeysFile), dev.ID, dev.Secret, endpoint)
	case len(cfg.S3.AccessKeys)+len(cfg.S3.BucketKeys) == 0:
		fmt.Fprintf(out, "  S3 access:    anonymous (%s), no access keys\n", cfg.S3.Anonymous)
	default:
		fmt.Fprintf(out, "  S3 access:    %d configured access key(s); anonymous %s\n", len(cfg.S3.AccessKeys)+len(cfg.S3.BucketKeys), cfg.S3.Anonymous)
	}
	return srv, nil
}

// devAccessKey loads the development key from the data dir, or generates
// and saves one.
func devAccessKey(cfg conf.Config) (conf.S3AccessKey, error) {
	path := filepath.Join(cfg.DataDir, devKeysFile)
	data, err := os.ReadFile(path)
	if err == nil {
		if k, perr := conf.ParseS3AccessKey(strings.TrimSpace(string(data))); perr == nil {
			return k, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return conf.S3AccessKey{}, fmt.Errorf("read the S3 development key: %w", err)
	}
	k := conf.S3AccessKey{ID: "strata-" + randomString(12, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
		Secret: randomString(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return k, fmt.Errorf("save the S3 development key: %w", err)
	}
	if err := os.WriteFile(path, []byte(k.ID+":"+k.Secret+"\n"), 0o600); err != nil {
		return k, fmt.Errorf("save the S3 development key: %w", err)
	}
	return k, nil
}

func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// s3ServeFlags are the flags of `strata s3 serve` that override the config.
type s3ServeFlags struct {
	listen, region, anonymous, multipartDir, metricsListen string
	accessKeys, domains                                    []string
}

// newS3Cmd is `strata s3`: the S3-compatible API as a standalone server.
func newS3Cmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "s3",
		Short: "Serve the namespace over an S3-compatible API",
		Long: `Serve Strata's namespace over the S3 REST API: top-level directories are
buckets, the paths below them keys. Reads come from the workers' caches, writes
go through to the under-storage. See docs/s3-api.md.`,
		Example: `  strata s3 serve --listen 0.0.0.0:7480
  aws --endpoint-url http://127.0.0.1:7480 s3 ls s3://datasets/`,
	}
	cmd.AddCommand(newS3ServeCmd(g))
	return cmd
}

func newS3ServeCmd(g *globals) *cobra.Command {
	sf := &s3ServeFlags{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run an S3 API server against a Strata cluster",
		Long: `Run the S3-compatible API as its own process, against the cluster whose etcd
--etcd-endpoints names (like the other client commands). It runs until
interrupted (Ctrl-C or SIGTERM). With no access key configured and anonymous
access off, it generates a development key, keeps it in the data dir and
prints it.`,
		Example: `  strata s3 serve --etcd-endpoints http://10.0.0.1:2379 --listen 0.0.0.0:7480 \
      --access-key AKIAEXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
  AWS_ACCESS_KEY_ID=AKIAEXAMPLE AWS_SECRET_ACCESS_KEY=... aws --endpoint-url http://10.0.0.5:7480 s3 ls`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runS3Serve(cmd, g, sf)
		},
	}
	f := cmd.Flags()
	f.StringVar(&sf.listen, "listen", "", "S3 API address (default 127.0.0.1:7480)")
	f.StringVar(&sf.region, "region", "", "region clients sign for (default us-east-1)")
	f.StringSliceVar(&sf.accessKeys, "access-key", nil, "accepted credentials ACCESS_KEY_ID:SECRET_ACCESS_KEY (repeatable; replaces s3.access_keys)")
	f.StringVar(&sf.anonymous, "anonymous", "", "what unsigned requests may do: off, read or read-write (default off)")
	f.StringSliceVar(&sf.domains, "domain", nil, "base domain of virtual-host-style addressing, e.g. s3.example.com (repeatable)")
	f.StringVar(&sf.multipartDir, "multipart-dir", "", "staging directory of multipart uploads (default <data-dir>/s3-multipart)")
	f.StringVar(&sf.metricsListen, "metrics-listen", "", "serve Prometheus /metrics on this address (default: off)")
	return cmd
}

func runS3Serve(cmd *cobra.Command, g *globals, sf *s3ServeFlags) error {
	cfg, err := g.config(cmd.Flags())
	if err != nil {
		return err
	}
	fl := cmd.Flags()
	if fl.Changed("listen") {
		cfg.S3.Listen = sf.listen
	}
	if fl.Changed("region") {
		cfg.S3.Region = sf.region
	}
	if fl.Changed("access-key") {
		cfg.S3.AccessKeys = sf.accessKeys
	}
	if fl.Changed("anonymous") {
		cfg.S3.Anonymous = sf.anonymous
	}
	if fl.Changed("domain") {
		cfg.S3.Domains = sf.domains
	}
	if fl.Changed("multipart-dir") {
		cfg.S3.MultipartDir = sf.multipartDir
	}
	if sf.metricsListen != "" {
		if _, _, err := net.SplitHostPort(sf.metricsListen); err != nil {
			return fmt.Errorf("%w: --metrics-listen %q is not host:port", conf.ErrInvalid, sf.metricsListen)
		}
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	ctx := cmd.Context()
	log := newLogger(cfg.Log)
	c, closeClient, err := openClient(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeClient()
	reg := metricsRegistry()
	out := cmd.OutOrStdout()
	fmt.Fprintln(out, "Strata S3 API is running.")
	srv, err := runS3(ctx, cfg, c, log, out, reg)
	if err != nil {
		return err
	}
	var metricsSrv *http.Server
	metricsDone := make(chan struct{})
	if sf.metricsListen != "" {
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", sf.metricsListen)
		if err != nil {
			_ = srv.Close(context.Background())
			return fmt.Errorf("metrics listener: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			defer close(metricsDone)
			_ = metricsSrv.Serve(ln)
		}()
		fmt.Fprintf(out, "  metrics:      http://%s/metrics\n", ln.Addr())
	}
	fmt.Fprintln(out, "Press Ctrl-C to stop.")
	<-ctx.Done()
	fmt.Fprintln(out, "Stopping...")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if metricsSrv != nil {
		_ = metricsSrv.Shutdown(sctx)
		<-metricsDone
	}
	return srv.Close(sctx)
}
