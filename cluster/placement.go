package cluster

import "strconv"

// MetaKey is the placement key of the metadata (stat, and listing when it is
// a directory) of path rel of a mount: its owner on the Ring caches it. The
// client, the workers and the coordinator's load jobs all place metadata with
// it.
func MetaKey(mountID, rel string) string { return "m\x00" + mountID + "\x00" + rel }

// BlockKey is the placement key of block i (BlockSize bytes at i·BlockSize)
// of file rel of a mount: its first owners on the Ring cache the block, and
// `strata load` sends the block's load task to the same owners.
func BlockKey(mountID, rel string, i int64) string {
	return "b\x00" + mountID + "\x00" + rel + "\x00" + strconv.FormatInt(i, 10)
}
