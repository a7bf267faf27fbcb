package gcs

import (
	"context"
	"iter"
	"slices"
	"strings"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"

	"github.com/stratafs/strata/ufs"
)

var _ ufs.SortedLister = (*FS)(nil)

// maxRune sorts after every name that continues a prefix: a start offset of
// "dir/" + maxRune skips the objects under "dir/".
const maxRune = "\U0010FFFF"

// ListAfter streams the children of dir whose sort key is after `after`,
// in sort-key order: a listing from StartOffset, page by page, each page's
// objects and prefixes merged (GCS pages are consecutive ranges of that
// order; a prefix some servers repeat on later pages is yielded once).
// Errors are List's. Safe for concurrent use.
func (fs *FS) ListAfter(ctx context.Context, dir, after string) iter.Seq2[ufs.FileInfo, error] {
	return func(yield func(ufs.FileInfo, error) bool) {
		dir, err := fs.clean("list", dir)
		if err != nil {
			yield(ufs.FileInfo{}, err)
			return
		}
		prefix := fs.dirKey(dir)
		q := &storage.Query{Prefix: prefix, Delimiter: "/"}
		if after != "" {
			q.StartOffset = prefix + after
			if strings.HasSuffix(after, "/") {
				q.StartOffset += maxRune
			}
		}
		if err := q.SetAttrSelection([]string{"Name", "Size", "Updated", "Generation"}); err != nil {
			yield(ufs.FileInfo{}, fs.mapErr(ctx, "list", dir, err))
			return
		}
		pager := iterator.NewPager(fs.bucket.Objects(ctx, q), fs.listPageSize, "")
		seen := false
		last := after
		for {
			var page []*storage.ObjectAttrs
			next, err := pager.NextPage(&page)
			if err != nil {
				if dir == "" {
					err = fs.rootErr(ctx, "list", err)
				} else {
					err = fs.mapErr(ctx, "list", dir, err)
				}
				yield(ufs.FileInfo{}, err)
				return
			}
			ents := make([]ufs.FileInfo, 0, len(page))
			for _, a := range page {
				seen = true
				switch {
				case a.Prefix != "":
					name := strings.TrimSuffix(strings.TrimPrefix(a.Prefix, prefix), "/")
					if validName(name) {
						ents = append(ents, ufs.FileInfo{Path: ufs.Join(dir, name), IsDir: true})
					}
				case a.Name != prefix:
					if name := strings.TrimPrefix(a.Name, prefix); validName(name) {
						ents = append(ents, fileInfo(ufs.Join(dir, name), a))
					}
				}
			}
			slices.SortFunc(ents, func(a, b ufs.FileInfo) int { return strings.Compare(ufs.SortKey(a), ufs.SortKey(b)) })
			for _, fi := range ents {
				if sk := ufs.SortKey(fi); sk <= last {
					continue
				} else {
					last = sk
				}
				if !yield(fi, nil) {
					return
				}
			}
			if next == "" {
				break
			}
		}
		if seen || dir == "" || after != "" {
			return
		}
		// Nothing under dir/: a file, or nothing at all.
		_, err = fs.bucket.Object(fs.key(dir)).Attrs(ctx)
		switch {
		case err == nil:
			yield(ufs.FileInfo{}, fs.fail("list", dir, ufs.ErrNotDir, ""))
		case isNotFound(ctx, err):
			yield(ufs.FileInfo{}, fs.fail("list", dir, ufs.ErrNotFound, "no such directory"))
		default:
			yield(ufs.FileInfo{}, fs.mapErr(ctx, "list", dir, err))
		}
	}
}
