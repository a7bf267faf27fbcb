package coordinator

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stratafs/strata/ufs"
)

// Walk order. A file's walk key is its UFS path; a directory's is its path
// followed by "/". A depth-first walk that visits each directory's entries in
// key order then visits files in plain byte order of their paths (the order
// in which object stores list keys), so "every file before the cursor" is a
// string comparison, and a walk resumed after a cursor is exact.

// walkKey is the key that orders fi in the walk.
func walkKey(fi ufs.FileInfo) string {
	if fi.IsDir {
		return fi.Path + "/"
	}
	return fi.Path
}

// afterCursor reports whether fi (a file, or a directory's subtree) may hold
// a file whose path sorts after cursor ("" is before everything).
func afterCursor(fi ufs.FileInfo, cursor string) bool {
	if cursor == "" {
		return true
	}
	k := walkKey(fi)
	if !fi.IsDir {
		return k > cursor
	}
	return k > cursor || strings.HasPrefix(cursor, k)
}

// walkHandler receives what a walk finds. Its functions run on the walking
// goroutine; an error they return ends the walk with it.
type walkHandler struct {
	// file is called for every file after the cursor, in walk order.
	file func(ctx context.Context, fi ufs.FileInfo) error
	// dir is called for every directory the walk enters (after the cursor
	// or on its path), before its children. It returns false to skip the
	// directory's subtree.
	dir func(ctx context.Context, fi ufs.FileInfo) (bool, error)
	// listed is called once per directory entered, with its whole listing
	// (every entry, also those before the cursor; nil when it has more than
	// maxListing entries), before the children are visited.
	listed func(ctx context.Context, dir string, entries []ufs.FileInfo) error
	// listFailed is called when a directory could not be listed (after
	// retries of transient errors). Returning nil goes on with the rest of
	// the walk.
	listFailed func(ctx context.Context, dir string, err error) error
}

// walker walks a UFS directory tree in walk order with bounded memory: it
// holds at most window entries per directory level it is inside (a deeper
// level while the shallower ones wait), however many entries a directory has.
// A directory with more than window entries after the cursor is read in
// several passes, each keeping the window smallest keys above the last pass.
type walker struct {
	fs         ufs.FS
	h          walkHandler
	window     int
	maxListing int
	retries    int
	backoff    time.Duration
}

// walkDefaults: window and listing sizes of a production walk.
const (
	walkWindow     = 256 << 10
	walkMaxListing = 200_000 // the worker's metadata cache keeps no longer listing
	listRetries    = 3
	listBackoff    = time.Second
)

func newWalker(fs ufs.FS, h walkHandler) *walker {
	return &walker{fs: fs, h: h, window: walkWindow, maxListing: walkMaxListing, retries: listRetries, backoff: listBackoff}
}

// walk visits root (a directory, or a single file) after cursor.
func (w *walker) walk(ctx context.Context, root ufs.FileInfo, cursor string) error {
	if !root.IsDir {
		if afterCursor(root, cursor) {
			return w.h.file(ctx, root)
		}
		return nil
	}
	return w.walkDir(ctx, root.Path, cursor)
}

type walkEntry struct {
	key string
	fi  ufs.FileInfo
}

// entryHeap is a max-heap of entries by key: its top is the largest key kept.
type entryHeap []walkEntry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].key > h[j].key }
func (h entryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *entryHeap) Push(x any)        { *h = append(*h, x.(walkEntry)) }
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func (w *walker) walkDir(ctx context.Context, dir, cursor string) error {
	low := "" // keys up to low were visited by an earlier pass
	first := true
	for {
		batch, more, listing, err := w.passRetrying(ctx, dir, cursor, low, first)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return w.h.listFailed(ctx, dir, err)
		}
		if first {
			first = false
			if err := w.h.listed(ctx, dir, listing); err != nil {
				return err
			}
		}
		for _, e := range batch {
			if err := ctx.Err(); err != nil {
				return err
			}
			if !e.fi.IsDir {
				if err := w.h.file(ctx, e.fi); err != nil {
					return err
				}
				continue
			}
			enter, err := w.h.dir(ctx, e.fi)
			if err != nil {
				return err
			}
			if enter {
				if err := w.walkDir(ctx, e.fi.Path, cursor); err != nil {
					return err
				}
			}
		}
		if !more || len(batch) == 0 {
			return nil
		}
		low = batch[len(batch)-1].key
	}
}

// passRetrying runs pass, retrying transient listing errors with backoff.
func (w *walker) passRetrying(ctx context.Context, dir, cursor, low string, withListing bool) ([]walkEntry, bool, []ufs.FileInfo, error) {
	delay := w.backoff
	for attempt := 0; ; attempt++ {
		batch, more, listing, err := w.pass(ctx, dir, cursor, low, withListing)
		if err == nil || attempt >= w.retries || permanent(err) || ctx.Err() != nil {
			return batch, more, listing, err
		}
		select {
		case <-ctx.Done():
			return nil, false, nil, ctx.Err()
		case <-time.After(delay):
		}
		delay *= 2
	}
}

// pass lists dir once and returns, sorted, the window smallest entries whose
// key is above low and that may hold files after cursor; more is true when
// there were more such entries. With withListing it also returns every entry
// (nil beyond maxListing).
func (w *walker) pass(ctx context.Context, dir, cursor, low string, withListing bool) (batch []walkEntry, more bool, listing []ufs.FileInfo, err error) {
	h := &entryHeap{}
	tooMany := false
	for fi, err := range w.fs.List(ctx, dir) {
		if err != nil {
			return nil, false, nil, fmt.Errorf("list %q: %w", dir, err)
		}
		if fi.Path == "" {
			return nil, false, nil, fmt.Errorf("list %q: an entry has no path", dir)
		}
		if withListing && !tooMany {
			if len(listing) < w.maxListing {
				listing = append(listing, fi)
			} else {
				tooMany, listing = true, nil
			}
		}
		k := walkKey(fi)
		if k <= low || !afterCursor(fi, cursor) {
			continue
		}
		switch {
		case h.Len() < w.window:
			heap.Push(h, walkEntry{key: k, fi: fi})
		case k < (*h)[0].key:
			(*h)[0] = walkEntry{key: k, fi: fi}
			heap.Fix(h, 0)
			more = true
		default:
			more = true
		}
	}
	batch = []walkEntry(*h)
	slices.SortFunc(batch, func(a, b walkEntry) int { return strings.Compare(a.key, b.key) })
	return batch, more, listing, nil
}

// permanent reports UFS errors that a retry cannot fix.
func permanent(err error) bool {
	for _, s := range []error{ufs.ErrNotFound, ufs.ErrPermission, ufs.ErrNotDir, ufs.ErrIsDir, ufs.ErrInvalidPath, ufs.ErrNotSupported, ufs.ErrInvalidURI} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
