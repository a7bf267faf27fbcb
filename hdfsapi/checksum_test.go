package hdfsapi

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"strconv"
	"testing"
)

// checksumOfBytes feeds data to hdfsChecksum in uneven pieces.
func checksumOfBytes(data []byte, blockSize int64) fileChecksum {
	h := newHDFSChecksum(blockSize)
	for i, step := 0, 1; i < len(data); step = (step*3 + 1) % 7919 {
		n := min(step+1, len(data)-i)
		h.Write(data[i : i+n])
		i += n
	}
	return h.Sum()
}

// referenceChecksum is HDFS's MD5-of-MD5-of-CRC32C written out plainly, as
// the Hadoop sources describe it, for comparison.
func referenceChecksum(data []byte, blockSize int) (algorithm, bytesHex string) {
	table := crc32.MakeTable(crc32.Castagnoli)
	var md5s []byte
	for b := 0; b < len(data); b += blockSize {
		block := data[b:min(b+blockSize, len(data))]
		var crcs []byte
		for c := 0; c < len(block); c += 512 {
			crcs = binary.BigEndian.AppendUint32(crcs, crc32.Checksum(block[c:min(c+512, len(block))], table))
		}
		sum := md5.Sum(crcs)
		md5s = append(md5s, sum[:]...)
	}
	buf := make([]byte, 32)
	for len(buf) < len(md5s) {
		buf = make([]byte, 2*len(buf))
	}
	copy(buf, md5s)
	file := md5.Sum(buf)
	crcPerBlock := uint64(0)
	algorithm = "MD5-of-0MD5-of-512CRC32C"
	if len(md5s) > 16 {
		crcPerBlock = uint64(blockSize / 512)
		algorithm = "MD5-of-" + strconv.Itoa(int(crcPerBlock)) + "MD5-of-512CRC32C"
	}
	out := binary.BigEndian.AppendUint32(nil, 512)
	out = binary.BigEndian.AppendUint64(out, crcPerBlock)
	out = append(out, file[:]...)
	out = append(out, 0, 0, 0, 0)
	return algorithm, hex.EncodeToString(out)
}

// TestHDFSChecksum checks the algorithm: Hadoop's known answer for an empty
// file, one block, and several blocks (small blocks stand in for 128MiB
// ones) with the padding of Hadoop's DataOutputBuffer growing 32 → 64 → 128
// bytes.
func TestHDFSChecksum(t *testing.T) {
	// `hdfs dfs -checksum` of an empty file on a Hadoop cluster.
	if got := checksumOfBytes(nil, hdfsChecksumBlockSize); got.Algorithm != "MD5-of-0MD5-of-0CRC32" ||
		got.Bytes != "00000000000000000000000070bc8f4b72a86921468bf8e8441dce5100000000" || got.Length != 28 {
		t.Errorf("empty file: %+v", got)
	}
	const bs = 2048
	for _, n := range []int{1, 511, 512, 513, bs - 1, bs, bs + 1, 2 * bs, 3*bs - 5, 3 * bs, 5*bs + 100, 9*bs + 1} {
		data := pattern(n, byte(n))
		algo, want := referenceChecksum(data, bs)
		got := checksumOfBytes(data, bs)
		if got.Algorithm != algo || got.Bytes != want || got.Length != 28 {
			t.Errorf("%d bytes: %+v, want %s %s", n, got, algo, want)
		}
	}
	if got := checksumOfBytes(pattern(5*bs, 1), bs); got.Algorithm != "MD5-of-4MD5-of-512CRC32C" {
		t.Errorf("several blocks: %s", got.Algorithm)
	}
}
