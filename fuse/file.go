package fuse

import (
	"context"
	"os"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"
	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/namespace"
)

// backing is the local cache file the kernel reads for every passthrough
// handle of one inode; its pages stay on disk until release.
type backing struct {
	file    *os.File
	release func()
	fp      string
	refs    int // passthrough handles open (under node.mu)
}

func fingerprint(fi namespace.FileInfo) string {
	return fi.UFS("").Fingerprint()
}

// openRead opens the file for reading: from content being written here, by
// passthrough when a worker in this process has the whole file on a disk
// tier and the kernel takes it, through the daemon otherwise.
func (n *node) openRead(ctx context.Context, p string) (fs.FileHandle, uint32, syscall.Errno) {
	n.mu.Lock()
	if ws := n.ws; ws != nil && ws.readable() {
		ws.refs++
		n.daemonOpens++
		n.mu.Unlock()
		n.sys.m.opens.WithLabelValues(viaDaemon).Inc()
		n.sys.log.Debug("open", "path", p, "via", viaDaemon, "reason", "content being written here")
		return &writeHandle{n: n, ws: ws}, 0, 0
	}
	n.mu.Unlock()

	f, err := n.sys.c.Open(uninterrupted(ctx), p, false)
	if err != nil {
		return nil, 0, n.sys.errno("open", p, err)
	}
	info := f.Info()
	if !n.adopt(info) {
		// The path holds another version than this inode shows. ESTALE
		// makes the kernel walk the path again with revalidation: the
		// lookup gives the name a new inode, which this open then reaches.
		_ = f.Close()
		n.supersede()
		n.sys.log.Debug("open", "path", p, "result", "ESTALE", "reason", "another version than the inode's")
		return nil, 0, syscall.ESTALE
	}
	fp := fingerprint(info)
	var local *os.File
	var release func()
	reason := ""
	switch {
	case !n.sys.cfg.Passthrough:
		reason = "passthrough is off"
	default:
		lf, rel, ok := f.OpenLocal()
		if !ok {
			reason = "not fully cached on a disk tier of a worker in this process"
			break
		}
		if err := n.sys.kernelAccepts(lf); err != nil {
			rel()
			reason = err.Error()
			break
		}
		local, release = lf, rel
	}

	n.mu.Lock()
	n.setInfoLocked(info)
	keep := fp == n.lastFP
	n.lastFP = fp
	var h fs.FileHandle
	var flags uint32 = gofuse.FOPEN_NOFLUSH
	via := viaDaemon
	switch {
	case n.pt != nil:
		// The kernel reads this inode through its backing file already;
		// every open must share it.
		n.pt.refs++
		h, via = &ptHandle{n: n, b: n.pt}, viaPassthrough
		if n.pt.fp != fp {
			reason = "shares the backing file of an open handle (an older version)"
		} else {
			reason = "shares the backing file of an open handle"
		}
	case local != nil && n.daemonOpens == 0:
		n.pt = &backing{file: local, release: release, fp: fp, refs: 1}
		h, via = &ptHandle{n: n, b: n.pt}, viaPassthrough
		local = nil
	default:
		if local != nil {
			reason = "the file is open through the daemon already"
		}
		n.daemonOpens++
		rh := &readHandle{n: n, f: f}
		rh.ra = newReadAhead(f, info.Size, int64(n.sys.cfg.MaxRead), n.sys.raPool, n.sys.m.raWindows.Inc)
		h = rh
		if keep {
			flags |= gofuse.FOPEN_KEEP_CACHE
		}
	}
	n.mu.Unlock()

	if local != nil {
		release()
	}
	if via == viaPassthrough {
		_ = f.Close()
	}
	n.sys.m.opens.WithLabelValues(via).Inc()
	n.sys.log.Debug("open", "path", p, "via", via, "reason", reason, "keep_cache", flags&gofuse.FOPEN_KEEP_CACHE != 0)
	return h, flags, 0
}

// readHandle reads a file through the daemon. Safe for concurrent reads.
//
// One file's handles share one view of the writes made through this mount:
// while the node holds content being written, reads are served from it; once
// that content is uploaded (the node's version moves), the handle follows to
// the new version. Versions from outside the mount never move a handle (see
// version.go): it keeps the one it opened.
type readHandle struct {
	n *node

	mu sync.Mutex // guards f and ra when they are swapped
	f  *client.File
	ra *readAhead
}

var (
	_ fs.FileReader   = (*readHandle)(nil)
	_ fs.FileReleaser = (*readHandle)(nil)
	_ fs.FileFlusher  = (*readHandle)(nil)
	_ fs.FileFsyncer  = (*readHandle)(nil)
)

// Read serves a read from content written here, else from the read-ahead
// windows or the owners.
func (h *readHandle) Read(ctx context.Context, dest []byte, off int64) (gofuse.ReadResult, syscall.Errno) {
	if ws := h.n.localContent(); ws != nil {
		n, errno := ws.readAt(dest, off)
		if errno != 0 {
			return nil, errno
		}
		return gofuse.ReadResultData(dest[:n]), 0
	}
	f, ra := h.current()
	n, err := ra.read(uninterrupted(ctx), dest, off)
	if err != nil {
		return nil, h.n.sys.errno("read", f.Info().Path, err)
	}
	h.n.sys.m.readBytes.Add(float64(n))
	return gofuse.ReadResultData(dest[:n]), 0
}

// current returns the handle's file and read-ahead, first moving them to the
// node's version when a write made here changed it.
func (h *readHandle) current() (*client.File, *readAhead) {
	h.mu.Lock()
	defer h.mu.Unlock()
	info, written := h.n.writtenVersion()
	if !written || fingerprint(info) == fingerprint(h.f.Info()) {
		return h.f, h.ra
	}
	f, err := h.n.sys.c.OpenVersion(info)
	if err != nil {
		return h.f, h.ra // reads of the old version fail or succeed on their own
	}
	h.ra.close()
	_ = h.f.Close()
	h.f = f
	h.ra = newReadAhead(f, info.Size, int64(h.n.sys.cfg.MaxRead), h.n.sys.raPool, h.n.sys.m.raWindows.Inc)
	return h.f, h.ra
}

// Flush has nothing to write back.
func (h *readHandle) Flush(context.Context) syscall.Errno { return 0 }

// Fsync has nothing to write back.
func (h *readHandle) Fsync(context.Context, uint32) syscall.Errno { return 0 }

// Release stops the read-ahead.
func (h *readHandle) Release(context.Context) syscall.Errno {
	h.mu.Lock()
	h.ra.close()
	_ = h.f.Close()
	h.mu.Unlock()
	h.n.mu.Lock()
	h.n.daemonOpens--
	h.n.mu.Unlock()
	return 0
}

// ptHandle is a handle the kernel reads through the backing file.
type ptHandle struct {
	n *node
	b *backing
}

var (
	_ fs.FilePassthroughFder = (*ptHandle)(nil)
	_ fs.FileReader          = (*ptHandle)(nil)
	_ fs.FileReleaser        = (*ptHandle)(nil)
	_ fs.FileFlusher         = (*ptHandle)(nil)
	_ fs.FileFsyncer         = (*ptHandle)(nil)
)

// PassthroughFd hands the backing file to the kernel.
func (h *ptHandle) PassthroughFd() (int, bool) { return int(h.b.file.Fd()), true }

// Read is only called if the kernel did not take the backing file: the
// bytes are spliced from it.
func (h *ptHandle) Read(_ context.Context, dest []byte, off int64) (gofuse.ReadResult, syscall.Errno) {
	h.n.sys.m.ptFallback.Inc()
	return gofuse.ReadResultFd(h.b.file.Fd(), off, len(dest)), 0
}

// Flush has nothing to write back.
func (h *ptHandle) Flush(context.Context) syscall.Errno { return 0 }

// Fsync has nothing to write back.
func (h *ptHandle) Fsync(context.Context, uint32) syscall.Errno { return 0 }

// Release unpins the cache file when the last passthrough handle goes.
func (h *ptHandle) Release(context.Context) syscall.Errno {
	h.n.mu.Lock()
	h.b.refs--
	last := h.b.refs == 0
	if last && h.n.pt == h.b {
		h.n.pt = nil
	}
	h.n.mu.Unlock()
	if last {
		h.b.release()
	}
	return 0
}

// writeHandle is a handle on content being written: opened for writing, or
// for reading while the file is written here.
type writeHandle struct {
	n     *node
	ws    *writeState
	write bool
}

var (
	_ fs.FileReader   = (*writeHandle)(nil)
	_ fs.FileWriter   = (*writeHandle)(nil)
	_ fs.FileReleaser = (*writeHandle)(nil)
	_ fs.FileFlusher  = (*writeHandle)(nil)
	_ fs.FileFsyncer  = (*writeHandle)(nil)
)

// Read reads the content being written.
func (h *writeHandle) Read(_ context.Context, dest []byte, off int64) (gofuse.ReadResult, syscall.Errno) {
	n, errno := h.ws.readAt(dest, off)
	if errno != 0 {
		return nil, errno
	}
	return gofuse.ReadResultData(dest[:n]), 0
}

// Write writes at off.
func (h *writeHandle) Write(_ context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if err := h.ws.write(data, off); err != 0 {
		return 0, err
	}
	return uint32(len(data)), 0
}

// Flush (every close of a descriptor) uploads what was written and returns
// the upload's error.
func (h *writeHandle) Flush(context.Context) syscall.Errno {
	if !h.write {
		return 0
	}
	return h.ws.commit()
}

// Fsync uploads what was written and returns the upload's error.
func (h *writeHandle) Fsync(context.Context, uint32) syscall.Errno {
	if !h.write {
		return 0
	}
	return h.ws.commit()
}

// Release drops the handle's reference to the write state.
func (h *writeHandle) Release(context.Context) syscall.Errno {
	h.n.releaseWrite(h.ws)
	return 0
}
