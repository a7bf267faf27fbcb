package csi

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/ufs"
)

// controller is the CSI Controller service: it provisions volumes.
type controller struct {
	csi.UnimplementedControllerServer
	d *Driver
}

func (s *controller) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	return &csi.ControllerGetCapabilitiesResponse{Capabilities: []*csi.ControllerServiceCapability{{
		Type: &csi.ControllerServiceCapability_Rpc{Rpc: &csi.ControllerServiceCapability_RPC{Type: csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME}},
	}}}, nil
}

// CreateVolume makes a directory volume (root/name) or mounts a bucket
// prefix (uri[/name] at mountRoot/name) through the coordinator, as the
// StorageClass parameters say. Strata enforces no quota: the capacity is
// reported as unknown (0), and Kubernetes shows the size requested.
func (s *controller) CreateVolume(ctx context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	d := s.d
	if req.GetName() == "" {
		return nil, invalid("no volume name")
	}
	if err := checkCapabilities(req.GetVolumeCapabilities()); err != nil {
		return nil, err
	}
	if req.GetVolumeContentSource() != nil {
		return nil, invalid("volumes from snapshots or other volumes are not supported")
	}
	p, err := parseParams(req.GetParameters(), d.opts.VolumeRoot, d.opts.MountRoot)
	if err != nil {
		return nil, err
	}
	path, err := childPath(p.root, req.GetName())
	if err != nil {
		return nil, err
	}
	defer d.locks.lock("create:" + path)()
	switch p.kind {
	case kindMount:
		err = d.createMount(ctx, path, req.GetName(), p, req.GetSecrets())
	default:
		err = d.createDir(ctx, path)
	}
	if err != nil {
		return nil, err
	}
	d.log.Info("created volume", "name", req.GetName(), "path", path)
	return &csi.CreateVolumeResponse{Volume: &csi.Volume{
		VolumeId:      volumeID(p.kind, path),
		VolumeContext: map[string]string{ctxPath: path},
	}}, nil
}

// createDir makes the directory of a volume (and its parents) in the
// under-storage of the mount holding root. Writing needs the cluster key.
func (d *Driver) createDir(ctx context.Context, path string) error {
	c := d.opts.Client
	if fi, err := c.Stat(ctx, path, true); err == nil {
		if !fi.IsDir {
			return fmt.Errorf("%w: %s exists and is a file", ErrConflict, path)
		}
		return nil
	}
	if err := c.Mkdir(ctx, path); err != nil {
		return fmt.Errorf("create volume directory %s: %w", path, err)
	}
	if _, err := c.Stat(ctx, path, true); err != nil {
		return fmt.Errorf("create volume directory %s: made, but not found afterwards: %w", path, err)
	}
	return nil
}

// createMount mounts a bucket prefix at path through the coordinator (an
// admin certificate is needed). The StorageClass's option.* parameters and
// the provisioner secret's keys are the mount's options; the coordinator
// seals the secret ones before they reach etcd. An existing mount of the same
// URI at path is success (a retried call).
func (d *Driver) createMount(ctx context.Context, path, name string, p createParams, secrets map[string]string) error {
	uri := p.uri
	if p.perVolume {
		uri += "/" + name
	}
	opts := maps.Clone(p.options)
	for k, v := range secrets {
		if _, dup := opts[k]; dup {
			return invalid("option %q is both a StorageClass parameter and a secret key", k)
		}
		opts[k] = v
	}
	m := namespace.Mount{Path: path, URI: uri, Options: opts, ReadOnly: p.readOnly, WriteMode: p.writeMode,
		MetadataTTL: p.metadataTTL, Replicas: p.replicas}
	c := d.opts.Client
	coord, conn, err := c.Coordinator(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = coord.AddMount(ctx, &rpcpb.AddMountRequest{Mount: rpcpb.FromMount(m)})
	if err = rpcpb.FromStatus(err); errors.Is(err, namespace.ErrMountConflict) {
		if have, ok := c.Mounts().ByPath(path); ok && have.URI == uri {
			return nil
		}
		return fmt.Errorf("%w: %s: %w", ErrConflict, path, err)
	}
	if err != nil {
		return fmt.Errorf("mount %s at %s: %w", uri, path, err)
	}
	return d.waitMount(ctx, path, true)
}

// waitMount waits until the client's mount table has (present) or lacks
// (!present) a mount at path, for 15 s at most.
func (d *Driver) waitMount(ctx context.Context, path string, present bool) error {
	ctx, cancel := context.WithTimeout(ctx, visibleWait)
	defer cancel()
	c := d.opts.Client
	for {
		if _, ok := c.Mounts().ByPath(path); ok == present {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("mount table change at %s not seen: %w", path, ctx.Err())
		case <-c.View().Changed():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// DeleteVolume removes what CreateVolume made: a directory volume with all
// its files (in the under-storage), or the mount of a bucket-prefix volume
// (the bucket's objects stay). Kubernetes calls it only for the reclaim
// policy Delete. An ID that names nothing is success; a statically
// provisioned volume is refused (ErrNotManaged).
func (s *controller) DeleteVolume(ctx context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	d := s.d
	if req.GetVolumeId() == "" {
		return nil, invalid("no volume ID")
	}
	kind, path, ok := parseVolumeID(req.GetVolumeId())
	if !ok {
		d.log.Info("delete of a volume ID that names no path: nothing to do", "volume", req.GetVolumeId())
		return &csi.DeleteVolumeResponse{}, nil
	}
	defer d.locks.lock("create:" + path)()
	c := d.opts.Client
	switch kind {
	case kindDir:
		err := c.Remove(ctx, path, true)
		if err != nil && !errors.Is(err, ufs.ErrNotFound) {
			return nil, fmt.Errorf("delete volume directory %s: %w", path, err)
		}
	case kindMount:
		coord, conn, err := c.Coordinator(ctx)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		_, err = coord.RemoveMount(ctx, &rpcpb.RemoveMountRequest{Path: path})
		if err = rpcpb.FromStatus(err); err != nil && !errors.Is(err, namespace.ErrNotMounted) {
			return nil, fmt.Errorf("unmount volume %s: %w", path, err)
		}
		if err := d.waitMount(ctx, path, false); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: volume %s is a namespace path given by hand; delete its data with `strata fs rm` if you mean it", ErrNotManaged, req.GetVolumeId())
	}
	d.log.Info("deleted volume", "volume", req.GetVolumeId())
	return &csi.DeleteVolumeResponse{}, nil
}

// ValidateVolumeCapabilities confirms mount capabilities of any access mode
// for a volume whose directory exists.
func (s *controller) ValidateVolumeCapabilities(ctx context.Context, req *csi.ValidateVolumeCapabilitiesRequest) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	d := s.d
	if req.GetVolumeId() == "" {
		return nil, invalid("no volume ID")
	}
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, invalid("no volume capabilities")
	}
	path, err := volumePath(req.GetVolumeId(), req.GetVolumeContext())
	if err != nil {
		return nil, err
	}
	fi, err := d.opts.Client.Stat(ctx, path, false)
	if errors.Is(err, ufs.ErrNotFound) || errors.Is(err, namespace.ErrNoMount) || (err == nil && !fi.IsDir) {
		return nil, fmt.Errorf("%w: %s", ErrVolumeNotFound, path)
	}
	if err != nil {
		return nil, err
	}
	if err := checkCapabilities(req.GetVolumeCapabilities()); err != nil {
		return &csi.ValidateVolumeCapabilitiesResponse{Message: err.Error()}, nil
	}
	return &csi.ValidateVolumeCapabilitiesResponse{Confirmed: &csi.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeContext:      req.GetVolumeContext(),
		VolumeCapabilities: req.GetVolumeCapabilities(),
		Parameters:         req.GetParameters(),
	}}, nil
}
