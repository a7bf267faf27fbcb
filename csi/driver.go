// Package csi is Strata's Kubernetes CSI driver (`strata csi`): the Identity,
// Node and Controller services of the Container Storage Interface, served on a
// unix socket to the kubelet and the external-provisioner.
//
// A volume is a namespace directory. The node service stages it as a FUSE
// mount of that directory (the fuse package, reading through the workers like
// any client) at the kubelet's staging path and publishes it with a bind mount
// into each pod's target path (read-only when asked). The controller service
// provisions volumes: a directory under a namespace root, or a mount of a
// bucket prefix added through the coordinator (an admin certificate is
// needed).
//
// Recovery: the driver serves the FUSE mounts in its own process and keeps a
// record of every staged volume and its targets in a state directory. When the
// process dies the kernel ends its FUSE connections and the mounts answer
// "transport endpoint is not connected". The next driver process mounts each
// recorded volume again and binds the new mount over each target, on top of
// the dead one, so that mount namespaces that copied the target as a slave
// (containers whose volumeMount has mountPropagation: HostToContainer) see the
// new mount too; a FUSE connection that ends while the driver runs (aborted,
// unmounted from outside) is recovered the same way at once. docs/kubernetes.md
// says what survives.
package csi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/fuse"
	"google.golang.org/grpc"
)

// DefaultName is the driver's name (the CSIDriver object and the
// StorageClass provisioner).
const DefaultName = "csi.stratafs.io"

// Options configure a Driver.
type Options struct {
	// Name is the driver name (DefaultName when empty).
	Name string
	// Version is reported by GetPluginInfo.
	Version string
	// NodeID identifies this node (the Kubernetes node name). Required
	// with Node.
	NodeID string
	// Client serves every namespace operation and the FUSE mounts.
	// Required.
	Client *client.Client
	// Node and Controller select the services offered (at least one).
	Node, Controller bool
	// FUSE configures the mounts (conf.DefaultFUSE() when zero; StagingDir
	// used as given).
	FUSE conf.FUSE
	// StateDir keeps the records of staged volumes (node service).
	// Required with Node; it must survive the driver's restarts (a hostPath
	// in Kubernetes).
	StateDir string
	// VolumeRoot is the namespace directory under which CreateVolume makes
	// directory volumes when the StorageClass names no root.
	VolumeRoot string
	// MountRoot is the namespace directory under which CreateVolume mounts
	// bucket-prefix volumes when the StorageClass names no mountRoot.
	MountRoot string
	// Logger receives the driver's logs; nil discards them.
	Logger *slog.Logger
}

// Driver is a CSI plugin. Its methods are safe for concurrent use.
type Driver struct {
	opts  Options
	log   *slog.Logger
	state *stateStore

	mu    sync.Mutex
	vols  map[string]*volume // by staging path
	locks keyedMutex

	ready   atomic.Bool // recovery done
	serving atomic.Bool

	stop      chan struct{}
	stopOnce  sync.Once
	wg        sync.WaitGroup // watchdogs and recovery loops
	srvMu     sync.Mutex
	grpc      *grpc.Server
	recovered atomic.Int64 // volumes re-mounted after their server died
}

// volume is a staged volume: its record and, when this process serves it,
// its FUSE server.
type volume struct {
	rec     record
	srv     *fuse.Server
	closing bool  // being unstaged: its server's end is expected
	broken  error // the last recovery failure, nil when healthy
}

// New checks the options and, for the node service, opens the state
// directory. Call Recover before serving when Node is set. Returns errors
// wrapping ErrInvalid.
func New(opts Options) (*Driver, error) {
	if opts.Name == "" {
		opts.Name = DefaultName
	}
	if opts.FUSE == (conf.FUSE{}) {
		opts.FUSE = conf.DefaultFUSE()
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	d := &Driver{opts: opts, log: lg.With("component", "csi"), vols: map[string]*volume{}, stop: make(chan struct{})}
	if opts.Node {
		st, err := openState(opts.StateDir)
		if err != nil {
			return nil, err
		}
		d.state = st
	} else {
		d.ready.Store(true)
	}
	return d, nil
}

// validate reports every problem of the options at once.
func (o Options) validate() error {
	var problems []string
	if o.Client == nil {
		problems = append(problems, "Client is required")
	}
	if !o.Node && !o.Controller {
		problems = append(problems, "neither the node nor the controller service is enabled")
	}
	if o.Node && o.NodeID == "" {
		problems = append(problems, "the node service needs a node ID")
	}
	if o.Node && o.StateDir == "" {
		problems = append(problems, "the node service needs a state directory")
	}
	if len(o.Name) > 63 || strings.ContainsAny(o.Name, " /") {
		problems = append(problems, fmt.Sprintf("driver name %q: at most 63 characters, no spaces or slashes", o.Name))
	}
	if err := o.FUSE.Validate(); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return invalid("%s", strings.Join(problems, "; "))
	}
	return nil
}

// Listen opens the endpoint the CO dials: unix:///path/csi.sock (a stale
// socket file is removed) or unix:path.
func Listen(endpoint string) (net.Listener, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "unix" {
		return nil, invalid("endpoint %q: want unix:///path/to/csi.sock", endpoint)
	}
	path := u.Path
	if path == "" {
		path = u.Opaque
	}
	if path == "" {
		return nil, invalid("endpoint %q names no socket file", endpoint)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("csi: socket directory: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("csi: remove the stale socket %s: %w", path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("csi: listen on %s: %w", path, err)
	}
	return l, nil
}

// Serve answers CSI calls on l until Close (then it returns nil) or the
// listener fails.
func (d *Driver) Serve(l net.Listener) error {
	s := grpc.NewServer(grpc.UnaryInterceptor(d.intercept))
	csi.RegisterIdentityServer(s, &identity{d: d})
	if d.opts.Node {
		csi.RegisterNodeServer(s, &node{d: d})
	}
	if d.opts.Controller {
		csi.RegisterControllerServer(s, &controller{d: d})
	}
	d.srvMu.Lock()
	select {
	case <-d.stop:
		d.srvMu.Unlock()
		return nil
	default:
	}
	d.grpc = s
	d.srvMu.Unlock()
	d.serving.Store(true)
	defer d.serving.Store(false)
	d.log.Info("serving", "endpoint", l.Addr().String(), "name", d.opts.Name, "node", d.opts.Node, "controller", d.opts.Controller)
	err := s.Serve(l)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// intercept maps errors to gRPC codes (toStatus) and logs failures.
func (d *Driver) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	resp, err := h(ctx, req)
	if err != nil {
		err = toStatus(err)
		d.log.Warn("call failed", "method", info.FullMethod, "err", err)
	} else {
		d.log.Debug("call", "method", info.FullMethod)
	}
	return resp, err
}

// Close stops serving and the recovery loops. It leaves the FUSE mounts in
// place: they stop answering when this process exits, and the next driver
// process recovers them (UnmountAll removes them instead).
func (d *Driver) Close() {
	d.stopOnce.Do(func() { close(d.stop) })
	d.srvMu.Lock()
	if d.grpc != nil {
		d.grpc.Stop()
	}
	d.srvMu.Unlock()
	d.wg.Wait()
}

// Ready reports whether the driver has recovered its volumes and serves.
func (d *Driver) Ready() bool { return d.ready.Load() && d.serving.Load() }

// keyedMutex serializes operations per key.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

// lock locks key and returns its unlock function.
func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedEntry{}
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
