package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapswitch/tapswitch/bench/load"
)

// TestBenchStartsItsWorld runs the command's default path for a second:
// it builds switchd and issuersim, starts them as child processes, loads
// the switch, stops both and writes the reports with each process's CPU.
func TestBenchStartsItsWorld(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts switchd and issuersim")
	}
	dir := t.TempDir()
	jsonPath, htmlPath := filepath.Join(dir, "latest.json"), filepath.Join(dir, "latest.html")
	var stdout, stderr bytes.Buffer
	code := load.Main([]string{"-duration", "1s", "-warmup", "200ms", "-concurrency", "8", "-connections", "4",
		"-out", dir}, &stdout, &stderr)
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"throughput", "p99.9", "codes        00 approved", "errors       0", "µs per authorization", "issuersim"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep load.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.CPUSwitchS == nil || *rep.CPUSwitchS <= 0 || rep.CPUIssuersS == nil || rep.CPUUSPerAuth == nil ||
		rep.CPUSwitchTotalS == nil || *rep.CPUSwitchTotalS < *rep.CPUSwitchS {
		t.Errorf("CPU figures: switch %v issuers %v per auth %v total %v", rep.CPUSwitchS, rep.CPUIssuersS,
			rep.CPUUSPerAuth, rep.CPUSwitchTotalS)
	}
	if html, err := os.ReadFile(htmlPath); err != nil || !bytes.Contains(html, []byte("<polyline ")) {
		t.Errorf("HTML report: %v", err)
	}
}

// TestBenchRelayBaseline runs bench -baseline relay for a second each: the
// same load through cmd/relay straight to issuersim, then the switch. Both
// runs get every answer right (the relay's purchases are approved by the
// issuer, so they really reached it), the report carries the relay's
// figures with its CPU, and the summary and HTML set the switch beside it.
func TestBenchRelayBaseline(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts switchd, issuersim and relay")
	}
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := load.Main([]string{"-baseline", "relay", "-mix", "purchase=100", "-duration", "1s", "-warmup", "200ms",
		"-concurrency", "8", "-connections", "4", "-out", dir}, &stdout, &stderr)
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	data, err := os.ReadFile(filepath.Join(dir, "latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep load.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	bl := rep.Baseline
	if bl == nil {
		t.Fatal("no baseline in the report")
	}
	if bl.Answered == 0 || bl.Errors != 0 || bl.Codes["00"] != bl.Answered {
		t.Errorf("relay run: %d answered, %d errors, codes %v: want every purchase approved", bl.Answered, bl.Errors, bl.Codes)
	}
	if !strings.Contains(bl.Switch, "relay") || bl.CPUUSPerAuth == nil || *bl.CPUUSPerAuth <= 0 {
		t.Errorf("relay run: target %q, CPU per request %v", bl.Switch, bl.CPUUSPerAuth)
	}
	if rep.Errors != 0 || rep.Answered == 0 || strings.Contains(rep.Switch, "relay") {
		t.Errorf("switch run: %d answered, %d errors, target %q", rep.Answered, rep.Errors, rep.Switch)
	}
	if !strings.Contains(stdout.String(), "of the relay's TPS") {
		t.Error("summary does not compare the switch with the relay")
	}
	if html, err := os.ReadFile(filepath.Join(dir, "latest.html")); err != nil || !bytes.Contains(html, []byte("relay baseline")) {
		t.Errorf("HTML report has no baseline table: %v", err)
	}
}

// TestBenchPurseLoads runs bench with purse loads in the mix against the
// world it starts, issuersim apart: the phone binds a card and tops up a
// transit card per city through the token API after the run, every load
// is loaded (issuersim's operators grant them with the master keys bench
// gave it), and the purses hold what the switch loaded.
func TestBenchPurseLoads(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts switchd and issuersim")
	}
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	// 200 requests due in the measured second: 200 × 5 / 95 = 10 loads.
	code := load.Main([]string{"-duration", "1s", "-warmup", "200ms", "-rate", "200", "-connections", "4",
		"-mix", "purchase=95,load=5", "-out", dir}, &stdout, &stderr)
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	data, err := os.ReadFile(filepath.Join(dir, "latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep load.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	l := rep.Loads
	if l == nil || l.Opened != 6 || l.Loads < 9 || l.Loads > 11 || l.ByState["loaded"] != l.Loads || l.ErrorsN != 0 {
		t.Fatalf("loads %+v", l)
	}
	if l.LoadedFen != (6+l.Loads)*100 || l.PurseFen != l.LoadedFen || l.PayP50US <= 0 {
		t.Fatalf("loaded %d fen, purses %d, pay p50 %dµs", l.LoadedFen, l.PurseFen, l.PayP50US)
	}
	if rep.Codes["00"] != rep.Requests || rep.Kinds[load.KindPurchase].Sent != rep.Requests {
		t.Fatalf("the terminals' run: codes %v of %d requests", rep.Codes, rep.Requests)
	}
}
