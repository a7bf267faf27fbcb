package fuse

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"
	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/ufs"
	"golang.org/x/sys/unix"
)

// blockSize is st_blksize: the I/O size stdio, Python and cp use for
// buffers. One max-size FUSE request.
const blockSize = 1 << 20

// node is a file or directory of the mount. Its namespace path is derived
// from its place in the tree (so renames need no bookkeeping). Safe for
// concurrent use: mu guards the fields below it and is never held across a
// network call.
type node struct {
	fs.Inode
	sys *fsys

	mu sync.Mutex
	// info describes the node. For a regular file it is one version of the
	// file (see version.go): stats of the path that find another
	// fingerprint never change it; only writes made here do.
	info   namespace.FileInfo
	infoAt time.Time
	// superseded is set once the path is known to hold another version than
	// this file node shows: the next open of the name gets a new node.
	superseded bool
	// written is set once info comes from an upload made here: handles
	// opened before it follow to that version.
	written bool
	// changedAt is when an entry of this directory was last created,
	// removed or renamed through the mount: its mtime and ctime.
	changedAt time.Time
	// unlinked is set when the file was removed through the mount while
	// the kernel still holds it (an open handle): nlink 0.
	unlinked bool
	// lastFP is the fingerprint seen by the last open: an open that sees
	// the same one keeps the kernel's page cache (KEEP_CACHE).
	lastFP string
	// daemonOpens counts handles whose I/O goes through the daemon; pt is
	// the backing file of handles the kernel reads directly. The kernel
	// refuses to mix the two on one inode, so one of them is always zero.
	daemonOpens int
	pt          *backing
	// ws is the content being written, shared by every handle open for
	// writing (and by readers opened meanwhile).
	ws *writeState
}

var (
	_ fs.NodeLookuper       = (*node)(nil)
	_ fs.NodeGetattrer      = (*node)(nil)
	_ fs.NodeSetattrer      = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeMkdirer        = (*node)(nil)
	_ fs.NodeRmdirer        = (*node)(nil)
	_ fs.NodeUnlinker       = (*node)(nil)
	_ fs.NodeRenamer        = (*node)(nil)
	_ fs.NodeLinker         = (*node)(nil)
	_ fs.NodeSymlinker      = (*node)(nil)
	_ fs.NodeMknoder        = (*node)(nil)
	_ fs.NodeStatfser       = (*node)(nil)
	_ fs.NodeAccesser       = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.NodeGetxattrer     = (*node)(nil)
	_ fs.NodeSetxattrer     = (*node)(nil)
	_ fs.NodeListxattrer    = (*node)(nil)
	_ fs.NodeRemovexattrer  = (*node)(nil)
	_ fs.NodeGetlker        = (*node)(nil)
	_ fs.NodeSetlker        = (*node)(nil)
	_ fs.NodeSetlkwer       = (*node)(nil)
)

// path is the node's namespace path; ESTALE when the node was unlinked or
// replaced.
func (n *node) path() (string, syscall.Errno) {
	var names []string
	in := &n.Inode
	for !in.IsRoot() {
		name, parent := in.Parent()
		if parent == nil {
			return "", syscall.ESTALE
		}
		names = append(names, name)
		in = parent
	}
	p := n.sys.root
	for i := len(names) - 1; i >= 0; i-- {
		p = namespace.Join(p, names[i])
	}
	return p, 0
}

func (n *node) childPath(name string) (string, syscall.Errno) {
	dir, errno := n.path()
	if errno != 0 {
		return "", errno
	}
	return namespace.Join(dir, name), 0
}

func (n *node) setInfo(fi namespace.FileInfo) {
	n.mu.Lock()
	n.setInfoLocked(fi)
	n.mu.Unlock()
}

func (n *node) setInfoLocked(fi namespace.FileInfo) {
	n.info, n.infoAt = fi, time.Now()
}

// fillAttr describes the node: from the content being written, else from
// its file info when fresher than the attribute timeout, else from a stat.
func (n *node) fillAttr(ctx context.Context, out *gofuse.Attr) syscall.Errno {
	errno := n.fillAttrOf(ctx, out)
	n.mu.Lock()
	changed, unlinked := n.changedAt, n.unlinked
	n.mu.Unlock()
	if mt := out.ModTime(); changed.After(mt) {
		out.SetTimes(nil, &changed, &changed)
	}
	if unlinked {
		out.Nlink = 0
	}
	return errno
}

func (n *node) fillAttrOf(ctx context.Context, out *gofuse.Attr) syscall.Errno {
	n.mu.Lock()
	ws := n.ws
	fi, at := n.info, n.infoAt
	n.mu.Unlock()
	if ws != nil {
		if size, mtime, ok := ws.attrs(); ok {
			fi.Size, fi.ModTime = size, mtime
			n.sys.fillAttr(out, fi, n.IsDir())
			return 0
		}
	}
	if (at.IsZero() || time.Since(at) >= n.sys.attrTTL) && !n.isSuperseded() {
		p, errno := n.path()
		if errno != 0 {
			// Unlinked while open: describe what we last knew.
			n.sys.fillAttr(out, fi, n.IsDir())
			out.Nlink = 0
			return 0
		}
		nfi, err := n.sys.c.Stat(uninterrupted(ctx), p, false)
		if err != nil {
			return n.sys.errno("getattr", p, err)
		}
		if n.adopt(nfi) {
			fi = nfi
		} else {
			// Another version: this node keeps describing its own (its
			// size matches its pages and open handles); the name is
			// looked up again, to a new node, at the next path walk.
			n.supersede()
		}
	}
	n.sys.fillAttr(out, fi, n.IsDir())
	return 0
}

// fillAttr renders file info as attributes. Permissions say what Strata
// allows: no write bits on read-only mounts and on the virtual directories
// above mounts.
func (s *fsys) fillAttr(out *gofuse.Attr, fi namespace.FileInfo, isDir bool) {
	perm := uint32(0o644)
	mode := uint32(syscall.S_IFREG)
	if isDir {
		perm, mode = 0o755, syscall.S_IFDIR
	}
	if fi.Path != "" && s.readOnly(fi.Path) {
		perm &^= 0o222
	}
	out.Mode = mode | perm
	out.Size = uint64(max(fi.Size, 0))
	out.Blocks = (out.Size + 511) / 512
	out.Blksize = blockSize
	// Directories have no subdirectory count here: nlink 1 tells find and
	// fts not to infer one (as btrfs does).
	out.Nlink = 1
	out.Owner = gofuse.Owner{Uid: s.uid, Gid: s.gid}
	mt := fi.ModTime
	if mt.IsZero() {
		mt = s.started
	}
	out.SetTimes(&mt, &mt, &mt)
}

// readOnly reports whether writes under path are refused: read-only mounts
// and virtual directories.
func (s *fsys) readOnly(path string) bool {
	m, _, err := s.c.Mounts().Resolve(path)
	return err != nil || m.ReadOnly
}

// checkWritable refuses changes at path early, before anything is staged:
// EROFS on read-only mounts and virtual directories (no mount holds them),
// EBUSY for a mount point itself.
func (s *fsys) checkWritable(path string) syscall.Errno {
	m, rel, err := s.c.Mounts().Resolve(path)
	switch {
	case errors.Is(err, namespace.ErrNoMount):
		return syscall.EROFS
	case err != nil:
		return s.errno("resolve", path, err)
	case m.ReadOnly:
		return syscall.EROFS
	case rel == "":
		return syscall.EBUSY
	}
	return 0
}

// Lookup finds a child by name.
func (n *node) Lookup(ctx context.Context, name string, out *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if errno := checkName(name); errno != 0 {
		return nil, errno
	}
	p, errno := n.childPath(name)
	if errno != 0 {
		return nil, errno
	}
	// A file being created exists only here until its first upload.
	if ch := n.GetChild(name); ch != nil {
		if cn, ok := ch.Operations().(*node); ok && cn.pending() {
			return ch, cn.fillAttr(ctx, &out.Attr)
		}
	}
	fi, err := n.sys.c.Stat(uninterrupted(ctx), p, false)
	if err != nil {
		return nil, n.sys.errno("lookup", p, err)
	}
	return n.child(ctx, name, fi, out), 0
}

// pending reports whether the node holds written content not yet uploaded.
func (n *node) pending() bool {
	n.mu.Lock()
	ws := n.ws
	n.mu.Unlock()
	return ws != nil && ws.pending()
}

// child returns the inode of a child described by fi, reusing the one the
// tree has (so its page cache and open state stay attached).
func (n *node) child(ctx context.Context, name string, fi namespace.FileInfo, out *gofuse.EntryOut) *fs.Inode {
	mode := uint32(syscall.S_IFREG)
	if fi.IsDir {
		mode = syscall.S_IFDIR
	}
	if ch := n.GetChild(name); ch != nil && ch.StableAttr().Mode == mode {
		if cn, ok := ch.Operations().(*node); ok && cn.adopt(fi) {
			_ = cn.fillAttr(ctx, &out.Attr)
			return ch
		}
		// Another version of a file: a new node (a new inode number), so
		// the kernel never applies the old version's size or pages to the
		// new bytes; handles open on the old one keep reading it.
	}
	cn := &node{sys: n.sys}
	cn.setInfo(fi)
	n.sys.fillAttr(&out.Attr, fi, fi.IsDir)
	return n.NewInode(ctx, cn, fs.StableAttr{Mode: mode})
}

// Getattr describes the node.
func (n *node) Getattr(ctx context.Context, _ fs.FileHandle, out *gofuse.AttrOut) syscall.Errno {
	return n.fillAttr(ctx, &out.Attr)
}

// Setattr changes the size (truncate). Mode and owner changes are refused
// with EPERM unless they ask for what is already shown (chmod to the mode
// shown, chown to the owner shown): the UFS keeps no modes or owners. Time
// changes are accepted and have no effect: the UFS keeps the time of the
// last write (cp -p, mv across file systems, tar and Python's copy2 set
// times, and fail on an error).
func (n *node) Setattr(ctx context.Context, fh fs.FileHandle, in *gofuse.SetAttrIn, out *gofuse.AttrOut) syscall.Errno {
	var cur gofuse.Attr
	if errno := n.fillAttr(ctx, &cur); errno != 0 {
		return errno
	}
	if mode, ok := in.GetMode(); ok && mode != cur.Mode&0o7777 {
		return syscall.EPERM
	}
	if uid, ok := in.GetUID(); ok && uid != cur.Uid {
		return syscall.EPERM
	}
	if gid, ok := in.GetGID(); ok && gid != cur.Gid {
		return syscall.EPERM
	}
	if size, ok := in.GetSize(); ok {
		if n.IsDir() {
			return syscall.EISDIR
		}
		if errno := n.truncate(ctx, fh, int64(size)); errno != 0 {
			return errno
		}
	}
	return n.fillAttr(ctx, &out.Attr)
}

// truncate sets the size of the file, through the handle's write state when
// there is one, else through a short-lived one committed at once.
func (n *node) truncate(ctx context.Context, fh fs.FileHandle, size int64) syscall.Errno {
	if h, ok := fh.(*writeHandle); ok && h.write {
		return h.ws.truncate(size)
	}
	p, errno := n.path()
	if errno != 0 {
		return errno
	}
	if errno := n.sys.checkWritable(p); errno != 0 {
		return errno
	}
	ws, errno := n.acquireWrite(false)
	if errno != 0 {
		return errno
	}
	defer n.releaseWrite(ws)
	if errno := ws.truncate(size); errno != 0 {
		return errno
	}
	return ws.commit()
}

// Open opens the file for reading or writing.
func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	p, errno := n.path()
	if errno != 0 {
		return nil, 0, errno
	}
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
		return n.openWrite(p, flags)
	}
	return n.openRead(ctx, p)
}

// openWrite opens the file for writing: O_TRUNC starts empty content
// (streamed when only written, staged when also read); otherwise the current
// content is fetched into a staging file at the first write.
func (n *node) openWrite(p string, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if errno := n.sys.checkWritable(p); errno != 0 {
		return nil, 0, errno
	}
	ws, errno := n.acquireWrite(flags&syscall.O_ACCMODE == syscall.O_RDWR)
	if errno != 0 {
		return nil, 0, errno
	}
	if flags&syscall.O_TRUNC != 0 {
		if errno := ws.truncate(0); errno != 0 {
			n.releaseWrite(ws)
			return nil, 0, errno
		}
	}
	return &writeHandle{n: n, ws: ws, write: true}, 0, 0
}

// acquireWrite returns the node's write state, creating it (content not yet
// fetched) if needed. ETXTBSY while the kernel reads the file through
// passthrough: it cannot mix those opens with others.
func (n *node) acquireWrite(rdwr bool) (*writeState, syscall.Errno) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.pt != nil {
		return nil, syscall.ETXTBSY
	}
	if n.ws == nil {
		n.ws = newWriteState(n, wsLazy, false)
	}
	if rdwr && n.ws.streaming() {
		// Its first bytes are on their way to the UFS: nothing to read.
		return nil, syscall.EBUSY
	}
	if rdwr {
		n.ws.setStaging()
	}
	n.ws.refs++
	n.daemonOpens++
	n.lastFP = ""
	return n.ws, 0
}

// releaseWrite drops a reference to ws; the last one commits what was not
// committed yet and frees the staging file.
func (n *node) releaseWrite(ws *writeState) {
	n.mu.Lock()
	ws.refs--
	n.daemonOpens--
	last := ws.refs == 0
	if last && n.ws == ws {
		n.ws = nil
	}
	n.mu.Unlock()
	if last {
		ws.finish()
	}
}

// Create creates a file and opens it for writing. Its content is kept in
// memory, then streamed to the UFS once it outgrows that (or staged on disk
// when the file is also read); it appears in the UFS when closed.
func (n *node) Create(ctx context.Context, name string, flags, _ uint32, out *gofuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if errno := checkName(name); errno != 0 {
		return nil, nil, 0, errno
	}
	p, errno := n.childPath(name)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	if errno := n.sys.checkWritable(p); errno != 0 {
		return nil, nil, 0, errno
	}
	if errno := n.sys.checkKeyLen(p, false); errno != 0 {
		return nil, nil, 0, errno
	}
	now := time.Now()
	cn := &node{sys: n.sys}
	cn.setInfo(namespace.FileInfo{Path: p, ModTime: now})
	ws := newWriteState(cn, wsHead, true)
	if flags&syscall.O_ACCMODE == syscall.O_RDWR {
		ws.setStaging()
	}
	ws.refs, cn.ws, cn.daemonOpens = 1, ws, 1
	n.sys.fillAttr(&out.Attr, cn.info, false)
	ch := n.NewInode(ctx, cn, fs.StableAttr{Mode: syscall.S_IFREG})
	n.entriesChanged()
	return ch, &writeHandle{n: cn, ws: ws, write: true}, 0, 0
}

// Mkdir creates a directory (object stores: a "dir/" marker).
func (n *node) Mkdir(ctx context.Context, name string, _ uint32, out *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if errno := checkName(name); errno != 0 {
		return nil, errno
	}
	p, errno := n.childPath(name)
	if errno != 0 {
		return nil, errno
	}
	if errno := n.sys.checkWritable(p); errno != 0 {
		return nil, errno
	}
	if errno := n.sys.checkKeyLen(p, true); errno != 0 {
		return nil, errno
	}
	if err := n.sys.c.Mkdir(uninterrupted(ctx), p); err != nil {
		return nil, n.sys.errno("mkdir", p, err)
	}
	fi := namespace.FileInfo{Path: p, IsDir: true, ModTime: time.Now()}
	n.entriesChanged()
	return n.child(ctx, name, fi, out), 0
}

// Rmdir removes an empty directory (ENOTEMPTY otherwise). A directory that
// vanished already is not an error.
func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	p, errno := n.childPath(name)
	if errno != 0 {
		return errno
	}
	if errno := n.sys.checkWritable(p); errno != 0 {
		return errno
	}
	err := n.sys.c.Remove(uninterrupted(ctx), p, false)
	if errors.Is(err, ufs.ErrNotFound) {
		// Object stores drop a directory with its last child: it is gone,
		// which is what rmdir wanted (rm -r relies on it).
		err = nil
	}
	if err != nil {
		return n.sys.errno("rmdir", p, err)
	}
	n.entriesChanged()
	return 0
}

// Unlink removes a file. Content still being written to it is discarded.
func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	p, errno := n.childPath(name)
	if errno != 0 {
		return errno
	}
	if errno := n.sys.checkWritable(p); errno != 0 {
		return errno
	}
	hadLocal := false
	var cn *node
	if ch := n.GetChild(name); ch != nil {
		cn, _ = ch.Operations().(*node)
		if cn != nil {
			cn.mu.Lock()
			if ws := cn.ws; ws != nil {
				hadLocal = ws.discard()
			}
			cn.mu.Unlock()
		}
	}
	err := n.sys.c.Remove(uninterrupted(ctx), p, false)
	if err != nil && !(hadLocal && errors.Is(err, ufs.ErrNotFound)) {
		return n.sys.errno("unlink", p, err)
	}
	if cn != nil {
		cn.mu.Lock()
		cn.unlinked = true
		cn.mu.Unlock()
	}
	n.entriesChanged()
	return 0
}

// Rename moves a file within one mount (object stores copy and delete).
// Directories cannot be renamed (EXDEV: mv then copies and deletes them),
// nor files across mounts (EXDEV). RENAME_NOREPLACE is checked with a stat
// (not atomic); RENAME_EXCHANGE and RENAME_WHITEOUT are EINVAL.
func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	src, errno := n.childPath(name)
	if errno != 0 {
		return errno
	}
	dst, errno := np.childPath(newName)
	if errno != 0 {
		return errno
	}
	if flags&^uint32(unix.RENAME_NOREPLACE) != 0 {
		return syscall.EINVAL
	}
	if errno := checkName(newName); errno != 0 {
		return errno
	}
	for _, p := range []string{src, dst} {
		if errno := n.sys.checkWritable(p); errno != 0 {
			return errno
		}
	}
	if errno := n.sys.checkKeyLen(dst, false); errno != 0 {
		return errno
	}
	sm, _, _ := n.sys.c.Mounts().Resolve(src)
	dm, _, _ := n.sys.c.Mounts().Resolve(dst)
	if sm.ID != dm.ID {
		return syscall.EXDEV
	}
	ch := n.GetChild(name)
	isDir := false
	if ch != nil {
		isDir = ch.IsDir()
	} else {
		fi, err := n.sys.c.Stat(uninterrupted(ctx), src, false)
		if err != nil {
			return n.sys.errno("rename", src, err)
		}
		isDir = fi.IsDir
	}
	if isDir {
		return syscall.EXDEV
	}
	if flags&unix.RENAME_NOREPLACE != 0 {
		if _, err := n.sys.c.Stat(uninterrupted(ctx), dst, true); err == nil {
			return syscall.EEXIST
		} else if !errors.Is(err, ufs.ErrNotFound) {
			return n.sys.errno("rename", dst, err)
		}
	}
	// Content written but not yet uploaded must be in the UFS to move.
	if ch != nil {
		if cn, ok := ch.Operations().(*node); ok {
			cn.mu.Lock()
			ws := cn.ws
			cn.mu.Unlock()
			if ws != nil {
				if errno := ws.commit(); errno != 0 {
					return errno
				}
			}
		}
	}
	if err := n.sys.c.Rename(uninterrupted(ctx), src, dst); err != nil {
		return n.sys.errno("rename", src, err)
	}
	if ch != nil {
		if cn, ok := ch.Operations().(*node); ok {
			cn.mu.Lock()
			cn.info.Path, cn.infoAt = dst, time.Time{}
			cn.mu.Unlock()
		}
	}
	n.entriesChanged()
	if np != n {
		np.entriesChanged()
	}
	return 0
}

// Link refuses hard links: the UFS has none.
func (n *node) Link(context.Context, fs.InodeEmbedder, string, *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.ENOTSUP
}

// Symlink refuses symbolic links: the UFS interface has none.
func (n *node) Symlink(context.Context, string, string, *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.ENOTSUP
}

// Mknod refuses device files, FIFOs and sockets.
func (n *node) Mknod(context.Context, string, uint32, uint32, *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.ENOTSUP
}

// Statfs reports a large, mostly free file system: the UFS has no fixed
// capacity, and tools refuse to write to a "full" one.
func (n *node) Statfs(_ context.Context, out *gofuse.StatfsOut) syscall.Errno {
	const blocks = 1 << 38 // 1 PiB in 4KiB blocks
	*out = gofuse.StatfsOut{
		Blocks: blocks, Bfree: blocks, Bavail: blocks,
		Files: 1 << 32, Ffree: 1 << 32,
		Bsize: 4096, Frsize: 4096, NameLen: maxNameLen,
	}
	return 0
}

// Access answers access(2) from the attributes Strata shows: W_OK fails
// with EROFS on read-only mounts and virtual directories.
func (n *node) Access(_ context.Context, mask uint32) syscall.Errno {
	if mask&unix.W_OK == 0 {
		return 0
	}
	p, errno := n.path()
	if errno != 0 {
		return errno
	}
	if n.sys.readOnly(p) {
		return syscall.EROFS
	}
	return 0
}

// Getxattr (only with fuse.xattrs on): there are no extended attributes.
func (n *node) Getxattr(context.Context, string, []byte) (uint32, syscall.Errno) {
	return 0, syscall.ENODATA
}

// Listxattr (only with fuse.xattrs on): the list is empty.
func (n *node) Listxattr(context.Context, []byte) (uint32, syscall.Errno) { return 0, 0 }

// Setxattr (only with fuse.xattrs on): the UFS cannot store them.
func (n *node) Setxattr(context.Context, string, []byte, uint32) syscall.Errno {
	return syscall.ENOTSUP
}

// Removexattr (only with fuse.xattrs on): there is nothing to remove.
func (n *node) Removexattr(context.Context, string) syscall.Errno { return syscall.ENODATA }

// Getlk, Setlk and Setlkw refuse locks (ENOLCK) unless fuse.local_locks
// lets the kernel grant host-local locks itself (then they are not called):
// a lock here would not exclude other hosts mounting the same data.
func (n *node) Getlk(context.Context, fs.FileHandle, uint64, *gofuse.FileLock, uint32, *gofuse.FileLock) syscall.Errno {
	return syscall.ENOLCK
}

// Setlk: see Getlk.
func (n *node) Setlk(context.Context, fs.FileHandle, uint64, *gofuse.FileLock, uint32) syscall.Errno {
	return syscall.ENOLCK
}

// Setlkw: see Getlk.
func (n *node) Setlkw(context.Context, fs.FileHandle, uint64, *gofuse.FileLock, uint32) syscall.Errno {
	return syscall.ENOLCK
}
