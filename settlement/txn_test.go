package settlement

import (
	"strings"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/journal"
)

const testPAN = "6222020000000001234"

func entry(mti, pc string, amount iso8583.Amount) journal.Entry {
	return journal.Entry{
		Seq: 7, BusinessDay: "20260314", Time: time.Date(2026, 3, 14, 2, 0, 0, 0, time.UTC),
		NodeID: "node-1", MTI: mti, ProcessingCode: pc, Amount: amount, Currency: "156",
		TerminalID: "T0000001", STAN: "000123", TransmissionTime: "0314020000", RRN: "607300012301",
		MerchantID: "898310053110001", MCC: "5411", Acquirer: "03080000", Token: "6299900000000000018",
		PANSealed: []byte("sealed"), IssuerID: "ICBC", Product: "debit", IssuerSTAN: "000007",
		IssuerTransmissionTime: "0314020001", ResponseCode: "00", AuthCode: "A00001",
	}
}

func supplied() Supplied { return Supplied{PAN: testPAN, IssuerInstitution: "01020000"} }

var originalKey = journal.Key{TerminalID: "T0000001", STAN: "000122", TransmissionTime: "0314015900"}

func TestSettles(t *testing.T) {
	tests := []struct {
		name string
		edit func(e *journal.Entry)
		want bool
	}{
		{"approved purchase", func(e *journal.Entry) {}, true},
		{"refund", func(e *journal.Entry) { e.ProcessingCode = iso8583.ProcRefund }, true},
		{"transit top-up", func(e *journal.Entry) { e.ProcessingCode = iso8583.ProcTransitTopUp }, true},
		{"authorization", func(e *journal.Entry) { e.MTI = "0100" }, true},
		{"advice", func(e *journal.Entry) { e.MTI = "0220" }, true},
		{"reversal", func(e *journal.Entry) { e.MTI = "0400" }, true},
		{"reversal advice", func(e *journal.Entry) { e.MTI = "0420" }, true},
		{"stand-in approval", func(e *journal.Entry) { e.StandIn = true }, true},
		{"declined", func(e *journal.Entry) { e.ResponseCode = iso8583.RCInsufficientFunds }, false},
		{"issuer unavailable", func(e *journal.Entry) { e.ResponseCode = iso8583.RCIssuerUnavailable }, false},
		{"balance inquiry", func(e *journal.Entry) { e.ProcessingCode = iso8583.ProcBalanceInquiry }, false},
		{"zero amount", func(e *journal.Entry) { e.Amount = 0 }, false},
		{"not routed", func(e *journal.Entry) { e.IssuerID = "" }, false},
		{"network management", func(e *journal.Entry) { e.MTI = "0800" }, false},
	}
	for _, tc := range tests {
		e := entry("0200", iso8583.ProcPurchase, 100)
		tc.edit(&e)
		if got := Settles(&e); got != tc.want {
			t.Errorf("%s: Settles = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestFromEntryDirections(t *testing.T) {
	tests := []struct {
		mti, pc  string
		dir      Direction
		reversal bool
	}{
		{"0200", iso8583.ProcPurchase, Debit, false},
		{"0200", iso8583.ProcTransitTopUp, Debit, false},
		{"0200", iso8583.ProcRefund, Credit, false},
		{"0400", iso8583.ProcPurchase, Credit, true},
		{"0420", iso8583.ProcTransitTopUp, Credit, true},
		{"0400", iso8583.ProcRefund, Debit, true},
	}
	for _, tc := range tests {
		e := entry(tc.mti, tc.pc, 12345)
		s := supplied()
		if tc.reversal {
			s.Original = originalKey
		}
		tx, err := FromEntry(&e, s)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.mti, tc.pc, err)
		}
		if tx.Direction != tc.dir || tx.Reversal != tc.reversal {
			t.Errorf("%s %s: direction %c reversal %v, want %c %v", tc.mti, tc.pc, tx.Direction, tx.Reversal, tc.dir, tc.reversal)
		}
		if want := 12345 * iso8583.Amount(tc.dir.Sign()); tx.Signed() != want {
			t.Errorf("%s %s: Signed %d, want %d", tc.mti, tc.pc, tx.Signed(), want)
		}
	}
}

func TestFromEntryCopiesFields(t *testing.T) {
	e := entry("0200", iso8583.ProcPurchase, 500)
	e.TerminalID, e.MerchantID, e.StandIn = "T01     ", "M1    ", true
	tx, err := FromEntry(&e, supplied())
	if err != nil {
		t.Fatal(err)
	}
	if tx.TerminalID != "T01" || tx.MerchantID != "M1" {
		t.Errorf("padding kept: %q %q", tx.TerminalID, tx.MerchantID)
	}
	if tx.PAN.Clear() != testPAN || tx.Token != e.Token || tx.IssuerInstitution != "01020000" || !tx.StandIn ||
		tx.Seq != 7 || tx.NodeID != "node-1" || tx.Acquirer != "03080000" || tx.AuthCode != "A00001" {
		t.Errorf("fields not copied: %+v", tx)
	}
	if tx.IssuerSTAN != "000007" || tx.IssuerTransmissionTime != "0314020001" {
		t.Errorf("issuer trace %q %q, want the entry's 000007 0314020001", tx.IssuerSTAN, tx.IssuerTransmissionTime)
	}
	if tx.Key() != (journal.Key{TerminalID: "T01", STAN: "000123", TransmissionTime: "0314020000"}) {
		t.Errorf("key %+v", tx.Key())
	}
}

func TestFromEntryErrors(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(e *journal.Entry, s *Supplied)
		wantHas string
	}{
		{"declined", func(e *journal.Entry, s *Supplied) { e.ResponseCode = "05" }, "does not settle"},
		{"no PAN", func(e *journal.Entry, s *Supplied) { s.PAN = "" }, "PAN"},
		{"bad PAN", func(e *journal.Entry, s *Supplied) { s.PAN = "62220200000000X1234" }, "622202*********1234"},
		{"no issuer institution", func(e *journal.Entry, s *Supplied) { s.IssuerInstitution = "" }, "IssuerInstitution"},
		{"foreign currency", func(e *journal.Entry, s *Supplied) { e.Currency = "840" }, "settles in 156"},
		{"unknown product", func(e *journal.Entry, s *Supplied) { e.Product = "prepaid" }, "Product"},
		{"no MCC", func(e *journal.Entry, s *Supplied) { e.MCC = "" }, "MCC"},
		{"amount too large", func(e *journal.Entry, s *Supplied) { e.Amount = AmountMax + 1 }, "Amount"},
		{"long issuer ID", func(e *journal.Entry, s *Supplied) { e.IssuerID = "ABCDEFGHIJKLM" }, "IssuerID"},
		{"no issuer STAN", func(e *journal.Entry, s *Supplied) { e.IssuerSTAN = "" }, `IssuerSTAN "": want 6`},
		{"issuer STAN not digits", func(e *journal.Entry, s *Supplied) { e.IssuerSTAN = "00007A" }, "IssuerSTAN"},
		{"no issuer transmission time", func(e *journal.Entry, s *Supplied) { e.IssuerTransmissionTime = "" }, `IssuerTransmissionTime "": want 10`},
		{"short issuer transmission time", func(e *journal.Entry, s *Supplied) { e.IssuerTransmissionTime = "031402000" }, "IssuerTransmissionTime"},
		{"reversal without original", func(e *journal.Entry, s *Supplied) { e.MTI = "0400" }, "Original"},
		{"reversal from another terminal", func(e *journal.Entry, s *Supplied) {
			e.MTI = "0400"
			s.Original = originalKey
			s.Original.TerminalID = "T0000002"
		}, "original's terminal"},
		{"reversal of itself", func(e *journal.Entry, s *Supplied) {
			e.MTI = "0400"
			s.Original = journal.Key{TerminalID: e.TerminalID, STAN: e.STAN, TransmissionTime: e.TransmissionTime}
		}, "own key"},
	}
	for _, tc := range tests {
		e, s := entry("0200", iso8583.ProcPurchase, 100), supplied()
		tc.edit(&e, &s)
		_, err := FromEntry(&e, s)
		if err == nil || !strings.Contains(err.Error(), tc.wantHas) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.wantHas)
		}
		if err != nil && strings.Contains(err.Error(), testPAN) {
			t.Errorf("%s: error shows the clear PAN: %v", tc.name, err)
		}
	}
}

func TestValidateOriginalOnlyOnReversals(t *testing.T) {
	e := entry("0200", iso8583.ProcPurchase, 100)
	tx, err := FromEntry(&e, supplied())
	if err != nil {
		t.Fatal(err)
	}
	tx.Original = originalKey
	if err := tx.Validate(); err == nil {
		t.Error("an original key on a purchase validated")
	}
	tx.Original, tx.Direction = journal.Key{}, Credit
	if err := tx.Validate(); err == nil {
		t.Error("a purchase crediting the cardholder validated")
	}
}

// TestReversedPurchaseNetsZero: a purchase and its reversal move the same
// amount in opposite directions.
func TestReversedPurchaseNetsZero(t *testing.T) {
	p := entry("0200", iso8583.ProcPurchase, 88800)
	purchase, err := FromEntry(&p, supplied())
	if err != nil {
		t.Fatal(err)
	}
	r := entry("0400", iso8583.ProcPurchase, 88800)
	r.Seq, r.STAN = 9, "000124"
	s := supplied()
	s.Original = purchase.Key()
	reversal, err := FromEntry(&r, s)
	if err != nil {
		t.Fatal(err)
	}
	if sum := purchase.Signed() + reversal.Signed(); sum != 0 {
		t.Errorf("purchase and reversal sum to %d", sum)
	}
}

func TestValidDay(t *testing.T) {
	for s, want := range map[string]bool{"20260314": true, "20240229": true, "20230229": false, "2026031": false, "2026-3-1": false, "20261301": false} {
		if ValidDay(s) != want {
			t.Errorf("ValidDay(%q) = %v", s, !want)
		}
	}
}

func TestRuleCheck(t *testing.T) {
	tests := []struct {
		r    Rule
		v    string
		good bool
	}{
		{RuleAuthCode, "", true},
		{RuleAuthCode, "A1 B", true},
		{RuleAuthCode, "A1 ", false},
		{RuleAuthCode, "A\tB", false},
		{RuleAuthCode, "ABCDEFG", false},
		{RuleRRN, "", false},
		{RuleSTAN, "00012a", false},
		{RuleSTAN, "000123", true},
		{RuleInstitution, "0102000000000", false},
	}
	for _, tc := range tests {
		if err := tc.r.Check("f", tc.v); (err == nil) != tc.good {
			t.Errorf("Check(%q) = %v, want good %v", tc.v, err, tc.good)
		}
	}
}

func TestDirectionText(t *testing.T) {
	for _, d := range []Direction{Debit, Credit} {
		b, err := d.MarshalText()
		if err != nil || string(b) != d.String() {
			t.Fatalf("%c: %q %v", d, b, err)
		}
		var back Direction
		if err := back.UnmarshalText(b); err != nil || back != d {
			t.Errorf("%c: read back %c, %v", d, back, err)
		}
	}
	if _, err := Direction(0).MarshalText(); err == nil {
		t.Error("the zero direction marshalled")
	}
	var d Direction
	if err := d.UnmarshalText([]byte("X")); err == nil {
		t.Error(`"X" unmarshalled`)
	}
}

// TestCheckEntryLeavesThePANOut: CheckEntry finds what FromEntry finds
// about the record, without a PAN; only FromEntry checks the PAN.
func TestCheckEntryLeavesThePANOut(t *testing.T) {
	e := entry("0200", iso8583.ProcPurchase, 100)
	noPAN := supplied()
	noPAN.PAN = ""
	if err := CheckEntry(&e, noPAN); err != nil {
		t.Fatalf("a good entry without its PAN: %v", err)
	}
	if _, err := FromEntry(&e, noPAN); err == nil {
		t.Fatal("FromEntry took a Txn without a PAN")
	}
	e.MerchantID = ""
	if err := CheckEntry(&e, noPAN); err == nil || !strings.Contains(err.Error(), "MerchantID") || strings.Contains(err.Error(), "settlement:") {
		t.Fatalf("no merchant: %v, want the field named, not the entry", err)
	}
}
