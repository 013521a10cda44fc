package load

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReportBase(t *testing.T) {
	at := time.Date(2026, 12, 3, 16, 47, 44, 0, time.FixedZone("CST", 8*3600))
	taken := map[string]bool{}
	for _, want := range []string{"bench-20261203T084744Z", "bench-20261203T084744Z-2", "bench-20261203T084744Z-3"} {
		got, err := reportBase(at, func(name string) bool { return taken[name] })
		if err != nil || got != want {
			t.Fatalf("got %q %v, want %q", got, err, want)
		}
		taken[got+".html"] = true // either file takes the name
	}
	if _, err := reportBase(at, func(string) bool { return true }); err == nil {
		t.Fatal("no error when every name of the second is taken")
	}
}

// TestReportsKept: two runs ending in the same second keep both reports,
// and latest.json points at the second.
func TestReportsKept(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "reports")
	cfg := Config{OutDir: dir}
	now := time.Date(2026, 12, 3, 8, 47, 44, 0, time.UTC)
	var stdout bytes.Buffer
	for _, tps := range []float64{100, 200} {
		if err := writeReports(Report{Mode: ModeClosed, TPS: tps}, cfg, now, &stdout); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"bench-20261203T084744Z.json", "bench-20261203T084744Z.html",
		"bench-20261203T084744Z-2.json", "bench-20261203T084744Z-2.html"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
	first := readReport(t, filepath.Join(dir, "bench-20261203T084744Z.json"))
	latest := readReport(t, filepath.Join(dir, "latest.json"))
	if first.TPS != 100 || latest.TPS != 200 {
		t.Fatalf("first run's report has TPS %v (want 100), latest %v (want 200)", first.TPS, latest.TPS)
	}
	if target, err := os.Readlink(filepath.Join(dir, "latest.html")); err != nil || target != "bench-20261203T084744Z-2.html" {
		t.Fatalf("latest.html -> %q %v", target, err)
	}
	if !strings.Contains(stdout.String(), "bench-20261203T084744Z-2.json") {
		t.Fatalf("stdout %q does not name the second report", stdout.String())
	}
	if err := writeReports(Report{}, Config{}, now, &stdout); err != nil {
		t.Fatalf("-out \"\": %v", err)
	}
}

func readReport(t *testing.T, path string) Report {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return r
}
