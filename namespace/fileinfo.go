package namespace

import (
	"time"

	"github.com/stratafs/strata/ufs"
)

// FileInfo describes an entry of the unified namespace.
type FileInfo struct {
	// Path is the clean absolute namespace path.
	Path    string
	Size    int64
	ModTime time.Time
	IsDir   bool
	// ETag is the UFS version tag (empty for directories).
	ETag string
	// MountPoint is true for the root directory of a mount.
	MountPoint bool
	// Virtual is true for directories that exist only because mounts lie
	// below them (such as "/" or "/datasets" above "/datasets/mnist").
	Virtual bool
}

// Name is the last element of Path.
func (fi FileInfo) Name() string { return Base(fi.Path) }

// FromUFS converts a UFS entry of the mount at mountPath.
func FromUFS(mountPath string, fi ufs.FileInfo) FileInfo {
	p := mountPath
	if fi.Path != "" {
		p = Join(mountPath, fi.Path)
	}
	return FileInfo{Path: p, Size: fi.Size, ModTime: fi.ModTime, IsDir: fi.IsDir, ETag: fi.ETag, MountPoint: fi.Path == ""}
}

// UFS converts back to the UFS form relative to the mount root rel.
func (fi FileInfo) UFS(rel string) ufs.FileInfo {
	return ufs.FileInfo{Path: rel, Size: fi.Size, ModTime: fi.ModTime, IsDir: fi.IsDir, ETag: fi.ETag}
}
