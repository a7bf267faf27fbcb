package tier

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// The sidecar (<id>.meta) of a cached file; see docs/tier-layout.md.
//
//	off  size  field
//	  0     8  magic "STRPMETA"
//	  8     4  version (1)
//	 12     4  header length H (64 + path length rounded up to 8)
//	 16     8  page size
//	 24     8  file size
//	 32     8  expiry, Unix nanoseconds (0: none)
//	 40     4  path length
//	 44     4  CRC32C of bytes [0,44) and the path
//	 48     1  dirty: 1 while the file may hold writes not yet synced
//	 49    15  reserved (0)
//	 64     …  path, zero-padded to H
//	  H  4·n  CRC32C of each page (n = number of pages of the file)
//	H+4n  ⌈n/8⌉  presence bitmap, page i is bit i%8 of byte i/8
const (
	sidecarMagic   = "STRPMETA"
	sidecarVersion = 1
	sidecarFixed   = 64
	dirtyOff       = 48
	maxPathLen     = 1 << 16
)

var errBadSidecar = errors.New("bad sidecar")

// sidecarHeader is the decoded fixed part of a sidecar.
type sidecarHeader struct {
	pageSize, fileSize int64
	expires            time.Time
	path               string
	dirty              bool
}

func npagesOf(size, pageSize int64) int64 { return (size + pageSize - 1) / pageSize }

// sidecarLayout returns the header length, CRC array offset, bitmap offset and
// total length of the sidecar of a file with path p and n pages.
func sidecarLayout(p string, n int64) (hdr, crcOff, bmOff, total int64) {
	hdr = sidecarFixed + (int64(len(p))+7)&^7
	crcOff = hdr
	bmOff = crcOff + 4*n
	total = bmOff + (n+7)/8
	return
}

// encodeSidecar returns a fresh sidecar: header, zero CRCs, empty bitmap, dirty.
func encodeSidecar(h sidecarHeader) []byte {
	_, _, _, total := sidecarLayout(h.path, npagesOf(h.fileSize, h.pageSize))
	b := make([]byte, total)
	copy(b, encodeSidecarHeader(h))
	return b
}

// encodeSidecarHeader returns the header of a fresh sidecar (dirty), up to the
// CRC array.
func encodeSidecarHeader(h sidecarHeader) []byte {
	hdr, _, _, _ := sidecarLayout(h.path, 0)
	b := make([]byte, hdr)
	copy(b, sidecarMagic)
	le := binary.LittleEndian
	le.PutUint32(b[8:], sidecarVersion)
	le.PutUint32(b[12:], uint32(hdr))
	le.PutUint64(b[16:], uint64(h.pageSize))
	le.PutUint64(b[24:], uint64(h.fileSize))
	if !h.expires.IsZero() {
		le.PutUint64(b[32:], uint64(h.expires.UnixNano()))
	}
	le.PutUint32(b[40:], uint32(len(h.path)))
	copy(b[sidecarFixed:], h.path)
	le.PutUint32(b[44:], headerCRC(b[:44], h.path))
	b[dirtyOff] = 1
	return b
}

func headerCRC(fixed []byte, path string) uint32 {
	c := checksum(fixed)
	return crc32Update(c, []byte(path))
}

// decodeSidecar parses a whole sidecar; it returns the header, the per-page
// CRCs and the bitmap (aliasing b).
func decodeSidecar(b []byte) (sidecarHeader, []byte, []byte, error) {
	var h sidecarHeader
	le := binary.LittleEndian
	if len(b) < sidecarFixed || string(b[:8]) != sidecarMagic {
		return h, nil, nil, fmt.Errorf("%w: magic", errBadSidecar)
	}
	if v := le.Uint32(b[8:]); v != sidecarVersion {
		return h, nil, nil, fmt.Errorf("%w: version %d", errBadSidecar, v)
	}
	plen := int64(le.Uint32(b[40:]))
	if plen > maxPathLen || sidecarFixed+plen > int64(len(b)) {
		return h, nil, nil, fmt.Errorf("%w: path length", errBadSidecar)
	}
	h.path = string(b[sidecarFixed : sidecarFixed+plen])
	if headerCRC(b[:44], h.path) != le.Uint32(b[44:]) {
		return h, nil, nil, fmt.Errorf("%w: header checksum", errBadSidecar)
	}
	h.pageSize = int64(le.Uint64(b[16:]))
	h.fileSize = int64(le.Uint64(b[24:]))
	if e := int64(le.Uint64(b[32:])); e != 0 {
		h.expires = time.Unix(0, e)
	}
	h.dirty = b[dirtyOff] != 0
	if h.pageSize <= 0 || h.fileSize <= 0 {
		return h, nil, nil, fmt.Errorf("%w: sizes", errBadSidecar)
	}
	n := npagesOf(h.fileSize, h.pageSize)
	hdr, crcOff, bmOff, total := sidecarLayout(h.path, n)
	if int64(le.Uint32(b[12:])) != hdr || int64(len(b)) != total {
		return h, nil, nil, fmt.Errorf("%w: length %d, want %d", errBadSidecar, len(b), total)
	}
	return h, b[crcOff:bmOff], b[bmOff:total], nil
}
