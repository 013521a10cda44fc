package load

import (
	"fmt"
	"math"
	"strings"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// ChartPoint is one point of the percentile distribution: the latency at
// or below which Percentile % of the requests were answered. X is where the
// HdrHistogram plotter puts it: log10(1 / (1 − p)), so 90% is at 1, 99% at
// 2, 99.9% at 3; the maximum is drawn at log10(count), the percentile of
// the last request.
type ChartPoint struct {
	Percentile float64 `json:"percentile"`
	X          float64 `json:"x"`
	LatencyUS  int64   `json:"latency_us"`
}

// tablePercentiles are the rows of the report's percentile table.
var tablePercentiles = []float64{50, 75, 90, 95, 99, 99.9, 99.99, 99.999}

// percentileTable reads h at each of tablePercentiles that its count
// reaches (99.99% needs 10,000 latencies to mean anything).
func percentileTable(h *hdrhistogram.Histogram) []ChartPoint {
	n := float64(h.TotalCount())
	var rows []ChartPoint
	for _, p := range tablePercentiles {
		x := math.Log10(100 / (100 - p))
		if math.Pow(10, x) > n*(1+1e-9) { // 100/(100-99.9) is 1000.0000000000036
			break
		}
		rows = append(rows, ChartPoint{Percentile: p, X: x, LatencyUS: h.ValueAtPercentile(p)})
	}
	return rows
}

// chartStepsPerDecade is how many points each decade of 1/(1−p) gets.
const chartStepsPerDecade = 20

// percentilePoints samples h from p0 to its maximum, evenly in X. It
// returns nothing for an empty histogram.
func percentilePoints(h *hdrhistogram.Histogram) []ChartPoint {
	n := h.TotalCount()
	if n == 0 {
		return nil
	}
	xMax := math.Log10(float64(n))
	steps := int(math.Ceil(xMax * chartStepsPerDecade))
	points := make([]ChartPoint, 0, steps+2)
	for i := 0; i < steps; i++ {
		x := float64(i) / chartStepsPerDecade
		p := 100 * (1 - math.Pow(10, -x))
		points = append(points, ChartPoint{Percentile: p, X: x, LatencyUS: h.ValueAtPercentile(p)})
	}
	return append(points, ChartPoint{Percentile: 100, X: xMax, LatencyUS: h.Max()})
}

// Chart geometry, in SVG user units.
const (
	chartWidth   = 960
	chartHeight  = 440
	chartLeft    = 80
	chartRight   = 30
	chartTop     = 40
	chartBottom  = 60
	chartYTicks  = 5
	chartLineRGB = "#1f6fb4"
)

// percentileSVG draws points as the HdrHistogram plotter does: percentile
// on a log scale of 1/(1−p) across, latency in milliseconds up. It is a
// self-contained <svg> element; text is escaped.
func percentileSVG(points []ChartPoint, title string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="latency by percentile">`,
		chartWidth, chartHeight, chartWidth, chartHeight)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/>`, chartWidth, chartHeight)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16" font-family="sans-serif">%s</text>`, chartLeft, escapeXML(title))
	if len(points) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-family="sans-serif">no latencies recorded</text></svg>`,
			chartLeft, chartHeight/2)
		return b.String()
	}
	xMax := math.Max(1, math.Ceil(points[len(points)-1].X))
	yMax := niceCeil(float64(points[len(points)-1].LatencyUS) / 1000)
	px := func(x float64) float64 { return chartLeft + x/xMax*(chartWidth-chartLeft-chartRight) }
	py := func(ms float64) float64 {
		return chartHeight - chartBottom - ms/yMax*(chartHeight-chartTop-chartBottom)
	}
	b.WriteString(`<g font-family="sans-serif" font-size="12" fill="#333">`)
	for d := 0; d <= int(xMax); d++ {
		x := px(float64(d))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`, x, chartTop, x, chartHeight-chartBottom)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`, x, chartHeight-chartBottom+18, decadeLabel(d))
	}
	for i := 0; i <= chartYTicks; i++ {
		ms := yMax * float64(i) / chartYTicks
		y := py(ms)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`, chartLeft, y, chartWidth-chartRight, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`, chartLeft-8, y+4, trimFloat(ms))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">percentile</text>`,
		(chartWidth+chartLeft-chartRight)/2, chartHeight-16)
	fmt.Fprintf(&b, `<text x="18" y="%d" text-anchor="middle" transform="rotate(-90 18 %d)">latency (ms)</text>`,
		(chartHeight+chartTop-chartBottom)/2, (chartHeight+chartTop-chartBottom)/2)
	b.WriteString(`</g>`)
	b.WriteString(`<polyline fill="none" stroke="` + chartLineRGB + `" stroke-width="2.5" points="`)
	for i, p := range points {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.1f,%.1f", px(p.X), py(float64(p.LatencyUS)/1000))
	}
	b.WriteString(`"/></svg>`)
	return b.String()
}

// decadeLabel names X = d: 0%, 90%, 99%, 99.9%, ...
func decadeLabel(d int) string {
	switch d {
	case 0:
		return "0%"
	case 1:
		return "90%"
	case 2:
		return "99%"
	}
	return "99." + strings.Repeat("9", d-2) + "%"
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (at least 0.01).
func niceCeil(v float64) float64 {
	if v <= 0.01 {
		return 0.01
	}
	mag := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*mag*(1+1e-9) {
			return m * mag
		}
	}
	return 10 * mag
}

// trimFloat prints an axis value without trailing zeros.
func trimFloat(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

func escapeXML(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#39;")
	return r.Replace(s)
}
