package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// S3Client returns an aws-sdk-go-v2 client for the server: path-style
// addressing, region us-east-1, the server's root credentials. It ignores the
// process's AWS environment and shared config (AWS_PROFILE, AWS_CA_BUNDLE, ...),
// so a developer's settings cannot leak into tests.
func (m *MinIO) S3Client(t TB) *s3.Client {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	t.Cleanup(tr.CloseIdleConnections)
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(m.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
		HTTPClient:   &http.Client{Transport: tr},
	})
}

// S3Options returns the ufs mount options ("s3.endpoint", credentials, ...)
// that point the s3 backend at this server.
func (m *MinIO) S3Options() map[string]string {
	return map[string]string{
		"s3.endpoint":          m.Endpoint,
		"s3.region":            "us-east-1",
		"s3.access_key_id":     m.AccessKey,
		"s3.secret_access_key": m.SecretKey,
	}
}

// CreateBucket creates a bucket, failing the test on error.
func (m *MinIO) CreateBucket(t TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := m.S3Client(t).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("harness: create bucket %q: %v", name, err)
	}
}

// NewBucket creates a bucket with a unique name that starts with prefix
// (lower-cased, cut to keep the name valid) and returns the name.
func (m *MinIO) NewBucket(t TB, prefix string) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	p := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			return r
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		}
		return '-'
	}, prefix)
	p = strings.Trim(p, "-")
	if len(p) > 40 {
		p = strings.TrimRight(p[:40], "-")
	}
	if p == "" {
		p = "bucket"
	}
	name := p + "-" + hex.EncodeToString(b[:])
	m.CreateBucket(t, name)
	return name
}

// SessionCredentials returns temporary credentials (key, secret, session
// token) of the root user narrowed by an inline IAM policy (STS AssumeRole
// with a session policy): a way to make some objects unreadable in a test,
// since nothing restricts the root user itself.
func (m *MinIO) SessionCredentials(t TB, policy string) (key, secret, token string) {
	t.Helper()
	c := sts.New(sts.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(m.Endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := c.AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn:         aws.String("arn:minio:iam:::role/strata-test-session"),
		RoleSessionName: aws.String("strata-test"),
		Policy:          aws.String(policy),
		DurationSeconds: aws.Int32(3600),
	})
	if err != nil {
		t.Fatalf("harness: STS AssumeRole: %v", err)
	}
	cr := out.Credentials
	return aws.ToString(cr.AccessKeyId), aws.ToString(cr.SecretAccessKey), aws.ToString(cr.SessionToken)
}
