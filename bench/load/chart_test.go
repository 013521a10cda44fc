package load

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// uniformHistogram holds 1..n µs once each.
func uniformHistogram(n int64) *hdrhistogram.Histogram {
	h := newHistogram()
	for v := int64(1); v <= n; v++ {
		h.RecordValue(v)
	}
	return h
}

func TestPercentilePoints(t *testing.T) {
	h := uniformHistogram(10000)
	points := percentilePoints(h)
	// 4 decades at 20 points each, plus the maximum.
	if len(points) != 81 {
		t.Fatalf("%d points, want 81", len(points))
	}
	for i, p := range points {
		if i > 0 && (p.X <= points[i-1].X || p.Percentile <= points[i-1].Percentile || p.LatencyUS < points[i-1].LatencyUS) {
			t.Fatalf("point %d %+v after %+v: not increasing", i, p, points[i-1])
		}
		if p.Percentile < 100 && math.Abs(p.X-math.Log10(100/(100-p.Percentile))) > 1e-9 {
			t.Fatalf("point %+v: X is not log10(1/(1-p))", p)
		}
	}
	last := points[len(points)-1]
	if last.Percentile != 100 || last.LatencyUS != h.Max() || last.X != 4 {
		t.Fatalf("last point %+v, want p100 at x=4 with the max %d", last, h.Max())
	}
	// On a uniform 1..10000, the 90th percentile (X = 1) is 9000 µs
	// within HdrHistogram's 3 significant digits.
	if p := points[20]; math.Abs(p.X-1) > 1e-9 || math.Abs(float64(p.LatencyUS)-9000) > 9 {
		t.Fatalf("point at X=1: %+v, want about 9000 µs", p)
	}
	if percentilePoints(newHistogram()) != nil {
		t.Fatal("points for an empty histogram")
	}
}

func TestPercentileTable(t *testing.T) {
	rows := percentileTable(uniformHistogram(1000))
	var ps []string
	for _, r := range rows {
		ps = append(ps, trimFloat(r.Percentile))
	}
	if got := strings.Join(ps, " "); got != "50 75 90 95 99 99.9" {
		t.Fatalf("1000 latencies give rows %s, want up to 99.9", got)
	}
	if rows[0].LatencyUS < 495 || rows[0].LatencyUS > 505 {
		t.Fatalf("p50 of 1..1000 = %d", rows[0].LatencyUS)
	}
}

var svgPoint = regexp.MustCompile(`(\d+\.\d),(\d+\.\d)`)

func TestPercentileSVG(t *testing.T) {
	h := uniformHistogram(10000)
	svg := percentileSVG(percentilePoints(h), `p<99> & "co"`)
	if !strings.HasPrefix(svg, "<svg ") || !strings.HasSuffix(svg, "</svg>") {
		t.Fatalf("not one svg element: %.80s…", svg)
	}
	if !strings.Contains(svg, `p&lt;99&gt; &amp; &quot;co&quot;`) {
		t.Fatal("title not escaped")
	}
	for _, label := range []string{">0%<", ">90%<", ">99%<", ">99.9%<", ">99.99%<", ">latency (ms)<", ">percentile<"} {
		if !strings.Contains(svg, label) {
			t.Errorf("axis label %s missing", label)
		}
	}
	poly := svg[strings.Index(svg, "<polyline"):]
	pts := svgPoint.FindAllStringSubmatch(poly, -1)
	if len(pts) != 81 {
		t.Fatalf("polyline has %d points, want 81", len(pts))
	}
	// Left to right, and up (smaller y) as latency grows; inside the plot.
	prevX, prevY := -1.0, math.Inf(1)
	for _, p := range pts {
		x, _ := strconv.ParseFloat(p[1], 64)
		y, _ := strconv.ParseFloat(p[2], 64)
		if x <= prevX || y > prevY || x < chartLeft || x > chartWidth-chartRight || y < chartTop || y > chartHeight-chartBottom {
			t.Fatalf("point %v,%v after %v,%v", x, y, prevX, prevY)
		}
		prevX, prevY = x, y
	}
	if empty := percentileSVG(nil, "t"); !strings.Contains(empty, "no latencies recorded") {
		t.Fatal("empty chart says nothing")
	}
}

func TestAxisHelpers(t *testing.T) {
	for in, want := range map[float64]float64{0: 0.01, 0.7: 1, 1: 1, 1.01: 2, 3: 5, 7: 10, 10: 10, 42: 50, 0.0031: 0.01, 180: 200} {
		if got := niceCeil(in); math.Abs(got-want) > 1e-12 {
			t.Errorf("niceCeil(%v) = %v, want %v", in, got, want)
		}
	}
	for d, want := range []string{"0%", "90%", "99%", "99.9%", "99.99%", "99.999%"} {
		if got := decadeLabel(d); got != want {
			t.Errorf("decadeLabel(%d) = %s, want %s", d, got, want)
		}
	}
}

func TestFmtUS(t *testing.T) {
	for us, want := range map[int64]string{0: "0µs", 999: "999µs", 1000: "1.00ms", 12345: "12.35ms", 999_999: "1000.00ms", 1_500_000: "1.500s"} {
		if got := fmtUS(us); got != want {
			t.Errorf("fmtUS(%d) = %s, want %s", us, got, want)
		}
	}
}
