package issuersim

import (
	"bytes"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
)

// A request that carries a secondary bitmap with nothing in it, as some
// ISO 8583 libraries send every message, is read like any other.
func TestRequestWithAllZeroSecondaryBitmap(t *testing.T) {
	_, addr := startIssuer(t, Faults{})
	c := dial(t, addr)
	m := msgSpec{mti: "0100", pc: iso8583.ProcPurchase, pan: panDebit, expiry: "2812", amount: 12_34, stan: 1}
	msg := build(t, m)
	msg.UnsetField(iso8583.FieldReceivingInstitution) // the request's one field above 64
	payload, err := iso8583.Pack(msg)
	if err != nil {
		t.Fatal(err)
	}
	wide, err := iso8583.WithZeroSecondaryBitmap(payload)
	if err != nil || len(wide) != len(payload)+8 {
		t.Fatalf("widened to %d bytes from %d: %v", len(wide), len(payload), err)
	}
	if err := iso8583.WriteFrame(c.nc, wide); err != nil {
		t.Fatal(err)
	}
	resp, err := c.recv(5 * time.Second)
	if err != nil {
		t.Fatalf("no answer to the request with an all-zero secondary bitmap: %v", err)
	}
	if rc, stan := get(t, resp, iso8583.FieldResponseCode), get(t, resp, iso8583.FieldSTAN); rc != "00" || stan != "000001" {
		t.Fatalf("answer rc %s STAN %s, want 00 to STAN 000001", rc, stan)
	}
}

// Faults.ZeroSecondaryBitmap: every answer carries a secondary bitmap, all
// zero when unused, and means what the plain answer means.
func TestAnswersWithAllZeroSecondaryBitmap(t *testing.T) {
	_, addr := startIssuer(t, Faults{ZeroSecondaryBitmap: true})
	c := dial(t, addr)
	c.send(build(t, msgSpec{mti: "0100", pc: iso8583.ProcPurchase, pan: panDebit, expiry: "2812", amount: 12_34, stan: 1}))
	frame := c.recvFrame(5 * time.Second)
	if len(frame) < 20 || frame[4]&0x80 == 0 || !bytes.Equal(frame[12:20], make([]byte, 8)) {
		t.Fatalf("answer %q does not carry an all-zero secondary bitmap", frame)
	}
	resp, err := iso8583.Unpack(frame)
	if err != nil {
		t.Fatalf("the switch's codec refuses the answer: %v", err)
	}
	if rc := get(t, resp, iso8583.FieldResponseCode); rc != "00" || get(t, resp, iso8583.FieldAuthCode) == "" {
		t.Fatalf("answer rc %s without an authorization code", rc)
	}
	plain, err := iso8583.Pack(resp)
	if err != nil || len(plain) != len(frame)-8 {
		t.Fatalf("packed again: %d bytes, %v; want the answer less its secondary bitmap", len(plain), err)
	}
	// An answer that needs its secondary bitmap keeps it as it is.
	c.send(build(t, msgSpec{mti: "0800", stan: 2, netCode: iso8583.NetEcho}))
	echo := c.recvFrame(5 * time.Second)
	if msg, err := iso8583.Unpack(echo); err != nil || get(t, msg, iso8583.FieldNetworkMgmtCode) != iso8583.NetEcho {
		t.Fatalf("echo answer %q: %v", echo, err)
	}
}
