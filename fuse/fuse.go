// Package fuse is Strata's FUSE front-end: it shows the unified namespace (or
// one directory of it) as a POSIX file system, for training jobs, shells and
// any program that reads files.
//
// Everything goes through the shared client (routing to the owning workers,
// fallback to the next owner and to the UFS). Reads of a file fully cached on
// a disk tier of a worker in the same process are handed to the kernel with
// FUSE passthrough; other reads are served by the daemon with a read-ahead
// window per sequential reader. Writes go through to the UFS: new files are
// streamed, files opened for random writes are staged on local disk and
// uploaded on close or fsync; an upload error is returned by close/fsync.
// docs/fuse.md describes the semantics, errnos and measured figures.
package fuse

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/namespace"
	"golang.org/x/sys/unix"
)

// ErrMounted is returned by Mount when the directory is already served by a
// live Strata FUSE mount.
var ErrMounted = errors.New("fuse: directory is already a Strata FUSE mount")

// Options configure a mount.
type Options struct {
	// Client serves every operation. Required. With client.Options.Local set
	// (`strata local`), fully cached files can use passthrough.
	Client *client.Client
	// Config holds the knobs (conf.DefaultFUSE() when zero). StagingDir is
	// used as given: resolve a relative one first (conf.Config.Resolve).
	Config conf.FUSE
	// Subpath is the namespace directory shown at the mount root ("/" when
	// empty).
	Subpath string
	// Logger receives the front-end's logs; nil discards them.
	Logger *slog.Logger
	// Metrics, when set, receives the strata_fuse_* collectors.
	Metrics prometheus.Registerer
}

// Server is a mounted FUSE file system. Its methods are safe for concurrent
// use.
type Server struct {
	dir    string
	fsys   *fsys
	srv    *gofuse.Server
	log    *slog.Logger
	connID uint64 // the kernel's name of the FUSE connection (fusectl)
	served chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// Mount mounts the namespace (or opts.Subpath) at dir and serves it until
// Close or an external unmount. A mount point left broken by a crashed server
// ("transport endpoint is not connected") is detached and reused; a missing
// directory is created. Returns errors wrapping conf.ErrInvalid (bad
// configuration), ErrMounted, the client's errors for Subpath
// (ufs.ErrNotFound, ufs.ErrNotDir) and the kernel's mount errors.
func Mount(ctx context.Context, dir string, opts Options) (*Server, error) {
	if opts.Client == nil {
		return nil, errors.New("fuse: Options.Client is required")
	}
	cfg := opts.Config
	if cfg == (conf.FUSE{}) {
		cfg = conf.DefaultFUSE()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	lg = lg.With("component", "fuse")
	root := opts.Subpath
	if root == "" {
		root = "/"
	}
	root, err := namespace.Clean(root)
	if err != nil {
		return nil, fmt.Errorf("fuse: subpath: %w", err)
	}
	rootInfo, err := opts.Client.Stat(ctx, root, false)
	if err != nil {
		return nil, fmt.Errorf("fuse: subpath %s: %w", root, err)
	}
	if !rootInfo.IsDir {
		return nil, fmt.Errorf("fuse: subpath %s: %w", root, syscall.ENOTDIR)
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("fuse: mount point: %w", err)
	}
	if err := prepareMountPoint(dir, lg); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.StagingDir, 0o700); err != nil {
		return nil, fmt.Errorf("fuse: staging dir: %w", err)
	}
	m, err := newMetrics(opts.Metrics)
	if err != nil {
		return nil, err
	}
	sys := newFsys(opts.Client, cfg, root, lg, m)
	rootNode := &node{sys: sys}
	rootNode.setInfo(rootInfo)

	attrTTL, entryTTL, negTTL := cfg.AttrTimeout.D(), cfg.EntryTimeout.D(), cfg.NegativeTimeout.D()
	mo := gofuse.MountOptions{
		FsName:            "strata",
		Name:              "strata",
		DirectMountStrict: true,
		MaxWrite:          int(max(cfg.MaxRead, cfg.MaxWrite)),
		MaxBackground:     cfg.MaxBackground,
		DisableXAttrs:     !cfg.XAttrs,
		EnableLocks:       !cfg.LocalLocks,
		AllowOther:        cfg.AllowOther,
		Debug:             cfg.Debug,
		// go-fuse logs request traces (with Debug) and handler panics here.
		Logger: slog.NewLogLogger(lg.Handler(), goFuseLevel(cfg.Debug)),
		// Backing files may sit on a stacked file system (overlayfs in a
		// container): allow one level below the FUSE mount.
		MaxStackDepth: 2,
		// O_TRUNC comes with OPEN instead of a separate truncate, so an
		// overwritten file is replaced when it is closed, not emptied first.
		ExtraCapabilities: gofuse.CAP_ATOMIC_O_TRUNC,
		// Reads answered from memory gain nothing from a splice through a
		// pipe (it adds a copy), and a 1 MiB read plus its header does not
		// fit the default 1 MiB pipe limit: every such read logged a
		// trySplice warning before falling back to writev. Replies are
		// written with writev; passthrough reads bypass the daemon anyway.
		DisableSplice: true,
	}
	if cfg.MaxRead < cfg.MaxWrite {
		mo.Options = append(mo.Options, "max_read="+strconv.FormatInt(int64(cfg.MaxRead), 10))
	}
	if cfg.AllowOther {
		mo.Options = append(mo.Options, "default_permissions")
	}
	fopts := &fs.Options{
		MountOptions:    mo,
		AttrTimeout:     &attrTTL,
		EntryTimeout:    &entryTTL,
		NullPermissions: true,
		UID:             sys.uid,
		GID:             sys.gid,
		Logger:          slog.NewLogLogger(lg.Handler(), slog.LevelWarn),
	}
	if negTTL > 0 {
		fopts.NegativeTimeout = &negTTL
	}
	raw := fs.NewNodeFS(rootNode, fopts)
	srv, err := gofuse.NewServer(raw, dir, &fopts.MountOptions)
	if err != nil {
		sys.shutdown(ctx)
		return nil, fmt.Errorf("fuse: mount %s: %w", dir, err)
	}
	sys.srv.Store(srv)
	s := &Server{dir: dir, fsys: sys, srv: srv, log: lg, served: make(chan struct{})}
	go func() {
		defer close(s.served)
		srv.Serve()
	}()
	if err := srv.WaitMount(); err != nil {
		_ = s.Close(ctx)
		return nil, fmt.Errorf("fuse: mount %s: %w", dir, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err == nil {
		s.connID = uint64(unix.Major(st.Dev))<<20 | uint64(unix.Minor(st.Dev))
		if cfg.KernelReadAhead > 0 {
			bdi := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
			if err := os.WriteFile(bdi, []byte(strconv.FormatInt(int64(cfg.KernelReadAhead)/1024, 10)), 0o644); err != nil {
				lg.Warn("cannot set the kernel read-ahead of the mount", "file", bdi, "err", err)
			}
		}
	}
	lg.Info("mounted", "dir", dir, "subpath", root, "passthrough", cfg.Passthrough, "staging", cfg.StagingDir)
	return s, nil
}

// goFuseLevel is the level of go-fuse's messages: with fuse.debug they are
// the request traces asked for, without it only failures.
func goFuseLevel(debug bool) slog.Level {
	if debug {
		return slog.LevelInfo
	}
	return slog.LevelWarn
}

// Dir is the mount point.
func (s *Server) Dir() string { return s.dir }

// Stats returns the mount's counters.
func (s *Server) Stats() Stats {
	st := s.fsys.m.stats()
	st.WriteBufferBytes = s.fsys.headUsed.Load()
	return st
}

// Wait blocks until the file system is unmounted (by Close or from outside).
func (s *Server) Wait() { <-s.served }

// Done is closed when the file system is unmounted.
func (s *Server) Done() <-chan struct{} { return s.served }

// Close unmounts and waits for the background uploads and cache warming to
// end (or ctx to expire). When processes still use the mount, it is detached
// lazily and its connection aborted: their open files then fail with
// ENOTCONN, and data they had not closed is lost. Idempotent.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.closeErr = s.unmount(ctx)
		s.fsys.shutdown(ctx)
		s.log.Info("unmounted", "dir", s.dir)
	})
	return s.closeErr
}

func (s *Server) unmount(ctx context.Context) error {
	select {
	case <-s.served:
		return nil // unmounted from outside
	default:
	}
	err := s.srv.Unmount()
	if err == nil {
		return nil
	}
	s.log.Warn("mount point busy; detaching it and aborting the connection", "dir", s.dir, "err", err)
	if derr := syscall.Unmount(s.dir, syscall.MNT_DETACH); derr != nil && !errors.Is(derr, syscall.EINVAL) {
		return fmt.Errorf("fuse: unmount %s: %w (lazy unmount: %v)", s.dir, err, derr)
	}
	if s.connID != 0 {
		abort := fmt.Sprintf("/sys/fs/fuse/connections/%d/abort", s.connID)
		if aerr := os.WriteFile(abort, []byte("1"), 0o200); aerr != nil {
			s.log.Warn("cannot abort the FUSE connection", "file", abort, "err", aerr)
		}
	}
	select {
	case <-s.served:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("fuse: unmount %s: the connection did not end: %w", s.dir, ctx.Err())
	}
}

// prepareMountPoint makes dir usable as a mount point: it detaches a mount
// left broken by a crashed server, creates a missing directory, and refuses a
// directory a live Strata mount serves.
func prepareMountPoint(dir string, lg *slog.Logger) error {
	fstype, mounted := mountedAt(dir)
	var err error
	if mounted && strings.HasPrefix(fstype, "fuse") {
		// statfs always reaches the server (stat may be answered from the
		// kernel's attribute cache of a dead one).
		var st unix.Statfs_t
		err = unix.Statfs(dir, &st)
	}
	if err == nil {
		_, err = os.Stat(dir)
	}
	if errors.Is(err, syscall.ENOTCONN) || errors.Is(err, syscall.ECONNABORTED) {
		lg.Warn("the mount point was left broken by a FUSE server that died; detaching it", "dir", dir, "err", err)
		if uerr := syscall.Unmount(dir, syscall.MNT_DETACH); uerr != nil {
			return fmt.Errorf("fuse: recover the broken mount point %s: %w", dir, uerr)
		}
		_, err = os.Stat(dir)
		fstype, mounted = mountedAt(dir)
	}
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("fuse: mount point: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("fuse: mount point: %w", err)
	}
	if mounted && fstype == "fuse.strata" {
		return fmt.Errorf("%w: %s (unmount it first: umount %s)", ErrMounted, dir, dir)
	}
	return nil
}

// mountedAt returns the file-system type of the topmost mount at dir.
func mountedAt(dir string) (string, bool) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", false
	}
	defer f.Close()
	var fstype string
	found := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, after := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(after) < 1 {
			continue
		}
		if unescapeMountinfo(fields[4]) == dir {
			fstype, found = after[0], true
		}
	}
	return fstype, found
}

// unescapeMountinfo decodes the \ooo escapes of /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// fsys is the state the nodes of one mount share.
type fsys struct {
	c       *client.Client
	cfg     conf.FUSE
	root    string // namespace path shown at the mount root
	log     *slog.Logger
	m       *metrics
	uid     uint32
	gid     uint32
	attrTTL time.Duration
	raPool  *bufPool
	started time.Time
	srv     atomic.Pointer[gofuse.Server]
	// headUsed is the memory held by the heads of files being written.
	headUsed atomic.Int64

	ptMu   sync.Mutex
	ptDevs map[uint64]error // st_dev → nil when the kernel accepts backing files there

	warmQ chan string
	stop  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup // stream uploads and the cache warmer
}

func newFsys(c *client.Client, cfg conf.FUSE, root string, lg *slog.Logger, m *metrics) *fsys {
	s := &fsys{
		c: c, cfg: cfg, root: root, log: lg, m: m,
		uid: uint32(os.Getuid()), gid: uint32(os.Getgid()),
		attrTTL: cfg.AttrTimeout.D(), started: time.Now(),
		ptDevs: map[uint64]error{}, warmQ: make(chan string, warmQueue), stop: make(chan struct{}),
	}
	if cfg.ReadAhead > 0 {
		s.raPool = newBufPool(int64(cfg.ReadAhead), int64(cfg.ReadAheadBudget))
	}
	s.wg.Add(2)
	go s.warmer()
	go s.trimmer()
	return s
}

// Idle read-ahead buffers are dropped after bufIdle without a read-ahead,
// checked every trimEvery; once at least freeOSAfter bytes were dropped the
// memory is handed back to the kernel at once, not left to the runtime's
// slow scavenger.
const (
	bufIdle     = 30 * time.Second
	trimEvery   = 10 * time.Second
	freeOSAfter = 64 << 20
)

// trimmer gives the memory of idle read-ahead buffers back.
func (s *fsys) trimmer() {
	defer s.wg.Done()
	t := time.NewTicker(trimEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if dropped := s.raPool.trim(bufIdle); dropped >= freeOSAfter {
				debug.FreeOSMemory()
				s.log.Debug("released idle read-ahead buffers", "bytes", dropped)
			}
		}
	}
}

// background returns a context that ends when the mount shuts down (or
// cancel is called), for work that outlives one FUSE request: uploads, which
// an interrupted close must not abort halfway.
func (s *fsys) background() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// shutdown stops background work and waits for it (or ctx).
func (s *fsys) shutdown(ctx context.Context) {
	s.once.Do(func() { close(s.stop) })
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("background uploads did not end before the deadline", "err", ctx.Err())
	}
}

// warmQueue bounds the files waiting to be read into the cache after a
// write (CACHE_THROUGH mounts); more are skipped.
const warmQueue = 64

// warm queues a freshly written file to be read through the workers, so a
// CACHE_THROUGH mount has its pages cached as its write mode promises.
func (s *fsys) warm(path string) {
	m, _, err := s.c.Mounts().Resolve(path)
	if err != nil || m.WriteMode == namespace.WriteThrough {
		return
	}
	select {
	case s.warmQ <- path:
	default:
		s.log.Debug("cache warming queue full; not caching a written file", "path", path)
	}
}

func (s *fsys) warmer() {
	defer s.wg.Done()
	ctx, cancel := s.background()
	defer cancel()
	for {
		select {
		case <-s.stop:
			return
		case p := <-s.warmQ:
			f, err := s.c.Open(ctx, p, false)
			if err != nil {
				s.log.Debug("cache warming: open", "path", p, "err", err)
				continue
			}
			if _, err := io.Copy(io.Discard, f); err != nil {
				s.log.Debug("cache warming: read", "path", p, "err", err)
			}
			_ = f.Close()
		}
	}
}

// errno translates err for an operation on path, logging the details the
// errno cannot carry: at debug level for expected answers (ENOENT, ...),
// as a warning for EIO (store or network failures).
func (s *fsys) errno(op, path string, err error) syscall.Errno {
	e := toErrno(err)
	if e == syscall.EIO {
		s.m.errors.WithLabelValues(op).Inc()
		s.log.Warn("operation failed", "op", op, "path", path, "err", err)
	} else {
		s.log.Debug("operation failed", "op", op, "path", path, "errno", e, "err", err)
	}
	return e
}

// kernelAccepts reports whether the kernel takes f as a passthrough backing
// file, probing once per device: it may refuse (no CAP_SYS_ADMIN, kernel
// without FUSE passthrough, a backing file system stacked too deep).
func (s *fsys) kernelAccepts(f *os.File) error {
	srv := s.srv.Load()
	if srv == nil {
		return errors.New("the mount is not ready")
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("stat the cache file: %w", err)
	}
	s.ptMu.Lock()
	res, known := s.ptDevs[st.Dev]
	s.ptMu.Unlock()
	if known {
		return res
	}
	id, errno := srv.RegisterBackingFd(&gofuse.BackingMap{Fd: int32(f.Fd())})
	if errno == 0 {
		srv.UnregisterBackingFd(id)
	} else {
		res = fmt.Errorf("the kernel refuses FUSE passthrough for files on device %d:%d: %w", unix.Major(st.Dev), unix.Minor(st.Dev), errno)
		s.log.Warn("FUSE passthrough unavailable; fully cached files are read through the daemon", "err", res)
	}
	s.ptMu.Lock()
	s.ptDevs[st.Dev] = res
	s.ptMu.Unlock()
	return res
}
