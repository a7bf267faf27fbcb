package worker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/stratafs/strata/ufs"
	bolt "go.etcd.io/bbolt"
)

// metaLayoutDir is the directory the metadata store owns inside the first
// directory of the worker's first disk tier (beside the tier's
// strata-pages-v1).
const metaLayoutDir = "strata-meta-v1"

// metaDBFile is the bbolt file of the metadata store.
const metaDBFile = "meta.db"

// metaFlushEvery is how long an entry cached by a read waits before it is
// written (with others, in one transaction). Entries stored by a load job or
// dropped by an invalidation are written before the RPC answers.
const metaFlushEvery = 100 * time.Millisecond

// metaFlushBatch starts a write early when this many changes wait.
const metaFlushBatch = 4096

// Record kinds: the first byte of a key and the second of a value.
const (
	recStat = 's'
	recList = 'l'
)

// recVersion is the version byte of every record.
const recVersion = 1

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errBadRecord marks a stored record that does not decode (torn, corrupt, or
// of an unknown version); it is dropped.
var errBadRecord = errors.New("worker: bad metadata record")

// metaStore keeps the worker's metadata cache on disk: one bbolt file with a
// bucket per mount id, holding a record per cached stat ('s' + path) and
// listing ('l' + path), each with its expiry (and a listing with its age) and
// a CRC32C. It mirrors the in-memory cache: every entry added is written,
// every entry dropped (evicted, invalidated, replaced by "not found") is
// deleted, so a restarted worker gets back exactly what it held, expired or
// not. Writes are batched by a background goroutine (Close stops and waits
// for it); sync waits until what was queued before it is durable. Safe for
// concurrent use.
type metaStore struct {
	db   *bolt.DB
	path string
	log  *slog.Logger

	mu      sync.Mutex
	cond    *sync.Cond
	pending map[string]map[string][]byte // mount id -> key -> record (nil: delete)
	npend   int
	queued  uint64 // changes queued so far
	written uint64 // changes whose write transaction ended (committed or failed)
	closed  bool
	lastErr error

	kick      chan struct{}
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once

	// writeErrors counts failed write transactions (the changes are lost;
	// the in-memory cache keeps them).
	writeErrors func()
}

// openMetaStore opens (creating it if needed) the metadata store in dir. A
// file that bbolt cannot open as a database is moved aside (renamed
// *.corrupt-<time>) and a new one created: the store is a cache, and the
// worker reads what it lacks from the UFS. A file locked by another process
// is an error.
func openMetaStore(dir string, log *slog.Logger) (*metaStore, error) {
	root := filepath.Join(dir, metaLayoutDir)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("worker: metadata store: %w", err)
	}
	p := filepath.Join(root, metaDBFile)
	opts := &bolt.Options{Timeout: 2 * time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType}
	db, err := bolt.Open(p, 0o644, opts)
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("worker: metadata store %s is in use by another process: %w", p, err)
	}
	if err != nil {
		aside := fmt.Sprintf("%s.corrupt-%d", p, time.Now().Unix())
		log.Warn("metadata store does not open; moved aside, starting empty", "path", p, "moved_to", aside, "err", err)
		if rerr := os.Rename(p, aside); rerr != nil {
			return nil, fmt.Errorf("worker: metadata store %s: %w (and moving it aside failed: %v)", p, err, rerr)
		}
		if db, err = bolt.Open(p, 0o644, opts); err != nil {
			return nil, fmt.Errorf("worker: metadata store %s: %w", p, err)
		}
	}
	s := &metaStore{db: db, path: p, log: log, pending: map[string]map[string][]byte{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), writeErrors: func() {}}
	s.cond = sync.NewCond(&s.mu)
	s.wg.Add(1)
	go s.loop()
	return s, nil
}

// put queues the record of a key of a mount.
func (s *metaStore) put(mountID, key string, rec []byte) { s.queue(mountID, key, rec) }

// del queues the removal of a key of a mount.
func (s *metaStore) del(mountID, key string) { s.queue(mountID, key, nil) }

func (s *metaStore) queue(mountID, key string, rec []byte) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	m := s.pending[mountID]
	if m == nil {
		m = map[string][]byte{}
		s.pending[mountID] = m
	}
	m[key] = rec
	s.npend++
	s.queued++
	full := s.npend >= metaFlushBatch
	s.mu.Unlock()
	if full {
		s.poke()
	}
}

func (s *metaStore) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// sync waits until every change queued before the call is written, and
// returns the error of the last write that failed meanwhile, if any.
func (s *metaStore) sync() error {
	s.mu.Lock()
	target := s.queued
	s.mu.Unlock()
	s.poke()
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.written < target && !s.closed {
		s.cond.Wait()
	}
	err := s.lastErr
	s.lastErr = nil
	return err
}

func (s *metaStore) loop() {
	defer s.wg.Done()
	t := time.NewTicker(metaFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			s.flush()
			return
		case <-s.kick:
		case <-t.C:
		}
		s.flush()
	}
}

// flush writes what is queued in one transaction.
func (s *metaStore) flush() {
	s.mu.Lock()
	if s.npend == 0 {
		s.mu.Unlock()
		return
	}
	batch, target := s.pending, s.queued
	s.pending, s.npend = map[string]map[string][]byte{}, 0
	s.mu.Unlock()
	err := s.db.Update(func(tx *bolt.Tx) error {
		for mount, recs := range batch {
			b := tx.Bucket([]byte(mount))
			for k, rec := range recs {
				if rec == nil {
					if b != nil {
						if err := b.Delete([]byte(k)); err != nil {
							return err
						}
					}
					continue
				}
				if b == nil {
					var err error
					if b, err = tx.CreateBucketIfNotExists([]byte(mount)); err != nil {
						return err
					}
				}
				if err := b.Put([]byte(k), rec); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		s.writeErrors()
		s.log.Warn("metadata store write failed; the entries stay cached in memory only", "path", s.path, "err", err)
	}
	s.mu.Lock()
	s.written = max(s.written, target)
	if err != nil {
		s.lastErr = err
	}
	s.cond.Broadcast()
	s.mu.Unlock()
}

// dropMounts deletes the buckets of mounts for which keep is false.
func (s *metaStore) dropMounts(keep func(mountID string) bool) {
	var gone []string
	_ = s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			if !keep(string(name)) {
				gone = append(gone, string(name))
			}
			return nil
		})
	})
	if len(gone) == 0 {
		return
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, m := range gone {
			if err := tx.DeleteBucket([]byte(m)); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.log.Warn("drop the cached metadata of removed mounts", "mounts", gone, "err", err)
		return
	}
	s.log.Info("dropped the cached metadata of removed mounts", "mounts", len(gone))
}

// restoreStats counts what load found.
type restoreStats struct{ stats, lists, bad int }

// load calls fn for every stored record of the mounts keep accepts (the
// others are deleted), and deletes records that do not decode. A panic of
// bbolt on a corrupt page is returned as an error.
func (s *metaStore) load(keep func(mountID string) bool, fn func(mountID string, kind byte, path string, rec []byte) error) (st restoreStats, err error) {
	s.dropMounts(keep)
	bad := map[string][]string{}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("worker: metadata store %s is corrupt: %v", s.path, r)
		}
	}()
	err = s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			mount := string(name)
			return b.ForEach(func(k, v []byte) error {
				if len(k) < 1 || (k[0] != recStat && k[0] != recList) {
					bad[mount] = append(bad[mount], string(k))
					return nil
				}
				if err := fn(mount, k[0], string(k[1:]), v); err != nil {
					bad[mount] = append(bad[mount], string(k))
					return nil
				}
				if k[0] == recStat {
					st.stats++
				} else {
					st.lists++
				}
				return nil
			})
		})
	})
	for mount, keys := range bad {
		st.bad += len(keys)
		for _, k := range keys {
			s.del(mount, k)
		}
	}
	return st, err
}

// Close writes what is queued, stops the writer and closes the file. Later
// changes are dropped. Idempotent.
func (s *metaStore) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stop)
		s.wg.Wait()
		s.mu.Lock()
		s.closed = true
		s.cond.Broadcast()
		s.mu.Unlock()
		err = s.db.Close()
	})
	return err
}

// storeKey is the bbolt key of a record.
func storeKey(kind byte, path string) string { return string(kind) + path }

// Record layout (little endian, varints as encoding/binary):
//
//	version byte, kind byte, expires (varint Unix ns; 0: none),
//	stat:    file info
//	listing: listed (varint Unix ns), entry count (uvarint), file infos
//	CRC32C (Castagnoli) of everything before, 4 bytes
//
// A file info is: flags byte (1 dir, 2 zero mtime, 4 path relative to the
// listing's directory), size (varint), mtime (varint Unix ns), path and ETag
// (uvarint length + bytes each).
const (
	fiDir     = 1
	fiZeroMod = 2
	fiRel     = 4
)

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(b, 0)
	}
	return binary.AppendVarint(b, t.UnixNano())
}

func appendFileInfo(b []byte, fi ufs.FileInfo, dir string, inListing bool) []byte {
	var flags byte
	if fi.IsDir {
		flags |= fiDir
	}
	if fi.ModTime.IsZero() {
		flags |= fiZeroMod
	}
	p := fi.Path
	if inListing {
		prefix := dir + "/"
		if dir == "" {
			prefix = ""
		}
		if rest, ok := strings.CutPrefix(p, prefix); ok && rest != "" {
			flags |= fiRel
			p = rest
		}
	}
	b = append(b, flags)
	b = binary.AppendVarint(b, fi.Size)
	if fi.ModTime.IsZero() {
		b = binary.AppendVarint(b, 0)
	} else {
		b = binary.AppendVarint(b, fi.ModTime.UnixNano())
	}
	b = binary.AppendUvarint(b, uint64(len(p)))
	b = append(b, p...)
	b = binary.AppendUvarint(b, uint64(len(fi.ETag)))
	return append(b, fi.ETag...)
}

func sealRecord(b []byte) []byte {
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

// encodeStat is the record of a cached stat.
func encodeStat(e statEntry) []byte {
	b := make([]byte, 0, 64+len(e.fi.Path)+len(e.fi.ETag))
	b = append(b, recVersion, recStat)
	b = appendTime(b, e.expires)
	b = appendFileInfo(b, e.fi, "", false)
	return sealRecord(b)
}

// encodeList is the record of a cached listing of directory dir.
func encodeList(dir string, e listEntry) []byte {
	b := make([]byte, 0, 32+len(e.entries)*48)
	b = append(b, recVersion, recList)
	b = appendTime(b, e.expires)
	b = appendTime(b, e.listed)
	b = binary.AppendUvarint(b, uint64(len(e.entries)))
	for _, fi := range e.entries {
		b = appendFileInfo(b, fi, dir, true)
	}
	return sealRecord(b)
}

// recReader decodes a record; the first error sticks.
type recReader struct {
	b   []byte
	err error
}

func (r *recReader) fail() {
	if r.err == nil {
		r.err = errBadRecord
	}
}

func (r *recReader) byte() byte {
	if r.err != nil || len(r.b) < 1 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *recReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recReader) bytes() string {
	if r.err != nil {
		return ""
	}
	l, n := binary.Uvarint(r.b)
	if n <= 0 || l > uint64(len(r.b)-n) {
		r.fail()
		return ""
	}
	s := string(r.b[n : n+int(l)])
	r.b = r.b[n+int(l):]
	return s
}

func (r *recReader) time() time.Time {
	ns := r.varint()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

func (r *recReader) fileInfo(dir string) ufs.FileInfo {
	flags := r.byte()
	fi := ufs.FileInfo{IsDir: flags&fiDir != 0, Size: r.varint()}
	mod := r.varint()
	if flags&fiZeroMod == 0 {
		fi.ModTime = time.Unix(0, mod)
	}
	fi.Path = r.bytes()
	if flags&fiRel != 0 && dir != "" {
		fi.Path = dir + "/" + fi.Path
	}
	fi.ETag = r.bytes()
	return fi
}

// openRecord checks a record's CRC, version and kind, and returns a reader of
// its body.
func openRecord(rec []byte, kind byte) (*recReader, error) {
	if len(rec) < 6 {
		return nil, errBadRecord
	}
	body, sum := rec[:len(rec)-4], binary.LittleEndian.Uint32(rec[len(rec)-4:])
	if crc32.Checksum(body, crcTable) != sum || body[0] != recVersion || body[1] != kind {
		return nil, errBadRecord
	}
	return &recReader{b: body[2:]}, nil
}

// decodeStat decodes a stat record of path.
func decodeStat(path string, rec []byte) (statEntry, error) {
	r, err := openRecord(rec, recStat)
	if err != nil {
		return statEntry{}, err
	}
	e := statEntry{expires: r.time()}
	e.fi = r.fileInfo("")
	if r.err != nil || len(r.b) != 0 || e.fi.Path != path {
		return statEntry{}, errBadRecord
	}
	return e, nil
}

// decodeList decodes a listing record of directory dir.
func decodeList(dir string, rec []byte) (listEntry, error) {
	r, err := openRecord(rec, recList)
	if err != nil {
		return listEntry{}, err
	}
	e := listEntry{expires: r.time(), listed: r.time()}
	cnt, k := binary.Uvarint(r.b)
	if r.err != nil || k <= 0 || cnt > uint64(len(r.b)) {
		return listEntry{}, errBadRecord
	}
	r.b = r.b[k:]
	e.entries = make([]ufs.FileInfo, 0, cnt)
	for range cnt {
		e.entries = append(e.entries, r.fileInfo(dir))
	}
	if r.err != nil || len(r.b) != 0 {
		return listEntry{}, errBadRecord
	}
	return e, nil
}
