package s3api

import (
	"encoding/base64"
	"hash"
	"io"
	"net/http"
	"strings"
)

// objectChecksum is the checksum of a whole object that a
// CompleteMultipartUpload carries in its x-amz-checksum-<alg> header
// (x-amz-checksum-type FULL_OBJECT, what the SDKs send for CRC checksums of
// multipart uploads): it describes the object the parts make, not the XML
// body of the request.
type objectChecksum struct {
	alg  string // lower case: crc32, crc32c, crc64nvme, sha1, sha256
	want string // base64
}

// takeObjectChecksum removes the x-amz-checksum-<alg> header of a
// completion from h (so that the body's checks leave it alone) and returns
// it. A composite value ("<base64>-<parts>", x-amz-checksum-type
// COMPOSITE) is a checksum of the parts' checksums, which Strata does not
// keep: it is dropped, each part's own checksum having been checked when
// the part arrived.
func takeObjectChecksum(h http.Header) (*objectChecksum, *Error) {
	var found *objectChecksum
	for _, alg := range checksumAlgorithms {
		name := "X-Amz-Checksum-" + alg
		v := h.Get(name)
		if v == "" {
			continue
		}
		h.Del(name)
		if found != nil {
			return nil, apiErr("InvalidRequest", "expecting a single x-amz-checksum- header; multiple checksum types are not allowed")
		}
		found = &objectChecksum{alg: alg, want: v}
	}
	if found == nil || strings.Contains(found.want, "-") || strings.EqualFold(h.Get("X-Amz-Checksum-Type"), "COMPOSITE") {
		return nil, nil
	}
	return found, nil
}

// checkingReader computes the checksum of what it reads and, at the end of
// r, fails with BadDigest when it is not the one wanted: the store then
// publishes nothing.
type checkingReader struct {
	r    io.Reader
	h    hash.Hash
	want string
	alg  string
	// done: the end was read (and checked).
	done bool
}

func (c *objectChecksum) reader(r io.Reader) *checkingReader {
	return &checkingReader{r: r, h: newChecksum(c.alg), want: c.want, alg: c.alg}
}

func (c *checkingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	if err == io.EOF {
		c.done = true
		if base64.StdEncoding.EncodeToString(c.h.Sum(nil)) != c.want {
			return n, apiErr("BadDigest", "the %s you specified for the object did not match the checksum of its parts", strings.ToUpper(c.alg))
		}
	}
	return n, err
}
