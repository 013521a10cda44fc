package reconcile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Text renders the report for people: a summary, then one line per break
// in the report's order. Amounts are in yuan, with the record's or the
// ledger's debit/credit indicator in front.
func (r *Report) Text() []byte {
	var b bytes.Buffer
	issuer := ""
	if r.Institution != "" {
		issuer = "  issuer " + r.Institution
	}
	fmt.Fprintf(&b, "TAPSWITCH RECONCILIATION  business day %s%s\n", r.BusinessDay, issuer)
	fmt.Fprintf(&b, "ledger: %d entries posted or reversed on the day, %d of them posted and reversed with no record\n",
		r.LedgerEntries, r.ReversedNotCleared)
	fmt.Fprintf(&b, "file:   %d records\n", r.FileRecords)
	if r.Clean() {
		b.WriteString("0 breaks: the file and the ledger agree\n")
		return b.Bytes()
	}
	fmt.Fprintf(&b, "%d %s\n\n", len(r.Breaks), plural(len(r.Breaks), "break", "breaks"))
	row := func(cells ...string) {
		line := fmt.Sprintf("%-17s %-6s %-10s %-8s %-16s %-16s %-24s %s", cells[0], cells[1], cells[2],
			cells[3], cells[4], cells[5], cells[6], cells[7])
		b.WriteString(strings.TrimRight(line, " "))
		b.WriteByte('\n')
	}
	row("kind", "stan", "trans.time", "record", "ledger", "file", "journal entry", "reason")
	for i := range r.Breaks {
		br := &r.Breaks[i]
		record, ledger, file, entry := "original", "-", "-", "-"
		if br.Reversal {
			record = "reversal"
		}
		if br.Ledger != nil {
			ledger = fmt.Sprintf("%s %s", br.Ledger.Direction, br.Ledger.Amount)
		}
		if br.File != nil {
			file = fmt.Sprintf("%s %s", br.File.Direction, br.File.Amount)
			entry = fmt.Sprintf("#%d %s/%d", br.File.Seq, br.File.NodeID, br.File.JournalSeq)
		}
		row(string(br.Kind), br.Key.STAN, br.Key.TransmissionTime, record, ledger, file, entry, br.Reason)
	}
	return b.Bytes()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// JSON renders the report for programs: amounts as integers in fen,
// directions as "D" or "C", fields in a fixed order, two-space indented,
// ending in a newline.
func (r *Report) JSON() []byte {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		// Only a direction other than D or C fails to marshal, and Day
		// never puts one in a report.
		panic(fmt.Sprintf("reconcile: marshal report: %v", err))
	}
	return append(b, '\n')
}
