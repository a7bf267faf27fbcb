package tier

import (
	"fmt"
	"os"
	"sync"
)

// FullFile returns the disk file that holds every page of the file, for FUSE
// passthrough; ok is false when no single disk file does. The file may lose pages
// to eviction after the call: use OpenFull to keep them. Safe for concurrent
// use.
func (c *Cache) FullFile(file string) (path string, ok bool) {
	if c.closed.Load() || !validFileID(file) {
		return "", false
	}
	fs := c.lookup(file)
	if fs == nil {
		return "", false
	}
	for _, t := range c.tiers {
		for _, s := range t.spaces {
			if s.disk != nil {
				if p, ok := s.disk.fullRange(file, 0, -1); ok {
					return p, true
				}
			}
		}
	}
	return "", false
}

// FullBlock is FullFile for one block (BlockSize bytes at block·BlockSize): the
// disk file returned holds every page of that block, at its own offset.
func (c *Cache) FullBlock(file string, block int64) (path string, ok bool) {
	if c.closed.Load() || !validFileID(file) || block < 0 {
		return "", false
	}
	fs := c.lookup(file)
	if fs == nil {
		return "", false
	}
	per := c.opts.BlockSize / c.opts.PageSize
	first := block * per
	if pageLen(fs.meta.Size, c.opts.PageSize, first) < 0 {
		return "", false
	}
	for _, t := range c.tiers {
		for _, s := range t.spaces {
			if s.disk != nil {
				if p, ok := s.disk.fullRange(file, first, first+per); ok {
					return p, true
				}
			}
		}
	}
	return "", false
}

// OpenFull opens the disk file holding every page of the file (as FullFile) and
// keeps all its pages on disk until the FullHandle is closed: evicting or
// deleting them meanwhile removes them from the index but punches their holes
// only after Close, so the kernel never reads a hole through passthrough.
// Errors: ErrNotCached (no single disk file holds the whole file), ErrClosed.
func (c *Cache) OpenFull(file string) (*FullHandle, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	if !validFileID(file) {
		return nil, fmt.Errorf("%w: file id %q", ErrInvalid, file)
	}
	for _, t := range c.tiers {
		for _, s := range t.spaces {
			if s.disk != nil {
				if h, err := s.disk.openFull(file); err == nil {
					return h, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("%w: %s: not fully cached in one disk file", ErrNotCached, file)
}

// FullHandle is an open cached file whose pages stay on disk until Close.
type FullHandle struct {
	f       *os.File
	release func()
	once    sync.Once
}

// File returns the open file (read-only); valid until Close.
func (h *FullHandle) File() *os.File { return h.f }

// Close closes the file and lets deferred hole punches proceed. Idempotent.
func (h *FullHandle) Close() error {
	var err error
	h.once.Do(func() {
		err = h.f.Close()
		h.release()
	})
	return err
}
