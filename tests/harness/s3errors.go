package harness

import (
	"errors"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// S3ErrorCode returns the S3 error code and HTTP status of an aws-sdk-go-v2
// error ("" and 0 for what the error does not carry).
func S3ErrorCode(err error) (string, int) {
	code, status := "", 0
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return code, status
}

// WantS3Error fails the test unless err carries the S3 error code (any code
// when "") and the HTTP status.
func WantS3Error(t interface {
	Helper()
	Errorf(format string, args ...any)
}, what string, err error, code string, status int) {
	t.Helper()
	c, s := S3ErrorCode(err)
	if (code != "" && c != code) || s != status {
		t.Errorf("%s: error %q (HTTP %d), want %q (HTTP %d): %v", what, c, s, code, status, err)
	}
}
