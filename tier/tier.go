// Package tier is the worker's tiered page store: memory, then disk tiers (SSD,
// HDD), each with its own eviction policy, pages demoted down the tiers when
// evicted and promoted up when hit, pinned and TTL-bound files, CRC32C per page
// and crash-safe disk layout (one sparse file per cached file, see
// docs/tier-layout.md).
//
// The entry point is Cache (New). Store is one medium (MemStore, DiskStore);
// Policy orders the pages of one store for eviction (NewLRU, NewLRFU).
package tier

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Sentinel errors. Returned errors wrap them (test with errors.Is).
var (
	// ErrNotCached: the page is not in the cache (or was dropped because its
	// checksum failed; then ErrChecksum is wrapped as well).
	ErrNotCached = errors.New("tier: not cached")
	// ErrNoSpace: no tier (or store) can take the page: full of pinned pages,
	// too small, or every directory unhealthy.
	ErrNoSpace = errors.New("tier: no space")
	// ErrClosed: the cache or store was closed.
	ErrClosed = errors.New("tier: closed")
	// ErrInvalid: a malformed key, meta or page (bad file id, negative index,
	// data length not matching the file size).
	ErrInvalid = errors.New("tier: invalid argument")
	// ErrChecksum: a page failed its CRC32C check and was dropped. Always
	// wrapped together with ErrNotCached.
	ErrChecksum = errors.New("tier: checksum mismatch")
	// ErrUnhealthy: a disk directory failed a write (ENOSPC, EIO, read-only...)
	// and is skipped for a while. Wrapped together with ErrNoSpace.
	ErrUnhealthy = errors.New("tier: directory unhealthy")
)

// Defaults for Options.
const (
	DefaultPageSize  = 1 << 20
	DefaultBlockSize = 64 << 20
)

// castagnoli is the CRC32C table (read-only after init, like a constant).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// PageKey names one cached page.
type PageKey struct {
	File  string // cache-file id: lowercase hex, 16..64 chars; one id per (mount, UFS path, fingerprint)
	Index int64  // page number: offset / page size
}

// String renders the key as file/index.
func (k PageKey) String() string { return fmt.Sprintf("%s/%d", k.File, k.Index) }

// FileMeta travels with Put so the cache can free, pin and report by namespace
// path, and knows the file's size (so the last page may be short and "fully
// cached" can be decided).
type FileMeta struct {
	// Path is the file's namespace path ("/mnt/data/x.bin"); Pin and FreePath
	// match it by prefix.
	Path string
	// Size is the file's size in bytes; the same for every page of a file id.
	Size int64
	// TTL, when positive, frees the file's pages that long after the file was
	// first cached (the first Put of a file decides; later Puts do not move it).
	TTL time.Duration
	// Expires, when non-zero, is the absolute time the file's pages are freed;
	// it takes precedence over TTL. Stores persist it; the Cache fills it from
	// TTL.
	Expires time.Time
}

// expiry returns the absolute expiry of a file first cached at now.
func (m FileMeta) expiry(now time.Time) time.Time {
	if !m.Expires.IsZero() || m.TTL <= 0 {
		return m.Expires
	}
	return now.Add(m.TTL)
}

// Handle gives read access to one page until Close. Bytes must not be modified
// and must not be used after Close. Close is idempotent; a Handle is not meant to
// be shared between goroutines that race on Close.
type Handle interface {
	// Bytes returns the page; its length is the page length (the last page of a
	// file may be short).
	Bytes() []byte
	// Close releases the page.
	Close() error
}

// Usage is a snapshot of a store's accounting.
type Usage struct {
	// Capacity is the byte budget; Used counts page bytes plus overhead (index
	// for memory, file-system blocks and sidecars for disk), including pages
	// removed but not yet freed because a reader still holds them.
	Capacity, Used int64
	// Pages and Files currently cached (removed pages excluded).
	Pages, Files int64
}

// Free is Capacity - Used, or 0.
func (u Usage) Free() int64 { return max(0, u.Capacity-u.Used) }

// Store is one medium: memory, or one directory of a disk tier. Implementations
// are safe for concurrent use. A Store does no eviction: Put fails with
// ErrNoSpace when the page does not fit, and the Cache evicts.
type Store interface {
	// Get returns the page, pinned until the Handle is closed; ErrNotCached
	// (also with ErrChecksum when the page was dropped for a bad CRC), ErrClosed.
	Get(ctx context.Context, key PageKey) (Handle, error)
	// Put stores a copy of data; storing a page already present is a no-op.
	// ErrNoSpace (also with ErrUnhealthy for a failing directory), ErrInvalid,
	// ErrClosed.
	Put(ctx context.Context, key PageKey, meta FileMeta, data []byte) error
	// Delete removes the page; its bytes are freed when the last Handle on it is
	// closed. ErrNotCached when absent, ErrClosed.
	Delete(key PageKey) error
	// Usage reports the accounting.
	Usage() Usage
}

// Options are the process-level settings of a Cache.
type Options struct {
	// PageSize is the unit of caching, eviction and checksums: a power of two,
	// at least 4 KiB. 0 means DefaultPageSize.
	PageSize int64
	// BlockSize is the placement unit of the cluster (a multiple of PageSize);
	// FullBlock reports fully cached blocks. 0 means DefaultBlockSize.
	BlockSize int64
	// Logger receives the cache's logs; nil means slog.Default().
	Logger *slog.Logger
	// Registerer receives the Prometheus metrics; nil means none are registered.
	Registerer prometheus.Registerer
	// Now is the clock for TTLs and pins; nil means time.Now.
	Now func() time.Time
}

// withDefaults fills in the zero fields.
func (o Options) withDefaults() Options {
	if o.PageSize == 0 {
		o.PageSize = DefaultPageSize
	}
	if o.BlockSize == 0 {
		o.BlockSize = max(DefaultBlockSize, o.PageSize)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// validate reports bad page and block sizes.
func (o Options) validate() error {
	var errs []error
	if o.PageSize < 4096 || o.PageSize&(o.PageSize-1) != 0 || o.PageSize > 1<<30 {
		errs = append(errs, fmt.Errorf("%w: page size %d must be a power of two between 4KiB and 1GiB", ErrInvalid, o.PageSize))
	}
	if o.BlockSize < o.PageSize || o.BlockSize%o.PageSize != 0 {
		errs = append(errs, fmt.Errorf("%w: block size %d must be a positive multiple of the page size %d", ErrInvalid, o.BlockSize, o.PageSize))
	}
	return errors.Join(errs...)
}

// validFileID reports whether s is lowercase hex of 16..64 characters (file ids
// become file names on disk, so nothing else is accepted).
func validFileID(s string) bool {
	if len(s) < 16 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func checkKey(key PageKey) error {
	if !validFileID(key.File) {
		return fmt.Errorf("%w: file id %q is not 16..64 lowercase hex characters", ErrInvalid, key.File)
	}
	if key.Index < 0 {
		return fmt.Errorf("%w: page index %d is negative", ErrInvalid, key.Index)
	}
	return nil
}

// pageLen is the length of page index of a file of the given size, or -1 when the
// page lies beyond the end of the file.
func pageLen(size, pageSize, index int64) int64 {
	off := index * pageSize
	if index < 0 || off >= size || off/pageSize != index {
		return -1
	}
	return min(pageSize, size-off)
}

// checkPut validates a Put's arguments against the page size.
func checkPut(key PageKey, meta FileMeta, n int, pageSize int64) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if meta.Size <= 0 {
		return fmt.Errorf("%w: %s: file size %d must be positive", ErrInvalid, key, meta.Size)
	}
	if err := checkPath(meta.Path); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	if want := pageLen(meta.Size, pageSize, key.Index); want != int64(n) {
		if want < 0 {
			return fmt.Errorf("%w: %s: page beyond the end of a %d-byte file", ErrInvalid, key, meta.Size)
		}
		return fmt.Errorf("%w: %s: page of %d bytes, want %d", ErrInvalid, key, n, want)
	}
	return nil
}

// checkPath accepts clean absolute slash paths ("/", "/a/b").
func checkPath(p string) error {
	if !strings.HasPrefix(p, "/") || (len(p) > 1 && strings.HasSuffix(p, "/")) ||
		strings.Contains(p, "//") || strings.Contains(p, "\x00") {
		return fmt.Errorf("%w: path %q must be absolute, without // or a trailing /", ErrInvalid, p)
	}
	return nil
}

// fileHash is FNV-1a over a file id: stable across runs (disk directory
// choice) and cheap (shard choice).
func fileHash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// mix64 is a finalizer that spreads the bits of h (splitmix64).
func mix64(h uint64) uint64 {
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// shardCount is the number of index shards of every store and of the file table.
const shardCount = 64

func shardOf(file string) int { return int(mix64(fileHash(file)) % shardCount) }

func crc32Update(c uint32, b []byte) uint32 { return crc32.Update(c, castagnoli, b) }
