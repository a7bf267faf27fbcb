package s3compat

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// BenchmarkGet compares GETs of cached objects through Strata's S3 API with
// MinIO serving the same objects directly, with the same SDK client, at
// concurrency 1 and 8: 1 MiB objects (throughput) and 4 KiB objects
// (latency: ns/op at concurrency 1, and "us/req", the mean latency of one
// request, at both).
//
//	go test -run '^$' -bench BenchmarkGet -benchtime 3s ./tests/s3compat/
func BenchmarkGet(b *testing.B) {
	st := startStrata(b, nil)
	ctx := context.Background()
	sizes := []struct {
		name  string
		size  int
		count int
	}{{"1MiB", 1 << 20, 32}, {"4KiB", 4 << 10, 256}}
	direct := minio.S3Client(b)
	for _, sz := range sizes {
		data := randBytes(b, sz.size)
		for i := range sz.count {
			if _, err := direct.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(st.dataBucket), Key: aws.String(fmt.Sprintf("bench/%s/%d", sz.name, i)),
				Body: bytes.NewReader(data)}); err != nil {
				b.Fatal(err)
			}
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	tr.Proxy = nil
	b.Cleanup(tr.CloseIdleConnections)
	clients := map[string]struct {
		cl     *s3.Client
		bucket string
	}{
		"strata": {st.sdk(b, false), "data"},
		"minio": {s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(minio.Endpoint), UsePathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider(minio.AccessKey, minio.SecretKey, ""),
			HTTPClient:  &http.Client{Transport: tr}}), st.dataBucket},
	}
	get := func(cl *s3.Client, bucket, key string, buf []byte) error {
		out, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			return err
		}
		defer out.Body.Close()
		_, err = io.CopyBuffer(io.Discard, out.Body, buf)
		return err
	}
	// Warm Strata's cache: every object read once.
	for _, sz := range sizes {
		for i := range sz.count {
			if err := get(clients["strata"].cl, "data", fmt.Sprintf("bench/%s/%d", sz.name, i), make([]byte, 64<<10)); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, sz := range sizes {
		for _, server := range []string{"strata", "minio"} {
			for _, conc := range []int{1, 8} {
				c := clients[server]
				b.Run(fmt.Sprintf("%s/%s/c%d", sz.name, server, conc), func(b *testing.B) {
					b.SetBytes(int64(sz.size))
					var next atomic.Int64
					var wg sync.WaitGroup
					errs := make(chan error, conc)
					start := time.Now()
					b.ResetTimer()
					for range conc {
						wg.Go(func() {
							buf := make([]byte, 64<<10)
							for {
								i := next.Add(1) - 1
								if i >= int64(b.N) {
									return
								}
								if err := get(c.cl, c.bucket, fmt.Sprintf("bench/%s/%d", sz.name, i%int64(sz.count)), buf); err != nil {
									errs <- err
									return
								}
							}
						})
					}
					wg.Wait()
					b.StopTimer()
					close(errs)
					if err := <-errs; err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(time.Since(start).Microseconds())*float64(conc)/float64(b.N), "us/req")
				})
			}
		}
	}
}
