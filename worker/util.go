package worker

import (
	"crypto/sha256"
	"encoding/hex"
)

// hashHex is the first 128 bits of SHA-256 over the NUL-separated parts.
func hashHex(parts ...string) string {
	h := sha256.New()
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{0})
		}
		h.Write([]byte(p))
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}
