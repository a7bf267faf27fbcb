package worker

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stratafs/strata/ufs"
)

// BenchmarkMetadataBatchPersisted is what a load job's metadata batch (512
// stats and their directory's listing) costs a worker with a disk tier:
// cache, encode, write and fsync before the answer.
func BenchmarkMetadataBatchPersisted(b *testing.B) {
	for _, persisted := range []bool{false, true} {
		b.Run(fmt.Sprintf("persisted=%v", persisted), func(b *testing.B) {
			c := newMetaCache(200_000, time.Minute)
			if persisted {
				st, err := openMetaStore(b.TempDir(), slog.New(slog.DiscardHandler))
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				c.store = st
			}
			fis := make([]ufs.FileInfo, 512)
			for i := 0; b.Loop(); i++ {
				dir := fmt.Sprintf("train/d%06d", i)
				for j := range fis {
					fis[j] = ufs.FileInfo{Path: fmt.Sprintf("%s/sample-%05d.jpg", dir, j), Size: 110_000 + int64(j),
						ModTime: time.Unix(1_700_000_000, int64(j)), ETag: `"0123456789abcdef0123456789abcdef"`}
				}
				c.storeStats("m", fis, time.Minute)
				c.storeList("m", dir, fis, time.Minute)
				if err := c.sync(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMetadataRestore is a worker's start with a full metadata cache
// (200,000 stats, 400 listings of 500 entries) on disk.
func BenchmarkMetadataRestore(b *testing.B) {
	dir := b.TempDir()
	log := slog.New(slog.DiscardHandler)
	st, err := openMetaStore(dir, log)
	if err != nil {
		b.Fatal(err)
	}
	c := newMetaCache(200_000, time.Minute)
	c.store = st
	for d := range 400 {
		var fis []ufs.FileInfo
		for j := range 500 {
			fis = append(fis, ufs.FileInfo{Path: fmt.Sprintf("train/d%04d/sample-%05d.jpg", d, j), Size: 110_000,
				ModTime: time.Unix(1_700_000_000, 0), ETag: `"0123456789abcdef0123456789abcdef"`})
		}
		c.storeStats("m", fis, time.Minute)
		c.storeList("m", fmt.Sprintf("train/d%04d", d), fis, time.Minute)
	}
	if err := c.sync(); err != nil {
		b.Fatal(err)
	}
	_ = st.Close()
	for b.Loop() {
		st, err := openMetaStore(dir, log)
		if err != nil {
			b.Fatal(err)
		}
		c := newMetaCache(200_000, time.Minute)
		c.store = st
		rs, err := c.restore(func(string) bool { return true })
		if err != nil || rs.stats != 200_000 || rs.lists != 400 {
			b.Fatalf("restore: %+v %v", rs, err)
		}
		_ = st.Close()
	}
}
