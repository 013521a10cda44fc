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
