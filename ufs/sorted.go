package ufs

import (
	"context"
	"iter"
)

// SortedLister is implemented by stores that list a directory in key order
// and can start anywhere in it (S3 StartAfter, GCS StartOffset), so that a
// caller paging through a large directory reads each entry once instead of
// the whole directory per page.
type SortedLister interface {
	// ListAfter streams the children of dir whose sort key is greater than
	// after ("" for all), in increasing order of sort key. The sort key of
	// an entry is its name, with "/" after it for a directory: the order of
	// S3 keys and common prefixes, byte-wise. It paginates inside and stops
	// when the consumer stops. Errors are List's.
	ListAfter(ctx context.Context, dir, after string) iter.Seq2[FileInfo, error]
}

// SortKey is the sort key of a listed entry (see SortedLister).
func SortKey(fi FileInfo) string {
	if fi.IsDir {
		return fi.Name() + "/"
	}
	return fi.Name()
}
