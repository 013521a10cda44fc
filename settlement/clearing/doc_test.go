package clearing

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// docs/clearing-format.md is what member banks build their readers from.
// This test keeps its record tables equal to the layouts the code uses.

func docTable(t *testing.T, doc, heading string) [][]string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, "\n## "+heading+"\n")
	if !ok {
		t.Fatalf("docs/clearing-format.md has no section %q", heading)
	}
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i]
	}
	// The table starts at its "| # |" heading row and ends at the first
	// line that is not a table row.
	var rows [][]string
	in := false
	for line := range strings.Lines(rest) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "| # |") {
			in = true
			continue
		}
		if !in || strings.HasPrefix(line, "|-") {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows = append(rows, cells)
	}
	return rows
}

func TestFormatDocMatchesLayouts(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "clearing-format.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, c := range []struct {
		heading string
		layout  []field
	}{
		{"Header record", headerLayout}, {"Detail record", detailLayout}, {"Trailer record", trailerLayout},
	} {
		rows := docTable(t, doc, c.heading)
		if len(rows) != len(c.layout) {
			t.Errorf("%s: the doc lists %d fields, the code %d", c.heading, len(rows), len(c.layout))
			continue
		}
		for i, f := range c.layout {
			want := []string{fmt.Sprint(i + 1), f.name, fmt.Sprintf("%d-%d", f.start, f.end()), fmt.Sprint(f.width), string(f.kind)}
			got := rows[i][:min(5, len(rows[i]))]
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("%s field %d: doc says %q, code says %q", c.heading, i+1, got, want)
			}
		}
	}
}
