package client

import (
	"context"
	"iter"

	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/ufs"
)

// ListAfter streams the entries of a directory whose sort key (the name,
// with "/" after a directory's) is greater than after, in sort-key order,
// from the mount's UFS itself (ufs.SortedLister: S3, GCS), so that a caller
// paging through a large directory reads each entry once. ok is false when
// the UFS cannot list in order (a file system, Azure), the path is not below
// a mount, or this client holds no credentials for it: use List then. The
// workers' metadata caches are not involved: the listing is the UFS's as it
// is now, and fails when the UFS cannot be reached. Errors are List's.
func (c *Client) ListAfter(ctx context.Context, path, after string) (seq iter.Seq2[namespace.FileInfo, error], ok bool) {
	_, m, rel, err := c.resolve(path)
	if err != nil {
		return nil, false
	}
	fs, err := c.ufsOf(ctx, m)
	if err != nil {
		return nil, false
	}
	sl, ok := fs.(ufs.SortedLister)
	if !ok {
		return nil, false
	}
	return func(yield func(namespace.FileInfo, error) bool) {
		for fi, err := range sl.ListAfter(ctx, rel, after) {
			if err != nil {
				yield(namespace.FileInfo{}, err)
				return
			}
			if !yield(namespace.FromUFS(m.Path, fi), nil) {
				return
			}
		}
	}, true
}
