package authorize

import (
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/bench/pos"
	"github.com/tapswitch/tapswitch/iso8583"
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
