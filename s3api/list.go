package s3api

import (
	"container/heap"
	"context"
	"encoding/base64"
	"errors"
	"iter"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/ufs"
)

// maxListKeys is the most keys one listing page returns (S3's limit).
const maxListKeys = 1000

// item is one entry of an S3 listing: an object or a common prefix.
type item struct {
	// Key is relative to the bucket; a common prefix ends with the delimiter.
	Key     string
	Prefix  bool
	Size    int64
	ModTime time.Time
	ETag    string
}

// child is one directory entry with its sort key: its key relative to the
// bucket, with a "/" after directory names, so that sorting children by it and
// descending into directories in that order yields keys in lexical order (all
// keys below "a/" sort between the siblings around "a/").
type child struct {
	sk string
	fi namespace.FileInfo
}

// childHeap is a max-heap of children by sort key.
type childHeap []child

func (h childHeap) Len() int           { return len(h) }
func (h childHeap) Less(i, j int) bool { return h[i].sk > h[j].sk }
func (h childHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *childHeap) Push(x any)        { *h = append(*h, x.(child)) }
func (h *childHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}

// lister produces the items of a bucket listing in lexical key order, after
// a marker, streaming the namespace's directory listings.
type lister struct {
	s      *Server
	ctx    context.Context
	bucket string // namespace path of the bucket
	prefix string
	delim  string
	// after: items up to it are skipped (start-after, marker, or the last
	// item of the previous page).
	after string
	// need returns how many more items the consumer may take; a directory is
	// read in batches of that many names at most.
	need func() int
}

// validName reports whether a listed name can be part of a key.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}

// children yields the entries of the directory at relative key relDir ("" or
// ending in "/") that keep accepts, sorted by sort key. It holds at most
// need() of them at a time: when there are more, the directory is listed
// again for the next batch. A directory that does not exist has no children.
func (l *lister) children(relDir string, keep func(sk string, isDir bool) bool) iter.Seq2[child, error] {
	return func(yield func(child, error) bool) {
		dir := l.bucket
		if relDir != "" {
			dir += "/" + strings.TrimSuffix(relDir, "/")
		}
		if seq, ok := l.s.c.ListAfter(l.ctx, dir, l.lowerBound(relDir)); ok {
			if l.sortedChildren(relDir, seq, keep, yield) {
				return
			}
			// The UFS could not be asked: list through the workers.
		}
		resume := ""
		for {
			batch := max(l.need(), 1)
			h := make(childHeap, 0, min(batch, 1024)+1)
			more := false
			for fi, err := range l.s.c.List(l.ctx, dir, false) {
				if err != nil {
					if errors.Is(err, ufs.ErrNotFound) || errors.Is(err, ufs.ErrNotDir) || errors.Is(err, namespace.ErrInvalidPath) {
						return
					}
					yield(child{}, err)
					return
				}
				name := fi.Name()
				if !validName(name) {
					continue
				}
				sk := relDir + name
				if fi.IsDir {
					sk += "/"
				}
				if (resume != "" && sk <= resume) || !keep(sk, fi.IsDir) {
					continue
				}
				if len(h) == batch {
					if sk >= h[0].sk {
						more = true
						continue
					}
					more = true
					heap.Pop(&h)
				}
				heap.Push(&h, child{sk: sk, fi: fi})
			}
			sorted := make([]child, len(h))
			for i := len(h) - 1; i >= 0; i-- {
				sorted[i] = heap.Pop(&h).(child)
			}
			for _, c := range sorted {
				if !yield(c, nil) {
					return
				}
			}
			if !more || len(sorted) == 0 {
				return
			}
			resume = sorted[len(sorted)-1].sk
		}
	}
}

// lowerBound is a sort key, relative to the directory relDir, below every
// child the listing wants: from the marker (a directory on the marker's way
// is wanted, files after it) and from the prefix (children have it, or lead
// to it).
func (l *lister) lowerBound(relDir string) string {
	bound := ""
	if rest, ok := strings.CutPrefix(l.after, relDir); ok && rest != "" {
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			bound = rest[:i] // the directory rest[:i]+"/" holds the marker
		} else {
			bound = rest
		}
	}
	if rest, ok := strings.CutPrefix(l.prefix, relDir); ok && rest != "" {
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			rest = rest[:i]
		}
		// Every wanted name starts with rest: the name one byte shorter is
		// below them all.
		if p := rest[:max(len(rest)-1, 0)]; p > bound {
			bound = p
		}
	}
	return bound
}

// sortedChildren yields the children of relDir that keep accepts from a
// listing in sort-key order, and stops reading it once the keys pass the
// prefix. It returns false, having yielded nothing, when the listing fails
// at once for a reason the workers may not have (the UFS cannot be
// reached, or refuses these credentials): the caller lists through the
// workers then.
func (l *lister) sortedChildren(relDir string, seq iter.Seq2[namespace.FileInfo, error], keep func(sk string, isDir bool) bool, yield func(child, error) bool) bool {
	pfx, _ := strings.CutPrefix(l.prefix, relDir)
	if !strings.HasPrefix(l.prefix, relDir) {
		pfx = ""
	}
	yielded := false
	for fi, err := range seq {
		if err != nil {
			switch {
			case errors.Is(err, ufs.ErrNotFound), errors.Is(err, ufs.ErrNotDir), errors.Is(err, namespace.ErrInvalidPath):
			case !yielded && (errors.Is(err, ufs.ErrUnavailable) || errors.Is(err, ufs.ErrPermission)):
				return false
			default:
				yield(child{}, err)
			}
			return true
		}
		name := fi.Name()
		if !validName(name) {
			continue
		}
		sk := name
		if fi.IsDir {
			sk += "/"
		}
		if pfx != "" && sk > pfx && !strings.HasPrefix(sk, pfx) {
			return true // sorted: nothing further has the prefix
		}
		if !keep(relDir+sk, fi.IsDir) {
			continue
		}
		yielded = true
		if !yield(child{sk: relDir + sk, fi: fi}, nil) {
			return true
		}
	}
	return true
}

// startDir is the directory where the keys with the prefix lie: the prefix up
// to its last "/" ("" for the bucket). ok is false when that cannot be a
// directory of the namespace.
func startDir(prefix string) (string, bool) {
	i := strings.LastIndexByte(prefix, '/')
	if i < 0 {
		return "", true
	}
	dir := prefix[:i+1]
	for el := range strings.SplitSeq(strings.TrimSuffix(dir, "/"), "/") {
		if !validName(el) {
			return "", false
		}
	}
	return dir, true
}

// items yields the listing's items in lexical order: keys, and common
// prefixes when a delimiter is set.
func (l *lister) items() iter.Seq2[item, error] {
	if l.delim == "/" {
		return l.byDirectory()
	}
	return func(yield func(item, error) bool) {
		last := ""
		if l.delim != "" && strings.HasSuffix(l.after, l.delim) {
			last = l.after // the previous page ended with this common prefix
		}
		for it, err := range l.walk() {
			if err != nil {
				yield(item{}, err)
				return
			}
			if l.delim != "" {
				rest := it.Key[len(l.prefix):]
				if i := strings.Index(rest, l.delim); i >= 0 {
					cp := l.prefix + rest[:i+len(l.delim)]
					if cp == last {
						continue
					}
					last = cp
					if !yield(item{Key: cp, Prefix: true}, nil) {
						return
					}
					continue
				}
			}
			if !yield(it, nil) {
				return
			}
		}
	}
}

// walk yields every key with the prefix after the marker, depth-first in
// lexical order.
func (l *lister) walk() iter.Seq2[item, error] {
	return func(yield func(item, error) bool) {
		dir, ok := startDir(l.prefix)
		if !ok {
			return
		}
		l.walkDir(dir, l.after, yield)
	}
}

// walkDir walks relDir; it returns false when the consumer stopped or an
// error was yielded.
func (l *lister) walkDir(relDir, after string, yield func(item, error) bool) bool {
	keep := func(sk string, isDir bool) bool {
		if isDir {
			return (strings.HasPrefix(sk, l.prefix) || strings.HasPrefix(l.prefix, sk)) &&
				(sk > after || strings.HasPrefix(after, sk))
		}
		return strings.HasPrefix(sk, l.prefix) && sk > after
	}
	for c, err := range l.children(relDir, keep) {
		if err != nil {
			yield(item{}, err)
			return false
		}
		if c.fi.IsDir {
			if !l.walkDir(c.sk, after, yield) {
				return false
			}
			continue
		}
		if !yield(item{Key: c.sk, Size: c.fi.Size, ModTime: c.fi.ModTime, ETag: s3ETag(c.fi)}, nil) {
			return false
		}
	}
	return true
}

// byDirectory lists with the delimiter "/": the files of the prefix's
// directory and its subdirectories as common prefixes, without descending.
func (l *lister) byDirectory() iter.Seq2[item, error] {
	return func(yield func(item, error) bool) {
		dir, ok := startDir(l.prefix)
		if !ok {
			return
		}
		after := l.after
		keep := func(sk string, isDir bool) bool {
			if !strings.HasPrefix(sk, l.prefix) {
				return false
			}
			// A directory that holds the marker is kept for now; the
			// loop below looks inside it.
			return sk > after || (isDir && strings.HasPrefix(after, sk) && after != sk)
		}
		for c, err := range l.children(dir, keep) {
			if err != nil {
				yield(item{}, err)
				return
			}
			if c.fi.IsDir {
				if c.sk <= after && !l.hasKeyAfter(c.sk, after) {
					continue
				}
				if !yield(item{Key: c.sk, Prefix: true}, nil) {
					return
				}
				continue
			}
			if !yield(item{Key: c.sk, Size: c.fi.Size, ModTime: c.fi.ModTime, ETag: s3ETag(c.fi)}, nil) {
				return
			}
		}
	}
}

// hasKeyAfter reports whether the directory relDir holds a key after the
// marker (errors count as yes, so that the common prefix is shown).
func (l *lister) hasKeyAfter(relDir, after string) bool {
	sub := *l
	sub.prefix = relDir
	sub.need = func() int { return 1 }
	for range sub.walkFrom(relDir, after) {
		return true
	}
	return false
}

func (l *lister) walkFrom(relDir, after string) iter.Seq2[item, error] {
	return func(yield func(item, error) bool) { l.walkDir(relDir, after, yield) }
}

// listParams are the parsed parameters of a ListObjects(V2) request.
type listParams struct {
	prefix, delim, after string
	maxKeys              int
	encode               bool
}

func parseListParams(q query) (listParams, *Error) {
	p := listParams{prefix: q.Get("prefix"), delim: q.Get("delimiter"), maxKeys: maxListKeys}
	if v := q.Get("max-keys"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return p, apiErr("InvalidArgument", "max-keys must be a non-negative integer")
		}
		p.maxKeys = min(n, maxListKeys)
	}
	switch q.Get("encoding-type") {
	case "":
	case "url":
		p.encode = true
	default:
		return p, apiErr("InvalidArgument", "invalid encoding method specified in the request")
	}
	return p, nil
}

// page collects up to maxKeys items after the marker; truncated reports that
// more follow.
func (s *Server) page(ctx context.Context, bucket string, p listParams) (items []item, truncated bool, err error) {
	if p.maxKeys == 0 {
		return nil, false, nil
	}
	l := &lister{s: s, ctx: ctx, bucket: bucket, prefix: p.prefix, delim: p.delim, after: p.after}
	l.need = func() int { return p.maxKeys + 1 - len(items) }
	for it, err := range l.items() {
		if err != nil {
			return nil, false, err
		}
		if len(items) == p.maxKeys {
			return items, true, nil
		}
		items = append(items, it)
	}
	return items, false, nil
}

// urlEncode is S3's encoding-type=url: form encoding ("+" for a space)
// that leaves "/" as it is, as S3 and MinIO send it.
func urlEncode(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "%2F", "/")
}

// fill puts items into a ListBucketResult.
func fillResult(res *listBucketResult, items []item, encode, withOwner bool) {
	enc := func(s string) string {
		if encode {
			return urlEncode(s)
		}
		return s
	}
	for _, it := range items {
		if it.Prefix {
			res.CommonPrefixes = append(res.CommonPrefixes, commonPrefix{Prefix: enc(it.Key)})
			continue
		}
		o := objectResult{Key: enc(it.Key), LastModified: isoTime(it.ModTime), ETag: it.ETag, Size: it.Size, StorageClass: "STANDARD"}
		if withOwner {
			own := strataOwner()
			o.Owner = &own
		}
		res.Contents = append(res.Contents, o)
	}
	res.Prefix, res.Delimiter = enc(res.Prefix), enc(res.Delimiter)
	if encode {
		res.EncodingType = "url"
	}
}

const tokenPrefix = "strata1:"

func encodeToken(last string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(tokenPrefix + last))
}

func decodeToken(tok string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", false
	}
	return strings.CutPrefix(string(b), tokenPrefix)
}

func (s *Server) listObjectsV2(ctx context.Context, rq *request) error {
	bucket, err := s.bucketPath(ctx, rq)
	if err != nil {
		return err
	}
	p, aerr := parseListParams(rq.q)
	if aerr != nil {
		return aerr
	}
	tok := rq.q.Get("continuation-token")
	startAfter := rq.q.Get("start-after")
	p.after = startAfter
	if tok != "" { // an empty token is no token (S3, MinIO)
		last, ok := decodeToken(tok)
		if !ok {
			return apiErr("InvalidArgument", "the continuation token provided is incorrect")
		}
		p.after = last
	}
	items, truncated, err := s.page(ctx, bucket, p)
	if err != nil {
		return err
	}
	res := listBucketResult{NS: s3NS, Name: rq.t.Bucket, Prefix: p.prefix, Delimiter: p.delim, MaxKeys: p.maxKeys,
		IsTruncated: truncated, ContinuationToken: tok}
	if startAfter != "" {
		res.StartAfter = startAfter
		if p.encode {
			res.StartAfter = urlEncode(startAfter)
		}
	}
	n := len(items)
	res.KeyCount = &n
	if truncated {
		res.NextContinuationToken = encodeToken(items[len(items)-1].Key)
	}
	fillResult(&res, items, p.encode, rq.q.Get("fetch-owner") == "true")
	return s.writeXML(rq, res)
}

func (s *Server) listObjectsV1(ctx context.Context, rq *request) error {
	bucket, err := s.bucketPath(ctx, rq)
	if err != nil {
		return err
	}
	p, aerr := parseListParams(rq.q)
	if aerr != nil {
		return aerr
	}
	p.after = rq.q.Get("marker")
	items, truncated, err := s.page(ctx, bucket, p)
	if err != nil {
		return err
	}
	marker := p.after
	if p.encode {
		marker = urlEncode(marker)
	}
	res := listBucketResult{NS: s3NS, Name: rq.t.Bucket, Prefix: p.prefix, Delimiter: p.delim, MaxKeys: p.maxKeys,
		IsTruncated: truncated, Marker: &marker}
	if truncated {
		res.NextMarker = items[len(items)-1].Key
		if p.encode {
			res.NextMarker = urlEncode(res.NextMarker)
		}
	}
	fillResult(&res, items, p.encode, true)
	return s.writeXML(rq, res)
}

// maxBuckets is the most buckets one ListBuckets page may ask for.
const maxBuckets = 10000

// listBuckets lists the top-level directories of the namespace that the
// request's identity may read, in name order, with the prefix,
// continuation-token and max-buckets parameters.
func (s *Server) listBuckets(ctx context.Context, rq *request) error {
	limit := maxBuckets
	paged := false
	if v := rq.q.Get("max-buckets"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxBuckets {
			return apiErr("InvalidArgument", "max-buckets must be an integer between 1 and %d", maxBuckets)
		}
		limit, paged = n, true
	}
	after := ""
	if tok := rq.q.Get("continuation-token"); tok != "" {
		last, ok := decodeToken(tok)
		if !ok {
			return apiErr("InvalidArgument", "the continuation token provided is incorrect")
		}
		after = last
	}
	prefix := rq.q.Get("prefix")
	created := map[string]time.Time{}
	var root time.Time
	for _, m := range s.c.Mounts().All() {
		top, _, _ := strings.Cut(strings.TrimPrefix(m.Path, "/"), "/")
		if top == "" {
			root = m.Created
			continue
		}
		if t, ok := created[top]; !ok || m.Created.Before(t) {
			created[top] = m.Created
		}
	}
	res := listAllMyBucketsResult{NS: s3NS, Owner: strataOwner()}
	for fi, err := range s.c.List(ctx, "/", false) {
		if err != nil {
			if errors.Is(err, ufs.ErrNotFound) {
				break // nothing is mounted
			}
			return err
		}
		if !fi.IsDir || checkBucketName(fi.Name()) != nil || !s.canRead(rq.id, fi.Name()) {
			continue
		}
		t, ok := created[fi.Name()]
		if !ok {
			t = root
		}
		res.Buckets = append(res.Buckets, bucketResult{Name: fi.Name(), CreationDate: isoTime(t)})
	}
	slices.SortFunc(res.Buckets, func(a, b bucketResult) int { return strings.Compare(a.Name, b.Name) })
	res.Buckets = slices.DeleteFunc(res.Buckets, func(b bucketResult) bool {
		return !strings.HasPrefix(b.Name, prefix) || (after != "" && b.Name <= after)
	})
	if len(res.Buckets) > limit {
		res.Buckets = res.Buckets[:limit]
		res.ContinuationToken = encodeToken(res.Buckets[limit-1].Name)
	}
	if paged || prefix != "" {
		res.Prefix = prefix
	}
	return s.writeXML(rq, res)
}
