package reconcile

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/settlement"
	"github.com/tapswitch/tapswitch/settlement/clearing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const (
	day     = "20260314"
	before  = "20260313"
	after   = "20260315"
	issuer  = "01020000"
	traceT  = "0314020000" // the issuer transmission time of every test trace
	termDE7 = "0314015957"
)

// posting is a ledger entry of the issuer's: trace STAN stan, posted on
// posted, reversed on reversed ("" if it stands).
func posting(stan string, pc string, amount iso8583.Amount, posted, reversed string) LedgerEntry {
	dir, _ := settlement.DirectionOf(pc)
	return LedgerEntry{STAN: stan, TransmissionTime: traceT, ProcessingCode: pc, Amount: amount, Direction: dir,
		RRN: "6073" + stan + "01", TerminalID: "T0000001", AuthCode: "A" + stan[1:], BusinessDay: posted,
		Reversed: reversed != "", ReversalDay: reversed}
}

func purchase(stan string, posted, reversed string) LedgerEntry {
	return posting(stan, iso8583.ProcPurchase, 12345, posted, reversed)
}

// record is a valid issuer-file record with issuer trace stan: an original
// or, with reversal, the reversal of one.
func record(stan, pc string, amount iso8583.Amount, reversal bool) clearing.Detail {
	d := clearing.Detail{
		Seq: 1, NodeID: "node-1", JournalSeq: 1, MTI: "0200", ProcessingCode: pc, Amount: amount, Currency: "156",
		Interchange: 43, SwitchFee: 4, Time: time.Date(2026, 3, 14, 2, 0, 0, 0, time.UTC),
		TransmissionTime: termDE7, STAN: "100" + stan[3:], RRN: "6073" + stan + "01", AuthCode: "A" + stan[1:],
		TerminalID: "T0000001", MerchantID: "898310053110001", MCC: "5411", Acquirer: "03080000",
		IssuerID: "ICBC", IssuerInstitution: issuer, Product: "debit", CardNumber: "6222020000000001234",
		IssuerSTAN: stan, IssuerTransmissionTime: traceT,
	}
	d.Direction, _ = settlement.DirectionOf(pc)
	if reversal {
		d.MTI, d.Reversal, d.Direction = "0400", true, d.Direction.Opposite()
		d.STAN = "200" + stan[3:]
		d.OriginalSTAN, d.OriginalTransmissionTime = "100"+stan[3:], termDE7
	}
	return d
}

func orig(stan string) clearing.Detail { return record(stan, iso8583.ProcPurchase, 12345, false) }
func rev(stan string) clearing.Detail  { return record(stan, iso8583.ProcPurchase, 12345, true) }

// numbered numbers records as a file would: Seq and journal seq from 1.
func numbered(ds ...clearing.Detail) []clearing.Detail {
	for i := range ds {
		ds[i].Seq, ds[i].JournalSeq = uint64(i+1), uint64(i+1)
	}
	return ds
}

func ledger(es ...LedgerEntry) []LedgerEntry { return es }

// want is a break in short: kind, trace STAN, reversal record, and a piece
// of the reason.
type want struct {
	kind     Kind
	stan     string
	reversal bool
	reason   string
}

func TestDay(t *testing.T) {
	tests := []struct {
		name       string
		ledger     []LedgerEntry
		records    []clearing.Detail
		want       []want
		notCleared int
	}{
		{name: "posting of the day", ledger: ledger(purchase("000001", day, "")), records: numbered(orig("000001"))},
		{name: "refund of the day", ledger: ledger(posting("000001", iso8583.ProcRefund, 500, day, "")),
			records: numbered(record("000001", iso8583.ProcRefund, 500, false))},
		{name: "posting reversed on a later day", ledger: ledger(purchase("000001", day, after)), records: numbered(orig("000001"))},
		{name: "reversed on the day: both records", ledger: ledger(purchase("000001", day, day)),
			records: numbered(orig("000001"), rev("000001"))},
		{name: "reversed on the day: neither record (a time-out)", ledger: ledger(purchase("000001", day, day)), notCleared: 1},
		{name: "earlier posting reversed on the day", ledger: ledger(purchase("000001", before, day)), records: numbered(rev("000001"))},
		{name: "other days' entries expect nothing", ledger: ledger(purchase("000001", before, ""), purchase("000002", after, ""),
			purchase("000003", before, before), purchase("000004", before, after))},
		{name: "empty day"},

		{name: "missing posting", ledger: ledger(purchase("000001", day, "")),
			want: []want{{Missing, "000001", false, "posted it on 20260314; the file has no record"}}},
		{name: "missing posting reversed later", ledger: ledger(purchase("000001", day, after)),
			want: []want{{Missing, "000001", false, "reversed it on 20260315"}}},
		{name: "missing reversal", ledger: ledger(purchase("000001", before, day)),
			want: []want{{Missing, "000001", true, "reversed it on 20260314 (posted on 20260313)"}}},
		{name: "same-day pair: original only", ledger: ledger(purchase("000001", day, day)), records: numbered(orig("000001")),
			want: []want{{Missing, "000001", true, "has the original record but not its reversal"}}},
		{name: "same-day pair: reversal only", ledger: ledger(purchase("000001", day, day)), records: numbered(rev("000001")),
			want: []want{{Missing, "000001", false, "has its reversal record but not the original"}}},

		{name: "unknown trace", records: numbered(orig("000009")),
			want: []want{{Extra, "000009", false, "no posting with this STAN"}}},
		{name: "unknown trace, original and reversal", records: numbered(orig("000009"), rev("000009")),
			want: []want{{Extra, "000009", false, "no posting"}, {Extra, "000009", true, "no posting"}}},
		{name: "second original", ledger: ledger(purchase("000001", day, "")), records: numbered(orig("000001"), orig("000001")),
			want: []want{{Extra, "000001", false, "a second original record"}}},
		{name: "second reversal", ledger: ledger(purchase("000001", before, day)), records: numbered(rev("000001"), rev("000001")),
			want: []want{{Extra, "000001", true, "a second reversal record"}}},
		{name: "reversal of a standing posting", ledger: ledger(purchase("000001", day, "")), records: numbered(orig("000001"), rev("000001")),
			want: []want{{Extra, "000001", true, "has not reversed it"}}},
		{name: "reversal the ledger did later", ledger: ledger(purchase("000001", day, after)), records: numbered(orig("000001"), rev("000001")),
			want: []want{{Extra, "000001", true, "reversed it on 20260315, not on 20260314"}}},
		{name: "original of an earlier day", ledger: ledger(purchase("000001", before, "")), records: numbered(orig("000001")),
			want: []want{{Extra, "000001", false, "posted it on 20260313, not on 20260314"}}},
		{name: "original of an earlier day reversed today", ledger: ledger(purchase("000001", before, day)),
			records: numbered(orig("000001"), rev("000001")),
			want:    []want{{Extra, "000001", false, "posted it on 20260313, not on 20260314"}}},
		{name: "reversal of an earlier day", ledger: ledger(purchase("000001", before, before)), records: numbered(rev("000001")),
			want: []want{{Extra, "000001", true, "reversed it on 20260313, not on 20260314"}}},

		{name: "amount differs", ledger: ledger(purchase("000001", day, "")),
			records: numbered(record("000001", iso8583.ProcPurchase, 12340, false)),
			want:    []want{{AmountDiffers, "000001", false, "the ledger says 123.45, the record 123.40"}}},
		{name: "reversal amount differs", ledger: ledger(purchase("000001", before, day)),
			records: numbered(record("000001", iso8583.ProcPurchase, 99, true)),
			want:    []want{{AmountDiffers, "000001", true, "123.45, the record 0.99"}}},
		{name: "direction differs", ledger: ledger(posting("000001", iso8583.ProcRefund, 12345, day, "")),
			records: numbered(orig("000001")),
			want:    []want{{DirectionDiffers, "000001", false, "the ledger posted C, the record has D"}}},
		{name: "reversal direction differs", ledger: ledger(purchase("000001", before, day)),
			records: numbered(record("000001", iso8583.ProcRefund, 12345, true)),
			want:    []want{{DirectionDiffers, "000001", true, "the reversal of a D posting is C, the record has D"}}},
		{name: "amount and direction differ", ledger: ledger(purchase("000001", day, "")),
			records: numbered(record("000001", iso8583.ProcRefund, 1, false)),
			want:    []want{{AmountDiffers, "000001", false, "123.45"}, {DirectionDiffers, "000001", false, "posted D, the record has C"}}},
		{name: "a trace used on another day too", ledger: ledger(purchase("000001", before, ""), purchase("000001", day, "")),
			records: numbered(orig("000001"))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Day(day, tc.ledger, tc.records)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Breaks) != len(tc.want) {
				t.Fatalf("%d breaks, want %d:\n%s", len(r.Breaks), len(tc.want), r.Text())
			}
			for i, w := range tc.want {
				b := r.Breaks[i]
				if b.Kind != w.kind || b.Key.STAN != w.stan || b.Reversal != w.reversal || !strings.Contains(b.Reason, w.reason) {
					t.Errorf("break %d: %s %s reversal %v %q\nwant %s %s reversal %v reason containing %q",
						i, b.Kind, b.Key.STAN, b.Reversal, b.Reason, w.kind, w.stan, w.reversal, w.reason)
				}
				if (b.Kind == Missing) != (b.File == nil) {
					t.Errorf("break %d: %s with file record %v", i, b.Kind, b.File)
				}
			}
			if r.ReversedNotCleared != tc.notCleared {
				t.Errorf("ReversedNotCleared %d, want %d", r.ReversedNotCleared, tc.notCleared)
			}
			if r.Clean() != (len(tc.want) == 0) || r.FileRecords != len(tc.records) {
				t.Errorf("Clean %v, FileRecords %d", r.Clean(), r.FileRecords)
			}
		})
	}
}

func TestDayErrors(t *testing.T) {
	bad := func(edit func(e *LedgerEntry)) []LedgerEntry {
		e := purchase("000001", day, "")
		edit(&e)
		return ledger(e)
	}
	otherIssuer := orig("000002")
	otherIssuer.IssuerInstitution = "01030000"
	unnumbered := orig("000001")
	unnumbered.Seq = 0
	tests := []struct {
		name    string
		day     string
		ledger  []LedgerEntry
		records []clearing.Detail
		wantHas string
	}{
		{"bad day", "2026-03-14", nil, nil, "want a date"},
		{"STAN", day, bad(func(e *LedgerEntry) { e.STAN = "00001" }), nil, "ledger entry 1: STAN"},
		{"transmission time", day, bad(func(e *LedgerEntry) { e.TransmissionTime = "03140200xx" }), nil, "TransmissionTime"},
		{"zero amount", day, bad(func(e *LedgerEntry) { e.Amount = 0 }), nil, "Amount 0"},
		{"no direction", day, bad(func(e *LedgerEntry) { e.Direction = 0 }), nil, "want D or C"},
		{"code against direction", day, bad(func(e *LedgerEntry) { e.Direction = settlement.Credit }), nil, "for processing code 000000"},
		{"code that does not post", day, bad(func(e *LedgerEntry) { e.ProcessingCode = "310000" }), nil, "ProcessingCode"},
		{"control character", day, bad(func(e *LedgerEntry) { e.RRN = "6073\n" }), nil, "RRN"},
		{"long terminal", day, bad(func(e *LedgerEntry) { e.TerminalID = strings.Repeat("T", 33) }), nil, "33 bytes"},
		{"bad business day", day, bad(func(e *LedgerEntry) { e.BusinessDay = "20260230" }), nil, "BusinessDay"},
		{"reversal day without reversal", day, bad(func(e *LedgerEntry) { e.ReversalDay = day }), nil, "not reversed"},
		{"reversed without a day", day, bad(func(e *LedgerEntry) { e.Reversed = true }), nil, "ReversalDay"},
		{"reversed before posted", day, bad(func(e *LedgerEntry) { e.Reversed, e.ReversalDay = true, before }), nil, "before BusinessDay"},
		{"one trace twice on the day", day, ledger(purchase("000001", day, ""), purchase("000001", before, day)), nil, "entries 1 and 2"},
		{"records of two issuers", day, nil, numbered(orig("000001"), otherIssuer), "record 2 is of issuer 01030000"},
		{"record that does not validate", day, nil, []clearing.Detail{unnumbered}, "record 1"},
	}
	for _, tc := range tests {
		_, err := Day(tc.day, tc.ledger, tc.records)
		if err == nil || !strings.Contains(err.Error(), tc.wantHas) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.wantHas)
		}
	}
}

// sampleFile is an issuer file of the day: records for traces 1 to 6 and
// an unknown 9.
func sampleFile(t *testing.T, role clearing.Role) *clearing.File {
	t.Helper()
	details := numbered(orig("000001"), orig("000002"), rev("000002"), record("000003", iso8583.ProcPurchase, 500, false),
		record("000004", iso8583.ProcRefund, 700, false), orig("000005"), orig("000009"))
	if role == clearing.Acquirer {
		for i := range details {
			details[i].Acquirer = issuer
		}
	}
	data, err := clearing.Encode(clearing.NewHeader(day, issuer, role, "00010000"), details)
	if err != nil {
		t.Fatal(err)
	}
	f, err := clearing.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// sampleLedger has one of every break against sampleFile, and entries
// that reconcile.
func sampleLedger() []LedgerEntry {
	return ledger(
		purchase("000001", day, ""),    // clean
		purchase("000002", day, day),   // clean pair
		purchase("000003", day, ""),    // amount differs: 123.45 against 5.00
		purchase("000004", day, ""),    // direction and amount differ: a refund of 7.00 in the file
		purchase("000005", day, day),   // the reversal record is missing
		purchase("000006", day, ""),    // missing
		purchase("000007", day, day),   // a time-out: neither record, clean
		purchase("000008", before, ""), // another day's, clean
	) // 000009 is extra
}

func TestFileGolden(t *testing.T) {
	r, err := File(sampleLedger(), sampleFile(t, clearing.Issuer))
	if err != nil {
		t.Fatal(err)
	}
	if r.Institution != issuer || r.LedgerEntries != 7 || r.FileRecords != 7 || r.ReversedNotCleared != 1 || len(r.Breaks) != 6 {
		t.Errorf("institution %s, %d entries, %d records, %d not cleared, %d breaks", r.Institution,
			r.LedgerEntries, r.FileRecords, r.ReversedNotCleared, len(r.Breaks))
	}
	for _, g := range []struct {
		name string
		got  []byte
	}{{"report-breaks.txt", r.Text()}, {"report-breaks.json", r.JSON()}} {
		path := filepath.Join("testdata", g.name)
		if *update {
			if err := os.WriteFile(path, g.got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(g.got, want) {
			t.Errorf("%s differs (run with -update if the change is meant):\n%s", path, g.got)
		}
	}
	if bytes.Contains(r.JSON(), []byte("6222020000000001234")) || bytes.Contains(r.Text(), []byte("6222020000000001234")) {
		t.Error("the report shows a card number")
	}
}

func TestFileRefusesAcquirerFile(t *testing.T) {
	if _, err := File(sampleLedger(), sampleFile(t, clearing.Acquirer)); err == nil || !strings.Contains(err.Error(), "acquirer's file") {
		t.Errorf("got %v", err)
	}
}

func TestCleanReport(t *testing.T) {
	f := sampleFile(t, clearing.Issuer)
	var l []LedgerEntry
	for _, d := range f.Details {
		if d.Reversal {
			continue
		}
		e := LedgerEntry{STAN: d.IssuerSTAN, TransmissionTime: d.IssuerTransmissionTime, Amount: d.Amount,
			Direction: d.Direction, BusinessDay: day}
		if d.IssuerSTAN == "000002" {
			e.Reversed, e.ReversalDay = true, day
		}
		l = append(l, e)
	}
	r, err := File(l, f)
	if err != nil {
		t.Fatal(err)
	}
	text := string(r.Text())
	if !r.Clean() || !strings.HasSuffix(text, "0 breaks: the file and the ledger agree\n") || strings.Count(text, "\n") != 4 {
		t.Errorf("clean day:\n%s", text)
	}
	if !strings.Contains(string(r.JSON()), `"breaks": []`) {
		t.Errorf("clean JSON has no empty break list:\n%s", r.JSON())
	}
}

// TestReportDeterministic: the order of the ledger and of map iteration
// does not change a byte of the report.
func TestReportDeterministic(t *testing.T) {
	f := sampleFile(t, clearing.Issuer)
	first, err := File(sampleLedger(), f)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		l := sampleLedger()
		for j := range l {
			k := (j*7 + i) % len(l)
			l[j], l[k] = l[k], l[j]
		}
		r, err := File(l, f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(r.JSON(), first.JSON()) || !bytes.Equal(r.Text(), first.Text()) {
			t.Fatalf("run %d gave another report:\n%s\n%s", i, r.Text(), first.Text())
		}
	}
}

func TestLedgerEntryJSON(t *testing.T) {
	e := purchase("000001", day, after)
	r := Report{Breaks: []Break{{Kind: Missing, Key: e.Key(), Ledger: &e}}}
	got := string(r.JSON())
	for _, s := range []string{`"direction": "D"`, `"amount_fen": 12345`, `"reversal_day": "20260315"`, `"kind": "missing"`} {
		if !strings.Contains(got, s) {
			t.Errorf("JSON lacks %s:\n%s", s, got)
		}
	}
}
