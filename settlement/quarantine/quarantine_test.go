package quarantine

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/journal"
)

const (
	switchInst = "00010000"
	icbc       = "01020000"
	cmb        = "03080000"
)

func members() *Members {
	return NewMembers(switchInst, map[string]string{"ICBC": icbc, "CMB": cmb})
}

// entry is an approved purchase as the switch journals one.
func entry(seq uint64, stan string) journal.Entry {
	t := time.Date(2026, 3, 14, 2, 0, 0, 0, time.UTC).Add(time.Duration(seq) * time.Minute)
	return journal.Entry{
		Seq: seq, BusinessDay: "20260314", Time: t, NodeID: "node-1", MTI: "0200", ProcessingCode: "000000",
		Amount: 100_00, Currency: "156", TerminalID: "T0000001", STAN: stan, TransmissionTime: t.Format("0102150405"),
		RRN: "607300000001", MerchantID: "898310053110001", MCC: "5411", Acquirer: cmb,
		Token: "6299900000000000018", IssuerID: "ICBC", Product: "debit", IssuerSTAN: stan,
		IssuerTransmissionTime: t.Format("0102150405"), ResponseCode: "00", AuthCode: "A00001",
	}
}

func reversal(o journal.Entry, seq uint64, stan string) journal.Entry {
	r := o
	r.Seq, r.MTI, r.STAN = seq, "0400", stan
	r.Time = o.Time.Add(time.Second)
	r.TransmissionTime = r.Time.Format("0102150405")
	r.OriginalSTAN, r.OriginalTransmissionTime = o.STAN, o.TransmissionTime
	return r
}

// TestScreen: each fault of a record alone is found, with its reason.
func TestScreen(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(e *journal.Entry)
		want Reason
	}{
		{"good", func(e *journal.Entry) {}, ""},
		{"acquirer is the switch", func(e *journal.Entry) { e.Acquirer = switchInst }, AcquirerIsSwitch},
		{"acquirer no member", func(e *journal.Entry) { e.Acquirer = "09990000" }, AcquirerNotMember},
		{"acquirer missing", func(e *journal.Entry) { e.Acquirer = "" }, BadField},
		{"issuer no member", func(e *journal.Entry) { e.IssuerID = "GONE" }, IssuerNotMember},
		{"currency", func(e *journal.Entry) { e.Currency = "840" }, BadField},
		{"no merchant", func(e *journal.Entry) { e.MerchantID = "" }, BadField},
		{"no issuer trace", func(e *journal.Entry) { e.IssuerSTAN = "" }, BadField},
		{"reversal naming no original", func(e *journal.Entry) { e.MTI = "0400" }, BadField},
	} {
		e := entry(1, "000001")
		c.edit(&e)
		f := members().Screen(&e)
		switch {
		case c.want == "" && f != nil:
			t.Errorf("%s: quarantined: %+v", c.name, f)
		case c.want != "" && (f == nil || f.Reason != c.want):
			t.Errorf("%s: %+v, want %s", c.name, f, c.want)
		}
	}
}

// sort runs both passes over entries in the order given.
func sortDay(t *testing.T, entries []journal.Entry) map[uint64]Reason {
	s := NewSorter(members())
	for i := range entries {
		if err := s.Survey(&entries[i]); err != nil {
			t.Fatal(err)
		}
	}
	out := map[uint64]Reason{}
	for i := range entries {
		if f := s.Decide(&entries[i]); f != nil {
			out[entries[i].Seq] = f.Reason
		}
	}
	return out
}

// TestPairsStayTogether: a reversal of a quarantined original is
// quarantined, and so is the original of a quarantined reversal, whichever
// of the two the day's order shows first; unrelated records settle.
func TestPairsStayTogether(t *testing.T) {
	badOrig := entry(1, "000001")
	badOrig.Acquirer = "09990000"
	revOfBad := reversal(badOrig, 2, "000002")
	revOfBad.Acquirer = cmb // fine alone
	goodOrig := entry(3, "000003")
	badRev := reversal(goodOrig, 4, "000004")
	badRev.Currency = "840"
	other := entry(5, "000005")
	otherRev := reversal(other, 6, "000006")
	want := fmt.Sprint(map[uint64]Reason{1: AcquirerNotMember, 2: OriginalQuarantined, 3: ReversalQuarantined, 4: BadField})
	day := []journal.Entry{badOrig, revOfBad, goodOrig, badRev, other, otherRev}
	if got := fmt.Sprint(sortDay(t, day)); got != want {
		t.Errorf("in order: %s, want %s", got, want)
	}
	backwards := []journal.Entry{otherRev, other, badRev, goodOrig, revOfBad, badOrig}
	if got := fmt.Sprint(sortDay(t, backwards)); got != want {
		t.Errorf("reversals first: %s, want %s", got, want)
	}
}

// TestTooManyFaultsFail: past RecordsMax faulty records the day is not a
// few bad records but a wrong configuration, and Survey fails.
func TestTooManyFaultsFail(t *testing.T) {
	s := NewSorter(NewMembers(switchInst, map[string]string{"CMB": cmb})) // ICBC missing
	for i := 1; i <= RecordsMax+1; i++ {
		e := entry(uint64(i), fmt.Sprintf("%06d", i))
		err := s.Survey(&e)
		if i <= RecordsMax && err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if i > RecordsMax && (err == nil || !strings.Contains(err.Error(), "configur")) {
			t.Fatalf("record %d: %v, want a configuration error", i, err)
		}
	}
}

// TestReportMasksAndTotals: the report masks the token, counts and sums
// the records, and reads back from JSON.
func TestReportMasksAndTotals(t *testing.T) {
	r := NewReport("20260314", switchInst)
	a, b := entry(1, "000001"), reversal(entry(1, "000001"), 2, "000002")
	b.Amount = 5_00
	for _, e := range []journal.Entry{a, b} {
		if err := r.Add(&e, &Fault{AcquirerIsSwitch, "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if r.Count != 2 || r.Amount != 105_00 || r.Exceptions[1].Direction != "C" {
		t.Fatalf("%+v", r)
	}
	for _, out := range [][]byte{r.Text(), r.JSON()} {
		if strings.Contains(string(out), a.Token) || !strings.Contains(string(out), iso8583.MaskPAN(a.Token)) {
			t.Errorf("token not masked:\n%s", out)
		}
	}
	var back Report
	if err := json.Unmarshal(r.JSON(), &back); err != nil || back.Count != 2 || back.Exceptions[0].Reason != AcquirerIsSwitch {
		t.Fatalf("%v %+v", err, back)
	}
}
