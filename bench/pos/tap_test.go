package pos

import (
	"bytes"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
)

// TestBuildPacksAsMessage: a tap packed by the fast codec (Build, then the
// Builder's Append and AppendSigned) is byte for byte the tap packed by
// moov (Message, then Pack and PackSigned), for every kind the harness and
// termsim send: with and without DE55, a refund naming its original, a
// reversal's MTI, the all-digits edge of the amount.
func TestBuildPacksAsMessage(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	at := time.Date(2026, 12, 3, 23, 59, 58, 0, time.UTC)
	base := Tap{Terminal: DemoTerminal, ProcessingCode: iso8583.ProcPurchase, Token: "6299901111111116",
		TokenExpiry: "2912", Amount: 12_34, STAN: "000042", Time: at}
	withICC := base
	withICC.Key, withICC.ATC = bytes.Repeat([]byte{9}, 16), 77
	refund := withICC
	refund.ProcessingCode, refund.Original = iso8583.ProcRefund, Original{STAN: "000041", TransmissionTime: "1203235950"}
	reversal := base
	reversal.MTI = iso8583.MTIReversalRequest
	large := withICC
	large.Amount, large.NoFingerprint = 999_999_999_999, true
	var b iso8583.Builder
	for name, tap := range map[string]Tap{"purchase": base, "with DE55": withICC, "refund": refund,
		"reversal MTI": reversal, "largest amount, no CDCVM": large} {
		moovPlain, err := iso8583.Pack(tap.Message())
		if err != nil {
			t.Fatalf("%s: moov: %v", name, err)
		}
		tap.Build(&b)
		plain, err := b.Append(nil)
		if err != nil {
			t.Fatalf("%s: builder: %v", name, err)
		}
		if !bytes.Equal(plain, moovPlain) {
			t.Errorf("%s: builder packed\n%q\nmoov packed\n%q", name, plain, moovPlain)
		}
		moovSigned, err := iso8583.PackSigned(tap.Message(), key)
		if err != nil {
			t.Fatal(err)
		}
		tap.Build(&b)
		signed, err := b.AppendSigned(nil, key)
		if err != nil || !bytes.Equal(signed, moovSigned) {
			t.Errorf("%s: signed packings differ (%v)", name, err)
		}
	}
}
