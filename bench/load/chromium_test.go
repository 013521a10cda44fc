package load

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

const chromiumPath = "/usr/bin/chromium"

// TestHTMLReportInChromium renders the HTML report in headless Chromium and
// checks the screenshot shows the chart: a PNG with enough pixels in the
// chart line's colour. The report is made of a synthetic histogram, so the
// test needs no switch.
func TestHTMLReportInChromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("%s not installed (apt-get install chromium): the HTML report is not rendered", chromiumPath)
	}
	h := newHistogram()
	for i := int64(1); i <= 20000; i++ {
		h.RecordValue(800 + i%1000 + i*i%97*10) // 0.8 to about 2.8 ms with a tail
	}
	st := newStats()
	st.latency, st.answered = h, h.TotalCount()
	st.codes["00"] = h.TotalCount()
	st.kinds[KindPurchase] = &KindCount{Sent: h.TotalCount(), OK: h.TotalCount()}
	cfg := DefaultConfig()
	rep := NewReport(&Result{Config: cfg, Target: "synthetic", Issuers: "none", Start: time.Now(),
		Measured: 10 * time.Second, Connections: 32, stats: st})

	dir := t.TempDir()
	page, shot := filepath.Join(dir, "report.html"), filepath.Join(dir, "shot.png")
	if err := rep.WriteHTML(page); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromiumPath, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--screenshot="+shot, "--window-size=1200,900",
		"file://"+page)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	data, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("chromium wrote no screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("screenshot of %d bytes is not a PNG: %v", len(data), err)
	}
	b := img.Bounds()
	if b.Dx() < 1000 || b.Dy() < 800 {
		t.Fatalf("screenshot %v", b)
	}
	// The line is chartLineRGB (#1f6fb4), 2.5 px wide across most of the
	// 850 px plot: count the pixels close to that colour.
	line := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if near(r>>8, 0x1f) && near(g>>8, 0x6f) && near(bl>>8, 0xb4) {
				line++
			}
		}
	}
	if line < 800 {
		t.Fatalf("screenshot has %d pixels of the chart line's colour, want at least 800: no chart drawn", line)
	}
	t.Logf("screenshot %d bytes, %v, %d line pixels", len(data), b, line)
}

func near(v, want uint32) bool { return v+24 >= want && v <= want+24 }
