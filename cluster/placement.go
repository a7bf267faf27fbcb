package cluster

import (
	"path"
	"strconv"
)

// MetaKey is the placement key of the listing of directory rel of a mount:
// its owner on the Ring caches it. The client, the workers and the
// coordinator's load jobs all place metadata with it and StatKey.
func MetaKey(mountID, rel string) string { return "m\x00" + mountID + "\x00" + rel }

// StatKey is the placement key of the stat of path rel of a mount: its
// parent directory's MetaKey, so the worker that caches a directory's listing
// also answers the stats of its children (from that listing, or by listing a
// small directory once instead of stat'ing each child). The mount's root has
// no parent and is placed by its own MetaKey.
func StatKey(mountID, rel string) string {
	if rel == "" {
		return MetaKey(mountID, "")
	}
	return MetaKey(mountID, path.Dir("/" + rel)[1:])
}

// BlockKey is the placement key of block i (BlockSize bytes at i·BlockSize)
// of file rel of a mount: its first owners on the Ring cache the block, and
// `strata load` sends the block's load task to the same owners.
func BlockKey(mountID, rel string, i int64) string {
	return "b\x00" + mountID + "\x00" + rel + "\x00" + strconv.FormatInt(i, 10)
}
