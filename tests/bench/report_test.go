package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// statOf builds a Stat from measurements.
func statOf(vs ...float64) *Stat {
	s := &Stat{}
	for _, v := range vs {
		s.Add(v)
	}
	return s
}

// syntheticResults is a small run with hand-checkable figures: a
// higher-is-better workload and a lower-is-better one, every role, one
// failed figure and one case that was not measured.
func syntheticResults() *Results {
	big := &Workload{
		ID:             "big",
		Title:          "Big file: 1 GiB, sequential 1 MiB reads",
		Description:    "One reader streams a 1 GiB file.",
		Unit:           "MB/s",
		HigherIsBetter: true,
		Cases:          []string{"cold", "warm", "hot"},
	}
	fuse := big.SeriesFor("Strata FUSE", RoleStrata)
	fuse.Values["cold"] = statOf(400, 420, 410)
	fuse.Values["warm"] = statOf(800, 812, 830)
	fuse.Values["hot"] = statOf(1500, 1534, 1600)
	s3 := big.SeriesFor("Strata S3 | API", RoleStrata)
	s3.Values["cold"] = &Stat{Err: "connection refused: dial tcp 127.0.0.1:9000: the server did not answer after 3 attempts | giving up"}
	s3.Values["warm"] = statOf(700)
	// "hot" was not measured for Strata S3.
	rclone := big.SeriesFor("rclone mount", RolePeer)
	rclone.Values["cold"] = statOf(1000)
	rclone.Values["warm"] = statOf(750)
	rclone.Values["hot"] = statOf(1200)
	s3fsSeries := big.SeriesFor("s3fs", RolePeer)
	s3fsSeries.Values["cold"] = statOf(500)
	s3fsSeries.Values["warm"] = statOf(600)
	s3fsSeries.Values["hot"] = statOf(900)
	disk := big.SeriesFor("local disk", RoleCeiling)
	disk.Values["cold"] = statOf(2050)
	disk.Values["warm"] = statOf(2000)
	disk.Values["hot"] = statOf(4000)
	loop := big.SeriesFor("go-fuse loopback (FUSE ceiling)", RoleCeiling)
	loop.Values["cold"] = statOf(1800)
	loop.Values["warm"] = statOf(1900)
	loop.Values["hot"] = statOf(3000)

	meta := &Workload{
		ID:          "meta",
		Title:       "Metadata: stat 10,000 files",
		Description: "Walk a tree of 10,000 small files.",
		Unit:        "s",
		Cases:       []string{"cold", "warm"},
	}
	mf := meta.SeriesFor("Strata FUSE", RoleStrata)
	mf.Values["cold"] = statOf(2.0, 2.5, 3.0)
	mf.Values["warm"] = statOf(0.5, 0.512, 0.6)
	mr := meta.SeriesFor("rclone mount", RolePeer)
	mr.Values["cold"] = statOf(4.0)
	mr.Values["warm"] = statOf(0.4)
	md := meta.SeriesFor("local disk", RoleCeiling)
	md.Values["cold"] = statOf(1.0)
	md.Values["warm"] = statOf(0.1)

	return &Results{
		Started:  time.Date(2026, 5, 1, 14, 3, 0, 0, time.UTC),
		Duration: 750,
		Host:     Host{CPUs: 16, MemoryGiB: 128, Kernel: "6.8.0-60-generic", Go: "go1.26.8"},
		Runs:     3,
		Seed:     42,
		Command:  "make bench",
		Versions: []Version{
			{System: "Strata", Version: "v0.1.0-dev"},
			{System: "rclone", Version: "v1.69.1"},
		},
		Groups: []*Workload{big, meta},
	}
}

func TestWriteReport(t *testing.T) {
	dir := t.TempDir()
	doc := filepath.Join(dir, "docs", "BENCHMARKS.md")
	assets := filepath.Join(dir, "docs", "bench")
	r := syntheticResults()
	if err := WriteReport(r, doc, assets); err != nil {
		t.Fatal(err)
	}

	for _, id := range []string{"big", "meta"} {
		b, err := os.ReadFile(filepath.Join(assets, id+".png"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
			t.Errorf("%s.png does not start with the PNG signature", id)
		}
		if len(b) <= 1024 {
			t.Errorf("%s.png is only %d bytes", id, len(b))
		}
	}

	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	want := []string{
		reportBegin,
		reportEnd,
		"### Run",
		"2026-05-01 14:03 UTC",
		"taking 12m30s",
		"16 CPUs, 128 GiB of memory, kernel 6.8.0-60-generic, go1.26.8",
		"median of 3 runs",
		"seed 42",
		"`make bench`",
		"shared with other work",
		"| rclone | v1.69.1 |",
		"### Big file: 1 GiB, sequential 1 MiB reads",
		"One reader streams a 1 GiB file.",
		"![Big file: 1 GiB, sequential 1 MiB reads](bench/big.png)",
		"![Metadata: stat 10,000 files](bench/meta.png)",
		"| System | Role | cold (median, min–max) | warm (median, min–max) | hot (median, min–max) |",
		// Higher is better: best non-ceiling bold, ceilings never bold.
		"| Strata FUSE | Strata | 410 MB/s (400–420) | **812 MB/s** (800–830) | **1,534 MB/s** (1,500–1,600) |",
		"| rclone mount | peer | **1,000 MB/s** | 750 MB/s | 1,200 MB/s |",
		"| local disk | ceiling | 2,050 MB/s | 2,000 MB/s | 4,000 MB/s |",
		// An error (pipes escaped, truncated) and a case not measured.
		`| Strata S3 \| API | Strata | error: connection refused: dial tcp 127.0.0.1:9000: the server did… | 700 MB/s | — |`,
		// Ratios: cold 410/2050 and 410/1000, warm 812/2000 and 812/750,
		// hot 1534/4000 and 1534/1200.
		"| System | cold × ceiling | cold × best peer | warm × ceiling | warm × best peer | hot × ceiling | hot × best peer |",
		"| Strata FUSE | 0.20× | 0.41× | 0.41× | 1.08× | 0.38× | 1.28× |",
		`| Strata S3 \| API | — | — | 0.35× | 0.93× | — | — |`,
		"| go-fuse loopback (FUSE ceiling) | — | — | — | — | — | — |",
		"- Strata FUSE, cold: 0.41× rclone mount (best peer): 410 MB/s vs 1,000 MB/s",
		"- Strata S3 | API, warm: 0.93× rclone mount (best peer): 700 MB/s vs 750 MB/s",
		"- Strata S3 | API, cold: no figure (error: connection refused",
		// Lower is better: ratios are ref/v, the lowest time is bold.
		"Unit: s, lower is better.",
		"| Strata FUSE | Strata | **2.50 s** (2.00–3.00) | 0.512 s (0.500–0.600) |",
		"| rclone mount | peer | 4.00 s | **0.400 s** |",
		// cold 1/2.5 and 4/2.5, warm 0.1/0.512 and 0.4/0.512.
		"| Strata FUSE | 0.40× | 1.60× | 0.20× | 0.78× |",
		"| rclone mount | 0.25× | 1.00× | 0.25× | 1.00× |",
		"- Strata FUSE, warm: 0.78× rclone mount (best peer): 0.512 s vs 0.400 s",
	}
	for _, w := range want {
		if !strings.Contains(md, w) {
			t.Errorf("document lacks %q", w)
		}
	}
	for _, bad := range []string{
		"**2,050", "**4,000", "**1.00 s", // ceilings are never bold
		"Strata FUSE, hot:", "Strata FUSE, cold: 1.60", // wins are not losses
		"Strata S3 | API, hot", // not measured is not a loss
	} {
		if strings.Contains(md, bad) {
			t.Errorf("document has %q", bad)
		}
	}
	if t.Failed() {
		t.Log(md)
	}
}

func TestWriteReportKeepsHandWrittenText(t *testing.T) {
	dir := t.TempDir()
	doc := filepath.Join(dir, "BENCHMARKS.md")
	assets := filepath.Join(dir, "docs", "bench")
	before := "# Benchmarks\n\nHand-written introduction.\n\n"
	after := "\n\n## Analysis\n\nHand-written analysis | with a pipe.\n"
	orig := before + reportBegin + "\nold generated text\n" + reportEnd + after
	if err := os.WriteFile(doc, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	r := syntheticResults()
	for range 2 {
		if err := WriteReport(r, doc, assets); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	if !strings.HasPrefix(md, before+reportBegin+"\n") {
		t.Errorf("text before the markers changed:\n%s", md)
	}
	if !strings.HasSuffix(md, reportEnd+after) {
		t.Errorf("text after the markers changed:\n%s", md)
	}
	if strings.Contains(md, "old generated text") {
		t.Error("the old generated text was kept")
	}
	for _, s := range []string{reportBegin, reportEnd, "### Run", "### Big file"} {
		if n := strings.Count(md, s); n != 1 {
			t.Errorf("%q appears %d times, want 1", s, n)
		}
	}
	if !strings.Contains(md, "](docs/bench/big.png)") {
		t.Error("the chart link is not relative to the document")
	}

	// The same results give the same document.
	if err := WriteReport(r, doc, assets); err != nil {
		t.Fatal(err)
	}
	again, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != md {
		t.Error("a second run with the same results changed the document")
	}

	// New figures replace the generated part only.
	r.Groups[0].Series[0].Values["cold"] = statOf(2222)
	if err := WriteReport(r, doc, assets); err != nil {
		t.Fatal(err)
	}
	b, err = os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	md = string(b)
	if !strings.HasPrefix(md, before+reportBegin+"\n") || !strings.HasSuffix(md, reportEnd+after) {
		t.Errorf("hand-written text changed:\n%s", md)
	}
	if !strings.Contains(md, "**2,222 MB/s**") || strings.Contains(md, "410 MB/s (400–420)") {
		t.Error("the generated part was not replaced")
	}
}

func TestWriteReportWithoutMarkers(t *testing.T) {
	dir := t.TempDir()
	assets := filepath.Join(dir, "bench")

	// A missing document is created.
	created := filepath.Join(dir, "new.md")
	if err := WriteReport(syntheticResults(), created, assets); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(created)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), reportBegin+"\n") || !strings.HasSuffix(string(b), reportEnd+"\n") {
		t.Errorf("new document is not the generated section:\n%s", b)
	}

	// A document without markers gets them appended.
	doc := filepath.Join(dir, "old.md")
	hand := "# Notes\n\nNo markers here."
	if err := os.WriteFile(doc, []byte(hand), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteReport(syntheticResults(), doc, assets); err != nil {
		t.Fatal(err)
	}
	b, err = os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), hand+"\n\n"+reportBegin+"\n") {
		t.Errorf("markers not appended after the hand-written text:\n%s", b)
	}
	if strings.Count(string(b), reportBegin) != 1 {
		t.Error("markers appended more than once")
	}

	// Unbalanced markers are an error, and the file is left alone.
	broken := filepath.Join(dir, "broken.md")
	text := "intro\n" + reportEnd + "\n" + reportBegin + "\n"
	if err := os.WriteFile(broken, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteReport(syntheticResults(), broken, assets); err == nil {
		t.Error("unbalanced markers: no error")
	}
	if b, _ := os.ReadFile(broken); string(b) != text {
		t.Error("a document with unbalanced markers was changed")
	}
}

func TestWriteReportRejectsBadID(t *testing.T) {
	r := syntheticResults()
	r.Groups[0].ID = "../escape"
	dir := t.TempDir()
	if err := WriteReport(r, filepath.Join(dir, "b.md"), filepath.Join(dir, "bench")); err == nil {
		t.Error("a workload id with a path separator was accepted")
	}
}

func TestBehindWhenStrataWins(t *testing.T) {
	w := &Workload{ID: "w", Title: "W", Unit: "ops/s", HigherIsBetter: true, Cases: []string{"hot"}}
	w.SeriesFor("Strata S3", RoleStrata).Values["hot"] = statOf(900)
	w.SeriesFor("MinIO GET", RolePeer).Values["hot"] = statOf(900)
	var b strings.Builder
	writeBehind(&b, w)
	if !strings.Contains(b.String(), "Strata matches or beats every peer here.") {
		t.Errorf("a tie is reported as a loss:\n%s", b.String())
	}
}

func TestSummary(t *testing.T) {
	got := Summary(syntheticResults())
	for _, w := range []string{
		"big cold: Strata FUSE 410 MB/s (0.41× rclone mount); Strata S3 | API error: connection refused",
		"big warm: Strata FUSE 812 MB/s (1.08× rclone mount); Strata S3 | API 700 MB/s (0.93× rclone mount)",
		"big hot: Strata FUSE 1,534 MB/s (1.28× rclone mount); Strata S3 | API not measured",
		"meta cold: Strata FUSE 2.50 s (1.60× rclone mount)",
		"meta warm: Strata FUSE 0.512 s (0.78× rclone mount)",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("summary lacks %q:\n%s", w, got)
		}
	}
}

func TestFormatNumber(t *testing.T) {
	for _, c := range []struct {
		in   float64
		want string
	}{
		{0, "0"},
		{0.512, "0.512"},
		{0.05123, "0.0512"},
		{0.0009996, "0.00100"},
		{1, "1.00"},
		{1.234, "1.23"},
		{9.996, "10.0"},
		{12.34, "12.3"},
		{99.94, "99.9"},
		{99.96, "100"},
		{812.4, "812"},
		{999.6, "1,000"},
		{1234, "1,234"},
		{1234567.8, "1,234,568"},
		{-1234, "-1,234"},
		{-0.512, "-0.512"},
	} {
		if got := formatNumber(c.in); got != c.want {
			t.Errorf("formatNumber(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestFormatRatio(t *testing.T) {
	for _, c := range []struct {
		in   float64
		want string
	}{
		{0.83, "0.83×"},
		{1.1, "1.10×"},
		{12.54, "12.5×"},
		{150.2, "150×"},
		{1234, "1,234×"},
		{0.0423, "0.042×"},
	} {
		if got := formatRatio(c.in); got != c.want {
			t.Errorf("formatRatio(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestRatioDirection(t *testing.T) {
	up := &Workload{HigherIsBetter: true}
	down := &Workload{HigherIsBetter: false}
	if q, ok := betterRatio(up, 50, 100); !ok || q != 0.5 {
		t.Errorf("higher is better: betterRatio(50, 100) = %v, %v; want 0.5", q, ok)
	}
	if q, ok := betterRatio(down, 50, 100); !ok || q != 2 {
		t.Errorf("lower is better: betterRatio(50, 100) = %v, %v; want 2", q, ok)
	}
	if _, ok := betterRatio(down, 0, 100); ok {
		t.Error("a zero figure gave a ratio")
	}
}

func TestEscapeAndShortErr(t *testing.T) {
	if got := escapeCell("a|b\nc"); got != `a\|b c` {
		t.Errorf("escapeCell = %q", got)
	}
	long := strings.Repeat("x", 100)
	got := shortErr(long)
	if n := len([]rune(got)); n != errTextMax || !strings.HasSuffix(got, "…") {
		t.Errorf("shortErr kept %d runes: %q", n, got)
	}
	if got := shortErr("  two\n lines "); got != "two lines" {
		t.Errorf("shortErr = %q", got)
	}
}

func TestRelImageDir(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ doc, assets, want string }{
		{"docs/BENCHMARKS.md", "docs/bench", "bench"},
		{"README.md", "docs/bench", "docs/bench"},
		{"docs/x/B.md", "docs/bench", "../bench"},
	} {
		got, err := relImageDir(filepath.Join(dir, c.doc), filepath.Join(dir, c.assets))
		if err != nil || got != c.want {
			t.Errorf("relImageDir(%s, %s) = %q, %v; want %q", c.doc, c.assets, got, err, c.want)
		}
	}
}

func TestNiceTicks(t *testing.T) {
	for _, c := range []struct {
		lo, hi float64
		want   []string
	}{
		{0, 4200, []string{"0", "1,000", "2,000", "3,000", "4,000"}},
		{0, 4.2, []string{"0", "1", "2", "3", "4"}},
		{0, 0.63, []string{"0", "0.2", "0.4", "0.6"}},
		{0, 12, []string{"0", "2.5", "5.0", "7.5", "10.0"}},
		{0, 13, []string{"0", "5", "10"}},
		{0, 1234567, []string{"0", "250,000", "500,000", "750,000", "1,000,000"}},
	} {
		var got []string
		for _, tk := range niceTicks(c.lo, c.hi) {
			if tk.Label != "" {
				got = append(got, tk.Label)
			}
		}
		if strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("niceTicks(%v, %v) labels = %q, want %q", c.lo, c.hi, got, c.want)
		}
	}
}

func TestWriteReportDegenerate(t *testing.T) {
	failed := &Workload{ID: "failed", Title: "All failed", Unit: "ops/s", HigherIsBetter: true, Cases: []string{"hot"}}
	failed.SeriesFor("Strata S3", RoleStrata).Values["hot"] = &Stat{Err: "boom"}
	failed.SeriesFor("MinIO GET", RolePeer).Values["hot"] = &Stat{Err: "boom"}
	r := &Results{Groups: []*Workload{
		{ID: "empty", Title: "Nothing measured"},
		failed,
	}}
	dir := t.TempDir()
	if err := WriteReport(r, filepath.Join(dir, "b.md"), filepath.Join(dir, "bench")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "b.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"| Strata S3 | Strata | error: boom |", "No peer has a figure to compare with here."} {
		if !strings.Contains(string(b), w) {
			t.Errorf("document lacks %q:\n%s", w, b)
		}
	}
	for _, id := range []string{"empty", "failed"} {
		if _, err := os.Stat(filepath.Join(dir, "bench", id+".png")); err != nil {
			t.Error(err)
		}
	}
}
