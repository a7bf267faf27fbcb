package ufstest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
)

// patternBlock is the unit of the deterministic data stream: block i of the
// stream with a given seed is the output of ChaCha8 keyed by (seed, i), so any
// range can be regenerated without producing what comes before it.
const patternBlock = 64 << 10

// pattern generates the bytes of an endless pseudo-random stream identified by
// a seed. It caches one block; it is not safe for concurrent use.
type pattern struct {
	seed  uint64
	block int64 // index of the cached block; -1 when none
	buf   []byte
}

func newPattern(seed uint64) *pattern {
	return &pattern{seed: seed, block: -1, buf: make([]byte, patternBlock)}
}

func (g *pattern) load(block int64) {
	if g.block == block {
		return
	}
	var key [32]byte
	binary.LittleEndian.PutUint64(key[0:], g.seed)
	binary.LittleEndian.PutUint64(key[8:], uint64(block))
	copy(key[16:], "strata-ufstest!!")
	// ChaCha8.Read never fails.
	_, _ = rand.NewChaCha8(key).Read(g.buf)
	g.block = block
}

// fill writes the stream's bytes at off into p.
func (g *pattern) fill(off int64, p []byte) {
	for len(p) > 0 {
		g.load(off / patternBlock)
		n := copy(p, g.buf[off%patternBlock:])
		p, off = p[n:], off+int64(n)
	}
}

// bytesAt returns n bytes of the stream with seed at off.
func bytesAt(seed uint64, off, n int64) []byte {
	b := make([]byte, n)
	newPattern(seed).fill(off, b)
	return b
}

// patternReader reads the first size bytes of a pattern stream.
type patternReader struct {
	g    *pattern
	off  int64
	size int64
}

func newPatternReader(seed uint64, size int64) *patternReader {
	return &patternReader{g: newPattern(seed), size: size}
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	if rem := r.size - r.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	r.g.fill(r.off, p)
	r.off += int64(len(p))
	return len(p), nil
}

// errBoom is what a failingReader returns once its budget is spent.
var errBoom = errors.New("ufstest: reader failed on purpose")

// failingReader yields good bytes up to failAt, then errBoom (or io.EOF when
// short is set: a stream that ends before its declared size).
type failingReader struct {
	r      *patternReader
	failAt int64
	short  bool
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.r.off >= f.failAt {
		if f.short {
			return 0, io.EOF
		}
		return 0, errBoom
	}
	if rem := f.failAt - f.r.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	return f.r.Read(p)
}

// compareAt checks that got equals the pattern bytes at off and describes the
// first difference.
func compareAt(seed uint64, off int64, got []byte) error {
	want := bytesAt(seed, off, int64(len(got)))
	for i := range got {
		if got[i] != want[i] {
			return fmt.Errorf("byte %d (offset %d) = %#x, want %#x", i, off+int64(i), got[i], want[i])
		}
	}
	return nil
}
