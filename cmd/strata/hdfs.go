package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/hdfsapi"
	"github.com/stratafs/strata/pki"
)

// startHDFSFrontEnd starts the WebHDFS listener of `strata local` when
// hdfs.enabled, with the node certificate `strata local` made (HTTPS,
// client certificates and tokens of its CA), and prints its endpoint.
func startHDFSFrontEnd(ctx context.Context, cfg conf.Config, opts localOptions, c *client.Client, log *slog.Logger, out io.Writer) (frontEnd, error) {
	if !cfg.HDFS.Enabled {
		return nil, nil
	}
	sec, err := loadSecurity(cfg, true)
	if err != nil {
		return nil, err
	}
	srv, err := runHDFS(ctx, cfg, sec, c, log, out, opts.metrics)
	if err != nil {
		return nil, fmt.Errorf("%w (set hdfs.listen to another address, or hdfs.enabled: false)", err)
	}
	return srv, nil
}

// runHDFS starts a WebHDFS server and prints how to reach it. sec is the
// process's security: its CA checks callers; its certificate serves HTTPS
// when it is a node certificate (else hdfs.cert_file or the node
// certificate of tls.dir must exist, or hdfs.tls be off). reg, when not
// nil, receives the server's metrics.
func runHDFS(ctx context.Context, cfg conf.Config, sec security, c *client.Client, log *slog.Logger, out io.Writer, reg prometheus.Registerer) (*hdfsapi.Server, error) {
	bundle := sec.bundle
	serverCert, err := hdfsServerCert(cfg, sec)
	if err != nil {
		return nil, err
	}
	srv, err := hdfsapi.New(ctx, cfg, hdfsapi.Deps{Client: c, Logger: log, Metrics: reg, TLS: bundle, ServerCert: serverCert})
	if err != nil {
		return nil, err
	}
	useTLS := srv.TLS()
	if !useTLS {
		if err := checkPlainHDFS(cfg, sec); err != nil {
			return nil, err
		}
	}
	if err := srv.Start(ctx); err != nil {
		_ = srv.Close(ctx)
		return nil, err
	}
	fmt.Fprintf(out, "  WebHDFS:      %s   (the namespace at %s/; docs/hdfs.md)\n", srv.URL(), hdfsapi.Prefix)
	switch {
	case useTLS && bundle != nil:
		fmt.Fprintf(out, "  WebHDFS auth: a client certificate of %s, or a token from `strata hdfs token` (delegation=...); anonymous %s\n",
			filepath.Join(sec.dir, pki.CACertFile), cfg.HDFS.Anonymous)
	case bundle != nil:
		fmt.Fprintf(out, "  WebHDFS auth: a token from `strata hdfs token` (delegation=...; plain HTTP: hdfs.tls off); anonymous %s\n", cfg.HDFS.Anonymous)
	default:
		fmt.Fprintf(out, "  WebHDFS auth: anonymous %s (no certificates: no client certificates or tokens)\n", cfg.HDFS.Anonymous)
	}
	return srv, nil
}

// hdfsServerCert is the HTTPS certificate of the WebHDFS listener when it
// is not sec's own: hdfs.cert_file, or the node certificate of tls.dir for a
// process whose own certificate is a client's (which cannot serve TLS).
// nil: sec's (a node certificate), or no TLS.
func hdfsServerCert(cfg conf.Config, sec security) (*tls.Certificate, error) {
	if cfg.HDFS.TLS == conf.HDFSTLSOff {
		return nil, nil
	}
	if cfg.HDFS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.HDFS.CertFile, cfg.HDFS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("hdfs.cert_file / hdfs.key_file: %w", err)
		}
		return &cert, nil
	}
	if sec.bundle == nil || sec.bundle.Identity.Role == pki.RoleNode {
		return nil, nil
	}
	node, err := loadSecurity(cfg, true)
	if err != nil || node.bundle == nil {
		return nil, fmt.Errorf("WebHDFS serves HTTPS with a server certificate and %s has none (%v): set hdfs.cert_file and hdfs.key_file, "+
			"create a node certificate (`strata cert create-node HOST...`), or pass --tls off (plain HTTP, loopback only)", sec.dir, err)
	}
	return &node.bundle.Cert, nil
}

// checkPlainHDFS refuses plain-HTTP WebHDFS on a non-loopback address unless
// tls.insecure is set: tokens and data would cross the network in the clear.
func checkPlainHDFS(cfg conf.Config, sec security) error {
	host, _, err := net.SplitHostPort(cfg.HDFS.Listen)
	if err != nil || loopback(host) || cfg.TLS.Insecure {
		return nil
	}
	why := "hdfs.tls is off"
	if sec.bundle == nil {
		why = "no certificates in " + sec.dir
	}
	return fmt.Errorf("%w: WebHDFS on %s (%s): delegation tokens and data would cross the network in the clear; "+
		"serve HTTPS (hdfs.tls: auto with certificates) or pass --insecure", errInsecureBind, cfg.HDFS.Listen, why)
}

// hdfsServeFlags are the flags of `strata hdfs serve` that override the
// config.
type hdfsServeFlags struct {
	listen, tlsMode, anonymous, certFile, keyFile, metricsListen string
	writers                                                      []string
}

// newHDFSCmd is `strata hdfs`: the HDFS-compatible front-end.
func newHDFSCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hdfs",
		Short: "Serve the namespace to Hadoop and Spark clients over WebHDFS",
		Long: `Serve Strata's namespace over WebHDFS, Hadoop's REST API
(/webhdfs/v1/<path>?op=...): Hadoop's webhdfs:// and swebhdfs:// file systems,
Python's fsspec, curl. Reads come from the workers' caches, writes go through to
the under-storage. Callers authenticate with a client certificate of the
cluster CA or a delegation token from ` + "`strata hdfs token`" + `. See docs/hdfs.md.`,
		Example: `  strata hdfs serve --listen 0.0.0.0:9870
  strata hdfs token --ttl 8h
  curl --cacert .strata/certs/ca.crt "https://127.0.0.1:9870/webhdfs/v1/?op=LISTSTATUS&delegation=$(strata hdfs token)"`,
	}
	cmd.AddCommand(newHDFSServeCmd(g), newHDFSTokenCmd(g))
	return cmd
}

func newHDFSServeCmd(g *globals) *cobra.Command {
	sf := &hdfsServeFlags{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a WebHDFS server against a Strata cluster",
		Long: `Run the WebHDFS API as its own process, against the cluster whose etcd
--etcd-endpoints names (like the other client commands). It runs until
interrupted (Ctrl-C or SIGTERM).

With certificates (tls.dir) it serves HTTPS with a server certificate
(--cert-file, else the node certificate of tls.dir) and verifies client
certificates of the cluster CA when callers present one; callers may instead
pass a delegation token. Admin and node certificates may write, client
certificates only read unless --writer names them. Without certificates it
serves plain HTTP, on loopback only unless --insecure.`,
		Example: `  strata hdfs serve --etcd-endpoints https://10.0.0.1:2379 --certs-dir /etc/strata/certs --listen 0.0.0.0:9870
  strata hdfs serve --writer spark-etl --metrics-listen 0.0.0.0:9879
  strata hdfs serve --tls off --anonymous read      # plain HTTP on loopback, for a development setup`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runHDFSServe(cmd, g, sf)
		},
	}
	f := cmd.Flags()
	f.StringVar(&sf.listen, "listen", "", "WebHDFS address (default 127.0.0.1:9870)")
	f.StringVar(&sf.tlsMode, "tls", "", "auto (HTTPS when there are certificates) or off (default auto)")
	f.StringVar(&sf.anonymous, "anonymous", "", "what callers without a certificate or token may do: off, read or read-write (default off)")
	f.StringSliceVar(&sf.writers, "writer", nil, "name of a client certificate that may write (repeatable; \"*\": every client certificate; replaces hdfs.writers)")
	f.StringVar(&sf.certFile, "cert-file", "", "server certificate of the HTTPS listener (default: the node certificate of the certs dir)")
	f.StringVar(&sf.keyFile, "key-file", "", "key of --cert-file")
	f.StringVar(&sf.metricsListen, "metrics-listen", "", "serve Prometheus /metrics on this address (default: off)")
	return cmd
}

// hdfsServeConfig applies the flags of `strata hdfs serve` to the config and
// validates it.
func hdfsServeConfig(cmd *cobra.Command, g *globals, sf *hdfsServeFlags) (conf.Config, error) {
	cfg, err := g.config(cmd.Flags())
	if err != nil {
		return cfg, err
	}
	fl := cmd.Flags()
	set := func(name string, dst *string, v string) {
		if fl.Changed(name) {
			*dst = v
		}
	}
	set("listen", &cfg.HDFS.Listen, sf.listen)
	set("tls", &cfg.HDFS.TLS, sf.tlsMode)
	set("anonymous", &cfg.HDFS.Anonymous, sf.anonymous)
	set("cert-file", &cfg.HDFS.CertFile, sf.certFile)
	set("key-file", &cfg.HDFS.KeyFile, sf.keyFile)
	if fl.Changed("writer") {
		cfg.HDFS.Writers = sf.writers
	}
	if sf.metricsListen != "" {
		if _, _, err := net.SplitHostPort(sf.metricsListen); err != nil {
			return cfg, fmt.Errorf("%w: --metrics-listen %q is not host:port", conf.ErrInvalid, sf.metricsListen)
		}
	}
	return cfg, cfg.Validate()
}

func runHDFSServe(cmd *cobra.Command, g *globals, sf *hdfsServeFlags) error {
	cfg, err := hdfsServeConfig(cmd, g, sf)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	log := newLogger(cfg.Log)
	sec, err := loadSecurity(cfg, false)
	if err != nil {
		return err
	}
	c, closeClient, err := openClient(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeClient()
	reg := metricsRegistry()
	out := cmd.OutOrStdout()
	fmt.Fprintln(out, "Strata WebHDFS is running.")
	srv, err := runHDFS(ctx, cfg, sec, c, log, out, reg)
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

func newHDFSTokenCmd(g *globals) *cobra.Command {
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Print a WebHDFS delegation token signed with this host's certificate",
		Long: `Print a delegation token for Strata's WebHDFS, signed with the client
certificate of the certs dir (client.crt: in a ` + "`strata local`" + ` data dir, its
admin). Pass it as Hadoop clients pass delegation tokens: the "delegation"
query parameter (fsspec's token=..., curl's ...&delegation=TOKEN), or an
"Authorization: Bearer TOKEN" header. It grants what the certificate grants
over mutual TLS (admin and node: read and write; client: read, or write when
hdfs.writers names it) until it expires (--ttl, at most 24h). It is a bearer
secret: anyone holding it acts as the certificate until then, and it cannot
be revoked before (rotate the CA to revoke). It needs no running cluster.`,
		Example: `  strata hdfs token
  TOKEN=$(strata hdfs token --ttl 8h --certs-dir ~/.strata/certs)
  /usr/bin/python3 -c "from fsspec.implementations.webhdfs import WebHDFS; fs = WebHDFS('127.0.0.1', 9870, use_https=True, token='$TOKEN'); fs.session.verify='.strata/certs/ca.crt'; print(fs.ls('/'))"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.config(cmd.Flags())
			if err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			sec, err := loadSecurity(cfg, false)
			if err != nil {
				return err
			}
			if sec.bundle == nil {
				return fmt.Errorf("%w: no certificates in %s: a token is signed with a client certificate of the cluster CA "+
					"(`strata cert create-client NAME`; pass --certs-dir)", pki.ErrNoCert, sec.dir)
			}
			tok, err := hdfsapi.SignToken(sec.bundle, time.Now(), ttl)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	cmd.Flags().DurationVar(&ttl, "ttl", hdfsapi.DefaultTokenTTL, "how long the token is valid (1s to 24h)")
	return cmd
}
