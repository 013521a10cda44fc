package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/settlement/netting"
	"github.com/tapswitch/tapswitch/settlement/settleday"
	"github.com/tapswitch/tapswitch/settlement/transit"
	"github.com/tapswitch/tapswitch/switch/journal"
	"github.com/tapswitch/tapswitch/switch/node"
)

// The transit world of these tests: a Beijing card (BJT, operator 0010,
// institution 31000001) and two Shanghai cards (SPTC, 0021, 31000002),
// tapped on the gates of both cities.
const (
	bjtInst, sptcInst = "31000001", "31000002"
	cardA             = "9910000100000000017" // BJT
	cardB             = "9910000200000000093" // SPTC
	cardC             = "9910000200000000101" // SPTC
	cardD             = "9910000100000000025" // BJT
	bjGate, bjGate2   = "001000000007", "001000000008"
	shGate1, shGate2  = "002100000001", "002100000002"
)

// transitJournal journals, on node-1, the previous day's opening of card
// A (720000, 50.00 yuan, sequence 1) and, on the day, a bank purchase, a
// top-up pair (leg 1: the ICBC card pays 20.00 yuan to BJT, 210000; leg 2:
// BJT loads card A, 220000, sequence 2, after tap 1) and a second load of
// card A (sequence 3, after tap 2) that was reversed by an 0420. It seals
// both days and returns the node's data directory.
func (w *sealedWorld) transitJournal(t *testing.T, withReversal bool) string {
	t.Helper()
	data := filepath.Join(w.dir, "node-1")
	j, err := journal.Open(filepath.Join(data, "journal"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	prev := journal.PrevDay(sampleDay)
	at := func(d time.Duration) time.Time { return sampleNoon.Add(d) }
	loadLeg := func(i int, when time.Time, pc string, amount int64, seq uint32, after uint16) journal.Entry {
		stan := fmt.Sprintf("%06d", 900+i)
		return journal.Entry{Time: when, NodeID: "node-1", MTI: "0200", ProcessingCode: pc, Amount: iso8583.Amount(amount),
			Currency: iso8583.CurrencyCNY, TerminalID: "BJTLOAD1", STAN: stan, TransmissionTime: when.Format("0102150405"),
			RRN: "6073" + stan, Acquirer: "00010000", Token: cardA, IssuerID: "BJT", Product: "transit",
			IssuerSTAN: stan, IssuerTransmissionTime: when.Format("0102150405"), ResponseCode: "00", AuthCode: "L00001",
			PurseLoad: &journal.PurseLoad{Sequence: seq, AfterCounter: after}}
	}
	purchase := fixtureEntry("node-1", 0, at(0), "03080000")
	leg1 := fixtureEntry("node-1", 1, at(time.Minute), bjtInst)
	leg1.ProcessingCode, leg1.Amount, leg1.MerchantID, leg1.MCC = iso8583.ProcTransitTopUp, 2000, "898110041110007", "4111"
	reversal := loadLeg(4, at(12*time.Minute), iso8583.ProcPurseLoad, 2000, 3, 2)
	reversal.MTI, reversal.STAN, reversal.PurseLoad = "0420", "000905", nil
	reversal.OriginalSTAN, reversal.OriginalTransmissionTime = "000904", at(11*time.Minute).Format("0102150405")
	entries := []journal.Entry{
		loadLeg(1, at(-24*time.Hour), iso8583.ProcPurseOpen, 5000, 1, 0),
		purchase, leg1,
		loadLeg(2, at(2*time.Minute), iso8583.ProcPurseLoad, 2000, 2, 1),
		loadLeg(4, at(11*time.Minute), iso8583.ProcPurseLoad, 2000, 3, 2),
	}
	if withReversal {
		entries = append(entries, reversal)
	}
	for _, e := range entries {
		if e.IssuerID == "ICBC" {
			e.PANSealed = w.keys.Seal([]byte("6222020000000001234"), []byte("journal:"+e.Token))
		}
		if err := j.Append(&e); err != nil {
			t.Fatal(err)
		}
	}
	sealed := node.SealedDir(data)
	os.MkdirAll(sealed, 0o700)
	for _, day := range []string{prev, sampleDay} {
		if _, err := j.SealDay(day, "node-1", sealed); err != nil {
			t.Fatal(err)
		}
	}
	return data
}

// tapWorld writes the operators' master key file and the day's tap files,
// made the way gates make them (Purse.Debit, WriteTapFile):
//
//	BJT gate 001000000007, file 1: A's home tap (3.00), B's tap (2.50),
//	    B's next tap with its TAC broken, a tap of a card no operator issued
//	SPTC gate 002100000001, file 1: A's taps 2 and 3 (4.00 each), A having
//	    been loaded 20.00 after tap 1 (the second load was reversed)
//	the same SPTC file uploaded again under another name
//	SPTC gate 002100000002, file 1: C's two taps (1.50), cut mid-record
//	BJT gate 001000000008, file 1: D's tap timed on the next business day
func tapWorld(t *testing.T, dir string) (keysPath, tapsDir string) {
	t.Helper()
	keysPath = filepath.Join(dir, "operator.keys")
	if err := transit.CreateMasterKeysFile(keysPath, []string{"0010", "0021"}); err != nil {
		t.Fatal(err)
	}
	masters, err := transit.LoadMasterKeys(keysPath)
	if err != nil {
		t.Fatal(err)
	}
	purse := func(op, card string, balance int64) transit.Purse {
		return transit.Purse{Operator: op, Card: card, Balance: balance, Key: transit.PurseKey(masters[op], card)}
	}
	clock := sampleNoon
	debit := func(p *transit.Purse, amount int64, gate string) transit.Tap {
		t.Helper()
		clock = clock.Add(time.Minute)
		after, tap, err := p.Debit(amount, gate, clock)
		if err != nil {
			t.Fatal(err)
		}
		*p = after
		return tap
	}
	a := purse("0010", cardA, 5000) // opened the day before
	b := purse("0021", cardB, 800)
	c := purse("0021", cardC, 1000)
	stranger := transit.Purse{Operator: "0099", Card: "9910009900000000011", Balance: 900, Key: transit.PurseKey([]byte("x"), "9910009900000000011")}
	a1 := debit(&a, 300, bjGate)
	a.Balance += 2000 // the load of sequence 2, after tap 1
	b1 := debit(&b, 250, bjGate)
	b2 := debit(&b, 250, bjGate)
	b2.TAC[0] ^= 0xff
	u1 := debit(&stranger, 100, bjGate)
	a2 := debit(&a, 400, shGate1)
	a3 := debit(&a, 400, shGate1) // the reversed load never reached the purse
	c1 := debit(&c, 150, shGate2)
	c2 := debit(&c, 150, shGate2)
	tapsDir = filepath.Join(dir, "taps")
	day := filepath.Join(tapsDir, sampleDay)
	os.MkdirAll(day, 0o700)
	write := func(name string, gate string, cut int, taps ...transit.Tap) []byte {
		t.Helper()
		data, err := transit.WriteTapFile(transit.Header{Operator: gate[:4], Batch: gate, Sequence: 1, Day: sampleDay}, taps)
		if err != nil {
			t.Fatal(err)
		}
		if cut > 0 {
			z := bytes.LastIndex(data[:len(data)-1], []byte("\n")) + 1
			data = data[:z-cut]
		}
		if err := os.WriteFile(filepath.Join(day, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
		return data
	}
	write(bjGate+"-00000001.taps", bjGate, 0, a1, b1, b2, u1)
	sh := write(shGate1+"-00000001.taps", shGate1, 0, a2, a3)
	os.WriteFile(filepath.Join(day, shGate1+"-00000001-resent.taps"), sh, 0o600)
	write(shGate2+"-00000001.taps", shGate2, 30, c1, c2)
	// A BJT gate whose clock ran a day ahead: 04:00 UTC + 20h is 08:00 on
	// the 15th in Beijing, after the day's 23:00 cut-off.
	d := purse("0010", cardD, 1000)
	clock = clock.Add(20 * time.Hour)
	write(bjGate2+"-00000001.taps", bjGate2, 0, debit(&d, 200, bjGate2))
	return keysPath, tapsDir
}

// TestSettleClearsTheTransitDay runs settle on sealed journal days and the
// day's tap files of two operators' gates and checks: the fares between
// the operators are in the net report with the banks', every position
// summing to zero; each operator's transit clearing file reads back with
// its totals; the resent file cleared once; the bad TAC, the truncated
// record and the unknown card are reported per record while the good
// records clear; a re-run is byte-identical; and without -taps the day
// is what it was.
func TestSettleClearsTheTransitDay(t *testing.T) {
	w := newSealedWorld(t)
	data := w.transitJournal(t, true)
	keysPath, tapsDir := tapWorld(t, w.dir)
	out := t.TempDir()
	args := w.args(out, "-date", sampleDate, "-journals", data, "-taps", tapsDir, "-operator-keys", keysPath)
	if code, _, stderr := runSettle(args...); code != 0 {
		t.Fatalf("settle -taps: exit %d: %s", code, stderr)
	}
	m, files := published(t, out, sampleDay)

	var rep netting.Report
	if err := json.Unmarshal(files["net-"+sampleDay+".json"], &rep); err != nil {
		t.Fatal(err)
	}
	pos := map[string]netting.Position{}
	var sum iso8583.Amount
	for _, p := range rep.Positions {
		pos[p.Institution] = p
		sum += p.Net
	}
	if sum != 0 || !rep.Transit || rep.TransitTaps != 3 {
		t.Fatalf("positions sum to %d, transit %v with %d taps; want 0 and 3 taps between cities", sum, rep.Transit, rep.TransitTaps)
	}
	bjt, sptc := pos[bjtInst], pos[sptcInst]
	if bjt.TransitPaid != 800 || bjt.TransitTapsPaid != 2 || bjt.TransitReceived != 250 || sptc.TransitPaid != 250 || sptc.TransitReceived != 800 {
		t.Fatalf("BJT %+v\nSPTC %+v", bjt, sptc)
	}
	// BJT acquired the top-up's leg 1 (20.00 yuan from ICBC) and owes
	// SPTC the net of the fares; its net is those and the fees alone.
	if bjt.AcquirerDebits != 2000 || bjt.Net != 2000-bjt.InterchangePaid-bjt.SwitchFeesPaid-800+250 {
		t.Fatalf("BJT %+v", bjt)
	}
	if sptc.Net != 550 || sptc.IssuerCount+sptc.AcquirerCount != 0 {
		t.Fatalf("SPTC %+v", sptc)
	}
	if !bytes.Contains(files["net-"+sampleDay+".txt"], []byte("TRANSIT FARES BETWEEN OPERATORS (3 taps")) {
		t.Fatalf("net report:\n%s", files["net-"+sampleDay+".txt"])
	}

	bjFile := settleday.TransitFileBase(sampleDay, bjtInst)
	shFile := settleday.TransitFileBase(sampleDay, sptcInst)
	h, recs, tot, err := transit.ReadClearing(files[bjFile+".tclr"])
	if err != nil || h.Operator != "0010" || h.Member != "BJT" {
		t.Fatalf("BJT's clearing file: %v %+v\n%s", err, h, files[bjFile+".tclr"])
	}
	if want := (transit.ClearingTotals{Records: 4, HomeTaps: 1, HomeFen: 300, PaidTaps: 2, PaidFen: 800, ReceivedTaps: 1, ReceivedFen: 250}); tot != want || len(recs) != 4 {
		t.Fatalf("BJT totals %+v, want %+v", tot, want)
	}
	_, _, stot, err := transit.ReadClearing(files[shFile+".tclr"])
	if want := (transit.ClearingTotals{Records: 4, HomeTaps: 1, HomeFen: 150, PaidTaps: 1, PaidFen: 250, ReceivedTaps: 2, ReceivedFen: 800}); err != nil || stot != want {
		t.Fatalf("SPTC totals %+v (%v), want %+v", stot, err, want)
	}
	for _, f := range []struct{ file, want string }{
		{bjFile, bjGate + "-00000001.taps|4|" + cardB + "|" + transit.ReasonBadTAC},
		{bjFile, bjGate + "-00000001.taps|5|9910009900000000011|" + transit.ReasonUnknownCard},
		{bjFile, bjGate2 + "-00000001.taps|2|" + cardD + "|" + transit.ReasonOutsideDay},
		// Of two identical records the first in name order clears:
		// "-resent.taps" sorts before ".taps".
		{shFile, shGate1 + "-00000001.taps|2|" + cardA + "|" + transit.ReasonResent},
		{shFile, shGate1 + "-00000001.taps|3|" + cardA + "|" + transit.ReasonResent},
		{shFile, shGate2 + "-00000001.taps|3||" + transit.ReasonTruncated},
		{shFile, shGate2 + "-00000001.taps|0||transit: tap file: missing trailer"},
	} {
		if !bytes.Contains(files[f.file+"-rejected.txt"], []byte("\n"+f.want+"\n")) {
			t.Errorf("%s-rejected.txt lacks %q:\n%s", f.file, f.want, files[f.file+"-rejected.txt"])
		}
	}
	if n := bytes.Count(files[bjFile+"-rejected.txt"], []byte("\n")) + bytes.Count(files[shFile+"-rejected.txt"], []byte("\n")); n != 2+7 {
		t.Errorf("%d lines of rejections, want 7 and two comment lines", n)
	}
	if m.Transit == nil || m.Transit.Cleared != 5 || m.Transit.Rejected != 7 || len(m.Transit.TapFiles) != 5 {
		t.Fatalf("manifest transit %+v", m.Transit)
	}
	if bl := files["transit-blacklist-"+sampleDay+".json"]; !bytes.Contains(bl, []byte(`"cards": []`)) {
		t.Errorf("blacklist (no card should be on it):\n%s", bl)
	}

	// A re-run is byte-identical.
	if code, _, stderr := runSettle(args...); code != 0 {
		t.Fatalf("second run: %s", stderr)
	}
	_, again := published(t, out, sampleDay)
	if len(again) != len(files) {
		t.Fatalf("%d files, then %d", len(files), len(again))
	}
	for name, b := range files {
		if !bytes.Equal(again[name], b) {
			t.Errorf("%s differs on the re-run", name)
		}
	}

	// Without -taps: no transit file, no transit in the reports, and the
	// bank files are the same bytes.
	plain := t.TempDir()
	if code, _, stderr := runSettle(w.args(plain, "-date", sampleDate, "-journals", data)...); code != 0 {
		t.Fatalf("settle without -taps: %s", stderr)
	}
	pm, pfiles := published(t, plain, sampleDay)
	if pm.Transit != nil || bytes.Contains(pfiles["net-"+sampleDay+".json"], []byte("transit")) {
		t.Fatal("a day settled without -taps mentions transit")
	}
	for name, b := range pfiles {
		if strings.HasSuffix(name, ".clr") && !bytes.Equal(files[name], b) {
			t.Errorf("%s differs with -taps", name)
		}
	}
	if got := len(files) - len(pfiles); got != 2*6+2 {
		t.Errorf("-taps added %d files, want a clearing file and a rejections report per transit member and two for the day", got)
	}
}

// TestSettleTransitRefusals: -taps without -operator-keys is bad usage;
// a day without its tap directory fails naming it; and the reversed load
// is what keeps card A off the blacklist above: journaled without its
// reversal, the load counts, A's third tap no longer follows from its
// balance, and A is blacklisted.
func TestSettleTransitRefusals(t *testing.T) {
	w := newSealedWorld(t)
	data := w.transitJournal(t, false)
	keysPath, tapsDir := tapWorld(t, w.dir)
	out := t.TempDir()
	if code, _, stderr := runSettle(w.args(out, "-date", sampleDate, "-journals", data, "-taps", tapsDir)...); code != 2 || !strings.Contains(stderr, "go together") {
		t.Fatalf("-taps alone: exit %d %q", code, stderr)
	}
	code, _, stderr := runSettle(w.args(out, "-date", "2026-03-13", "-journals", data, "-taps", tapsDir, "-operator-keys", keysPath)...)
	if code != 1 || !strings.Contains(stderr, "20260313 does not exist") {
		t.Fatalf("a day without its tap directory: exit %d %q", code, stderr)
	}
	if code, _, stderr := runSettle(w.args(out, "-date", sampleDate, "-journals", data, "-taps", tapsDir, "-operator-keys", keysPath)...); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	_, files := published(t, out, sampleDay)
	var bl struct {
		Cards  []string
		Reason transit.BlacklistReason
	}
	if err := json.Unmarshal(files["transit-blacklist-"+sampleDay+".json"], &bl); err != nil || len(bl.Cards) != 1 || bl.Cards[0] != cardA || bl.Reason != transit.ReasonClone {
		t.Fatalf("blacklist: %v %+v", err, bl)
	}
	rej := files[settleday.TransitFileBase(sampleDay, sptcInst)+"-rejected.txt"]
	if !bytes.Contains(rej, []byte("\n"+shGate1+"-00000001-resent.taps|3|"+cardA+"|"+transit.ReasonBalance+"\n")) {
		t.Fatalf("SPTC's rejections:\n%s", rej)
	}
}
