package iso8583

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// docs/wire.md is the contract other implementations are built from. These
// tests keep it from drifting away from the spec and the example frames.

func readWireDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", "wire.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// docSection returns the text under the first "## " heading that contains
// name, up to the next "## " heading.
func docSection(t *testing.T, doc, name string) string {
	t.Helper()
	var out strings.Builder
	in := false
	for line := range strings.Lines(doc) {
		if strings.HasPrefix(line, "## ") {
			if in {
				break
			}
			in = strings.Contains(line, name)
			continue
		}
		if in {
			out.WriteString(line)
		}
	}
	if !in {
		t.Fatalf("docs/wire.md has no section %q", name)
	}
	return out.String()
}

// docTableRows returns the cells of the table rows in text whose first cell
// is the key of the row (a number or a code), backticks removed.
func docTableRows(text string) [][]string {
	var rows [][]string
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") || strings.HasPrefix(line, "|-") || strings.HasPrefix(line, "| -") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(strings.ReplaceAll(cells[i], "`", ""))
		}
		rows = append(rows, cells)
	}
	return rows
}

// firstTable returns the lines of the first table in text; the field
// table's section also holds the subelement tables of DE48, DE54 and DE55.
func firstTable(text string) string {
	var out strings.Builder
	for line := range strings.Lines(text) {
		if strings.HasPrefix(line, "|") {
			out.WriteString(line)
		} else if out.Len() > 0 {
			break
		}
	}
	return out.String()
}

func TestWireDocFieldTable(t *testing.T) {
	rows := docTableRows(firstTable(docSection(t, readWireDoc(t), "Field table")))
	seen := map[int]bool{}
	for _, cells := range rows {
		id, err := strconv.Atoi(cells[0])
		if err != nil {
			continue // the header row
		}
		def, ok := fieldDefs[id]
		if !ok {
			t.Errorf("the field table lists DE%d, which spec.go does not define", id)
			continue
		}
		if seen[id] {
			t.Errorf("the field table lists DE%d twice", id)
		}
		seen[id] = true
		if len(cells) < 5 {
			t.Errorf("DE%d: row has %d cells, want number, name, format, sent by, meaning", id, len(cells))
			continue
		}
		if cells[2] != formatOf(def) {
			t.Errorf("DE%d: the field table says %q, spec.go says %q", id, cells[2], formatOf(def))
		}
	}
	for id := range fieldDefs {
		if !seen[id] {
			t.Errorf("DE%d (%s, %s) is missing from the field table", id, fieldDefs[id].name, formatOf(fieldDefs[id]))
		}
	}
}

func TestWireDocShowsTheTestdataFrames(t *testing.T) {
	doc := readWireDoc(t)
	section := docSection(t, doc, "Example frames")
	for _, ex := range examples {
		text, err := os.ReadFile(filepath.Join("testdata", "frames", ex.file))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(section, string(text)) {
			t.Errorf("docs/wire.md does not show testdata/frames/%s as it is", ex.file)
		}
	}
}

func TestWireDocCodes(t *testing.T) {
	doc := readWireDoc(t)
	tests := []struct {
		section string
		codes   []string
	}{
		{"Processing codes", []string{ProcPurchase, ProcRefund, ProcTransitTopUp, ProcBalanceInquiry}},
		{"Response codes", []string{
			RCApproved, RCDoNotHonor, RCInvalidTransaction, RCInvalidAmount,
			RCNoSuchCard, RCOriginalNotFound, RCFormatError, RCInsufficientFunds,
			RCExpiredCard, RCNotPermitted, RCSuspectedFraud, RCRestrictedCard,
			RCIssuerUnavailable, RCNoRoute, RCDuplicate, RCSystemError,
			RCInvalidMerchant, RCTerminalNotAllowed, RCSecurityViolation,
		}},
		{"Network management", []string{NetSignOn, NetSignOff, NetEcho}},
	}
	for _, tt := range tests {
		listed := map[string]bool{}
		for _, cells := range docTableRows(docSection(t, doc, tt.section)) {
			listed[cells[0]] = true
		}
		for _, code := range tt.codes {
			if !listed[code] {
				t.Errorf("section %q has no row for %s", tt.section, code)
			}
		}
	}
}
