package hdfsapi

import (
	"errors"
	"hash/fnv"

	"github.com/stratafs/strata/namespace"
)

// Owner and Group are what FileStatus shows for every path: Strata keeps no
// owners of its own (the under-storage's access control applies, through
// the mount's credentials).
const (
	Owner = "strata"
	Group = "strata"
)

// rootInodeID is Hadoop's inode id of "/"; fileId of other paths lies above.
const rootInodeID = 16385

// fileStatus is Hadoop's FileStatus JSON object, its fields in Hadoop's
// (alphabetical) order.
type fileStatus struct {
	AccessTime       int64  `json:"accessTime"`
	BlockSize        int64  `json:"blockSize"`
	ChildrenNum      int    `json:"childrenNum"`
	FileID           int64  `json:"fileId"`
	Group            string `json:"group"`
	Length           int64  `json:"length"`
	ModificationTime int64  `json:"modificationTime"`
	Owner            string `json:"owner"`
	PathSuffix       string `json:"pathSuffix"`
	Permission       string `json:"permission"`
	Replication      int    `json:"replication"`
	StoragePolicy    int    `json:"storagePolicy"`
	Type             string `json:"type"`
}

// fileID is a stable number for a namespace path: rootInodeID for "/",
// else a 52-bit FNV-1a hash of the path above it (exact in a JSON double).
// It is not an inode number: a renamed file gets another one.
func fileID(p string) int64 {
	if p == "/" {
		return rootInodeID
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(p))
	return rootInodeID + 1 + int64(h.Sum64()&(1<<52-1))
}

// status describes fi as Hadoop does. suffix is pathSuffix: "" for the
// path a request named, the entry's name in a listing.
//
//   - type FILE or DIRECTORY; length, modificationTime (ms) from the UFS;
//     accessTime = modificationTime for files (Strata keeps no access
//     times), 0 for directories, as HDFS;
//   - blockSize: Strata's placement block (worker.block_size) for files,
//     0 for directories; replication: the mount's replicas (at least 1) for
//     files, 0 for directories;
//   - permission 644 / 755, or 444 / 555 in a read-only mount and for the
//     virtual directories above mounts; owner and group "strata";
//   - childrenNum 0 (counting would cost a listing per directory),
//     storagePolicy 0 (unspecified), fileId from fileID.
func (s *Server) status(fi namespace.FileInfo, suffix string) fileStatus {
	st := fileStatus{
		FileID:     fileID(fi.Path),
		Group:      Group,
		Owner:      Owner,
		PathSuffix: suffix,
	}
	if !fi.ModTime.IsZero() {
		st.ModificationTime = fi.ModTime.UnixMilli()
	}
	readOnly, replicas := true, 1
	if m, _, err := s.c.Mounts().Resolve(fi.Path); err == nil {
		readOnly = m.ReadOnly
		replicas = max(m.Replicas, 1)
	} else if !errors.Is(err, namespace.ErrNoMount) {
		readOnly = false
	}
	if fi.IsDir {
		st.Type = "DIRECTORY"
		st.Permission = "755"
		if readOnly {
			st.Permission = "555"
		}
		return st
	}
	st.Type = "FILE"
	st.Length = fi.Size
	st.AccessTime = st.ModificationTime
	st.BlockSize = s.blockSize
	st.Replication = replicas
	st.Permission = "644"
	if readOnly {
		st.Permission = "444"
	}
	return st
}

// permissionOf is the permission status shows for fi.
func (s *Server) permissionOf(fi namespace.FileInfo) string { return s.status(fi, "").Permission }
