package issuersim

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
)

func TestBusinessDay(t *testing.T) {
	sh := DefaultCutoff().Location
	for _, tt := range []struct {
		cut  Cutoff
		at   time.Time
		want string
	}{
		{DefaultCutoff(), time.Date(2026, 3, 15, 22, 59, 59, 0, sh), "20260315"},
		{DefaultCutoff(), time.Date(2026, 3, 15, 23, 0, 0, 0, sh), "20260316"},
		{DefaultCutoff(), time.Date(2026, 3, 15, 14, 59, 0, 0, time.UTC), "20260315"}, // 22:59 in Shanghai
		{DefaultCutoff(), time.Date(2026, 3, 15, 15, 0, 0, 0, time.UTC), "20260316"},
		{DefaultCutoff(), time.Date(2026, 12, 31, 23, 30, 0, 0, sh), "20270101"},
		{Cutoff{Location: time.UTC}, time.Date(2026, 3, 15, 23, 59, 0, 0, time.UTC), "20260315"},
	} {
		if got := tt.cut.BusinessDay(tt.at); got != tt.want {
			t.Errorf("%s at %v: %s, want %s", tt.cut, tt.at, got, tt.want)
		}
	}
	c, err := ParseCutoff("22:30", "UTC")
	if err != nil || c.Hour != 22 || c.Minute != 30 || c.String() != "22:30 UTC" {
		t.Fatalf("ParseCutoff: %v %v", c, err)
	}
	for _, bad := range [][2]string{{"24:00", "UTC"}, {"23:60", "UTC"}, {"2300", "UTC"}, {"9:00", "UTC"}, {"23:00", "Mars/Olympus"}} {
		if _, err := ParseCutoff(bad[0], bad[1]); err == nil {
			t.Errorf("ParseCutoff(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

// A purchase at 23:30 belongs to the next business day, and its reversal a
// day later settles on its own day.
func TestSnapshotDaysAcrossCutoff(t *testing.T) {
	b := testBook(t)
	sh := DefaultCutoff().Location
	day1 := time.Date(2026, 3, 15, 10, 0, 0, 0, sh)
	late := time.Date(2026, 3, 15, 23, 30, 0, 0, sh)
	next := time.Date(2026, 3, 16, 23, 5, 0, 0, sh)
	p1 := fin("0200", iso8583.ProcPurchase, panDebit, 10_00)
	p2 := fin("0200", iso8583.ProcPurchase, panCredit, 20_00)
	r1 := fin("0200", iso8583.ProcRefund, panTransit, 3_00)
	for _, x := range []struct {
		req request
		at  time.Time
	}{{p1, day1}, {r1, day1}, {p2, late}, {reversalOf("0420", p1), late}, {reversalOf("0400", r1), next}} {
		d := decide(b, x.req, x.at)
		if d.rc != "00" {
			t.Fatalf("%s STAN %s: rc %s", x.req.MTI, x.req.STAN, d.rc)
		}
		b.apply(d)
	}
	totals, days, holds := summarize(b.ledger)
	if totals != (Totals{Entries: 3, Reversed: 2, OpenHolds: 1, Held: 20_00}) {
		t.Fatalf("totals %+v", totals)
	}
	want := []DayTotals{
		{Day: "20260315", Entries: 2, Debits: 10_00, Credits: 3_00},
		{Day: "20260316", Entries: 1, Debits: 20_00, Reversals: 1, ReversedDebits: 10_00},
		{Day: "20260317", Reversals: 1, ReversedCredits: 3_00},
	}
	if !reflect.DeepEqual(days, want) {
		t.Fatalf("days\n%+v\nwant\n%+v", days, want)
	}
	if len(holds) != 1 || holds[0].STAN != p2.STAN || holds[0].BusinessDay != "20260316" {
		t.Fatalf("holds %+v", holds)
	}
	rev := b.ledger[0].Reversal
	if rev.MTI != "0420" || rev.BusinessDay != "20260316" || !rev.Time.Equal(late) || rev.STAN == p1.STAN {
		t.Fatalf("reversal %+v", rev)
	}
}

// testTraffic puts one of each kind of posting on an issuer over TCP.
func testTraffic(t *testing.T, s *Issuer, addr string) {
	t.Helper()
	c := dial(t, addr)
	kept := msgSpec{mti: "0200", pc: "000000", pan: panDebit, expiry: "2812", amount: 30_00, stan: 1}
	reversed := msgSpec{mti: "0100", pc: "000000", pan: panCredit, expiry: "2812", amount: 50_00, stan: 2}
	for _, m := range []msgSpec{
		kept, reversed,
		{mti: "0200", pc: "200000", pan: panDebit, expiry: "2812", amount: 5_00, stan: 3},
		{mti: "0200", pc: "310000", pan: panDebit, expiry: "2812", stan: 4},
		{mti: "0400", pc: "000000", pan: panCredit, amount: 50_00, stan: 5, txTime: "0315100500", original: dataOf(reversed)},
	} {
		if rc := get(t, c.call(m), 39); rc != "00" {
			t.Fatalf("%s STAN %d: rc %s", m.mti, m.stan, rc)
		}
	}
}

func TestSnapshot(t *testing.T) {
	s, addr := startIssuer(t, Faults{})
	testTraffic(t, s, addr)
	snap := s.Snapshot()
	if err := snap.Check(); err != nil {
		t.Fatal(err)
	}
	if snap.Format != SnapshotFormat || snap.Issuer != "TST" || !snap.TakenAt.Equal(testNow) || snap.Cutoff != "23:00 Asia/Shanghai" {
		t.Fatalf("header %+v", snap)
	}
	if snap.Totals != (Totals{Entries: 3, Reversed: 1, OpenHolds: 1, Held: 30_00, Credited: 5_00}) {
		t.Fatalf("totals %+v", snap.Totals)
	}
	if tr := snap.Traffic; tr.Requests != 5 || tr.Answered != 5 {
		t.Fatalf("traffic %+v", tr)
	}
	wantHold := Hold{Seq: 1, BusinessDay: "20260315", STAN: "000001", TransmissionTime: "0315100000",
		PAN: panDebit, Amount: 30_00, RRN: "000000000001", TerminalID: "TERM0001", AuthCode: snap.Ledger[0].AuthCode}
	if len(snap.Holds) != 1 || snap.Holds[0] != wantHold {
		t.Fatalf("holds %+v", snap.Holds)
	}
	wantAccounts := []AccountTotals{
		{PAN: panDebit, Product: bintable.ProductDebit, Available: 75_00, Held: 30_00, Credited: 5_00},
		{PAN: panCredit, Product: bintable.ProductCredit, Available: 500_00},
	}
	if !reflect.DeepEqual(snap.Accounts, wantAccounts) {
		t.Fatalf("accounts %+v", snap.Accounts)
	}
	if r := snap.Ledger[1].Reversal; !snap.Ledger[1].Reversed || r.MTI != "0400" || r.STAN != "000005" || r.TransmissionTime != "0315100500" {
		t.Fatalf("reversed entry %+v", snap.Ledger[1])
	}
	// The snapshot is a copy.
	snap.Ledger[0].Amount = 1
	if s.Ledger()[0].Amount != 30_00 {
		t.Fatal("snapshot shares the ledger")
	}
}

// mustJSON is v as the export writes it.
func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSnapshotJSON(t *testing.T) {
	s, addr := startIssuer(t, Faults{})
	testTraffic(t, s, addr)
	snap := s.Snapshot()
	doc := mustJSON(t, snap)
	if bytes.Contains(doc, []byte(panDebit)) || bytes.Contains(doc, []byte(panCredit)) ||
		!bytes.Contains(doc, []byte(`"pan":"622202******0001"`)) {
		t.Fatalf("PANs not masked: %s", doc)
	}
	// The field names are the format: a reader in another process relies
	// on them.
	var generic map[string]any
	if err := json.Unmarshal(doc, &generic); err != nil {
		t.Fatal(err)
	}
	entry := generic["ledger"].([]any)[1].(map[string]any)
	for _, k := range []string{"format", "issuer", "taken_at", "cutoff", "totals", "traffic", "days", "ledger", "holds", "accounts"} {
		if _, ok := generic[k]; !ok {
			t.Errorf("no %q in the snapshot", k)
		}
	}
	for _, k := range []string{"seq", "business_day", "time", "pan", "mti", "processing_code", "amount", "stan",
		"transmission_time", "rrn", "terminal_id", "auth_code", "response_code", "reversed", "reversal"} {
		if _, ok := entry[k]; !ok {
			t.Errorf("no %q in a ledger entry", k)
		}
	}
	if entry["amount"] != float64(50_00) {
		t.Errorf("amount %v, want minor units as a number", entry["amount"])
	}
	if _, ok := generic["ledger"].([]any)[0].(map[string]any)["reversal"]; ok {
		t.Error("an entry standing carries a reversal")
	}

	back, err := ReadSnapshot(bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mustJSON(t, back), doc) {
		t.Fatalf("round trip differs:\n%s\n%s", mustJSON(t, back), doc)
	}
	if back.Ledger[0].PAN != "622202******0001" {
		t.Fatalf("PAN read back %q", back.Ledger[0].PAN.Clear())
	}
}

func TestReadSnapshotRejects(t *testing.T) {
	s, addr := startIssuer(t, Faults{})
	testTraffic(t, s, addr)
	good := string(mustJSON(t, s.Snapshot()))
	for name, doc := range map[string]string{
		"amount changed":    strings.Replace(good, `"amount":3000`, `"amount":3001`, 1),
		"entry removed":     strings.Replace(good, `"seq":2,`, `"seq":3,`, 1),
		"hold total":        strings.Replace(good, `"held":3000,"credited":500}`, `"held":0,"credited":500}`, 1),
		"unreversed":        strings.Replace(good, `"reversed":true`, `"reversed":false`, 1),
		"other format":      strings.Replace(good, SnapshotFormat, "tapswitch-issuersim-ledger/9", 1),
		"unknown field":     strings.Replace(good, `"issuer":`, `"extra":1,"issuer":`, 1),
		"data after it":     good + "{}",
		"not json":          "ledger",
		"day totals edited": strings.Replace(good, `"debits":8000`, `"debits":8001`, 1),
	} {
		if doc == good {
			t.Errorf("%s: the edit did not apply", name)
			continue
		}
		if _, err := ReadSnapshot(strings.NewReader(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestWriteLedgerFile(t *testing.T) {
	s, addr := startIssuer(t, Faults{})
	testTraffic(t, s, addr)
	dir := t.TempDir()
	path, err := WriteLedgerFile(dir, s.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(dir, "ledger-TST.json") {
		t.Fatalf("path %s", path)
	}
	// Written again with more in it, the file is replaced whole.
	dial(t, addr).call(msgSpec{mti: "0200", pc: "000000", pan: panDebit, expiry: "2812", amount: 1_00, stan: 9})
	if _, err := WriteLedgerFile(dir, s.Snapshot()); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	snap, err := ReadSnapshot(f)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Totals.Entries != 4 || snap.Totals.Held != 31_00 {
		t.Fatalf("totals %+v", snap.Totals)
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*"))
	hidden, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(names) != 1 || len(hidden) != 0 {
		t.Fatalf("dir holds %v %v", names, hidden)
	}

	bad := s.Snapshot()
	bad.Issuer = "../x"
	if _, err := WriteLedgerFile(dir, bad); err == nil {
		t.Fatal("an issuer ID naming another directory was accepted")
	}
	bad = s.Snapshot()
	bad.Totals.Held++
	if _, err := WriteLedgerFile(dir, bad); err == nil {
		t.Fatal("a snapshot failing its check was written")
	}
	if _, err := WriteLedgerFile(filepath.Join(dir, "missing"), s.Snapshot()); err == nil {
		t.Fatal("wrote into a missing directory")
	}
}
