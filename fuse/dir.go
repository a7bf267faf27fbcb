package fuse

import (
	"context"
	"iter"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"
	"github.com/stratafs/strata/namespace"
)

// recentEntries is how many listed entries a directory handle remembers
// for the lookups of READDIRPLUS (which come right after each entry).
const recentEntries = 512

// OpendirHandle opens a directory for listing.
func (n *node) OpendirHandle(_ context.Context, _ uint32) (fs.FileHandle, uint32, syscall.Errno) {
	p, errno := n.path()
	if errno != 0 {
		return nil, 0, errno
	}
	return &dirHandle{n: n, path: p, recent: map[string]namespace.FileInfo{}}, 0, 0
}

// dirHandle streams a directory listing from the client, entry by entry, so
// a directory of any size is listed in constant memory. READDIRPLUS lookups
// are answered from the listing itself: `ls -l` costs no stat per entry.
// go-fuse serializes the calls on one handle.
type dirHandle struct {
	n    *node
	path string

	next   func() (namespace.FileInfo, error, bool)
	stop   func()
	cancel context.CancelFunc
	off    uint64 // entries returned, "." and ".." included

	recent map[string]namespace.FileInfo
	order  []string
	// pending are the files of this directory created here and not
	// uploaded yet when the listing started: the under-storage does not list
	// them, so they are added at its end unless it listed them after all.
	pending map[string]bool
}

var (
	_ fs.FileReaddirenter = (*dirHandle)(nil)
	_ fs.FileLookuper     = (*dirHandle)(nil)
	_ fs.FileSeekdirer    = (*dirHandle)(nil)
	_ fs.FileReleasedirer = (*dirHandle)(nil)
	_ fs.FileFsyncdirer   = (*dirHandle)(nil)
)

func (d *dirHandle) start() {
	// The listing spans many READDIR requests: it gets its own context,
	// ended by Releasedir (or the mount's shutdown).
	ctx, cancel := d.n.sys.background()
	var seq iter.Seq2[namespace.FileInfo, error] = d.n.sys.c.List(ctx, d.path, false)
	d.next, d.stop = iter.Pull2(seq)
	d.cancel = cancel
	d.pending = d.n.pendingChildren()
}

// pendingChildren names the children holding content not uploaded yet.
func (n *node) pendingChildren() map[string]bool {
	var out map[string]bool
	for name, ch := range n.Children() {
		if cn, ok := ch.Operations().(*node); ok && !ch.IsDir() && cn.pending() {
			if out == nil {
				out = map[string]bool{}
			}
			out[name] = true
		}
	}
	return out
}

// nextPending returns an entry for a pending file the listing did not show.
func (d *dirHandle) nextPending() *gofuse.DirEntry {
	for name := range d.pending {
		delete(d.pending, name)
		ch := d.n.GetChild(name)
		if ch == nil {
			continue // removed meanwhile
		}
		d.off++
		return &gofuse.DirEntry{Name: name, Mode: syscall.S_IFREG, Ino: ch.StableAttr().Ino, Off: d.off}
	}
	return nil
}

func (d *dirHandle) close() {
	if d.stop != nil {
		d.stop()
		d.cancel()
		d.next, d.stop, d.cancel = nil, nil, nil
	}
}

// Readdirent returns the next entry, nil at the end.
func (d *dirHandle) Readdirent(context.Context) (*gofuse.DirEntry, syscall.Errno) {
	switch d.off {
	case 0:
		d.off++
		return &gofuse.DirEntry{Name: ".", Mode: syscall.S_IFDIR, Ino: d.n.StableAttr().Ino, Off: d.off}, 0
	case 1:
		d.off++
		return &gofuse.DirEntry{Name: "..", Mode: syscall.S_IFDIR, Off: d.off}, 0
	}
	if d.next == nil {
		d.start()
	}
	for {
		fi, err, ok := d.next()
		if !ok {
			return d.nextPending(), 0
		}
		if err != nil {
			return nil, d.n.sys.errno("readdir", d.path, err)
		}
		name := fi.Name()
		if name == "" || name == "." || name == ".." {
			continue
		}
		delete(d.pending, name)
		d.remember(name, fi)
		d.off++
		de := &gofuse.DirEntry{Name: name, Mode: syscall.S_IFREG, Off: d.off}
		if fi.IsDir {
			de.Mode = syscall.S_IFDIR
		}
		if ch := d.n.GetChild(name); ch != nil {
			de.Ino = ch.StableAttr().Ino
		}
		return de, 0
	}
}

func (d *dirHandle) remember(name string, fi namespace.FileInfo) {
	if len(d.order) >= recentEntries {
		delete(d.recent, d.order[0])
		d.order = d.order[1:]
	}
	d.recent[name] = fi
	d.order = append(d.order, name)
}

// Lookup answers READDIRPLUS from the listed entry.
func (d *dirHandle) Lookup(ctx context.Context, name string, out *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if fi, ok := d.recent[name]; ok {
		return d.n.child(ctx, name, fi, out), 0
	}
	return d.n.Lookup(ctx, name, out)
}

// Seekdir restarts the listing and skips to off (rewinddir, seekdir).
func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	d.close()
	d.off = 0
	clear(d.recent)
	d.order = d.order[:0]
	for d.off < off {
		de, errno := d.Readdirent(ctx)
		if errno != 0 {
			return errno
		}
		if de == nil {
			break
		}
	}
	return 0
}

// Fsyncdir has nothing to flush: directory changes are synchronous.
func (d *dirHandle) Fsyncdir(context.Context, uint32) syscall.Errno { return 0 }

// Releasedir ends the listing.
func (d *dirHandle) Releasedir(context.Context, uint32) { d.close() }
