package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/cluster/embedetcd"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/coordinator"
	"github.com/stratafs/strata/worker"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// serverFlags are the daemon flags that override the config.
type serverFlags struct {
	coordListen, metricsListen   string
	workerListen, dataListen     string
	workerID, advertiseHost      string
	memory                       conf.Size
	embedClientURL, embedPeerURL string
	hasCoord, hasWorker          bool
}

func (s *serverFlags) registerCoordinator(f *pflag.FlagSet) {
	s.hasCoord = true
	f.StringVar(&s.coordListen, "listen", "", "coordinator gRPC address (default 127.0.0.1:7420)")
	f.StringVar(&s.metricsListen, "metrics-listen", "", "Prometheus /metrics address of the coordinator (default 127.0.0.1:7429; empty string disables)")
}

func (s *serverFlags) registerWorker(f *pflag.FlagSet, prefix string) {
	s.hasWorker = true
	f.StringVar(&s.workerListen, prefix+"listen", "", "worker gRPC address (default 127.0.0.1:7421)")
	f.StringVar(&s.dataListen, prefix+"data-listen", "", "worker HTTP data and /metrics address (default 127.0.0.1:7422)")
	f.StringVar(&s.workerID, prefix+"id", "", "worker identity (default: generated once and kept in the data dir)")
	f.StringVar(&s.advertiseHost, prefix+"advertise-host", "", "host name clients use to reach this worker (default: the bound address)")
	f.Var(&s.memory, prefix+"memory", "size of the memory cache tier, e.g. 4GiB (replaces the configured tiers with one memory tier)")
}

func (s *serverFlags) apply(f *pflag.FlagSet, cfg *conf.Config, workerPrefix string) {
	set := func(name string, dst *string, v string) {
		if f.Lookup(name) != nil && f.Changed(name) {
			*dst = v
		}
	}
	if s.hasCoord {
		set("listen", &cfg.Coordinator.Listen, s.coordListen)
		set("metrics-listen", &cfg.Coordinator.MetricsListen, s.metricsListen)
	}
	if !s.hasWorker {
		return
	}
	set(workerPrefix+"listen", &cfg.Worker.Listen, s.workerListen)
	set(workerPrefix+"data-listen", &cfg.Worker.DataListen, s.dataListen)
	set(workerPrefix+"id", &cfg.Worker.ID, s.workerID)
	set(workerPrefix+"advertise-host", &cfg.Worker.AdvertiseHost, s.advertiseHost)
	set("embed-client-url", &cfg.Etcd.EmbedClientURL, s.embedClientURL)
	set("embed-peer-url", &cfg.Etcd.EmbedPeerURL, s.embedPeerURL)
	if f.Lookup(workerPrefix+"memory") != nil && f.Changed(workerPrefix+"memory") {
		cfg.Worker.Cache = conf.Cache{Tiers: []conf.Tier{{Name: "mem", Medium: "memory", Size: s.memory, Policy: "lru"}}}
	}
}

// metricsRegistry is one Prometheus registry per process, with Go and process
// collectors.
func metricsRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

func newLocalCmd(g *globals) *cobra.Command {
	sf := &serverFlags{}
	lo := localOptions{}
	cmd := &cobra.Command{
		Use:   "local",
		Short: "Run a whole single-node Strata: embedded etcd, a coordinator and a worker",
		Long: `Run a working single-node Strata with no external service: an embedded
single-node etcd, one coordinator and one worker, with their data under
--data-dir (./.strata by default). It prints how to use it and runs until
interrupted (Ctrl-C or SIGTERM), then shuts down cleanly.`,
		Example: `  strata local
  strata local --data-dir /var/lib/strata --worker-memory 8GiB
  strata local --config strata.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.config(cmd.Flags())
			if err != nil {
				return err
			}
			conf.LocalDefaults(&cfg)
			sf.apply(cmd.Flags(), &cfg, "worker-")
			if !cmd.Flags().Changed("etcd-endpoints") {
				cfg.Etcd.Endpoints = []string{cfg.Etcd.EmbedClientURL}
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			return runLocal(cmd.Context(), cfg, lo, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	sf.registerCoordinator(f)
	sf.registerWorker(f, "worker-")
	f.StringVar(&sf.embedClientURL, "embed-client-url", "", "client URL of the embedded etcd (default http://127.0.0.1:2379)")
	f.StringVar(&sf.embedPeerURL, "embed-peer-url", "", "peer URL of the embedded etcd (default http://127.0.0.1:2380)")
	f.StringVar(&lo.fuseDir, "fuse", "", "also mount the namespace at this directory with FUSE")
	return cmd
}

// runLocal runs etcd, a coordinator and a worker in this process.
func runLocal(ctx context.Context, cfg conf.Config, lo localOptions, out io.Writer) error {
	log := newLogger(cfg.Log)
	if err := ensureLocalCerts(cfg, out); err != nil {
		return err
	}
	sec, err := loadSecurity(cfg, true)
	if err != nil {
		return err
	}
	if err := checkBinds(sec, cfg, log, cfg.Coordinator.Listen, cfg.Worker.Listen, cfg.Worker.DataListen); err != nil {
		return err
	}
	if sec.bundle != nil {
		cfg.Etcd.EmbedClientURL = httpsURLs([]string{cfg.Etcd.EmbedClientURL})[0]
		cfg.Etcd.EmbedPeerURL = httpsURLs([]string{cfg.Etcd.EmbedPeerURL})[0]
		cfg.Etcd.Endpoints = httpsURLs(cfg.Etcd.Endpoints)
	}
	etcdSrv, err := embedetcd.Start(ctx, filepath.Join(cfg.DataDir, "etcd"), cfg.Etcd.EmbedClientURL, cfg.Etcd.EmbedPeerURL, embedSecurity(cfg, sec))
	if err != nil {
		return err
	}
	defer etcdSrv.Close()
	cli, err := dialEtcd(ctx, cfg, sec)
	if err != nil {
		return err
	}
	defer cli.Close()
	reg := metricsRegistry()
	coord, wrk, err := startServers(ctx, cfg, cli, sec, reg, log, true, true)
	if err != nil {
		return err
	}
	c, err := client.New(ctx, client.Options{Etcd: cli, Config: cfg, Registry: newRegistry(log), Logger: log, Local: wrk, TLS: sec.bundle, Secrets: sec.box})
	if err != nil {
		_ = stopServers(log, coord, wrk)
		return err
	}
	defer c.Close()
	lo.metrics = reg
	fes, err := startFrontEnds(ctx, cfg, lo, c, log, out)
	if err != nil {
		_ = stopServers(log, coord, wrk)
		return err
	}
	fmt.Fprintf(out, `Strata is running (single node).
  etcd:         %s
  coordinator:  %s   metrics: http://%s/metrics
  worker:       %s   data + metrics: http://%s/metrics
  data dir:     %s

Try, in another terminal:
  strata fs mount /data file:///path/to/dir
  strata fs mount /datasets/mnist s3://bucket/mnist --option s3.endpoint=http://127.0.0.1:9000 \
      --option s3.access_key_id=KEY --option s3.secret_access_key=@/path/to/secret
  strata fs ls -l /datasets/mnist
  strata fs cat /datasets/mnist/README
  strata load /datasets/mnist
  strata report

Press Ctrl-C to stop.
`, cfg.Etcd.EmbedClientURL, coord.Addr(), coord.MetricsAddr(), wrk.Info().RPCAddr, wrk.Info().DataAddr, cfg.DataDir)
	<-ctx.Done()
	fmt.Fprintln(out, "Stopping...")
	return errors.Join(stopFrontEnds(fes), stopServers(log, coord, wrk))
}

// startServers starts the requested daemons over an etcd connection.
func startServers(ctx context.Context, cfg conf.Config, cli *clientv3.Client, sec security, reg *prometheus.Registry, log *slog.Logger, withCoord, withWorker bool) (*coordinator.Server, *worker.Server, error) {
	var coord *coordinator.Server
	var wrk *worker.Server
	var err error
	if withCoord {
		coord, err = coordinator.New(ctx, cfg, coordinator.Deps{Etcd: cli, Registry: newRegistry(log), Logger: log, Metrics: reg, Gatherer: reg, TLS: sec.bundle, Secrets: sec.box})
		if err != nil {
			return nil, nil, err
		}
		if err := coord.Start(ctx); err != nil {
			_ = stopServers(log, coord, nil)
			return nil, nil, err
		}
	}
	if withWorker {
		wrk, err = worker.New(ctx, cfg, worker.Deps{Etcd: cli, Registry: newRegistry(log), Logger: log, Metrics: reg, Gatherer: reg, TLS: sec.bundle, Secrets: sec.box})
		if err == nil {
			err = wrk.Start(ctx)
			if err != nil {
				_ = wrk.Close(context.Background())
			}
		}
		if err != nil {
			_ = stopServers(log, coord, nil)
			return nil, nil, err
		}
	}
	return coord, wrk, nil
}

func stopServers(log *slog.Logger, coord *coordinator.Server, wrk *worker.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var errs []error
	if wrk != nil {
		errs = append(errs, wrk.Close(ctx))
	}
	if coord != nil {
		errs = append(errs, coord.Close(ctx))
	}
	err := errors.Join(errs...)
	if err != nil {
		log.Warn("shutdown", "err", err)
	}
	return err
}

func newCoordinatorCmd(g *globals) *cobra.Command {
	sf := &serverFlags{}
	cmd := &cobra.Command{
		Use:   "coordinator",
		Short: "Run a coordinator (control plane) against an external etcd",
		Long: `Run a coordinator: it validates and stores mounts in etcd and aggregates
reports. Several may run against the same etcd.`,
		Example: `  strata coordinator --etcd-endpoints http://10.0.0.1:2379,http://10.0.0.2:2379 --listen 0.0.0.0:7420`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDaemon(cmd, g, sf, "", true, false)
		},
	}
	sf.registerCoordinator(cmd.Flags())
	return cmd
}

func newWorkerCmd(g *globals) *cobra.Command {
	sf := &serverFlags{}
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a cache worker against an external etcd",
		Long: `Run a cache worker: it registers in etcd, serves metadata and cached pages,
and fills misses from the under-storage.`,
		Example: `  strata worker --etcd-endpoints http://10.0.0.1:2379 --listen 0.0.0.0:7421 --data-listen 0.0.0.0:7422 \
      --advertise-host worker-3.example --memory 32GiB`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDaemon(cmd, g, sf, "", false, true)
		},
	}
	sf.registerWorker(cmd.Flags(), "")
	cmd.AddCommand(newDrainCmd(g, true), newDrainCmd(g, false))
	return cmd
}

func runDaemon(cmd *cobra.Command, g *globals, sf *serverFlags, prefix string, withCoord, withWorker bool) error {
	cfg, err := g.config(cmd.Flags())
	if err != nil {
		return err
	}
	sf.apply(cmd.Flags(), &cfg, prefix)
	if err := cfg.Validate(); err != nil {
		return err
	}
	ctx := cmd.Context()
	log := newLogger(cfg.Log)
	sec, err := loadSecurity(cfg, true)
	if err != nil {
		return err
	}
	var binds []string
	if withCoord {
		binds = append(binds, cfg.Coordinator.Listen)
	}
	if withWorker {
		binds = append(binds, cfg.Worker.Listen, cfg.Worker.DataListen)
	}
	if err := checkBinds(sec, cfg, log, binds...); err != nil {
		return err
	}
	cli, err := dialEtcdRetrying(ctx, cfg, sec, log)
	if err != nil {
		return err
	}
	defer cli.Close()
	coord, wrk, err := startServers(ctx, cfg, cli, sec, metricsRegistry(), log, withCoord, withWorker)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return stopServers(log, coord, wrk)
}

// dialEtcdRetrying dials etcd until it answers or ctx ends, waiting 1 s,
// then twice as long after each failure up to 30 s: a daemon started before
// its etcd (a pod beside a StatefulSet, a host booting) waits for it instead
// of exiting. Each failure is logged with what to check.
func dialEtcdRetrying(ctx context.Context, cfg conf.Config, sec security, log *slog.Logger) (*clientv3.Client, error) {
	wait := time.Second
	for {
		cli, err := dialEtcd(ctx, cfg, sec)
		if err == nil {
			return cli, nil
		}
		log.Warn("etcd is not reachable yet; retrying", "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (gave up: %v)", err, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}
