package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/bench/issuersim"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/authorize"
	"github.com/tapswitch/tapswitch/switch/node"
)

// fastFailures shortens the issuer time-out and keeps the breaker out of
// the way, so fault tests take seconds.
func fastFailures(standIn bool) func(*node.Config) {
	return func(c *node.Config) {
		c.IssuerLinks.RequestTimeout = 300 * time.Millisecond
		c.IssuerLinks.EchoInterval = 200 * time.Millisecond
		c.IssuerLinks.BackoffMax = 200 * time.Millisecond
		c.IssuerLinks.BreakerFailures = 1000
		c.Advices.RetryMin, c.Advices.RetryMax = 50*time.Millisecond, 200*time.Millisecond
		if !standIn {
			c.StandIn = map[string]authorize.StandInRules{}
		}
	}
}

// TestIssuerFaultsLeaveNoHold: whatever the issuer does to its answer
// (late, never, hang up, garbage), the terminal is told 91 and the hold
// the issuer placed is released by the store and forward, to the fen.
func TestIssuerFaultsLeaveNoHold(t *testing.T) {
	faults := map[string]issuersim.Faults{
		"late":       {LateRate: 1, LateBy: time.Second},
		"never":      {DropRate: 1},
		"disconnect": {DisconnectRate: 1},
		"garbage":    {GarbageRate: 1},
	}
	for name, f := range faults {
		t.Run(name, func(t *testing.T) {
			d, w := startWorldWith(t, fastFailures(false))
			card, _ := w.Card("approve")
			tm := newTerminal(t, d, "TERM0306")
			if rc, _ := tm.do(tm.tap(card, iso8583.ProcPurchase, 3_00)); rc != "00" {
				t.Fatalf("before the fault: %s", rc)
			}
			if err := d.Fleet.SetFaults(card.Issuer, f); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if rc, _ := tm.do(tm.tap(card, iso8583.ProcPurchase, 1_00)); rc != iso8583.RCIssuerUnavailable {
					t.Fatalf("during %s: %s, want 91", name, rc)
				}
			}
			if posted := len(d.Fleet.Issuer(card.Issuer).Ledger()); posted < 2 {
				t.Fatalf("the issuer posted nothing during %s: the test proves nothing", name)
			}
			d.Fleet.SetFaults(card.Issuer, issuersim.Faults{})
			assertMoneyAgrees(t, d, card.Issuer)
			if got := issuerMoney(d, card.Issuer).total(); got != 3_00 {
				t.Fatalf("after %s: issuer holds %s, want only the 3.00 approved", name, got)
			}
		})
	}
}

// TestIssuerAnswersTwice: a duplicated answer is matched once and the
// second copy counted as late; money agrees.
func TestIssuerAnswersTwice(t *testing.T) {
	d, w := startWorldWith(t, fastFailures(false))
	card, _ := w.Card("approve")
	d.Fleet.SetFaults(card.Issuer, issuersim.Faults{DuplicateRate: 1})
	tm := newTerminal(t, d, "TERM0307")
	for range 5 {
		if rc, _ := tm.do(tm.tap(card, iso8583.ProcPurchase, 2_00)); rc != "00" {
			t.Fatalf("rc %s", rc)
		}
	}
	assertMoneyAgrees(t, d, card.Issuer)
	if got := issuerMoney(d, card.Issuer).total(); got != 10_00 {
		t.Fatalf("issuer holds %s, want 10.00", got)
	}
}

// TestStandInWhileIssuerDown: with the issuer down the switch approves
// within the rules, declines 91 outside them, and the issuer posts every
// stand-in approval from its 0220 advice once it is back.
func TestStandInWhileIssuerDown(t *testing.T) {
	d, w := startWorldWith(t, fastFailures(true))
	card, _ := w.Card("approve")
	tm := newTerminal(t, d, "TERM0308")
	d.Fleet.Down(card.Issuer)
	waitLinkDown(t, d, card.Issuer)
	stoodIn := tm.tap(card, iso8583.ProcPurchase, 100_00)
	rc, auth := tm.do(stoodIn)
	if rc != "00" || !strings.HasPrefix(auth, "S") {
		t.Fatalf("stand-in: rc %s auth %q", rc, auth)
	}
	if rc, _ := tm.do(tm.tap(card, iso8583.ProcPurchase, 600_00)); rc != iso8583.RCIssuerUnavailable {
		t.Fatalf("above the stand-in ceiling: %s, want 91", rc)
	}
	if rc, _ := tm.do(tm.refundOf(card, stoodIn, 1_00)); rc != iso8583.RCIssuerUnavailable {
		t.Fatalf("refund in stand-in: %s, want 91", rc)
	}
	if held := issuerMoney(d, card.Issuer).total(); held != 0 {
		t.Fatalf("issuer posted %s while down", held)
	}
	d.Fleet.Up(card.Issuer)
	assertMoneyAgrees(t, d, card.Issuer)
	if got := issuerMoney(d, card.Issuer).total(); got != 100_00 {
		t.Fatalf("issuer holds %s after the advice, want the 100.00 stood in", got)
	}
	if rc, _ := tm.do(tm.tap(card, iso8583.ProcPurchase, 1_00)); rc != "00" {
		t.Fatalf("after the issuer is back: %s", rc)
	}
}

// TestStandInDailyCap: the token's daily stand-in count is a hard cap.
func TestStandInDailyCap(t *testing.T) {
	d, w := startWorldWith(t, fastFailures(true))
	card, _ := w.Card("approve")
	tm := newTerminal(t, d, "TERM0309")
	d.Fleet.Down(card.Issuer)
	waitLinkDown(t, d, card.Issuer)
	approved := 0
	for range 7 {
		if rc, _ := tm.do(tm.tap(card, iso8583.ProcPurchase, 1_00)); rc == "00" {
			approved++
		}
	}
	if approved != 5 {
		t.Fatalf("%d stand-in approvals, want the daily cap of 5", approved)
	}
	d.Fleet.Up(card.Issuer)
	assertMoneyAgrees(t, d, card.Issuer)
}

func waitLinkDown(t *testing.T, d *DevWorld, issuerID string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for d.Node.LinksUp() == len(d.Node.Issuers) {
		if time.Now().After(deadline) {
			t.Fatalf("link to %s still up", issuerID)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
