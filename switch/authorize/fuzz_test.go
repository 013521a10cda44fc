package authorize

import (
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/bench/pos"
	"github.com/tapswitch/tapswitch/iso8583"
)

// FuzzParseRequest feeds arbitrary frames through the codec into the
// request and reversal parsers and the pure decisions (the cryptogram check
// included): none may panic, a request they accept must carry a
// well-formed duplicate key, and a DE55 that passes spends a counter.
func FuzzParseRequest(f *testing.F) {
	tap := pos.Tap{Terminal: pos.DemoTerminal, ProcessingCode: "000000", Token: "6299901234567893",
		TokenExpiry: "2912", Amount: 1234, STAN: "000042", Time: time.Date(2026, 11, 25, 3, 4, 5, 0, time.UTC)}
	seed, _ := iso8583.Pack(tap.Message())
	f.Add(seed)
	tap.Key, tap.ATC = testTokenKey, 7
	signedSeed, _ := iso8583.Pack(tap.Message())
	f.Add(signedSeed)
	rev := tap.Message()
	rev.MTI("0400")
	rev.Field(iso8583.FieldOriginalData, "020000004111250304050000102000000000000000")
	if b, err := iso8583.Pack(rev); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		msg, err := iso8583.Unpack(frame)
		if err != nil {
			return
		}
		if req, err := ParseRequest(msg); err == nil {
			k := req.Key()
			if len(k.STAN) != 6 || len(k.TransmissionTime) != 10 || k.TerminalID == "" {
				t.Fatalf("accepted request with key %+v", k)
			}
			CheckRequest(req)
			if v := CheckCryptogram(req, testChip()); v.RC == "" && len(req.ICC) > 0 && v.Counter == 0 {
				t.Fatalf("cryptogram passed without spending a counter")
			}
		}
		if r, err := ParseReversal(msg); err == nil && r.Original == r.Key() {
			t.Fatalf("reversal of itself accepted: %+v", r.Original)
		}
		EchoAnswer(msg, iso8583.RCFormatError)
	})
}
