package csi

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/stratafs/strata/fuse"
	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/ufs"
	"golang.org/x/sys/unix"
)

// node is the CSI Node service.
type node struct {
	csi.UnimplementedNodeServer
	d *Driver
}

// visibleWait bounds how long NodeStageVolume waits for a volume just made
// by the controller to reach this node's view of the namespace.
const visibleWait = 15 * time.Second

func (s *node) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	var caps []*csi.NodeServiceCapability
	for _, c := range []csi.NodeServiceCapability_RPC_Type{
		csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME,
		csi.NodeServiceCapability_RPC_GET_VOLUME_STATS,
	} {
		caps = append(caps, &csi.NodeServiceCapability{Type: &csi.NodeServiceCapability_Rpc{Rpc: &csi.NodeServiceCapability_RPC{Type: c}}})
	}
	return &csi.NodeGetCapabilitiesResponse{Capabilities: caps}, nil
}

func (s *node) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{NodeId: s.d.opts.NodeID}, nil
}

// NodeStageVolume mounts the volume's namespace directory with FUSE at the
// staging path and records it.
func (s *node) NodeStageVolume(ctx context.Context, req *csi.NodeStageVolumeRequest) (*csi.NodeStageVolumeResponse, error) {
	d := s.d
	switch {
	case req.GetVolumeId() == "":
		return nil, invalid("no volume ID")
	case req.GetStagingTargetPath() == "":
		return nil, invalid("no staging target path")
	}
	if err := checkCapability(req.GetVolumeCapability()); err != nil {
		return nil, err
	}
	if !d.ready.Load() {
		return nil, ErrNotReady
	}
	path, err := volumePath(req.GetVolumeId(), req.GetVolumeContext())
	if err != nil {
		return nil, err
	}
	staging := realPath(req.GetStagingTargetPath())
	defer d.locks.lock(staging)()
	if v := d.volumeAt(staging); v != nil {
		if v.rec.VolumeID != req.GetVolumeId() {
			return nil, fmt.Errorf("%w: %s already stages volume %s", ErrConflict, staging, v.rec.VolumeID)
		}
		if st, _ := stateOf(staging); st == pathLive && v.srv != nil {
			return &csi.NodeStageVolumeResponse{}, nil
		}
		if err := d.recoverVolume(ctx, v); err != nil {
			return nil, err
		}
		return &csi.NodeStageVolumeResponse{}, nil
	}
	if err := d.waitVisible(ctx, path); err != nil {
		return nil, err
	}
	v := &volume{rec: record{VolumeID: req.GetVolumeId(), Path: path, Staging: staging, Targets: map[string]bool{}}}
	srv, err := d.mountFUSE(ctx, v.rec)
	if err != nil {
		return nil, err
	}
	if err := d.state.save(v.rec); err != nil {
		d.closeServer(srv, staging)
		return nil, err
	}
	d.adopt(v, srv)
	d.log.Info("staged", "volume", v.rec.VolumeID, "path", path, "staging", staging)
	return &csi.NodeStageVolumeResponse{}, nil
}

// waitVisible waits until the client's namespace has path (a volume the
// controller has just made may take a moment to reach this node's view).
func (d *Driver) waitVisible(ctx context.Context, path string) error {
	ctx, cancel := context.WithTimeout(ctx, visibleWait)
	defer cancel()
	for {
		fi, err := d.opts.Client.Stat(ctx, path, false)
		switch {
		case err == nil && !fi.IsDir:
			return fmt.Errorf("%w: %s is a file, not a directory", ErrInvalid, path)
		case err == nil:
			return nil
		case !errors.Is(err, ufs.ErrNotFound) && !errors.Is(err, namespace.ErrNoMount):
			return fmt.Errorf("volume %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s: %w", ErrVolumeNotFound, path, err)
		case <-d.opts.Client.View().Changed():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// mountFUSE mounts rec.Path at rec.Staging. A mount point left broken by a
// dead server is detached first (fuse.Mount does it).
func (d *Driver) mountFUSE(ctx context.Context, rec record) (*fuse.Server, error) {
	srv, err := fuse.Mount(ctx, rec.Staging, fuse.Options{Client: d.opts.Client, Config: d.opts.FUSE, Subpath: rec.Path, Logger: d.log})
	if err != nil {
		return nil, fmt.Errorf("mount volume %s at %s: %w", rec.VolumeID, rec.Staging, err)
	}
	return srv, nil
}

// adopt registers a volume with its server and watches the server.
func (d *Driver) adopt(v *volume, srv *fuse.Server) {
	d.mu.Lock()
	v.srv, v.broken = srv, nil
	d.vols[v.rec.Staging] = v
	d.mu.Unlock()
	d.watch(v.rec.Staging, srv)
}

// volumeAt returns the volume staged at a path, or nil.
func (d *Driver) volumeAt(staging string) *volume {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.vols[staging]
}

// volumeWithTarget returns the staging path of the volume published at
// target, or "".
func (d *Driver) volumeWithTarget(target string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	for staging, v := range d.vols {
		if _, ok := v.rec.Targets[target]; ok {
			return staging
		}
	}
	return ""
}

// NodePublishVolume binds the staged mount at the target path, read-only
// when the request or the access mode says so.
func (s *node) NodePublishVolume(ctx context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	d := s.d
	switch {
	case req.GetVolumeId() == "":
		return nil, invalid("no volume ID")
	case req.GetTargetPath() == "":
		return nil, invalid("no target path")
	case req.GetStagingTargetPath() == "":
		return nil, invalid("no staging target path: the volume must be staged first (STAGE_UNSTAGE_VOLUME)")
	}
	if err := checkCapability(req.GetVolumeCapability()); err != nil {
		return nil, err
	}
	if !d.ready.Load() {
		return nil, ErrNotReady
	}
	staging, target := realPath(req.GetStagingTargetPath()), realPath(req.GetTargetPath())
	ro := req.GetReadonly() || readOnlyMode(req.GetVolumeCapability())
	if other := d.volumeWithTarget(target); other != "" && other != staging {
		return nil, fmt.Errorf("%w: %s is the target of the volume staged at %s", ErrConflict, target, other)
	}
	defer d.locks.lock(staging)()
	v := d.volumeAt(staging)
	if v == nil || v.rec.VolumeID != req.GetVolumeId() {
		return nil, fmt.Errorf("%w: volume %s at %s", ErrNotStaged, req.GetVolumeId(), staging)
	}
	st, err := stateOf(target)
	if err != nil {
		return nil, err
	}
	if was, ok := v.rec.Targets[target]; ok && st == pathLive {
		if was != ro {
			return nil, fmt.Errorf("%w: %s is published with read-only=%v", ErrConflict, target, was)
		}
		return &csi.NodePublishVolumeResponse{}, nil
	}
	if st == pathMissing {
		if err := os.MkdirAll(target, 0o750); err != nil {
			return nil, fmt.Errorf("target %s: %w", target, err)
		}
	}
	// A broken mount left at the target is covered, not removed (see
	// recoverVolume).
	if err := bindMount(staging, target, ro); err != nil {
		return nil, err
	}
	recNew := v.rec
	recNew.Targets = maps.Clone(v.rec.Targets)
	recNew.Targets[target] = ro
	if err := d.state.save(recNew); err != nil {
		_ = unmountAll(target)
		return nil, err
	}
	d.mu.Lock()
	v.rec = recNew
	d.mu.Unlock()
	d.log.Info("published", "volume", v.rec.VolumeID, "target", target, "read_only", ro)
	return &csi.NodePublishVolumeResponse{}, nil
}

// NodeUnpublishVolume unmounts the target (every mount stacked there by
// recoveries too) and removes the directory.
func (s *node) NodeUnpublishVolume(ctx context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	d := s.d
	switch {
	case req.GetVolumeId() == "":
		return nil, invalid("no volume ID")
	case req.GetTargetPath() == "":
		return nil, invalid("no target path")
	}
	target := realPath(req.GetTargetPath())
	staging := d.volumeWithTarget(target)
	if staging != "" {
		defer d.locks.lock(staging)()
	}
	if err := unmountStrata(target); err != nil {
		return nil, err
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove target %s: %w", target, err)
	}
	if staging == "" {
		return &csi.NodeUnpublishVolumeResponse{}, nil
	}
	if v := d.volumeAt(staging); v != nil {
		recNew := v.rec
		recNew.Targets = maps.Clone(v.rec.Targets)
		delete(recNew.Targets, target)
		if err := d.state.save(recNew); err != nil {
			return nil, err
		}
		d.mu.Lock()
		v.rec = recNew
		d.mu.Unlock()
	}
	d.log.Info("unpublished", "volume", req.GetVolumeId(), "target", target)
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

// unmountStrata removes the Strata mounts stacked at path; a path where
// something else is mounted on top is refused.
func unmountStrata(path string) error {
	ms, err := mounts()
	if err != nil {
		return err
	}
	for _, m := range ms {
		if m.point == path && !isStrataFS(m.fstype) {
			return fmt.Errorf("%w: %s has a %s mount that is not Strata's", ErrConflict, path, m.fstype)
		}
	}
	return unmountAll(path)
}

// isStrataFS reports whether a mountinfo file-system type is a Strata FUSE
// mount (or a bind of one).
func isStrataFS(fstype string) bool { return fstype == "fuse.strata" }

// NodeUnstageVolume unmounts the FUSE file system and forgets the volume.
func (s *node) NodeUnstageVolume(ctx context.Context, req *csi.NodeUnstageVolumeRequest) (*csi.NodeUnstageVolumeResponse, error) {
	d := s.d
	switch {
	case req.GetVolumeId() == "":
		return nil, invalid("no volume ID")
	case req.GetStagingTargetPath() == "":
		return nil, invalid("no staging target path")
	}
	staging := realPath(req.GetStagingTargetPath())
	defer d.locks.lock(staging)()
	v := d.volumeAt(staging)
	if v != nil && v.rec.VolumeID != req.GetVolumeId() {
		return nil, fmt.Errorf("%w: %s stages volume %s, not %s", ErrConflict, staging, v.rec.VolumeID, req.GetVolumeId())
	}
	if err := d.unstage(staging, v); err != nil {
		return nil, err
	}
	d.log.Info("unstaged", "volume", req.GetVolumeId(), "staging", staging)
	return &csi.NodeUnstageVolumeResponse{}, nil
}

// unstage unmounts the targets left (the CO should have unpublished them),
// the FUSE mount, and removes the record. The caller holds the volume lock.
func (d *Driver) unstage(staging string, v *volume) error {
	if v == nil {
		return unmountStrata(staging)
	}
	d.mu.Lock()
	v.closing = true
	srv := v.srv
	d.mu.Unlock()
	for t := range v.rec.Targets {
		d.log.Warn("unstaging a volume still published; unmounting the target", "volume", v.rec.VolumeID, "target", t)
		if err := unmountStrata(t); err != nil {
			return err
		}
	}
	if srv != nil {
		d.closeServer(srv, staging)
	}
	if err := unmountStrata(staging); err != nil {
		return err
	}
	if err := d.state.remove(staging); err != nil {
		return err
	}
	d.mu.Lock()
	delete(d.vols, staging)
	d.mu.Unlock()
	return nil
}

// closeServer unmounts a FUSE server. If the unmount does not end the
// server within 10 s (another mount namespace still holds a copy of the
// mount), the connection is aborted.
func (d *Driver) closeServer(srv *fuse.Server, dir string) {
	dev, _ := deviceOf(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Close(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			d.log.Warn("unmount", "dir", dir, "err", err)
		}
		return
	case <-time.After(10 * time.Second):
	}
	if dev != 0 {
		d.log.Warn("the FUSE server did not end after unmount; aborting its connection", "dir", dir)
		if err := abortConnection(dev); err != nil {
			d.log.Warn("abort the FUSE connection", "dir", dir, "err", err)
		}
	}
	select {
	case <-done:
	case <-ctx.Done():
		d.log.Error("the FUSE server did not end", "dir", dir)
	}
}

// NodeGetVolumeStats reports the file system's usage at a published path,
// or ErrBroken while its FUSE server is gone.
func (s *node) NodeGetVolumeStats(ctx context.Context, req *csi.NodeGetVolumeStatsRequest) (*csi.NodeGetVolumeStatsResponse, error) {
	d := s.d
	switch {
	case req.GetVolumeId() == "":
		return nil, invalid("no volume ID")
	case req.GetVolumePath() == "":
		return nil, invalid("no volume path")
	}
	p := realPath(req.GetVolumePath())
	found := false
	d.mu.Lock()
	for staging, v := range d.vols {
		if v.rec.VolumeID != req.GetVolumeId() {
			continue
		}
		if _, ok := v.rec.Targets[p]; ok || staging == p {
			found = true
		}
	}
	d.mu.Unlock()
	if !found {
		return nil, fmt.Errorf("%w: volume %s is not published at %s", ErrVolumeNotFound, req.GetVolumeId(), req.GetVolumePath())
	}
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		if errors.Is(err, syscall.ENOTCONN) || errors.Is(err, syscall.ECONNABORTED) {
			return nil, fmt.Errorf("%w: %s: the FUSE server of volume %s is gone; the driver is mounting it again", ErrBroken, p, req.GetVolumeId())
		}
		return nil, fmt.Errorf("statfs %s: %w", p, err)
	}
	bs := st.Bsize
	return &csi.NodeGetVolumeStatsResponse{
		Usage: []*csi.VolumeUsage{
			{Unit: csi.VolumeUsage_BYTES, Total: int64(st.Blocks) * bs, Available: int64(st.Bavail) * bs, Used: int64(st.Blocks-st.Bfree) * bs},
			{Unit: csi.VolumeUsage_INODES, Total: int64(st.Files), Available: int64(st.Ffree), Used: int64(st.Files - st.Ffree)},
		},
	}, nil
}

// targetsOf lists a record's targets in order.
func targetsOf(r record) []string { return slices.Sorted(maps.Keys(r.Targets)) }
