package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/stratafs/strata/ufs"
)

// classify maps an SDK or network error to a ufs sentinel and a short,
// human cause ("" when the sentinel says it all). It is the one place where
// S3 errors are translated; it returns a nil sentinel for errors it does not
// know. Causes never contain credentials.
func classify(err error, bucket string) (sentinel error, cause string) {
	var code string
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	switch code {
	case "NoSuchBucket":
		return ufs.ErrNotFound, fmt.Sprintf("bucket %q does not exist", bucket)
	case "NoSuchKey", "NotFound":
		return ufs.ErrNotFound, ""
	case "InvalidAccessKeyId":
		return ufs.ErrPermission, "the server does not know the access key id (InvalidAccessKeyId)"
	case "SignatureDoesNotMatch":
		return ufs.ErrPermission, "the request signature does not match: is the secret access key right? (SignatureDoesNotMatch)"
	case "AccessDenied", "AllAccessDisabled", "AccountProblem", "Forbidden":
		return ufs.ErrPermission, fmt.Sprintf("access denied: check the credentials and the bucket policy (%s)", code)
	case "ExpiredToken", "InvalidToken", "TokenRefreshRequired", "ExpiredTokenException":
		return ufs.ErrPermission, fmt.Sprintf("the session token is invalid or has expired (%s)", code)
	case "RequestTimeTooSkewed":
		return ufs.ErrPermission, "this machine's clock is too far from the server's (RequestTimeTooSkewed)"
	case "PreconditionFailed":
		return ufs.ErrChanged, ""
	case "PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException":
		return ufs.ErrInvalidURI, fmt.Sprintf("bucket %q is in another region: set s3.region (%s)", bucket, code)
	case "InvalidBucketName":
		return ufs.ErrInvalidURI, fmt.Sprintf("%q is not a valid bucket name", bucket)
	case "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "XMinioServerNotInitialized":
		return ufs.ErrUnavailable, fmt.Sprintf("the server is busy or failing (%s)", code)
	}

	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		switch st := re.HTTPStatusCode(); st {
		case http.StatusNotFound:
			return ufs.ErrNotFound, ""
		case http.StatusForbidden, http.StatusUnauthorized:
			return ufs.ErrPermission, fmt.Sprintf("access denied: check the credentials and the bucket policy (HTTP %d)", st)
		case http.StatusPreconditionFailed:
			return ufs.ErrChanged, ""
		case http.StatusMovedPermanently:
			return ufs.ErrInvalidURI, fmt.Sprintf("bucket %q is in another region: set s3.region (HTTP 301)", bucket)
		case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return ufs.ErrUnavailable, fmt.Sprintf("the server is failing (HTTP %d)", st)
		}
	}

	var se *v4.SigningError
	if errors.As(err, &se) {
		return ufs.ErrPermission, "no usable credentials: set s3.access_key_id and s3.secret_access_key, or configure the AWS SDK's default chain (environment, shared config, instance role)"
	}

	var dnsErr *net.DNSError
	var netErr net.Error
	var opErr *net.OpError
	switch {
	case errors.As(err, &dnsErr):
		return ufs.ErrUnavailable, fmt.Sprintf("cannot resolve %q", dnsErr.Name)
	case errors.Is(err, syscall.ECONNREFUSED):
		return ufs.ErrUnavailable, "connection refused: is the endpoint right and the server running?"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return ufs.ErrUnavailable, "timed out"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH), errors.As(err, &opErr):
		return ufs.ErrUnavailable, "network error"
	}
	return nil, ""
}

// mapErr wraps err for operation op on path p: the sentinel from classify, the
// cause, and the SDK error itself (request ids help support). Cancellation
// keeps context.Canceled in the chain and gets no sentinel.
func (f *FS) mapErr(op, p string, err error) error {
	target := f.uri(p)
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("s3: %s %q: %w", op, target, err)
	}
	sentinel, cause := classify(err, f.bucket)
	switch {
	case sentinel == nil:
		return fmt.Errorf("s3: %s %q: %w", op, target, err)
	case cause == "":
		return fmt.Errorf("s3: %s %q: %w", op, target, sentinel)
	default:
		return fmt.Errorf("s3: %s %q: %w: %s: %w", op, target, sentinel, cause, err)
	}
}

// isNotFound reports a missing key (and not a missing bucket, which no
// fallback can fix).
func isNotFound(err error, bucket string) bool {
	s, cause := classify(err, bucket)
	return s == ufs.ErrNotFound && cause == ""
}

// isInvalidRange reports a 416: the range starts at or after the end.
func isInvalidRange(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "InvalidRange" {
		return true
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusRequestedRangeNotSatisfiable
}
