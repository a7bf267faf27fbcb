package s3api

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"strconv"
	"strings"
)

// maxTrailers bounds the trailer fields after an aws-chunked body.
const maxTrailers = 8

// chunkedReader decodes an aws-chunked request body
// (Content-Encoding: aws-chunked): "hex-size[;chunk-signature=sig]\r\n",
// the data, "\r\n", ... a final zero-size chunk, and for the *-TRAILER modes
// trailer fields ("x-amz-checksum-crc32:...") and an empty line.
//
// With signing state (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]) every
// chunk's signature is checked when the chunk ends, chained from the seed
// signature of the request, and so is the trailer signature. Data is handed
// on before its chunk is verified: the consumer must not publish anything
// unless it reads to io.EOF without an error. Not safe for concurrent use.
type chunkedReader struct {
	r     *bufio.Reader
	limit int64 // most decoded bytes allowed

	// signing state; key is nil for unsigned chunks
	key     []byte
	amzDate string
	scope   string
	prevSig string
	// trailer: the final chunk is followed by trailer fields.
	trailer bool

	inChunk   bool
	remaining int64
	chunkSig  string
	h         hash.Hash
	total     int64
	done      bool
	err       error
	// Trailers are the trailer fields (lower-case names), once Read returned
	// io.EOF.
	Trailers map[string]string
}

// newChunkedReader decodes body. id carries the signing state when the
// payload mode is signed; limit is the decoded length the request declared.
func newChunkedReader(body io.Reader, id identity, limit int64) *chunkedReader {
	c := &chunkedReader{r: bufio.NewReaderSize(body, 32<<10), limit: limit}
	switch id.PayloadHash {
	case streamingSigned, streamingSignedTrailer:
		c.key, c.amzDate, c.scope, c.prevSig = id.key, id.amzDate, id.scope, id.seed
		c.h = sha256.New()
	}
	c.trailer = id.PayloadHash == streamingSignedTrailer || id.PayloadHash == streamingUnsignedTrail
	return c
}

func malformedChunk(format string, args ...any) *Error {
	return apiErr("InvalidRequest", "malformed aws-chunked body: "+format, args...)
}

// Read implements io.Reader.
func (c *chunkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	for !c.inChunk {
		if c.done {
			return 0, io.EOF
		}
		if err := c.readChunkHeader(); err != nil {
			c.err = err
			return 0, err
		}
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := c.r.Read(p[:min(int64(len(p)), c.remaining)])
	if c.h != nil {
		c.h.Write(p[:n])
	}
	c.remaining -= int64(n)
	c.total += int64(n)
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		err = apiErr("IncompleteBody", "the aws-chunked body ended inside a chunk")
	}
	if err == nil && c.remaining == 0 {
		err = c.endChunk()
	}
	if err != nil {
		c.err = err
	}
	return n, err
}

// readLine reads one CRLF-terminated line (without the CRLF) of at most the
// reader's buffer size.
func (c *chunkedReader) readLine() (string, error) {
	line, err := c.r.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return "", malformedChunk("a chunk header or trailer line is too long")
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		return "", apiErr("IncompleteBody", "the aws-chunked body ended early")
	case err != nil:
		return "", err
	}
	s, ok := bytes.CutSuffix(line, []byte("\r\n"))
	if !ok {
		return "", malformedChunk("a line does not end with CRLF")
	}
	return string(s), nil
}

// readChunkHeader reads "hex-size[;ext]" and, for the final chunk, what
// follows it.
func (c *chunkedReader) readChunkHeader() error {
	line, err := c.readLine()
	if err != nil {
		return err
	}
	sizeStr, ext, _ := strings.Cut(line, ";")
	size, err := parseChunkSize(sizeStr)
	if err != nil {
		return err
	}
	if c.key != nil {
		sig, ok := strings.CutPrefix(ext, "chunk-signature=")
		if !ok || !isHexSignature(sig) {
			return malformedChunk("a signed chunk needs ;chunk-signature=<64 hex digits>")
		}
		c.chunkSig = sig
		c.h.Reset()
	}
	if size > c.limit-c.total {
		return malformedChunk("the chunks hold more than the %d bytes of x-amz-decoded-content-length", c.limit)
	}
	if size > 0 {
		c.inChunk, c.remaining = true, size
		return nil
	}
	// The final chunk.
	if err := c.verifyChunk(); err != nil {
		return err
	}
	if err := c.readTrailers(); err != nil {
		return err
	}
	c.done = true
	return nil
}

// parseChunkSize parses the hex size of a chunk.
func parseChunkSize(s string) (int64, error) {
	if s == "" || len(s) > 15 {
		return 0, malformedChunk("bad chunk size %q", truncate(s, 32))
	}
	n, err := strconv.ParseInt(s, 16, 64)
	if err != nil || n < 0 {
		return 0, malformedChunk("bad chunk size %q", truncate(s, 32))
	}
	return n, nil
}

// endChunk reads the CRLF after a chunk's data and checks its signature.
func (c *chunkedReader) endChunk() error {
	c.inChunk = false
	line, err := c.readLine()
	if err != nil {
		return err
	}
	if line != "" {
		return malformedChunk("a chunk's data is longer than its size")
	}
	return c.verifyChunk()
}

// verifyChunk checks the signature of the chunk just read (signed modes).
func (c *chunkedReader) verifyChunk() error {
	if c.key == nil {
		return nil
	}
	sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + c.amzDate + "\n" + c.scope + "\n" + c.prevSig + "\n" + emptySHA256 + "\n" + hex.EncodeToString(c.h.Sum(nil))
	if !hmacEqual(signHex(c.key, sts), c.chunkSig) {
		return apiErr("SignatureDoesNotMatch", "the signature of a chunk of the aws-chunked body does not match")
	}
	c.prevSig = c.chunkSig
	return nil
}

// readTrailers reads the trailer fields up to the empty line that ends the
// body, checking the trailer signature in the signed mode.
func (c *chunkedReader) readTrailers() error {
	var canon strings.Builder
	sig := ""
	for n := 0; ; n++ {
		line, err := c.readLine()
		if err != nil {
			return err
		}
		if line == "" {
			break
		}
		if !c.trailer {
			return malformedChunk("trailer fields sent without a *-TRAILER payload mode")
		}
		if n == maxTrailers {
			return malformedChunk("more than %d trailer fields", maxTrailers)
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return malformedChunk("a trailer field has no ':'")
		}
		name, value = strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(value)
		if name == "x-amz-trailer-signature" {
			sig = value
			continue
		}
		if c.Trailers == nil {
			c.Trailers = map[string]string{}
		}
		c.Trailers[name] = value
		canon.WriteString(name + ":" + value + "\n")
	}
	if c.key != nil && c.trailer {
		h := sha256.Sum256([]byte(canon.String()))
		sts := "AWS4-HMAC-SHA256-TRAILER\n" + c.amzDate + "\n" + c.scope + "\n" + c.prevSig + "\n" + hex.EncodeToString(h[:])
		if !hmacEqual(signHex(c.key, sts), sig) {
			return apiErr("SignatureDoesNotMatch", "the trailer signature of the aws-chunked body does not match")
		}
	}
	// Nothing may follow the body.
	if _, err := c.r.ReadByte(); err != io.EOF {
		if err == nil {
			return malformedChunk("data after the end of the aws-chunked body")
		}
		return err
	}
	return nil
}
