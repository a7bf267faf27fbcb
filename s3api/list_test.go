package s3api

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// listKeys are names chosen to trip naive orderings: "a-c" < "a.txt" < "a/"
// keys < "a0", names with spaces and non-ASCII, deep and empty directories.
var listKeys = []string{
	"a-c", "a.txt", "a/b/c", "a/b-c", "a/b0", "a0", "a b/x", "b/a/a/a/a", "b/a/z",
	"ü/x", "ü-y", "z", "zz/top", "dir/sub/deep/f1", "dir/sub/deep/f2", "dir/sub/g", "dir/h",
}

// refList is what S3 answers: the keys after the marker with the prefix,
// grouped at the delimiter; a marker that is itself a common prefix skips it.
func refList(keys []string, prefix, delim, after string) []string {
	var out []string
	last := ""
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) || k <= after {
			continue
		}
		if delim != "" {
			if i := strings.Index(k[len(prefix):], delim); i >= 0 {
				cp := k[:len(prefix)+i+len(delim)]
				if cp == last || cp == after {
					continue
				}
				last = cp
				out = append(out, cp)
				continue
			}
		}
		out = append(out, k)
	}
	return out
}

func listAllV2(t *testing.T, cl *s3.Client, bucket, prefix, delim, startAfter string, maxKeys int32) []string {
	t.Helper()
	in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix), MaxKeys: aws.Int32(maxKeys)}
	if delim != "" {
		in.Delimiter = aws.String(delim)
	}
	if startAfter != "" {
		in.StartAfter = aws.String(startAfter)
	}
	var out []string
	pages := 0
	p := s3.NewListObjectsV2Paginator(cl, in)
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("list %q %q %q: %v", prefix, delim, startAfter, err)
		}
		pages++
		var items []string
		for _, o := range page.Contents {
			items = append(items, aws.ToString(o.Key))
		}
		for _, cp := range page.CommonPrefixes {
			items = append(items, aws.ToString(cp.Prefix))
		}
		if len(items) > int(maxKeys) || int(aws.ToInt32(page.KeyCount)) != len(items) {
			t.Fatalf("page of %d items, KeyCount %d, max-keys %d", len(items), aws.ToInt32(page.KeyCount), maxKeys)
		}
		slices.Sort(items)
		if len(out) > 0 && len(items) > 0 && items[0] <= out[len(out)-1] {
			t.Fatalf("page starts with %q after %q", items[0], out[len(out)-1])
		}
		out = append(out, items...)
		if pages > 1000 {
			t.Fatal("too many pages")
		}
	}
	return out
}

func TestListObjectsLexicalOrder(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	for _, k := range listKeys {
		writeFile(t, filepath.Join(e.dir, k), []byte(k))
	}
	if err := os.MkdirAll(filepath.Join(e.dir, "empty/dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	keys := slices.Clone(listKeys)
	slices.Sort(keys)
	// With the delimiter "/", directories are common prefixes even when
	// empty (as a "dir/" marker object is in S3).
	withDirs := slices.Clone(keys)
	withDirs = append(withDirs, "empty/dir/")
	slices.Sort(withDirs)
	ref := func(prefix, delim, after string) []string {
		if delim == "/" {
			return refList(withDirs, prefix, delim, after)
		}
		return refList(keys, prefix, delim, after)
	}
	cl := e.sdk(t)
	prefixes := []string{"", "a", "a/", "a/b", "dir/", "dir/sub/", "ü", "nothing", "zz/top", "a/../"}
	afters := []string{"", "a", "a/", "a/b", "a.txt", "dir/sub/", "dir/sub/deep/f1", "zzz"}
	for _, prefix := range prefixes {
		for _, delim := range []string{"", "/", "-", "b/"} {
			for _, after := range afters {
				for _, maxKeys := range []int32{1, 3, 1000} {
					got := listAllV2(t, cl, "data", prefix, delim, after, maxKeys)
					want := ref(prefix, delim, after)
					if !slices.Equal(got, want) {
						t.Errorf("prefix %q delim %q start-after %q max-keys %d:\n got %q\nwant %q", prefix, delim, after, maxKeys, got, want)
					}
				}
			}
		}
	}

	// ListObjects (V1) with markers, as boto3 and s3cmd page through it.
	for _, delim := range []string{"", "/"} {
		var got []string
		marker := ""
		for range 100 {
			out, err := cl.ListObjects(context.Background(), &s3.ListObjectsInput{Bucket: aws.String("data"), Delimiter: aws.String(delim), Marker: aws.String(marker), MaxKeys: aws.Int32(2)})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range out.Contents {
				got = append(got, aws.ToString(o.Key))
			}
			for _, cp := range out.CommonPrefixes {
				got = append(got, aws.ToString(cp.Prefix))
			}
			if !aws.ToBool(out.IsTruncated) {
				break
			}
			marker = aws.ToString(out.NextMarker)
		}
		slices.Sort(got)
		if want := ref("", delim, ""); !slices.Equal(got, want) {
			t.Errorf("V1 delimiter %q:\n got %q\nwant %q", delim, got, want)
		}
	}

	// encoding-type=url encodes keys, "/" aside (as S3 does); the SDK leaves
	// them encoded.
	out, err := cl.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("data"), Prefix: aws.String("a b"), EncodingType: "url"})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Contents) != 1 || aws.ToString(out.Contents[0].Key) != "a+b/x" {
		t.Errorf("url-encoded listing: %+v", out.Contents)
	}
	if _, err := cl.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("data"), ContinuationToken: aws.String("garbage!")}); err == nil {
		t.Error("a forged continuation token was accepted")
	}
}

// TestListObjectsBatches lists a directory much larger than a page, so
// every page reads the directory in bounded batches.
func TestListObjectsBatches(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	var keys []string
	for i := range 700 {
		k := fmt.Sprintf("flat/%x", i*7919%4096)
		if i%50 == 0 {
			k = fmt.Sprintf("flat/d%03d/leaf", i)
		}
		keys = append(keys, k)
		writeFile(t, filepath.Join(e.dir, k), nil)
	}
	slices.Sort(keys)
	cl := e.sdk(t)
	for _, maxKeys := range []int32{7, 250} {
		if got := listAllV2(t, cl, "data", "flat/", "", "", maxKeys); !slices.Equal(got, keys) {
			t.Errorf("max-keys %d: %d keys, want %d", maxKeys, len(got), len(keys))
		}
		if got, want := listAllV2(t, cl, "data", "flat/", "/", "", maxKeys), refList(keys, "flat/", "/", ""); !slices.Equal(got, want) {
			t.Errorf("delimiter, max-keys %d: %d items, want %d", maxKeys, len(got), len(want))
		}
	}
}
