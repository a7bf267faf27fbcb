package main

import (
	"errors"
	"fmt"
	"image/color"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// The markers that delimit the generated part of the benchmark document.
// Everything outside them is hand-written and never touched.
const (
	reportBegin = "<!-- BEGIN GENERATED: make bench -->"
	reportEnd   = "<!-- END GENERATED: make bench -->"
)

// Chart geometry: 8in x 4.5in at 100 DPI is an 800x450 PNG.
const (
	chartWidth  = 8 * vg.Inch
	chartHeight = 4.5 * vg.Inch
	chartDPI    = 100
)

// errTextMax is how many characters of an error message a table cell shows.
const errTextMax = 60

// WriteReport renders r: one PNG chart per workload in assetsDir (created if
// needed), named <workload ID>.png, and the generated markdown section in
// docPath, between the "make bench" markers. Text outside the markers is kept
// as it is; a document without the markers gets them appended, and a missing
// document is created. It is not safe to run concurrently on the same paths.
func WriteReport(r *Results, docPath, assetsDir string) error {
	if r == nil {
		return errors.New("bench report: no results")
	}
	for _, w := range r.Groups {
		if w.ID == "" || w.ID != filepath.Base(w.ID) || strings.ContainsAny(w.ID, `/\`) || w.ID == "." || w.ID == ".." {
			return fmt.Errorf("bench report: workload id %q is not a plain file name", w.ID)
		}
	}
	if err := os.MkdirAll(assetsDir, 0o755); err != nil {
		return fmt.Errorf("bench report: %w", err)
	}
	colors := systemColors(r)
	for _, w := range r.Groups {
		p := filepath.Join(assetsDir, w.ID+".png")
		if err := writeChart(w, colors, p); err != nil {
			return fmt.Errorf("bench report: chart %s: %w", p, err)
		}
	}
	imgDir, err := relImageDir(docPath, assetsDir)
	if err != nil {
		return fmt.Errorf("bench report: %w", err)
	}
	if err := spliceDoc(docPath, renderMarkdown(r, imgDir)); err != nil {
		return fmt.Errorf("bench report: %w", err)
	}
	return nil
}

// Summary returns a plain-text digest of r for the terminal: one line per
// workload and case with each Strata figure and its ratio to the best peer
// (above 1× means Strata is better).
func Summary(r *Results) string {
	var b strings.Builder
	b.WriteString("Summary: Strata figures, and the ratio to the best peer (above 1× = Strata better)\n")
	if r == nil {
		return b.String()
	}
	for _, w := range r.Groups {
		for _, c := range w.Cases {
			var parts []string
			peer, peerStat := bestOfRole(w, c, RolePeer)
			for _, s := range w.Series {
				if s.Role != RoleStrata {
					continue
				}
				st := s.Values[c]
				switch {
				case st.OK():
					part := s.System + " " + formatNumber(st.Median) + " " + w.Unit
					if peer != nil {
						if q, ok := betterRatio(w, st.Median, peerStat.Median); ok {
							part += " (" + formatRatio(q) + " " + peer.System + ")"
						}
					} else {
						part += " (no peer figure)"
					}
					parts = append(parts, part)
				case st != nil && st.Err != "":
					parts = append(parts, s.System+" error: "+shortErr(st.Err))
				default:
					parts = append(parts, s.System+" not measured")
				}
			}
			if len(parts) == 0 {
				parts = append(parts, "no Strata figure")
			}
			fmt.Fprintf(&b, "%s %s: %s\n", w.ID, c, strings.Join(parts, "; "))
		}
	}
	return b.String()
}

// isBetter reports whether a is strictly better than b in workload w.
func isBetter(w *Workload, a, b float64) bool {
	if w.HigherIsBetter {
		return a > b
	}
	return a < b
}

// bestOfRole returns the series with the given role that has the best median for
// case c, and that median's Stat; nil when no such series has a figure.
func bestOfRole(w *Workload, c string, role Role) (*Series, *Stat) {
	var bs *Series
	var bst *Stat
	for _, s := range w.Series {
		st := s.Values[c]
		if s.Role != role || !st.OK() {
			continue
		}
		if bst == nil || isBetter(w, st.Median, bst.Median) {
			bs, bst = s, st
		}
	}
	return bs, bst
}

// bestNonCeiling returns the best median for case c among series that are
// not ceilings, and whether there is one.
func bestNonCeiling(w *Workload, c string) (float64, bool) {
	var v float64
	found := false
	for _, s := range w.Series {
		st := s.Values[c]
		if s.Role == RoleCeiling || !st.OK() {
			continue
		}
		if !found || isBetter(w, st.Median, v) {
			v, found = st.Median, true
		}
	}
	return v, found
}

// betterRatio compares v with the reference ref so that a result above 1 always
// means v is better: v/ref when higher is better, ref/v otherwise. ok is
// false when the ratio is undefined.
func betterRatio(w *Workload, v, ref float64) (q float64, ok bool) {
	if w.HigherIsBetter {
		q = v / ref
	} else {
		q = ref / v
	}
	if v == 0 || ref == 0 || math.IsNaN(q) || math.IsInf(q, 0) {
		return 0, false
	}
	return q, true
}

// formatNumber formats v with three significant figures, and whole numbers
// with thousands separators from 100 up: 0.512, 12.3, 812, 1,234.
func formatNumber(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "∞"
	case math.IsInf(v, -1):
		return "-∞"
	case v == 0:
		return "0"
	}
	if math.Abs(v) >= 99.95 {
		return groupThousands(strconv.FormatFloat(math.Round(v), 'f', 0, 64))
	}
	mag := int(math.Floor(math.Log10(math.Abs(v))))
	dec := max(2-mag, 0)
	s := strconv.FormatFloat(v, 'f', dec, 64)
	// Rounding may carry into the next power of ten (9.996 -> "10.00"):
	// drop a decimal to stay at three significant figures.
	if r, err := strconv.ParseFloat(s, 64); err == nil && r != 0 &&
		int(math.Floor(math.Log10(math.Abs(r)))) > mag && dec > 0 {
		s = strconv.FormatFloat(v, 'f', dec-1, 64)
	}
	return s
}

// groupThousands inserts commas into an integer string: "-1234567" ->
// "-1,234,567".
func groupThousands(s string) string {
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	if len(s) <= 3 {
		return sign + s
	}
	var b strings.Builder
	head := len(s) % 3
	if head > 0 {
		b.WriteString(s[:head])
	}
	for i := head; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return sign + b.String()
}

// formatRatio formats a ratio as "0.83×", "1.10×", "12.5×", "150×" or, for
// small ones, with two significant figures ("0.042×").
func formatRatio(q float64) string {
	var s string
	switch a := math.Abs(q); {
	case a >= 99.5:
		s = groupThousands(strconv.FormatFloat(math.Round(q), 'f', 0, 64))
	case a >= 9.995:
		s = strconv.FormatFloat(q, 'f', 1, 64)
	case a >= 0.0995 || a == 0:
		s = strconv.FormatFloat(q, 'f', 2, 64)
	default:
		mag := int(math.Floor(math.Log10(a)))
		s = strconv.FormatFloat(q, 'f', 1-mag, 64)
	}
	return s + "×"
}

// escapeCell makes text safe inside a markdown table cell: pipes escaped,
// line breaks turned into spaces.
func escapeCell(s string) string {
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
	return strings.ReplaceAll(s, "|", `\|`)
}

// shortErr collapses an error message to one line of at most errTextMax
// characters.
func shortErr(msg string) string {
	msg = strings.Join(strings.Fields(msg), " ")
	if utf8.RuneCountInString(msg) <= errTextMax {
		return msg
	}
	runes := []rune(msg)
	return strings.TrimSpace(string(runes[:errTextMax-1])) + "…"
}

// codeSpan wraps s in a markdown code span, using a longer fence when s
// itself holds backticks.
func codeSpan(s string) string {
	if strings.Contains(s, "`") {
		return "`` " + s + " ``"
	}
	return "`" + s + "`"
}

// relImageDir returns the directory holding the charts relative to the
// document's directory, with forward slashes, as a markdown link needs it.
func relImageDir(docPath, assetsDir string) (string, error) {
	docDir, err := filepath.Abs(filepath.Dir(docPath))
	if err != nil {
		return "", fmt.Errorf("%s: %w", docPath, err)
	}
	assets, err := filepath.Abs(assetsDir)
	if err != nil {
		return "", fmt.Errorf("%s: %w", assetsDir, err)
	}
	rel, err := filepath.Rel(docDir, assets)
	if err != nil {
		return "", fmt.Errorf("%s relative to %s: %w", assetsDir, docPath, err)
	}
	return filepath.ToSlash(rel), nil
}

// renderMarkdown returns the generated section of the document; imgDir is
// where the charts are, relative to the document.
func renderMarkdown(r *Results, imgDir string) string {
	var b strings.Builder
	writeRunSection(&b, r)
	for _, w := range r.Groups {
		writeWorkloadSection(&b, w, imgDir)
	}
	return b.String()
}

// writeRunSection writes the paragraph on how and where the run was made and
// the versions table.
func writeRunSection(b *strings.Builder, r *Results) {
	b.WriteString("### Run\n\n")
	when := "at an unrecorded time"
	if !r.Started.IsZero() {
		when = "on " + r.Started.UTC().Format("2006-01-02 15:04 MST")
	}
	took := ""
	if r.Duration > 0 {
		took = ", taking " + time.Duration(r.Duration*float64(time.Second)).Round(time.Second).String()
	}
	host := []string{}
	if r.Host.CPUs > 0 {
		host = append(host, fmt.Sprintf("%d CPUs", r.Host.CPUs))
	}
	if r.Host.MemoryGiB > 0 {
		host = append(host, fmt.Sprintf("%d GiB of memory", r.Host.MemoryGiB))
	}
	if r.Host.Kernel != "" {
		host = append(host, "kernel "+r.Host.Kernel)
	}
	if r.Host.Go != "" {
		host = append(host, r.Host.Go)
	}
	hostText := "an undescribed host"
	if len(host) > 0 {
		hostText = "a host with " + strings.Join(host, ", ")
	}
	fmt.Fprintf(b, "These figures were measured %s%s, on %s.", when, took, hostText)
	if r.Runs > 0 {
		fmt.Fprintf(b, " Each figure is the median of %d runs, with the minimum and maximum in brackets.", r.Runs)
	}
	fmt.Fprintf(b, " The datasets were generated with seed %d.", r.Seed)
	if r.Command != "" {
		fmt.Fprintf(b, " Command: %s.", codeSpan(r.Command))
	}
	b.WriteString(" The machine is shared with other work and its timings are noisy, so compare" +
		" the systems by their ratios within this run rather than by absolute figures across runs.\n\n")
	if len(r.Versions) > 0 {
		b.WriteString("| System | Version |\n| --- | --- |\n")
		for _, v := range r.Versions {
			fmt.Fprintf(b, "| %s | %s |\n", escapeCell(v.System), escapeCell(v.Version))
		}
		b.WriteString("\n")
	}
}

// roleName is how a role reads in a table.
func roleName(r Role) string {
	switch r {
	case RoleStrata:
		return "Strata"
	case RolePeer:
		return "peer"
	case RoleCeiling:
		return "ceiling"
	}
	return string(r)
}

// valueCell formats one figure for the values table; bold marks the median
// as the best of its case.
func valueCell(w *Workload, st *Stat, bold bool) string {
	switch {
	case st == nil || (!st.OK() && st.Err == ""):
		return "—"
	case !st.OK():
		return "error: " + escapeCell(shortErr(st.Err))
	}
	v := formatNumber(st.Median)
	if w.Unit != "" {
		v += " " + w.Unit
	}
	if bold {
		v = "**" + v + "**"
	}
	if st.Min != st.Max || len(st.Runs) > 1 {
		v += " (" + formatNumber(st.Min) + "–" + formatNumber(st.Max) + ")"
	}
	if st.Err != "" {
		v += ", partial: " + shortErr(st.Err)
	}
	return escapeCell(v)
}

// ratioCell formats the ratio of st to ref, or "—" when there is none.
func ratioCell(w *Workload, st, ref *Stat) string {
	if !st.OK() || !ref.OK() {
		return "—"
	}
	q, ok := betterRatio(w, st.Median, ref.Median)
	if !ok {
		return "—"
	}
	return formatRatio(q)
}

// writeWorkloadSection writes one workload: heading, description, chart,
// values table, ratios table and the list of cases where Strata is behind.
func writeWorkloadSection(b *strings.Builder, w *Workload, imgDir string) {
	fmt.Fprintf(b, "### %s\n\n", strings.Join(strings.Fields(w.Title), " "))
	if d := strings.TrimSpace(w.Description); d != "" {
		b.WriteString(d + "\n\n")
	}
	alt := strings.NewReplacer("[", `\[`, "]", `\]`, "\n", " ").Replace(w.Title)
	fmt.Fprintf(b, "![%s](%s)\n\n", alt, path.Join(imgDir, w.ID+".png"))

	direction := "lower is better"
	if w.HigherIsBetter {
		direction = "higher is better"
	}
	unit := ""
	if w.Unit != "" {
		unit = "Unit: " + w.Unit + ", "
	}
	fmt.Fprintf(b, "%s%s. In bold: the best figure of each case, ceilings aside.\n\n", unit, direction)

	// Values table.
	b.WriteString("| System | Role |")
	for _, c := range w.Cases {
		fmt.Fprintf(b, " %s (median, min–max) |", escapeCell(c))
	}
	b.WriteString("\n| --- | --- |")
	for range w.Cases {
		b.WriteString(" --: |")
	}
	b.WriteString("\n")
	for _, s := range w.Series {
		fmt.Fprintf(b, "| %s | %s |", escapeCell(s.System), roleName(s.Role))
		for _, c := range w.Cases {
			st := s.Values[c]
			bold := false
			if bv, ok := bestNonCeiling(w, c); ok && s.Role != RoleCeiling && st.OK() && st.Median == bv {
				bold = true
			}
			fmt.Fprintf(b, " %s |", valueCell(w, st, bold))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")

	writeRatioTable(b, w)
	writeBehind(b, w)
}

// hasRole reports whether some series of w plays role.
func hasRole(w *Workload, role Role) bool {
	for _, s := range w.Series {
		if s.Role == role {
			return true
		}
	}
	return false
}

// writeRatioTable writes each system's ratio to the best ceiling and to the
// best peer of every case.
func writeRatioTable(b *strings.Builder, w *Workload) {
	withCeil, withPeer := hasRole(w, RoleCeiling), hasRole(w, RolePeer)
	if !withCeil && !withPeer {
		return
	}
	b.WriteString("Ratios to the best ceiling and to the best peer of each case (above 1× means better than the reference):\n\n")
	b.WriteString("| System |")
	aligns := "| --- |"
	for _, c := range w.Cases {
		if withCeil {
			fmt.Fprintf(b, " %s × ceiling |", escapeCell(c))
			aligns += " --: |"
		}
		if withPeer {
			fmt.Fprintf(b, " %s × best peer |", escapeCell(c))
			aligns += " --: |"
		}
	}
	b.WriteString("\n" + aligns + "\n")
	for _, s := range w.Series {
		fmt.Fprintf(b, "| %s |", escapeCell(s.System))
		for _, c := range w.Cases {
			st := s.Values[c]
			if withCeil {
				cell := "—"
				if s.Role != RoleCeiling {
					_, ref := bestOfRole(w, c, RoleCeiling)
					cell = ratioCell(w, st, ref)
				}
				fmt.Fprintf(b, " %s |", cell)
			}
			if withPeer {
				cell := "—"
				if s.Role != RoleCeiling {
					_, ref := bestOfRole(w, c, RolePeer)
					cell = ratioCell(w, st, ref)
				}
				fmt.Fprintf(b, " %s |", cell)
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}

// writeBehind lists every Strata figure that is worse than the best peer's,
// or failed where a peer has one.
func writeBehind(b *strings.Builder, w *Workload) {
	b.WriteString("**Where Strata is behind**\n\n")
	var lines []string
	peers := false
	for _, c := range w.Cases {
		if peer, _ := bestOfRole(w, c, RolePeer); peer != nil {
			peers = true
		}
	}
	for _, s := range w.Series {
		if s.Role != RoleStrata {
			continue
		}
		for _, c := range w.Cases {
			peer, ref := bestOfRole(w, c, RolePeer)
			if peer == nil {
				continue
			}
			st := s.Values[c]
			switch {
			case st.OK() && isBetter(w, ref.Median, st.Median):
				q, ok := betterRatio(w, st.Median, ref.Median)
				factor := "behind"
				if ok {
					factor = formatRatio(q)
				}
				lines = append(lines, fmt.Sprintf("- %s, %s: %s %s (best peer): %s vs %s",
					s.System, c, factor, peer.System,
					withUnit(st.Median, w.Unit), withUnit(ref.Median, w.Unit)))
			case !st.OK() && st != nil && st.Err != "":
				lines = append(lines, fmt.Sprintf("- %s, %s: no figure (error: %s); %s (best peer) has %s",
					s.System, c, shortErr(st.Err), peer.System, withUnit(ref.Median, w.Unit)))
			}
		}
	}
	switch {
	case len(lines) > 0:
		b.WriteString(strings.Join(lines, "\n") + "\n\n")
	case !peers:
		b.WriteString("No peer has a figure to compare with here.\n\n")
	default:
		b.WriteString("Strata matches or beats every peer here.\n\n")
	}
}

// withUnit formats v followed by unit.
func withUnit(v float64, unit string) string {
	if unit == "" {
		return formatNumber(v)
	}
	return formatNumber(v) + " " + unit
}

// spliceDoc puts generated between the markers of the document at docPath,
// leaving the rest of the document untouched. The file is replaced
// atomically.
func spliceDoc(docPath, generated string) error {
	section := reportBegin + "\n" + generated + reportEnd + "\n"
	mode := fs.FileMode(0o644)
	var content string
	old, err := os.ReadFile(docPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		content = section
	case err != nil:
		return err
	default:
		if fi, err := os.Stat(docPath); err == nil {
			mode = fi.Mode().Perm()
		}
		s := string(old)
		bi := strings.Index(s, reportBegin)
		ei := -1
		if bi >= 0 {
			if i := strings.Index(s[bi:], reportEnd); i >= 0 {
				ei = bi + i
			}
		}
		switch {
		case bi < 0 && !strings.Contains(s, reportEnd):
			if s != "" && !strings.HasSuffix(s, "\n") {
				s += "\n"
			}
			if s != "" {
				s += "\n"
			}
			content = s + section
		case bi >= 0 && ei >= 0:
			content = s[:bi] + reportBegin + "\n" + generated + s[ei:]
		default:
			return fmt.Errorf("%s: the generated-section markers are unbalanced; fix them by hand", docPath)
		}
	}
	dir := filepath.Dir(docPath)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(docPath)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return fmt.Errorf("%s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("%s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("%s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), docPath); err != nil {
		return err
	}
	return nil
}

// systemColors gives every system of r one colour, the same in every chart:
// greys for ceilings, distinct hues for the others, in order of appearance.
func systemColors(r *Results) map[string]color.Color {
	hues := []color.RGBA{
		{0x1f, 0x77, 0xb4, 0xff}, // blue
		{0xff, 0x7f, 0x0e, 0xff}, // orange
		{0x2c, 0xa0, 0x2c, 0xff}, // green
		{0xd6, 0x27, 0x28, 0xff}, // red
		{0x94, 0x67, 0xbd, 0xff}, // purple
		{0x8c, 0x56, 0x4b, 0xff}, // brown
		{0xe3, 0x77, 0xc2, 0xff}, // pink
		{0xbc, 0xbd, 0x22, 0xff}, // olive
		{0x17, 0xbe, 0xcf, 0xff}, // cyan
		{0x39, 0x3b, 0x79, 0xff}, // navy
		{0xad, 0x49, 0x4a, 0xff}, // brick
		{0x63, 0x79, 0x39, 0xff}, // moss
	}
	greys := []color.RGBA{
		{0x55, 0x55, 0x55, 0xff},
		{0x99, 0x99, 0x99, 0xff},
		{0xc4, 0xc4, 0xc4, 0xff},
		{0x33, 0x33, 0x33, 0xff},
	}
	colors := map[string]color.Color{}
	nh, ng := 0, 0
	for _, w := range r.Groups {
		for _, s := range w.Series {
			if _, ok := colors[s.System]; ok {
				continue
			}
			if s.Role == RoleCeiling {
				colors[s.System] = greys[ng%len(greys)]
				ng++
			} else {
				colors[s.System] = hues[nh%len(hues)]
				nh++
			}
		}
	}
	return colors
}

// writeChart draws workload w as a grouped bar chart (one group per case,
// one bar per system, whiskers from min to max) into a PNG file at p.
func writeChart(w *Workload, colors map[string]color.Color, p string) error {
	img := vgimg.NewWith(vgimg.UseWH(chartWidth, chartHeight), vgimg.UseDPI(chartDPI))
	dc := draw.New(img)
	pad := vg.Points(8)

	// Title across the whole image.
	title := text.Style{
		Color:   color.Black,
		Font:    font.From(plot.DefaultFont, 14),
		XAlign:  draw.XCenter,
		YAlign:  draw.YTop,
		Handler: plot.DefaultTextHandler,
	}
	titleText := strings.Join(strings.Fields(w.Title), " ")
	titleH := pad
	if titleText != "" {
		dc.FillText(title, vg.Point{X: dc.Center().X, Y: dc.Max.Y - pad}, titleText)
		titleH += title.Height(titleText) + pad
	}

	// Legend in a column on the right, so that long names never cover bars.
	bars := &groupedBars{workload: w}
	legend := plot.NewLegend()
	legend.TextStyle.Font.Size = 10
	legend.Top, legend.Left = true, true
	legend.ThumbnailWidth = vg.Points(14)
	legend.Padding = vg.Points(3)
	for _, s := range w.Series {
		c := colors[s.System]
		if c == nil {
			c = color.Black
		}
		bars.series = append(bars.series, s)
		bars.colors = append(bars.colors, c)
		legend.Add(s.System, swatch{c})
	}
	legendW := vg.Length(0)
	if len(w.Series) > 0 {
		lr := legend.Rectangle(dc)
		legendW = min(lr.Max.X-lr.Min.X, chartWidth*2/5)
		legendArea := draw.Crop(dc, chartWidth-legendW-pad, -pad, pad, -titleH-pad)
		legend.Draw(legendArea)
	}

	plt := plot.New()
	plt.BackgroundColor = nil // the image is already white
	yLabel := "lower is better"
	if w.HigherIsBetter {
		yLabel = "higher is better"
	}
	if w.Unit != "" {
		yLabel = w.Unit + " (" + yLabel + ")"
	}
	plt.Y.Label.Text = yLabel
	plt.Y.Tick.Marker = plot.TickerFunc(niceTicks)
	if len(w.Cases) > 0 {
		plt.NominalX(w.Cases...)
	} else {
		plt.HideX()
	}
	plt.X.Tick.Label.Font.Size = 12
	grid := plotter.NewGrid()
	grid.Vertical.Color = nil
	grid.Horizontal.Color = color.Gray{Y: 0xcc}
	plt.Add(grid, bars)
	plt.X.Min, plt.X.Max = -0.5, float64(max(len(w.Cases), 1))-0.5
	_, _, ymin, ymax := bars.DataRange()
	plt.Y.Min = ymin
	plt.Y.Max = ymax * 1.05
	if plt.Y.Max <= plt.Y.Min {
		plt.Y.Max = plt.Y.Min + 1
	}
	plt.Draw(draw.Crop(dc, pad, -(legendW + 2*pad), pad, -titleH))

	f, err := os.Create(p)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// swatch is a legend thumbnail: a filled square of one colour.
type swatch struct{ color color.Color }

// Thumbnail implements plot.Thumbnailer.
func (s swatch) Thumbnail(c *draw.Canvas) {
	pts := []vg.Point{
		{X: c.Min.X, Y: c.Min.Y},
		{X: c.Min.X, Y: c.Max.Y},
		{X: c.Max.X, Y: c.Max.Y},
		{X: c.Max.X, Y: c.Min.Y},
	}
	c.FillPolygon(s.color, c.ClipPolygonY(pts))
}

// groupedBars is a plot.Plotter that draws, for each case i of a workload, a
// group of bars centred on x = i: one per series, as high as the median,
// with a whisker from min to max. Figures that are not OK get a small
// "n/a" or "error" note instead of a bar.
type groupedBars struct {
	workload *Workload
	series   []*Series
	colors   []color.Color
}

// groupWidth is the share of a case's slot taken by its bars.
const groupWidth = 0.8

// Plot implements plot.Plotter.
func (g *groupedBars) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	n := len(g.series)
	if n == 0 {
		return
	}
	bw := groupWidth / float64(n)
	whisker := draw.LineStyle{Color: color.Black, Width: vg.Points(1)}
	note := text.Style{
		Color:    color.Gray{Y: 0x66},
		Font:     font.From(plot.DefaultFont, 8),
		Rotation: math.Pi / 2,
		XAlign:   draw.XLeft,
		YAlign:   draw.YCenter,
		Handler:  plot.DefaultTextHandler,
	}
	for j, s := range g.series {
		for i, cs := range g.workload.Cases {
			x0 := float64(i) - groupWidth/2 + float64(j)*bw
			x1 := x0 + bw
			xm := trX((x0 + x1) / 2)
			st := s.Values[cs]
			if !st.OK() {
				label := "n/a"
				if st != nil && st.Err != "" {
					label = "error"
				}
				if c.ContainsX(xm) {
					c.FillText(note, vg.Point{X: xm, Y: trY(0) + vg.Points(3)}, label)
				}
				continue
			}
			gap := bw * 0.06
			rect := []vg.Point{
				{X: trX(x0 + gap), Y: trY(0)},
				{X: trX(x0 + gap), Y: trY(st.Median)},
				{X: trX(x1 - gap), Y: trY(st.Median)},
				{X: trX(x1 - gap), Y: trY(0)},
			}
			c.FillPolygon(g.colors[j], c.ClipPolygonY(rect))
			if st.Max > st.Min {
				lo, hi := trY(st.Min), trY(st.Max)
				capW := min((trX(x1)-trX(x0))*0.3, vg.Points(5))
				c.StrokeLines(whisker, c.ClipLinesY(
					[]vg.Point{{X: xm, Y: lo}, {X: xm, Y: hi}},
					[]vg.Point{{X: xm - capW, Y: lo}, {X: xm + capW, Y: lo}},
					[]vg.Point{{X: xm - capW, Y: hi}, {X: xm + capW, Y: hi}},
				)...)
			}
		}
	}
}

// DataRange implements plot.DataRanger: the case slots across, zero to the
// highest maximum up.
func (g *groupedBars) DataRange() (xmin, xmax, ymin, ymax float64) {
	xmin, xmax = -0.5, float64(max(len(g.workload.Cases), 1))-0.5
	for _, s := range g.series {
		for _, c := range g.workload.Cases {
			if st := s.Values[c]; st.OK() {
				ymin = min(ymin, st.Min, st.Median)
				ymax = max(ymax, st.Max, st.Median)
			}
		}
	}
	return xmin, xmax, ymin, ymax
}

// niceTicks returns about five labelled ticks at round values (1, 2, 2.5 or
// 5 times a power of ten) between lo and hi, with a minor tick between each.
func niceTicks(lo, hi float64) []plot.Tick {
	if !(hi > lo) || math.IsInf(hi-lo, 0) {
		return nil
	}
	raw := (hi - lo) / 5
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	step := pow
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*pow >= raw {
			step = m * pow
			break
		}
	}
	var ticks []plot.Tick
	first := math.Ceil(lo/step - 1e-9)
	for k := first; k*step <= hi+step*1e-9; k++ {
		v := k * step
		ticks = append(ticks, plot.Tick{Value: v, Label: formatTick(v, step)})
		if minor := v + step/2; minor <= hi {
			ticks = append(ticks, plot.Tick{Value: minor})
		}
	}
	return ticks
}

// formatTick formats an axis value with as many decimals as the tick step
// needs, and thousands separators: 0, 2,500, 0.25.
func formatTick(v, step float64) string {
	dec := 0
	for s := step; dec < 12 && math.Abs(s-math.Round(s)) > 1e-9*step; s *= 10 {
		dec++
	}
	if math.Abs(v) < step*1e-9 {
		return "0"
	}
	s := strconv.FormatFloat(v, 'f', dec, 64)
	intPart, frac, found := strings.Cut(s, ".")
	if found {
		return groupThousands(intPart) + "." + frac
	}
	return groupThousands(intPart)
}
