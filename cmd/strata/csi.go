package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/csi"
)

// csiOptions are the flags of `strata csi`.
type csiOptions struct {
	endpoint      string
	nodeID        string
	name          string
	mode          string
	stateDir      string
	volumeRoot    string
	mountRoot     string
	healthListen  string
	unmountOnExit bool
}

// newCSICmd is `strata csi`: the Kubernetes CSI driver.
func newCSICmd(g *globals) *cobra.Command {
	o := csiOptions{}
	cmd := &cobra.Command{
		Use:   "csi",
		Short: "Run the Kubernetes CSI driver (node plugin, controller, or both)",
		Long: `Serve the Container Storage Interface on a unix socket so that Kubernetes
hands pods PersistentVolumes backed by Strata: the node plugin mounts a volume's
namespace directory with FUSE at the kubelet's staging path and binds it into
each pod (read-only when asked); the controller provisions volumes (a directory
under --volume-root, or a mount of a bucket prefix through the coordinator).

The driver is a Strata client: it finds its certificates like every client
(--certs-dir: ca.crt and client.crt; the controller needs an admin
certificate to add mounts) and reads through the workers. It holds no bucket
secret unless given the cluster key, so writes through its mounts fail with
EACCES without one.

Staged volumes are recorded in --state-dir. When the driver restarts, it mounts
each again and binds the new mount over the pods' dead ones; pods whose
volumeMount has mountPropagation: HostToContainer see it at once. See
docs/kubernetes.md.

/healthz and /readyz are served on --health-listen.`,
		Example: `  strata csi --mode node --endpoint unix:///csi/csi.sock --node-id "$NODE_NAME" --state-dir /var/lib/strata-csi
  strata csi --mode controller --endpoint unix:///csi/csi.sock --volume-root /k8s/volumes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.config(cmd.Flags())
			if err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			return runCSI(cmd.Context(), cfg, o, newLogger(cfg.Log))
		},
	}
	host, _ := os.Hostname()
	nodeID := os.Getenv("NODE_NAME")
	if nodeID == "" {
		nodeID = host
	}
	endpoint := os.Getenv("CSI_ENDPOINT")
	if endpoint == "" {
		endpoint = "unix:///csi/csi.sock"
	}
	f := cmd.Flags()
	f.StringVar(&o.endpoint, "endpoint", endpoint, "CSI socket (env CSI_ENDPOINT)")
	f.StringVar(&o.nodeID, "node-id", nodeID, "this node's ID, the Kubernetes node name (env NODE_NAME; default the host name)")
	f.StringVar(&o.name, "driver-name", csi.DefaultName, "driver name, as in the CSIDriver object and the StorageClass provisioner")
	f.StringVar(&o.mode, "mode", "all", "services to offer: node, controller or all")
	f.StringVar(&o.stateDir, "state-dir", "", "where the node plugin records staged volumes; must survive restarts (default <data-dir>/csi)")
	f.StringVar(&o.volumeRoot, "volume-root", "", "namespace directory for directory volumes when the StorageClass names no root")
	f.StringVar(&o.mountRoot, "mount-root", "/k8s", "namespace directory for bucket-prefix volumes when the StorageClass names no mountRoot")
	f.StringVar(&o.healthListen, "health-listen", "127.0.0.1:9810", "address of /healthz and /readyz (empty: none)")
	f.BoolVar(&o.unmountOnExit, "unmount-on-exit", false, "unpublish and unstage every volume on SIGTERM (off: mounts are left for the next driver process to recover)")
	return cmd
}

// csiServices maps --mode to the services offered.
func csiServices(mode string) (node, controller bool, err error) {
	switch mode {
	case "node":
		return true, false, nil
	case "controller":
		return false, true, nil
	case "all":
		return true, true, nil
	}
	return false, false, fmt.Errorf("%w: --mode %q is not one of node, controller, all", conf.ErrInvalid, mode)
}

// runCSI connects to the cluster (retrying with backoff while it is not
// reachable), recovers the staged volumes, and serves until ctx ends.
func runCSI(ctx context.Context, cfg conf.Config, o csiOptions, log *slog.Logger) error {
	node, ctrl, err := csiServices(o.mode)
	if err != nil {
		return err
	}
	if o.stateDir == "" {
		o.stateDir = filepath.Join(cfg.DataDir, "csi")
	}
	health := &switchHandler{}
	var reason atomic.Value
	reason.Store("connecting to the cluster")
	health.set(csi.NotReadyHandler(func() string { return reason.Load().(string) }))
	stopHealth, err := serveHealth(o.healthListen, health, log)
	if err != nil {
		return err
	}
	defer stopHealth()

	c, closeClient, err := connectWithBackoff(ctx, cfg, log, func(err error) { reason.Store(err.Error()) })
	if err != nil {
		return err
	}
	defer closeClient()
	fcfg := fuseConfig(cfg)
	// Pods run as any user: let them in; the kernel checks the mode bits.
	fcfg.AllowOther = true
	d, err := csi.New(csi.Options{
		Name: o.name, Version: version, NodeID: o.nodeID, Client: c, Node: node, Controller: ctrl,
		FUSE: fcfg, StateDir: o.stateDir, VolumeRoot: o.volumeRoot, MountRoot: o.mountRoot, Logger: log,
	})
	if err != nil {
		return err
	}
	reason.Store("recovering the staged volumes")
	if err := d.Recover(ctx); err != nil {
		log.Error("some staged volumes could not be recovered; retrying in the background", "err", err)
	}
	l, err := csi.Listen(o.endpoint)
	if err != nil {
		return err
	}
	health.set(d.HealthHandler())
	served := make(chan error, 1)
	go func() { served <- d.Serve(l) }()
	select {
	case <-ctx.Done():
	case err = <-served:
	}
	d.Close()
	if o.unmountOnExit {
		if uerr := d.UnmountAll(); uerr != nil {
			log.Error("unmount on exit", "err", uerr)
		}
	}
	return err
}

// connectWithBackoff opens a client, retrying every 1 s to 30 s while etcd
// or the cluster cannot be reached, until ctx ends. Errors that retrying
// cannot fix (certificates, configuration) are returned at once.
func connectWithBackoff(ctx context.Context, cfg conf.Config, log *slog.Logger, report func(error)) (*client.Client, func(), error) {
	delay := time.Second
	for {
		c, closeClient, err := openClient(ctx, cfg, log)
		if err == nil {
			return c, closeClient, nil
		}
		if _, serr := loadSecurity(cfg, false); serr != nil {
			return nil, nil, err
		}
		report(err)
		log.Warn("cannot reach the cluster; retrying", "in", delay, "err", err)
		select {
		case <-ctx.Done():
			return nil, nil, err
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
}

// switchHandler serves whichever handler was set last.
type switchHandler struct {
	h atomic.Pointer[http.Handler]
}

func (s *switchHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *switchHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

// serveHealth serves h on addr (nothing when addr is empty); stop shuts the
// server down and waits for it.
func serveHealth(addr string, h http.Handler, log *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("health listener: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("health server", "err", err)
		}
	}()
	log.Info("serving /healthz and /readyz", "addr", l.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		wg.Wait()
	}, nil
}
