package s3

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stratafs/strata/ufs"
)

var _ ufs.SortedLister = (*FS)(nil)

// maxRune sorts after every key that continues a prefix: StartAfter
// "dir/" + maxRune skips the keys under "dir/" (which S3 would roll up into
// the common prefix "dir/" again).
const maxRune = "\U0010FFFF"

// ListAfter streams the children of dir whose sort key is after `after`,
// in sort-key order: one ListObjectsV2 with StartAfter, then its pages,
// each page's keys and common prefixes merged (S3 pages are consecutive
// ranges of that order). Errors are List's. Safe for concurrent use.
func (f *FS) ListAfter(ctx context.Context, dir, after string) iter.Seq2[ufs.FileInfo, error] {
	return func(yield func(ufs.FileInfo, error) bool) {
		if err := f.begin(ctx, "list", dir); err != nil {
			yield(ufs.FileInfo{}, err)
			return
		}
		prefix := f.dirKey(dir)
		in := &awss3.ListObjectsV2Input{Bucket: &f.bucket, Prefix: aws.String(prefix), Delimiter: aws.String("/"), MaxKeys: aws.Int32(f.maxKeys)}
		if after != "" {
			start := prefix + after
			if strings.HasSuffix(after, "/") {
				start += maxRune
			}
			in.StartAfter = aws.String(start)
		}
		pg := awss3.NewListObjectsV2Paginator(f.client, in)
		seen := false
		for pg.HasMorePages() {
			page, err := pg.NextPage(ctx)
			if err != nil {
				yield(ufs.FileInfo{}, f.mapErr("list", dir, err))
				return
			}
			var ents []ufs.FileInfo
			for _, o := range page.Contents {
				seen = true
				k := aws.ToString(o.Key)
				name := strings.TrimPrefix(k, prefix)
				if k == prefix || !validName(name) {
					continue
				}
				ents = append(ents, ufs.FileInfo{Path: ufs.Join(dir, name), Size: aws.ToInt64(o.Size), ModTime: modTime(o.LastModified), ETag: etag(o.ETag)})
			}
			for _, cp := range page.CommonPrefixes {
				seen = true
				name := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), prefix), "/")
				if validName(name) {
					ents = append(ents, ufs.FileInfo{Path: ufs.Join(dir, name), IsDir: true})
				}
			}
			slices.SortFunc(ents, func(a, b ufs.FileInfo) int { return strings.Compare(ufs.SortKey(a), ufs.SortKey(b)) })
			for _, fi := range ents {
				if ufs.SortKey(fi) <= after {
					continue
				}
				if !yield(fi, nil) {
					return
				}
			}
		}
		if seen || dir == "" || after != "" {
			return
		}
		// Nothing under dir/: a file, or nothing at all.
		_, err := f.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &f.bucket, Key: aws.String(f.key(dir))})
		switch {
		case err == nil:
			yield(ufs.FileInfo{}, fmt.Errorf("s3: list %q: %w", f.uri(dir), ufs.ErrNotDir))
		case isNotFound(err, f.bucket):
			yield(ufs.FileInfo{}, fmt.Errorf("s3: list %q: %w", f.uri(dir), ufs.ErrNotFound))
		default:
			yield(ufs.FileInfo{}, f.mapErr("list", dir, err))
		}
	}
}
