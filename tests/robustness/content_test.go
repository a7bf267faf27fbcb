package robustness

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
)

// Self-describing object content, byte for byte the format of
// ../shared/staleness/content.py: a version of an object is a sequence of
// 32-byte cells (the last one cut short by the version's size), each eight
// little-endian uint32
//
//	magic 'STRT', key index, version, size of this version, byte offset of
//	the cell, run id, mix, check
//
// where check hashes the seven others. One cell on its own therefore says
// which (key, version, size) it belongs to, where in the object it must sit
// and whether it is intact, so any read can be decoded to the byte: which
// version every region came from, zeros, or garbage.

const (
	cellSize = 32
	magic    = 0x54525453 // "STRT" little-endian
)

// Segment labels besides versions (which are >= 1).
const (
	labelZeros   = 0
	labelGarbage = -1
)

func mixOf(key, version uint32) uint32 { return key*0x01000193 ^ version<<8 ^ 0x5A5A5A5A }

// checkOf is content.py's _check: products modulo 2^32, as uint32
// arithmetic does.
func checkOf(f *[7]uint32) uint32 {
	h := f[0] * 0x9E3779B1
	h ^= f[1] * 0x85EBCA77
	h ^= f[2] * 0xC2B2AE3D
	h ^= f[3] * 0x27D4EB2F
	h ^= f[4] * 0x165667B1
	h ^= f[5]
	h ^= f[6] * 0xD3A2646C
	h ^= h >> 15
	h *= 0x2C1B3C6D
	return h ^ h>>12
}

// putCell writes the full 32-byte cell at offset off of (key, version, size)
// into dst.
func putCell(dst []byte, key, version, size, off, run uint32) {
	f := [7]uint32{magic, key, version, size, off, run, mixOf(key, version)}
	for i, v := range f {
		binary.LittleEndian.PutUint32(dst[4*i:], v)
	}
	binary.LittleEndian.PutUint32(dst[28:], checkOf(&f))
}

// makeContent returns the bytes of version `version` of key index key,
// size bytes long.
func makeContent(key, version, size int, run uint32) []byte {
	n := (size + cellSize - 1) / cellSize
	b := make([]byte, n*cellSize)
	for i := range n {
		putCell(b[i*cellSize:], uint32(key), uint32(version), uint32(size), uint32(i*cellSize), run)
	}
	return b[:size]
}

// segment is a run of bytes [start, end) of one label: a version (>= 1),
// labelZeros or labelGarbage (bytes that are no intact cell of this key and
// run at its own offset).
type segment struct {
	start, end, label int
}

// decoded summarises one read.
type decoded struct {
	length int
	segs   []segment
}

// versions lists the distinct versions in d's segments, ascending.
func (d decoded) versions() []int {
	var vs []int
	for _, s := range d.segs {
		if s.label > 0 && !containsInt(vs, s.label) {
			vs = append(vs, s.label)
		}
	}
	for i := 1; i < len(vs); i++ { // few versions: insertion sort
		for j := i; j > 0 && vs[j] < vs[j-1]; j-- {
			vs[j], vs[j-1] = vs[j-1], vs[j]
		}
	}
	return vs
}

func containsInt(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// String renders the segments as check.py does: "0-1024:v3 1024-4096:zeros".
func (d decoded) String() string {
	const limit = 6
	var b strings.Builder
	for i, s := range d.segs {
		if i == limit {
			fmt.Fprintf(&b, " ...(+%d)", len(d.segs)-limit)
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		name := fmt.Sprintf("v%d", s.label)
		switch s.label {
		case labelZeros:
			name = "zeros"
		case labelGarbage:
			name = "garbage"
		}
		fmt.Fprintf(&b, "%d-%d:%s", s.start, s.end, name)
	}
	return b.String()
}

// decode labels every 32-byte cell of data (a read of key index key) and
// run-length encodes the labels, as content.py's decode does.
func decode(data []byte, key int, run uint32) decoded {
	L := len(data)
	d := decoded{length: L}
	// sizes maps each version seen to the size its first cell claims.
	sizes := map[int]int{}
	n := L / cellSize
	add := func(start, end, label int) {
		if k := len(d.segs) - 1; k >= 0 && d.segs[k].label == label && d.segs[k].end == start {
			d.segs[k].end = end
			return
		}
		d.segs = append(d.segs, segment{start, end, label})
	}
	var f [7]uint32
	for i := range n {
		c := data[i*cellSize : (i+1)*cellSize]
		label := labelGarbage
		for j := range f {
			f[j] = binary.LittleEndian.Uint32(c[4*j:])
		}
		switch {
		case f[0] == magic && f[1] == uint32(key) && f[5] == run && f[4] == uint32(i*cellSize) &&
			binary.LittleEndian.Uint32(c[28:]) == checkOf(&f):
			label = int(f[2])
			if _, ok := sizes[label]; !ok {
				sizes[label] = int(f[3])
			}
		case allZero(c):
			label = labelZeros
		}
		add(i*cellSize, (i+1)*cellSize, label)
	}
	if L%cellSize != 0 {
		label := labelGarbage
		if allZero(data[n*cellSize:]) {
			label = labelZeros
		}
		add(n*cellSize, L, label)
	}
	// A version's last cell is cut short by its size: the region right
	// after a segment of version v that holds v's end is v's (up to v's
	// size) when it matches the expected prefix; what follows it is padding.
	var out []segment
	push := func(s segment) {
		if k := len(out) - 1; k >= 0 && out[k].label == s.label && out[k].end == s.start {
			out[k].end = s.end
			return
		}
		out = append(out, s)
	}
	var cell [cellSize]byte
	for _, s := range d.segs {
		if k := len(out) - 1; k >= 0 && s.label <= 0 && out[k].label > 0 && out[k].end == s.start {
			v := out[k].label
			sv, ok := sizes[v]
			cut := min(sv, L)
			if ok && s.start < cut && cut < s.start+cellSize {
				putCell(cell[:], uint32(key), uint32(v), uint32(sv), uint32(s.start), run)
				if bytes.Equal(data[s.start:cut], cell[:cut-s.start]) {
					out[k].end = cut
					restEnd := min(s.start+cellSize, L)
					if cut < restEnd {
						label := labelGarbage
						if allZero(data[cut:restEnd]) {
							label = labelZeros
						}
						push(segment{cut, restEnd, label})
					}
					if restEnd < s.end {
						push(segment{restEnd, s.end, s.label})
					}
					continue
				}
			}
		}
		push(s)
	}
	d.segs = out
	return d
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}
