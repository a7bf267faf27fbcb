package s3api

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// checksumAlgorithms are the x-amz-checksum-* algorithms a request may carry.
var checksumAlgorithms = []string{"crc32", "crc32c", "crc64nvme", "sha1", "sha256"}

// crc64NVMEPoly is the reflected polynomial of CRC-64/NVME.
const crc64NVMEPoly = 0x9a6c9329ac4bc9b5

// newChecksum returns the hash of an x-amz-checksum algorithm, or nil.
func newChecksum(alg string) hash.Hash {
	switch alg {
	case "crc32":
		return crc32.NewIEEE()
	case "crc32c":
		return crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case "crc64nvme":
		return crc64.New(crc64.MakeTable(crc64NVMEPoly))
	case "sha1":
		return sha1.New()
	case "sha256":
		return sha256.New()
	}
	return nil
}

// payload reads a request body of a declared size through every integrity
// check the request asks for: Content-MD5, a signed x-amz-content-sha256,
// an x-amz-checksum-* header or trailer, and the aws-chunked framing with its
// signatures. When the last byte has arrived it makes sure the body ends
// there and runs the checks, so the Read that returns the last bytes also
// returns the verdict: io.EOF when the body is sound, an *Error (BadDigest,
// XAmzContentSHA256Mismatch, IncompleteBody, SignatureDoesNotMatch, ...)
// otherwise. Consumers that publish only after a clean io.EOF therefore never
// publish a body that failed a check. It always computes the MD5 (the ETag).
// Not safe for concurrent use.
type payload struct {
	r       io.Reader
	chunked *chunkedReader
	size    int64
	n       int64

	md5     hash.Hash
	wantMD5 []byte
	sha     hash.Hash
	wantSHA []byte
	ck      hash.Hash
	ckAlg   string
	wantCK  string // base64; "" when it comes in a trailer
	trailer string // trailer field name of the checksum

	done bool
	err  error
}

// newPayload prepares the body of r, whose decoded size is size, for
// reading with the checks the headers ask for. It returns the S3 error of a
// malformed Content-MD5 or checksum header.
func newPayload(r *http.Request, id identity, size int64) (*payload, *Error) {
	p := &payload{r: r.Body, size: size, md5: md5.New()}
	if vs, ok := r.Header["Content-Md5"]; ok {
		v := strings.TrimSpace(strings.Join(vs, ""))
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(b) != md5.Size {
			return nil, apiErr("InvalidDigest", "")
		}
		p.wantMD5 = b
	}
	if isHexSignature(id.PayloadHash) {
		b, _ := hex.DecodeString(id.PayloadHash)
		p.sha, p.wantSHA = sha256.New(), b
	}
	for _, alg := range checksumAlgorithms {
		if v := r.Header.Get("X-Amz-Checksum-" + alg); v != "" {
			if p.ck != nil {
				return nil, apiErr("InvalidRequest", "expecting a single x-amz-checksum- header; multiple checksum types are not allowed")
			}
			p.ck, p.ckAlg, p.wantCK = newChecksum(alg), alg, v
		}
	}
	switch id.PayloadHash {
	case streamingSigned, streamingSignedTrailer, streamingUnsignedTrail:
		p.chunked = newChunkedReader(r.Body, id, size)
		p.r = p.chunked
		if t := strings.ToLower(strings.TrimSpace(r.Header.Get("X-Amz-Trailer"))); t != "" {
			alg, ok := strings.CutPrefix(t, "x-amz-checksum-")
			if !ok || newChecksum(alg) == nil {
				return nil, apiErr("InvalidRequest", "unsupported x-amz-trailer %q", truncate(t, 64))
			}
			if p.ck != nil {
				return nil, apiErr("InvalidRequest", "expecting a single x-amz-checksum-; got both a header and a trailer")
			}
			p.ck, p.ckAlg, p.trailer = newChecksum(alg), alg, t
		}
	default:
		if strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked") {
			return nil, apiErr("InvalidRequest", "an aws-chunked body needs x-amz-content-sha256 set to a STREAMING-* mode")
		}
	}
	return p, nil
}

// Read implements io.Reader.
func (p *payload) Read(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	if p.done {
		return 0, io.EOF
	}
	if left := p.size - p.n; int64(len(b)) > left {
		b = b[:left]
	}
	n := 0
	var err error
	if len(b) > 0 {
		n, err = p.r.Read(b)
	}
	if n > 0 {
		p.md5.Write(b[:n])
		if p.sha != nil {
			p.sha.Write(b[:n])
		}
		if p.ck != nil {
			p.ck.Write(b[:n])
		}
		p.n += int64(n)
	}
	switch {
	case err == nil && p.n < p.size:
		return n, nil
	case err == nil || err == io.EOF:
		if p.n < p.size {
			err = apiErr("IncompleteBody", "the body ended after %d of %d bytes", p.n, p.size)
		} else if err = p.finish(); err == nil {
			err = io.EOF
		}
	case errors.Is(err, io.ErrUnexpectedEOF):
		err = apiErr("IncompleteBody", "the body ended after %d of %d bytes", p.n, p.size)
	default:
		var me *http.MaxBytesError
		if errors.As(err, &me) {
			err = apiErr("EntityTooLarge", "")
		}
	}
	if err == io.EOF {
		p.done = true
		return n, io.EOF
	}
	p.err = err
	return n, err
}

// finish checks that the body ends after size bytes and runs the checks.
func (p *payload) finish() error {
	var one [1]byte
	for {
		n, err := p.r.Read(one[:])
		if n > 0 {
			return apiErr("IncompleteBody", "the body is longer than the %d bytes declared", p.size)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if p.wantMD5 != nil && subtle.ConstantTimeCompare(p.md5.Sum(nil), p.wantMD5) != 1 {
		return apiErr("BadDigest", "")
	}
	if p.sha != nil && subtle.ConstantTimeCompare(p.sha.Sum(nil), p.wantSHA) != 1 {
		return apiErr("XAmzContentSHA256Mismatch", "")
	}
	if p.ck != nil {
		want := p.wantCK
		if p.trailer != "" {
			want = p.chunked.Trailers[p.trailer]
			if want == "" {
				return apiErr("InvalidRequest", "the %s trailer announced in x-amz-trailer is missing", p.trailer)
			}
		}
		if base64.StdEncoding.EncodeToString(p.ck.Sum(nil)) != want {
			return apiErr("BadDigest", "the %s you specified did not match the calculated checksum", strings.ToUpper(p.ckAlg))
		}
	}
	return nil
}

// ETag is the hex MD5 of the body (valid after a clean io.EOF).
func (p *payload) ETag() string { return hex.EncodeToString(p.md5.Sum(nil)) }

// MD5 is the binary MD5 of the body (valid after a clean io.EOF).
func (p *payload) MD5() []byte { return p.md5.Sum(nil) }

// Checksum returns the x-amz-checksum header of the body and its value
// (base64), or "" when the request carried none.
func (p *payload) Checksum() (string, string) {
	if p.ck == nil {
		return "", ""
	}
	return "X-Amz-Checksum-" + strings.ToUpper(p.ckAlg[:1]) + p.ckAlg[1:], base64.StdEncoding.EncodeToString(p.ck.Sum(nil))
}

// Err is the first error Read returned (nil after a clean io.EOF or before
// the end).
func (p *payload) Err() error { return p.err }

// bodySize is the decoded size of a request body: x-amz-decoded-content-length
// for aws-chunked payloads, else Content-Length. It returns
// MissingContentLength when neither is known.
func bodySize(r *http.Request, id identity) (int64, *Error) {
	switch id.PayloadHash {
	case streamingSigned, streamingSignedTrailer, streamingUnsignedTrail:
		v := r.Header.Get("X-Amz-Decoded-Content-Length")
		if v == "" {
			return 0, apiErr("MissingContentLength", "an aws-chunked body needs x-amz-decoded-content-length")
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, apiErr("InvalidArgument", "x-amz-decoded-content-length %q is not a size", truncate(v, 32))
		}
		return n, nil
	}
	if r.ContentLength < 0 {
		return 0, apiErr("MissingContentLength", "")
	}
	return r.ContentLength, nil
}
