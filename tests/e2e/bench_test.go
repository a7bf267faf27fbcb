package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/tests/testcluster"
)

// BenchmarkClusterRead measures the aggregate read throughput of a cached
// dataset (16 files of 16 MiB, 4 MiB blocks spread over the ring) read by 8
// parallel readers through the client, with 1, 2 and 3 in-process workers,
// against reading the same files from the local disk. Run:
//
//	go test -run '^$' -bench ClusterRead -benchtime 20x ./tests/e2e/
func BenchmarkClusterRead(b *testing.B) {
	dir := b.TempDir()
	const files, size = 16, 16 << 20
	buf := make([]byte, size)
	for i := range files {
		for j := range buf {
			buf[j] = byte(i + j)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d", i)), buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("local-disk", func(b *testing.B) {
		b.SetBytes(files * size)
		for b.Loop() {
			parallel(b, files, func(i int) error {
				f, err := os.Open(filepath.Join(dir, fmt.Sprintf("f%02d", i)))
				if err != nil {
					return err
				}
				defer f.Close()
				_, err = f.ReadAt(make([]byte, size), 0)
				return err
			})
		}
	})
	for _, workers := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			c := testcluster.Start(b, testcluster.Options{Workers: workers, Tune: func(cfg *conf.Config) {
				cfg.Worker.BlockSize = 4 << 20
				cfg.Worker.Cache.Tiers[0].Size = 512 << 20
			}})
			c.MustMount(b, "/bench", "file://"+dir, nil)
			read := func(i int) error {
				f, err := c.Client.Open(context.Background(), fmt.Sprintf("/bench/f%02d", i), false)
				if err != nil {
					return err
				}
				defer f.Close()
				_, err = f.ReadAt(make([]byte, size), 0)
				return err
			}
			parallel(b, files, read) // warm the cache
			b.SetBytes(files * size)
			b.ResetTimer()
			for b.Loop() {
				parallel(b, files, read)
			}
		})
	}
}

func parallel(b *testing.B, n int, fn func(i int) error) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(i); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
}

// BenchmarkSecureWarmRead measures warm reads through a worker's data port
// (2 workers, so most blocks cross HTTP) with no security, with TLS on the
// control ports and signed data tokens on a plain-HTTP data port (the
// default with certificates), and with TLS on the data port too
// (worker.data_tls). Compare the ratios of one run:
//
//	go test -run '^$' -bench SecureWarmRead -benchtime 20x ./tests/e2e/
func BenchmarkSecureWarmRead(b *testing.B) {
	dir := b.TempDir()
	const files, size = 16, 8 << 20
	buf := make([]byte, size)
	for i := range files {
		for j := range buf {
			buf[j] = byte(i * j)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d", i)), buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for _, mode := range []struct {
		name         string
		tls, dataTLS bool
	}{{"plaintext", false, false}, {"tls+tokens", true, false}, {"tls+data-tls", true, true}} {
		b.Run(mode.name, func(b *testing.B) {
			c := testcluster.Start(b, testcluster.Options{Workers: 2, TLS: mode.tls, Tune: func(cfg *conf.Config) {
				cfg.Worker.BlockSize = 4 << 20
				cfg.Worker.Cache.Tiers[0].Size = 512 << 20
				cfg.Worker.DataTLS = mode.dataTLS
			}})
			c.MustMount(b, "/bench", "file://"+dir, nil)
			read := func(i int) error {
				f, err := c.Client.Open(context.Background(), fmt.Sprintf("/bench/f%02d", i), false)
				if err != nil {
					return err
				}
				defer f.Close()
				_, err = f.ReadAt(make([]byte, size), 0)
				return err
			}
			parallel(b, files, read) // warm the cache
			b.SetBytes(files * size)
			b.ResetTimer()
			for b.Loop() {
				parallel(b, files, read)
			}
		})
	}
}
