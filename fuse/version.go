package fuse

import (
	"syscall"
	"time"

	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/ufs"
)

// One node per version of a file: a regular file's node shows exactly one
// version (one fingerprint) of its content for its whole life, except for
// writes made through this mount, which every handle sees at once. When a
// lookup, a getattr or an open finds that the path holds another version, the
// name gets a new node with a new inode number. So the size the kernel holds
// for an inode and the pages in its cache always belong to the version that
// the inode's reads return, KEEP_CACHE and passthrough backing files never
// cross a fingerprint, and a handle keeps reading the version it opened
// (or gets ESTALE when no copy of it is left), never a mix.

// adopt reports whether fi describes the version n shows, and refreshes n's
// info with it if so. Directories and files being written here always adopt.
func (n *node) adopt(fi namespace.FileInfo) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.IsDir() && !fi.IsDir && n.ws == nil && n.hasVersion() && fingerprint(n.info) != fingerprint(fi) {
		return false
	}
	n.setInfoLocked(fi)
	return true
}

// hasVersion reports whether n's info names a version of the content.
// Under n.mu.
func (n *node) hasVersion() bool {
	return n.info.ETag != "" || !n.info.ModTime.IsZero() || n.info.Size > 0
}

// isSuperseded reports whether the path is known to hold another version.
func (n *node) isSuperseded() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.superseded
}

// supersede marks n as showing an old version and has the kernel look its
// name up again (asynchronously: the kernel takes the parent directory's
// lock to drop the entry, which a request in flight may hold).
func (n *node) supersede() {
	n.mu.Lock()
	already := n.superseded
	n.superseded = true
	n.infoAt = time.Now()
	n.mu.Unlock()
	if already {
		return
	}
	n.sys.m.versions.Inc()
	name, parent := n.Parent()
	if parent == nil {
		return
	}
	n.sys.wg.Add(1)
	go func() {
		defer n.sys.wg.Done()
		if errno := parent.NotifyEntry(name); errno != 0 && errno != syscall.ENOENT {
			n.sys.log.Debug("invalidate entry", "name", name, "errno", errno)
		}
	}()
}

// localContent returns the content being written here when readers can be
// served from it (in memory or staged), nil otherwise.
func (n *node) localContent() *writeState {
	n.mu.Lock()
	ws := n.ws
	n.mu.Unlock()
	if ws != nil && ws.readable() {
		return ws
	}
	return nil
}

// writtenVersion returns the node's version when a write made here set it
// (the last upload), so handles opened before it can follow.
func (n *node) writtenVersion() (namespace.FileInfo, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.info, n.written
}

// entriesChanged records that an entry of directory n was created, removed
// or renamed through the mount: its mtime and ctime move (object stores keep
// no directory times).
func (n *node) entriesChanged() {
	n.mu.Lock()
	n.changedAt = time.Now()
	n.mu.Unlock()
}

// checkName refuses a name longer than NAME_MAX with ENAMETOOLONG, before
// anything is created: the kernel does not check it for FUSE, and an
// under-storage would refuse it only at the upload, after close.
func checkName(name string) syscall.Errno {
	if len(name) > maxNameLen {
		return syscall.ENAMETOOLONG
	}
	return 0
}

// maxNameLen is NAME_MAX, as statfs reports it.
const maxNameLen = 255

// maxObjectKeyLen is the longest object key S3, GCS and Azure Blob accept,
// in bytes.
const maxObjectKeyLen = 1024

// checkKeyLen refuses, with ENAMETOOLONG before anything is created, a path
// whose object key (the mount's prefix, the path below the mount, and the
// "/" of a directory marker when dir) would exceed what an object store
// accepts: the store itself would refuse it only at the upload.
func (s *fsys) checkKeyLen(p string, dir bool) syscall.Errno {
	m, rel, err := s.c.Mounts().Resolve(p)
	if err != nil {
		return 0 // checkWritable reports it
	}
	loc, err := ufs.ParseURI(m.URI)
	if err != nil {
		return 0
	}
	switch loc.Scheme {
	case "s3", "gs", "azblob":
	default:
		return 0
	}
	n := len(rel)
	if loc.Prefix != "" {
		n += len(loc.Prefix) + 1
	}
	if dir {
		n++
	}
	if n > maxObjectKeyLen {
		return syscall.ENAMETOOLONG
	}
	return 0
}
