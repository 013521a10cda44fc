package load

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// A run's reports are kept, never overwritten: each run writes
// bench-<UTC time>.json and bench-<UTC time>.html into the report directory
// and points the symbolic links latest.json and latest.html at them. Two
// runs that end in the same second get -2, -3, ... after the time.
const (
	reportTimeLayout    = "20060102T150405Z"
	reportsPerSecondMax = 100
)

// reportBase picks the name, without extension, of the reports of a run
// that ended at now: the first of bench-<time>, bench-<time>-2, ... for
// which taken says neither file exists.
func reportBase(now time.Time, taken func(name string) bool) (string, error) {
	base := "bench-" + now.UTC().Format(reportTimeLayout)
	for i := 1; i <= reportsPerSecondMax; i++ {
		name := base
		if i > 1 {
			name = fmt.Sprintf("%s-%d", base, i)
		}
		if !taken(name+".json") && !taken(name+".html") {
			return name, nil
		}
	}
	return "", fmt.Errorf("%d reports already end in the second of %s", reportsPerSecondMax, base)
}

// writeReports writes the run's JSON and HTML reports into cfg.OutDir
// (none when it is empty) and prints where they are.
func writeReports(rep Report, cfg Config, now time.Time, stdout io.Writer) error {
	if cfg.OutDir == "" {
		return nil
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return fmt.Errorf("reports: %w", err)
	}
	base, err := reportBase(now, func(name string) bool {
		_, err := os.Lstat(filepath.Join(cfg.OutDir, name))
		return err == nil
	})
	if err != nil {
		return fmt.Errorf("reports: %w", err)
	}
	jsonPath, htmlPath := filepath.Join(cfg.OutDir, base+".json"), filepath.Join(cfg.OutDir, base+".html")
	if err := rep.WriteJSON(jsonPath); err != nil {
		return fmt.Errorf("JSON report: %w", err)
	}
	if err := rep.WriteHTML(htmlPath); err != nil {
		return fmt.Errorf("HTML report: %w", err)
	}
	for _, ext := range []string{".json", ".html"} {
		if err := pointLatest(cfg.OutDir, "latest"+ext, base+ext); err != nil {
			return fmt.Errorf("reports: %w", err)
		}
	}
	fmt.Fprintf(stdout, "reports      %s, %s (latest.json, latest.html)\n", jsonPath, htmlPath)
	return nil
}

// pointLatest makes dir/link a symbolic link to target (a name in dir),
// replacing the old link atomically.
func pointLatest(dir, link, target string) error {
	tmp := filepath.Join(dir, "."+link+".new")
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, link))
}

// printJSON writes the JSON report on stdout (bench -json).
func printJSON(rep Report, stdout io.Writer) error {
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	_, err = stdout.Write(append(data, '\n'))
	return err
}
