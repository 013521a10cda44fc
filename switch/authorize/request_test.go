package authorize

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/bench/pos"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/journal"
)

func TestParseRequest(t *testing.T) {
	tap := pos.Tap{Terminal: pos.DemoTerminal, ProcessingCode: "000000", Token: "6299901234567893",
		TokenExpiry: "2912", Amount: 1234, STAN: "000042", Time: time.Date(2026, 11, 25, 3, 4, 5, 0, time.UTC)}
	// Through the wire, as the server sees it.
	packed, err := iso8583.Pack(tap.Message())
	if err != nil {
		t.Fatal(err)
	}
	msg, err := iso8583.Unpack(packed)
	if err != nil {
		t.Fatal(err)
	}
	req, err := ParseRequest(msg)
	if err != nil {
		t.Fatal(err)
	}
	if req.STAN != "000042" || req.ProcessingCode != "000000" || req.Amount != 1234 ||
		req.TransmissionTime != "1125030405" || req.TerminalID != pos.DemoTerminal.TerminalID ||
		req.Token.Clear() != "6299901234567893" || req.POSEntryMode != "072" || req.Currency != "156" {
		t.Fatalf("parsed %+v", req)
	}
	for _, id := range mandatoryFields {
		m, _ := iso8583.Unpack(packed)
		m.UnsetField(id)
		if _, err := ParseRequest(m); err == nil {
			t.Errorf("request without DE%d accepted", id)
		}
	}
}

// A refund names its original in DE90, which counts in its digest; DE90 on
// anything but a refund, or naming the refund itself, is a format error.
func TestParseRequestOriginal(t *testing.T) {
	at := time.Date(2026, 11, 25, 3, 4, 5, 0, time.UTC)
	refund := pos.Tap{Terminal: pos.DemoTerminal, ProcessingCode: iso8583.ProcRefund, Token: "6299901234567893",
		TokenExpiry: "2912", Amount: 500, STAN: "000043", Time: at,
		Original: pos.Original{STAN: "000042", TransmissionTime: "1125030000"}}
	req, err := ParseRequest(refund.Message())
	if err != nil {
		t.Fatal(err)
	}
	want := journalKey(pos.DemoTerminal.TerminalID, "000042", "1125030000")
	if !req.HasOriginal() || req.OriginalMTI != "0200" || req.Original != want {
		t.Fatalf("original %s %+v, want 0200 %+v", req.OriginalMTI, req.Original, want)
	}
	other := refund
	other.Original.STAN = "000041"
	if r2, _ := ParseRequest(other.Message()); r2.Digest() == req.Digest() {
		t.Fatal("two refunds naming different originals share a digest")
	}
	purchase := refund
	purchase.ProcessingCode = iso8583.ProcPurchase
	if _, err := ParseRequest(purchase.Message()); err == nil {
		t.Fatal("a purchase with DE90 parsed")
	}
	self := refund
	self.Original = pos.Original{STAN: "000043", TransmissionTime: "1125030405"}
	if _, err := ParseRequest(self.Message()); err == nil {
		t.Fatal("a refund naming itself parsed")
	}
}

func journalKey(terminal, stan, de7 string) journal.Key {
	return journal.Key{TerminalID: terminal, STAN: stan, TransmissionTime: de7}
}

// The digest's input is the format it was first journaled with, so that a
// retransmission after an upgrade is still recognized.
func TestDigestInput(t *testing.T) {
	at := time.Date(2026, 11, 25, 3, 4, 5, 0, time.UTC)
	for _, tap := range []pos.Tap{
		{Terminal: pos.DemoTerminal, ProcessingCode: "000000", Token: "6299901234567893",
			TokenExpiry: "2912", Amount: 1234, STAN: "000042", Time: at},
		{Terminal: pos.DemoTerminal, ProcessingCode: iso8583.ProcRefund, Token: "6299901234567893",
			TokenExpiry: "2912", Amount: 500, STAN: "000043", Time: at,
			Original: pos.Original{STAN: "000042", TransmissionTime: "1125030000"}},
	} {
		r, err := ParseRequest(tap.Message())
		if err != nil {
			t.Fatal(err)
		}
		in := fmt.Appendf(nil, "%s|%s|%s|%s|%d|%s|%s|%s|%s|%s|%s",
			r.MTI, r.ProcessingCode, r.Token.Clear(), r.TokenExpiry, r.Amount, r.Currency,
			r.RRN, r.MerchantID, r.MCC, r.Acquirer, r.POSEntryMode)
		if r.HasOriginal() {
			in = fmt.Appendf(in, "|%s|%s|%s", r.OriginalMTI, r.Original.STAN, r.Original.TransmissionTime)
		}
		if r.Digest() != sha256.Sum256(in) {
			t.Fatalf("digest of %q changed", in)
		}
		if n := testing.AllocsPerRun(10, func() { r.Digest() }); n != 0 {
			t.Errorf("Digest: %v allocations", n)
		}
	}
}
