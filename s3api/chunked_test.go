package s3api

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The example of the AWS documentation "Signature Calculations for the
// Authorization Header: Transferring Payload in Multiple Chunks".
const (
	awsExampleKeyID  = "AKIAIOSFODNN7EXAMPLE"
	awsExampleSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	awsExampleSeed   = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
)

var awsExampleChunkSigs = []string{
	"ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
	"0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
	"b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
}

func awsExampleIdentity() identity {
	return identity{
		AccessKey: awsExampleKeyID, PayloadHash: streamingSigned,
		key:     signingKey(awsExampleSecret, "20130524", "us-east-1", "s3"),
		amzDate: "20130524T000000Z", scope: "20130524/us-east-1/s3/aws4_request", seed: awsExampleSeed,
	}
}

// awsExampleBody is the example's body: 65536 and 1024 bytes of 'a' and the
// final chunk, with the published signatures.
func awsExampleBody() []byte {
	var b bytes.Buffer
	for i, n := range []int{65536, 1024, 0} {
		fmt.Fprintf(&b, "%x;chunk-signature=%s\r\n", n, awsExampleChunkSigs[i])
		b.Write(bytes.Repeat([]byte("a"), n))
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// TestSeedSignatureOfAWSExample checks the header signature against the
// example's seed signature.
func TestSeedSignatureOfAWSExample(t *testing.T) {
	r, _ := http.NewRequest(http.MethodPut, "http://s3.amazonaws.com/examplebucket/chunkObject.txt", nil)
	r.Host = "s3.amazonaws.com"
	r.RequestURI = "/examplebucket/chunkObject.txt"
	r.Header.Set("Content-Encoding", "aws-chunked")
	r.Header.Set("Content-Length", "66824")
	r.Header.Set("X-Amz-Content-Sha256", streamingSigned)
	r.Header.Set("X-Amz-Date", "20130524T000000Z")
	r.Header.Set("X-Amz-Decoded-Content-Length", "66560")
	r.Header.Set("X-Amz-Storage-Class", "REDUCED_REDUNDANCY")
	signed := []string{"content-encoding", "content-length", "host", "x-amz-content-sha256", "x-amz-date", "x-amz-decoded-content-length", "x-amz-storage-class"}
	creq := canonicalRequest(r, canonicalURIs(r)[0], "", signed, streamingSigned)
	sig := signHex(awsExampleIdentity().key, stringToSign("20130524T000000Z", "20130524/us-east-1/s3/aws4_request", creq))
	if sig != awsExampleSeed {
		t.Fatalf("seed signature %s, want %s\ncanonical request:\n%s", sig, awsExampleSeed, creq)
	}
}

func TestChunkedSignedAWSExample(t *testing.T) {
	body := awsExampleBody()
	c := newChunkedReader(bytes.NewReader(body), awsExampleIdentity(), 66560)
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, bytes.Repeat([]byte("a"), 66560)) {
		t.Fatalf("decoded %d bytes", len(got))
	}
	// Any flipped data byte or signature digit is caught.
	for _, pos := range []int{100, 66000, len(body) - 10} {
		bad := bytes.Clone(body)
		bad[pos] ^= 1
		_, err := io.ReadAll(newChunkedReader(bytes.NewReader(bad), awsExampleIdentity(), 66560))
		var ae *Error
		if !errors.As(err, &ae) {
			t.Errorf("flipped byte %d: err %v", pos, err)
		}
	}
	// Chunks swapped or cut short.
	_, err = io.ReadAll(newChunkedReader(bytes.NewReader(body[:len(body)/2]), awsExampleIdentity(), 66560))
	if ae := (*Error)(nil); !errors.As(err, &ae) || ae.Code != "IncompleteBody" {
		t.Errorf("truncated body: %v", err)
	}
	_, err = io.ReadAll(newChunkedReader(bytes.NewReader(body), awsExampleIdentity(), 1000))
	if err == nil {
		t.Errorf("more data than x-amz-decoded-content-length accepted")
	}
}

// signedChunks encodes data as STREAMING-AWS4-HMAC-SHA256-PAYLOAD with
// chunks of size n, chained from id's seed.
func signedChunks(id identity, data []byte, n int) []byte {
	var b bytes.Buffer
	prev := id.seed
	for off := 0; ; off += n {
		chunk := data[min(off, len(data)):min(off+n, len(data))]
		h := sha256.Sum256(chunk)
		sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + id.amzDate + "\n" + id.scope + "\n" + prev + "\n" + emptySHA256 + "\n" + hex.EncodeToString(h[:])
		prev = signHex(id.key, sts)
		fmt.Fprintf(&b, "%x;chunk-signature=%s\r\n", len(chunk), prev)
		b.Write(chunk)
		b.WriteString("\r\n")
		if len(chunk) == 0 {
			return b.Bytes()
		}
	}
}

// unsignedTrailerChunks encodes data as STREAMING-UNSIGNED-PAYLOAD-TRAILER
// with a CRC32 trailer, as the AWS SDKs do.
func unsignedTrailerChunks(data []byte, n int, crc string) []byte {
	var b bytes.Buffer
	for off := 0; off < len(data); off += n {
		chunk := data[off:min(off+n, len(data))]
		fmt.Fprintf(&b, "%x\r\n", len(chunk))
		b.Write(chunk)
		b.WriteString("\r\n")
	}
	b.WriteString("0\r\nx-amz-checksum-crc32:" + crc + "\r\n\r\n")
	return b.Bytes()
}

func crc32B64(data []byte) string {
	var s [4]byte
	v := crc32.ChecksumIEEE(data)
	s[0], s[1], s[2], s[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	return base64.StdEncoding.EncodeToString(s[:])
}

func TestPayloadUnsignedTrailer(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 10000)
	read := func(body []byte, trailer string) error {
		r, _ := http.NewRequest(http.MethodPut, "http://h/b/k", bytes.NewReader(body))
		r.Header.Set("Content-Encoding", "aws-chunked")
		if trailer != "" {
			r.Header.Set("X-Amz-Trailer", trailer)
		}
		p, aerr := newPayload(r, identity{PayloadHash: streamingUnsignedTrail}, int64(len(data)))
		if aerr != nil {
			return aerr
		}
		got, err := io.ReadAll(p)
		if err == nil && !bytes.Equal(got, data) {
			return fmt.Errorf("decoded data differs")
		}
		return err
	}
	good := unsignedTrailerChunks(data, 8192, crc32B64(data))
	if err := read(good, "x-amz-checksum-crc32"); err != nil {
		t.Fatalf("good body: %v", err)
	}
	bad := unsignedTrailerChunks(data, 8192, crc32B64(data[1:]))
	if err := read(bad, "x-amz-checksum-crc32"); err == nil || !strings.Contains(err.Error(), "BadDigest") {
		t.Errorf("wrong trailer checksum: %v", err)
	}
	if err := read(good, "x-amz-checksum-md7"); err == nil {
		t.Errorf("unknown trailer accepted")
	}
}

func TestPayloadDigests(t *testing.T) {
	data := []byte("hello, digests")
	run := func(h http.Header, id identity, body []byte) error {
		r, _ := http.NewRequest(http.MethodPut, "http://h/b/k", bytes.NewReader(body))
		for k, v := range h {
			r.Header[k] = v
		}
		p, aerr := newPayload(r, id, int64(len(data)))
		if aerr != nil {
			return aerr
		}
		_, err := io.ReadAll(p)
		return err
	}
	sum := md5.Sum(data)
	md5OK := base64.StdEncoding.EncodeToString(sum[:])
	if err := run(http.Header{"Content-Md5": {md5OK}}, identity{}, data); err != nil {
		t.Errorf("good Content-MD5: %v", err)
	}
	cases := []struct {
		h    http.Header
		id   identity
		body []byte
		want string
	}{
		{http.Header{"Content-Md5": {"AAAAAAAAAAAAAAAAAAAAAA=="}}, identity{}, data, "BadDigest"},
		{http.Header{"Content-Md5": {"not base64!"}}, identity{}, data, "InvalidDigest"},
		{http.Header{"X-Amz-Checksum-Crc32": {crc32B64(data)}}, identity{}, []byte("hello, digestz"), "BadDigest"},
		{nil, identity{PayloadHash: sha256Hex([]byte("other"))}, data, "XAmzContentSHA256Mismatch"},
		{nil, identity{}, data[:5], "IncompleteBody"},
		{nil, identity{}, append(bytes.Clone(data), 'x'), "IncompleteBody"},
	}
	for _, tc := range cases {
		err := run(tc.h, tc.id, tc.body)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("headers %v: err %v, want %s", tc.h, err, tc.want)
		}
	}
	if err := run(http.Header{"X-Amz-Checksum-Crc32": {crc32B64(data)}}, identity{}, data); err != nil {
		t.Errorf("good crc32: %v", err)
	}
	// CRC-64/NVME check value.
	h := newChecksum("crc64nvme")
	h.Write([]byte("123456789"))
	if got := hex.EncodeToString(h.Sum(nil)); got != "ae8b14860a799888" {
		t.Errorf("crc64nvme check value %s", got)
	}
}

func TestSignedChunksRoundTrip(t *testing.T) {
	id := awsExampleIdentity()
	id.amzDate = time.Now().UTC().Format(amzDateFormat)
	data := bytes.Repeat([]byte("xyz"), 50000)
	body := signedChunks(id, data, 64<<10)
	got, err := io.ReadAll(newChunkedReader(bytes.NewReader(body), id, int64(len(data))))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("round trip: %v (%d bytes)", err, len(got))
	}
}
