package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"

	"github.com/stratafs/strata/cluster"
	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/ufs"
)

// Stat describes a namespace path. sync bypasses the workers' metadata caches.
// Returns errors matching ufs.ErrNotFound, namespace.ErrNoMount,
// namespace.ErrInvalidPath.
func (c *Client) Stat(ctx context.Context, path string, sync bool) (namespace.FileInfo, error) {
	p, m, rel, err := c.resolve(path)
	if errors.Is(err, namespace.ErrNoMount) {
		if _, virtual := c.Mounts().VirtualChildren(p); virtual {
			return namespace.FileInfo{Path: p, IsDir: true, Virtual: true}, nil
		}
		return namespace.FileInfo{}, fmt.Errorf("%s: %w (no mount holds it; see `strata fs mounts`)", p, ufs.ErrNotFound)
	}
	if err != nil {
		return namespace.FileInfo{}, err
	}
	fi, err := c.statUFS(ctx, m, rel, sync)
	if err != nil {
		return namespace.FileInfo{}, err
	}
	return namespace.FromUFS(m.Path, fi), nil
}

// statUFS asks the metadata owner, then the next owners, then the UFS.
func (c *Client) statUFS(ctx context.Context, m namespace.Mount, rel string, sync bool) (ufs.FileInfo, error) {
	var lastErr error
	for _, w := range c.owners(cluster.StatKey(m.ID, rel), max(m.Replicas, 1)) {
		if c.local != nil && w.ID == c.local.ID() {
			// The owner runs in this process: no RPC.
			rctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout.D())
			fi, err := c.local.Stat(rctx, m.ID, rel, sync)
			cancel()
			if err == nil || !retriable(err) {
				return fi, err
			}
			lastErr = err
			continue
		}
		wc, err := c.workerClient(w)
		if err != nil {
			lastErr = err
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout.D())
		resp, err := wc.Stat(rctx, &rpcpb.StatRequest{MountId: m.ID, Path: rel, Sync: sync})
		cancel()
		if err == nil {
			return rpcpb.ToFileInfo(resp.GetInfo()), nil
		}
		err = rpcpb.FromStatus(err)
		if !retriable(err) {
			return ufs.FileInfo{}, err
		}
		c.log.Debug("worker stat failed; trying the next owner", "worker", w.ID, "err", err)
		lastErr = err
	}
	if !c.cfg.UFSFallback && lastErr != nil {
		return ufs.FileInfo{}, fmt.Errorf("no worker answered (UFS fallback is off): %w", lastErr)
	}
	fs, err := c.ufsOf(ctx, m)
	if err != nil {
		return ufs.FileInfo{}, err
	}
	fi, err := fs.Stat(ctx, rel)
	if err != nil {
		return ufs.FileInfo{}, err
	}
	fi.Path = rel
	return fi, nil
}

// List streams the entries of a directory (order unspecified). A virtual
// directory lists the names leading to mounts below it.
func (c *Client) List(ctx context.Context, path string, sync bool) iter.Seq2[namespace.FileInfo, error] {
	return func(yield func(namespace.FileInfo, error) bool) {
		p, m, rel, err := c.resolve(path)
		if errors.Is(err, namespace.ErrNoMount) {
			names, virtual := c.Mounts().VirtualChildren(p)
			if !virtual {
				yield(namespace.FileInfo{}, fmt.Errorf("%s: %w (no mount holds it; see `strata fs mounts`)", p, ufs.ErrNotFound))
				return
			}
			slices.Sort(names)
			for _, n := range names {
				child := namespace.Join(p, n)
				_, isMount := c.Mounts().ByPath(child)
				if !yield(namespace.FileInfo{Path: child, IsDir: true, Virtual: !isMount, MountPoint: isMount}, nil) {
					return
				}
			}
			return
		}
		if err != nil {
			yield(namespace.FileInfo{}, err)
			return
		}
		for fi, err := range c.listUFS(ctx, m, rel, sync) {
			if err != nil {
				yield(namespace.FileInfo{}, err)
				return
			}
			if !yield(namespace.FromUFS(m.Path, fi), nil) {
				return
			}
		}
	}
}

// listUFS streams a listing from the owner, falling back to the next owners
// and the UFS while nothing has been yielded yet.
func (c *Client) listUFS(ctx context.Context, m namespace.Mount, rel string, sync bool) iter.Seq2[ufs.FileInfo, error] {
	return func(yield func(ufs.FileInfo, error) bool) {
		var lastErr error
		for _, w := range c.owners(cluster.MetaKey(m.ID, rel), max(m.Replicas, 1)) {
			wc, err := c.workerClient(w)
			if err != nil {
				lastErr = err
				continue
			}
			sent := 0
			err = func() error {
				lctx, cancel := context.WithCancel(ctx)
				defer cancel()
				stream, err := wc.List(lctx, &rpcpb.ListRequest{MountId: m.ID, Path: rel, Sync: sync})
				if err != nil {
					return rpcpb.FromStatus(err)
				}
				for {
					resp, err := stream.Recv()
					if err == io.EOF {
						return nil
					}
					if err != nil {
						return rpcpb.FromStatus(err)
					}
					for _, e := range resp.GetEntries() {
						sent++
						if !yield(rpcpb.ToFileInfo(e), nil) {
							return errStop
						}
					}
				}
			}()
			switch {
			case err == nil || errors.Is(err, errStop):
				return
			case sent > 0 || !retriable(err):
				yield(ufs.FileInfo{}, err)
				return
			}
			c.log.Debug("worker list failed; trying the next owner", "worker", w.ID, "err", err)
			lastErr = err
		}
		if !c.cfg.UFSFallback && lastErr != nil {
			yield(ufs.FileInfo{}, fmt.Errorf("no worker answered (UFS fallback is off): %w", lastErr))
			return
		}
		fs, err := c.ufsOf(ctx, m)
		if err != nil {
			yield(ufs.FileInfo{}, err)
			return
		}
		for fi, err := range fs.List(ctx, rel) {
			if err == nil && fi.Path == "" {
				fi.Path = ufs.Join(rel, fi.Name())
			}
			if !yield(fi, err) || err != nil {
				return
			}
		}
	}
}

var errStop = errors.New("client: consumer stopped")

// invalidate tells the metadata owners of the changed paths and of all their
// ancestors (an object store creates and drops parent "directories"
// implicitly) to forget what they cached. Best effort: entries also expire
// with their TTL.
func (c *Client) invalidate(ctx context.Context, m namespace.Mount, rels ...string) {
	targets := map[string][]string{}
	seen := map[string]bool{}
	for _, rel := range rels {
		for p := rel; !seen[p]; p = parentRel(p) {
			seen[p] = true
			// The listing of p is placed by its MetaKey, its stat with
			// its parent's listing (StatKey).
			for _, w := range c.owners(cluster.MetaKey(m.ID, p), max(m.Replicas, 1)) {
				targets[w.ID] = append(targets[w.ID], p)
			}
			if sk := cluster.StatKey(m.ID, p); sk != cluster.MetaKey(m.ID, p) {
				for _, w := range c.owners(sk, max(m.Replicas, 1)) {
					if !slices.Contains(targets[w.ID], p) {
						targets[w.ID] = append(targets[w.ID], p)
					}
				}
			}
			if p == "" {
				break
			}
		}
	}
	members := c.view.Members()
	for id, paths := range targets {
		w, ok := members.Get(id)
		if !ok {
			continue
		}
		wc, err := c.workerClient(w)
		if err != nil {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout.D())
		if _, err := wc.Invalidate(rctx, &rpcpb.InvalidateRequest{MountId: m.ID, Paths: paths}); err != nil {
			c.log.Debug("invalidate metadata", "worker", id, "err", err)
		}
		cancel()
	}
}

func parentRel(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return ""
}
