package tier

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// countersFile holds a disk directory's lifetime integrity counters, so that
// they survive restarts (the Prometheus counters start from them).
const countersFile = "COUNTERS"

// dirCounters are a directory's integrity counters over its whole life.
type dirCounters struct {
	// checksum counts pages that failed their CRC32C: on a read, in the
	// startup scrub, or in the recovery of a file being changed at a crash.
	checksum atomic.Uint64
	// truncated counts data files found shorter than their sidecar says.
	truncated atomic.Uint64

	mu    sync.Mutex // serializes saves
	saved [2]uint64  // what the file holds
}

type countersJSON struct {
	Version          int    `json:"version"`
	ChecksumFailures uint64 `json:"checksum_failures"`
	TruncatedFiles   uint64 `json:"truncated_files"`
}

// load reads the counters of root; a missing file is zero, an unreadable one
// is reported and counts as zero.
func (c *dirCounters) load(root string) error {
	b, err := os.ReadFile(filepath.Join(root, countersFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var v countersJSON
	if err := json.Unmarshal(b, &v); err != nil || v.Version != 1 {
		return fmt.Errorf("%s: not a version 1 counters file (%v)", countersFile, err)
	}
	c.checksum.Store(v.ChecksumFailures)
	c.truncated.Store(v.TruncatedFiles)
	c.saved = [2]uint64{v.ChecksumFailures, v.TruncatedFiles}
	return nil
}

// save writes the counters of root when they changed since the last save
// (through a temporary file and a rename; recovery removes a leftover).
func (c *dirCounters) save(root string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := [2]uint64{c.checksum.Load(), c.truncated.Load()}
	if now == c.saved {
		return nil
	}
	b, _ := json.Marshal(countersJSON{Version: 1, ChecksumFailures: now[0], TruncatedFiles: now[1]})
	p := filepath.Join(root, countersFile)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	c.saved = now
	return nil
}
