package daemon

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	moov "github.com/moov-io/iso8583"

	"github.com/tapswitch/tapswitch/bench/issuersim"
	"github.com/tapswitch/tapswitch/bench/pos"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/iso8583/mac"
)

// foreignTerminal speaks to the switch's terminal listener over its own
// TCP connection as an ISO 8583 library we did not write: every message
// with a secondary bitmap, all zero when no field of DE65-128 is set, and
// MACed over the bytes it sends.
type foreignTerminal struct {
	t   *testing.T
	nc  net.Conn
	fr  *iso8583.FrameReader
	key []byte
}

func dialForeign(t *testing.T, d *DevWorld, term pos.Terminal) *foreignTerminal {
	t.Helper()
	nc, err := net.Dial("tcp", d.Node.TerminalAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	key, ok := d.AcquirerKeys.TerminalKey(term.Acquirer, term.TerminalID)
	if !ok {
		t.Fatalf("no key for %s", term.TerminalID)
	}
	return &foreignTerminal{t: t, nc: nc, fr: iso8583.NewFrameReader(nc, iso8583.FrameBytesMaxDefault), key: key}
}

// widen packs msg with its MAC in DE64 and an all-zero secondary bitmap;
// signAfter says whether the MAC is computed over those bytes (true, as a
// correct library does) or over the plain encoding before widening.
func (f *foreignTerminal) widen(msg *moov.Message, signAfter bool) []byte {
	f.t.Helper()
	plain, err := iso8583.PackSigned(msg, f.key)
	if err != nil {
		f.t.Fatal(err)
	}
	wide, err := iso8583.WithZeroSecondaryBitmap(plain)
	if err != nil || len(wide) != len(plain)+8 || wide[4]&0x80 == 0 {
		f.t.Fatalf("widening %d bytes gave %d: %v", len(plain), len(wide), err)
	}
	if signAfter {
		if err := mac.Sign(f.key, wide); err != nil {
			f.t.Fatal(err)
		}
	}
	return wide
}

// exchange sends one payload and returns the raw answer and its message.
func (f *foreignTerminal) exchange(payload []byte) ([]byte, *moov.Message) {
	f.t.Helper()
	if err := iso8583.WriteFrame(f.nc, payload); err != nil {
		f.t.Fatal(err)
	}
	f.nc.SetReadDeadline(time.Now().Add(15 * time.Second))
	frame, err := f.fr.Next()
	if err != nil {
		f.t.Fatalf("no answer: %v", err)
	}
	frame = bytes.Clone(frame)
	resp, err := iso8583.Unpack(frame)
	if err != nil {
		f.t.Fatalf("answer does not unpack: %v", err)
	}
	return frame, resp
}

// checkAnswer holds an answer to a request the switch authenticated: the
// wanted MTI and DE39, the request's STAN, a MAC that verifies under the
// terminal's key, and no secondary bitmap (the switch never sends an
// all-zero one).
func (f *foreignTerminal) checkAnswer(frame []byte, resp *moov.Message, mti, stan, rc string) {
	f.t.Helper()
	got, _ := resp.GetMTI()
	if got != mti || iso8583.FieldValue(resp, iso8583.FieldSTAN) != stan || iso8583.FieldValue(resp, iso8583.FieldResponseCode) != rc {
		f.t.Fatalf("answer %s STAN %s rc %s, want %s STAN %s rc %s", got, iso8583.FieldValue(resp, iso8583.FieldSTAN),
			iso8583.FieldValue(resp, iso8583.FieldResponseCode), mti, stan, rc)
	}
	if err := mac.Verify(f.key, frame); err != nil {
		f.t.Fatalf("answer's MAC: %v", err)
	}
	if frame[4]&0x80 != 0 {
		f.t.Fatalf("answer %x carries a secondary bitmap it does not need", frame)
	}
}

// TestForeignTerminalAllZeroSecondaryBitmap is issue 11's interop case: a
// terminal library that always sends a secondary bitmap taps a purchase
// and sends an echo without DE70, each MACed in DE64 over the bytes it
// sent, and gets the answers a terminal without it gets. A MAC computed
// over the bytes without the secondary bitmap does not verify: the switch
// checks the frame it received, not a re-encoding.
func TestForeignTerminalAllZeroSecondaryBitmap(t *testing.T) {
	d, w := startWorld(t)
	card, _ := w.Card("approve")
	term := icbcTerminal("TERM0007")
	f := dialForeign(t, d, term)

	purchase := pos.Tap{Terminal: term, ProcessingCode: iso8583.ProcPurchase, Amount: 12_34,
		STAN: nextTestSTAN(), Time: time.Now()}.WithCard(card).Message()
	stan := iso8583.FieldValue(purchase, iso8583.FieldSTAN)
	frame, resp := f.exchange(f.widen(purchase, true))
	f.checkAnswer(frame, resp, iso8583.MTIFinancialResponse, stan, iso8583.RCApproved)
	auth := iso8583.FieldValue(resp, iso8583.FieldAuthCode)
	if auth == "" || iso8583.FieldValue(resp, iso8583.FieldPAN) != card.Token {
		t.Fatalf("approval with auth code %q and DE2 %q", auth, iso8583.FieldValue(resp, iso8583.FieldPAN))
	}
	if !postedWithAuth(d, term.TerminalID, auth) {
		t.Fatalf("no issuer posting with auth code %s: not the issuer's approval", auth)
	}

	echo := iso8583.NewMessage()
	echo.MTI(iso8583.MTINetworkMgmtRequest)
	echo.Field(iso8583.FieldTransmissionTime, time.Now().UTC().Format("0102150405"))
	echo.Field(iso8583.FieldSTAN, nextTestSTAN())
	echo.Field(iso8583.FieldAcquirer, term.Acquirer)
	echo.Field(iso8583.FieldTerminalID, term.TerminalID)
	frame, resp = f.exchange(f.widen(echo, true))
	f.checkAnswer(frame, resp, iso8583.MTINetworkMgmtResponse, iso8583.FieldValue(echo, iso8583.FieldSTAN), iso8583.RCApproved)

	// The same purchase MACed over the plain encoding, then widened.
	forged := pos.Tap{Terminal: term, ProcessingCode: iso8583.ProcPurchase, Amount: 12_34,
		STAN: nextTestSTAN(), Time: time.Now()}.WithCard(card).Message()
	_, resp = f.exchange(f.widen(forged, false))
	if rc := iso8583.FieldValue(resp, iso8583.FieldResponseCode); rc != iso8583.RCSecurityViolation {
		t.Fatalf("a MAC over other bytes than those sent: rc %s, want %s", rc, iso8583.RCSecurityViolation)
	}
}

// postedWithAuth says whether an issuer of the dev world posted an
// approval for terminal tid under authorization code auth (stand-in
// approvals are the switch's own and post nothing there).
func postedWithAuth(d *DevWorld, tid, auth string) bool {
	for _, l := range ledgerOf(d, tid) {
		if l.AuthCode == auth {
			return true
		}
	}
	return false
}

// TestIssuerAnswersWithAllZeroSecondaryBitmap: every simulated issuer
// answers with an all-zero secondary bitmap, as some hosts' libraries do;
// the switch reads those answers like any other, and the terminal gets the
// issuer's own decision (an approval the issuer posted, a 51 only an
// issuer gives), not a time-out or a stand-in.
func TestIssuerAnswersWithAllZeroSecondaryBitmap(t *testing.T) {
	d, w := startWorld(t)
	if err := d.Fleet.SetFaults(issuersim.AllIssuers, issuersim.Faults{ZeroSecondaryBitmap: true}); err != nil {
		t.Fatal(err)
	}
	c, err := pos.Dial(d.Node.TerminalAddr(), time.Second, d.AcquirerKeys)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, label := range []string{"approve", "insufficient"} {
		card, err := w.Card(label)
		if err != nil {
			t.Fatal(err)
		}
		term := icbcTerminal("TERM0008")
		req := pos.Tap{Terminal: term, ProcessingCode: iso8583.ProcPurchase, Amount: 12_34,
			STAN: nextTestSTAN(), Time: time.Now()}.WithCard(card).Message()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		resp, err := c.Do(ctx, req)
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", label, err)
		}
		rc := iso8583.FieldValue(resp, iso8583.FieldResponseCode)
		if rc != card.Outcome {
			t.Fatalf("%s: rc %s, want %s", label, rc, card.Outcome)
		}
		if auth := iso8583.FieldValue(resp, iso8583.FieldAuthCode); rc == iso8583.RCApproved && !postedWithAuth(d, term.TerminalID, auth) {
			t.Fatalf("%s: no issuer posting with auth code %q", label, auth)
		}
	}
}
