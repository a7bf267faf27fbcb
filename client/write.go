package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/ufs"
)

// writable resolves a path for a change: it must lie inside a mount (not be a
// mount point or virtual directory) and the mount must not be read-only.
func (c *Client) writable(path string) (string, namespace.Mount, string, error) {
	p, m, rel, err := c.resolve(path)
	if err != nil {
		if errors.Is(err, namespace.ErrNoMount) {
			return p, m, rel, fmt.Errorf("%s: %w: it lies in no mount; mount a UFS there first (`strata fs mount`)", p, ufs.ErrNotSupported)
		}
		return p, m, rel, err
	}
	if m.ReadOnly {
		return p, m, rel, fmt.Errorf("%s: %w (mount %s)", p, rpcpb.ErrReadOnly, m.Path)
	}
	return p, m, rel, nil
}

// Create writes r (size bytes, or unknown when size < 0) as the file at path,
// replacing it, through to the UFS: when Create returns nil the UFS has the
// whole file. Returns the new file's info.
func (c *Client) Create(ctx context.Context, path string, r io.Reader, size int64) (namespace.FileInfo, error) {
	return c.CreateWith(ctx, path, r, size, CreateOptions{})
}

// CreateOptions qualify a write (CreateWith).
type CreateOptions struct {
	// Cond is a precondition on the file the write replaces, checked by the
	// UFS itself when the new version becomes visible (ufs.ConditionalPutter),
	// so it holds against writers that bypass Strata too.
	Cond ufs.Condition
	// Attrs are kept with the new file (ufs.AttrStore): object headers and
	// user metadata.
	Attrs ufs.Attrs
}

// CreateWith is Create under a condition and with attributes. Returns
// errors matching ufs.ErrPrecondition (the condition did not hold; nothing
// was written; with ufs.ErrNotFound too when Cond.Match named a missing
// file) and ufs.ErrNotSupported (the mount's UFS cannot make a write
// conditional, or cannot keep attributes other than a Content-Type, which is
// then dropped), besides Create's.
func (c *Client) CreateWith(ctx context.Context, path string, r io.Reader, size int64, opts CreateOptions) (namespace.FileInfo, error) {
	p, m, rel, err := c.writable(path)
	if err != nil {
		return namespace.FileInfo{}, err
	}
	if rel == "" {
		return namespace.FileInfo{}, fmt.Errorf("%s: %w: it is a mount point", p, ufs.ErrIsDir)
	}
	fs, err := c.ufsOf(ctx, m)
	if err != nil {
		return namespace.FileInfo{}, err
	}
	var fi ufs.FileInfo
	as, hasAttrs := fs.(ufs.AttrStore)
	cp, hasCond := fs.(ufs.ConditionalPutter)
	switch {
	case !opts.Attrs.IsZero() && hasAttrs:
		fi, err = as.PutAttrs(ctx, rel, r, size, opts.Cond, opts.Attrs)
	case !opts.Attrs.OnlyContentType():
		return namespace.FileInfo{}, fmt.Errorf("write %s: %w: the under-storage of mount %s cannot keep object headers or metadata", p, ufs.ErrNotSupported, m.Path)
	case !opts.Cond.IsZero() && hasCond:
		fi, err = cp.PutIf(ctx, rel, r, size, opts.Cond)
	case !opts.Cond.IsZero():
		return namespace.FileInfo{}, fmt.Errorf("write %s: %w: the under-storage of mount %s cannot make a write conditional (If-Match, If-None-Match)", p, ufs.ErrNotSupported, m.Path)
	default:
		fi, err = fs.Put(ctx, rel, r, size)
	}
	c.invalidate(ctx, m, rel)
	if err != nil {
		return namespace.FileInfo{}, fmt.Errorf("write %s: %w", p, err)
	}
	fi.Path = rel
	return namespace.FromUFS(m.Path, fi), nil
}

// Mkdir creates a directory and its parents.
func (c *Client) Mkdir(ctx context.Context, path string) error {
	p, m, rel, err := c.resolve(path)
	if errors.Is(err, namespace.ErrNoMount) {
		if _, virtual := c.Mounts().VirtualChildren(p); virtual {
			return nil
		}
	}
	if err == nil && rel == "" {
		return nil // a mount point is a directory already
	}
	if _, m, rel, err = c.writable(path); err != nil {
		return err
	}
	fs, err := c.ufsOf(ctx, m)
	if err != nil {
		return err
	}
	err = fs.Mkdir(ctx, rel)
	c.invalidate(ctx, m, rel)
	return err
}

// Remove deletes a file or an empty directory; with recursive, a directory
// and everything below it (files first, deepest directories first).
func (c *Client) Remove(ctx context.Context, path string, recursive bool) error {
	p, m, rel, err := c.writable(path)
	if err != nil {
		return err
	}
	if rel == "" {
		return fmt.Errorf("%s: %w: it is a mount point; use `strata fs unmount`", p, ufs.ErrNotSupported)
	}
	fs, err := c.ufsOf(ctx, m)
	if err != nil {
		return err
	}
	if recursive {
		fi, err := fs.Stat(ctx, rel)
		if err != nil {
			return err
		}
		if fi.IsDir {
			var removed []string
			err := c.removeTree(ctx, fs, rel, &removed)
			c.invalidate(ctx, m, removed...)
			return err
		}
	}
	err = fs.Delete(ctx, rel)
	c.invalidate(ctx, m, rel)
	return err
}

// removeTree deletes dir and everything below it, appending what it removed.
func (c *Client) removeTree(ctx context.Context, fs ufs.FS, dir string, removed *[]string) error {
	var dirs []string
	for fi, err := range fs.List(ctx, dir) {
		if err != nil {
			return err
		}
		child := fi.Path
		if child == "" {
			child = ufs.Join(dir, fi.Name())
		}
		if fi.IsDir {
			dirs = append(dirs, child)
			continue
		}
		if err := fs.Delete(ctx, child); err != nil && !errors.Is(err, ufs.ErrNotFound) {
			return err
		}
		*removed = append(*removed, child)
	}
	slices.Sort(dirs)
	for _, d := range dirs {
		if err := c.removeTree(ctx, fs, d, removed); err != nil {
			return err
		}
	}
	err := fs.Delete(ctx, dir)
	if errors.Is(err, ufs.ErrNotFound) {
		err = nil // object stores: the prefix vanished with its last child
	}
	*removed = append(*removed, dir)
	return err
}

// Rename moves a file within one mount. Returns ufs.ErrNotSupported across
// mounts or where the store cannot rename.
func (c *Client) Rename(ctx context.Context, src, dst string) error {
	sp, sm, srel, err := c.writable(src)
	if err != nil {
		return err
	}
	dp, dm, drel, err := c.writable(dst)
	if err != nil {
		return err
	}
	if sm.ID != dm.ID {
		return fmt.Errorf("rename %s to %s: %w: they lie in different mounts (%s, %s); copy and delete instead", sp, dp, ufs.ErrNotSupported, sm.Path, dm.Path)
	}
	fs, err := c.ufsOf(ctx, sm)
	if err != nil {
		return err
	}
	rn, ok := fs.(ufs.Renamer)
	if !ok {
		return fmt.Errorf("rename %s: %w by %s", sp, ufs.ErrNotSupported, sm.URI)
	}
	err = rn.Rename(ctx, srel, drel)
	c.invalidate(ctx, sm, srel, drel)
	return err
}
