package hdfsapi

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/crc32"
)

// GETFILECHECKSUM answers what an HDFS cluster with default settings
// (dfs.blocksize 128MiB, dfs.bytes-per-checksum 512, dfs.checksum.type
// CRC32C, dfs.checksum.combine.mode MD5MD5CRC) answers for the same bytes,
// so `hadoop distcp` and `hdfs dfs -checksum` comparisons with a copy in
// HDFS hold:
//
//   - each 512-byte chunk (the last one may be shorter) has a CRC32C, kept
//     as 4 big-endian bytes;
//   - each 128MiB block has the MD5 of its chunks' CRCs;
//   - the file has the MD5 of its blocks' MD5s, taken, as Hadoop takes it,
//     over the whole backing array of the DataOutputBuffer they were
//     written to: 16 bytes per block, zero-padded to that buffer's
//     capacity (32 bytes, doubled as needed);
//   - the algorithm is "MD5-of-<crcPerBlock>MD5-of-512CRC32C", where
//     crcPerBlock is 0 for a file of one block and 262144 (128MiB / 512)
//     for longer ones; the bytes are the serialized
//     MD5MD5CRC32FileChecksum (int bytesPerCRC, long crcPerBlock, the
//     16-byte MD5: length 28) in hex, followed, as Hadoop's JSON has it, by
//     the 4 zero bytes of the same buffer padding;
//   - an empty file (no blocks) is "MD5-of-0MD5-of-0CRC32" with the MD5
//     of 32 zero bytes.
//
// Hadoop's own block size of the file does not exist here: files copied
// from HDFS with another dfs.blocksize have another checksum there.
const (
	hdfsChecksumBlockSize = 128 << 20
	hdfsBytesPerCRC       = 512
)

// fileChecksum is Hadoop's FileChecksum JSON object.
type fileChecksum struct {
	Algorithm string `json:"algorithm"`
	Bytes     string `json:"bytes"`
	Length    int    `json:"length"`
}

// hdfsChecksum computes fileChecksum over the bytes written to it. Not safe
// for concurrent use.
type hdfsChecksum struct {
	blockSize int64
	table     *crc32.Table
	crc       uint32 // of the current chunk
	chunkFill int
	blockMD5  hash.Hash // of the current block's CRCs
	blockFill int64
	md5s      []byte // the finished blocks' MD5s
	crcBuf    [4]byte
}

func newHDFSChecksum(blockSize int64) *hdfsChecksum {
	return &hdfsChecksum{blockSize: blockSize, table: crc32.MakeTable(crc32.Castagnoli), blockMD5: md5.New()}
}

// Write adds p to the file's bytes.
func (h *hdfsChecksum) Write(p []byte) {
	for len(p) > 0 {
		n := min(len(p), hdfsBytesPerCRC-h.chunkFill)
		h.crc = crc32.Update(h.crc, h.table, p[:n])
		h.chunkFill += n
		h.blockFill += int64(n)
		p = p[n:]
		if h.chunkFill == hdfsBytesPerCRC {
			h.endChunk()
		}
		if h.blockFill == h.blockSize {
			h.endBlock()
		}
	}
}

func (h *hdfsChecksum) endChunk() {
	binary.BigEndian.PutUint32(h.crcBuf[:], h.crc)
	h.blockMD5.Write(h.crcBuf[:])
	h.crc, h.chunkFill = 0, 0
}

func (h *hdfsChecksum) endBlock() {
	h.md5s = h.blockMD5.Sum(h.md5s)
	h.blockMD5.Reset()
	h.blockFill = 0
}

// Sum finishes the last chunk and block and returns the file's checksum.
func (h *hdfsChecksum) Sum() fileChecksum {
	if h.chunkFill > 0 {
		h.endChunk()
	}
	if h.blockFill > 0 {
		h.endBlock()
	}
	blocks := len(h.md5s) / md5.Size
	bytesPerCRC, crcPerBlock, crcType := int32(hdfsBytesPerCRC), int64(0), "CRC32C"
	switch {
	case blocks == 0:
		bytesPerCRC, crcType = 0, "CRC32"
	case blocks > 1:
		crcPerBlock = h.blockSize / hdfsBytesPerCRC
	}
	// DataOutputBuffer starts at 32 bytes and doubles (at least) when full.
	capacity := 32
	for capacity < len(h.md5s) {
		capacity *= 2
	}
	padded := make([]byte, capacity)
	copy(padded, h.md5s)
	fileMD5 := md5.Sum(padded)
	out := make([]byte, 0, 32)
	out = binary.BigEndian.AppendUint32(out, uint32(bytesPerCRC))
	out = binary.BigEndian.AppendUint64(out, uint64(crcPerBlock))
	out = append(out, fileMD5[:]...)
	length := len(out)
	out = append(out, 0, 0, 0, 0)
	return fileChecksum{
		Algorithm: fmt.Sprintf("MD5-of-%dMD5-of-%d%s", crcPerBlock, bytesPerCRC, crcType),
		Bytes:     hex.EncodeToString(out),
		Length:    length,
	}
}
