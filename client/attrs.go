package client

import (
	"context"
	"fmt"

	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/ufs"
)

// StatAttrs describes a file with the attributes its UFS keeps with it
// (ufs.AttrStore: object headers and user metadata), asking the UFS itself:
// the workers' metadata caches do not hold attributes. A UFS without
// attributes answers its Stat with zero Attrs. Returns errors matching
// ufs.ErrNotFound, ufs.ErrIsDir, namespace.ErrNoMount, and the UFS's
// (ufs.ErrUnavailable when it cannot be reached).
func (c *Client) StatAttrs(ctx context.Context, path string) (namespace.FileInfo, ufs.Attrs, error) {
	p, m, rel, err := c.resolve(path)
	if err != nil {
		return namespace.FileInfo{}, ufs.Attrs{}, err
	}
	if rel == "" {
		return namespace.FileInfo{}, ufs.Attrs{}, fmt.Errorf("%s: %w: it is a mount point", p, ufs.ErrIsDir)
	}
	fs, err := c.ufsOf(ctx, m)
	if err != nil {
		return namespace.FileInfo{}, ufs.Attrs{}, err
	}
	var (
		fi ufs.FileInfo
		a  ufs.Attrs
	)
	if as, ok := fs.(ufs.AttrStore); ok {
		fi, a, err = as.StatAttrs(ctx, rel)
	} else {
		fi, err = fs.Stat(ctx, rel)
		if err == nil && fi.IsDir {
			err = fmt.Errorf("%s: %w", p, ufs.ErrIsDir)
		}
	}
	if err != nil {
		return namespace.FileInfo{}, ufs.Attrs{}, err
	}
	fi.Path = rel
	return namespace.FromUFS(m.Path, fi), a, nil
}
