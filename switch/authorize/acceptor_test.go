package authorize

import (
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/acquirer"
	"github.com/tapswitch/tapswitch/switch/journal"
)

var demoMerchant = acquirer.Merchant{ID: "104110054110001", Acquirer: "01020000", MCCs: []string{"5411"}}

func TestCheckSender(t *testing.T) {
	for status, want := range map[acquirer.Status]string{
		acquirer.Authenticated: "", acquirer.MACMissing: "63", acquirer.MACBad: "63",
		acquirer.Unregistered: "58", 0: "63",
	} {
		if rc, _ := CheckSender(acquirer.Identity{Status: status}); rc != want {
			t.Errorf("%v: %q, want %q", status, rc, want)
		}
	}
}

func TestCheckAcceptor(t *testing.T) {
	from := acquirer.Identity{TerminalID: "TSIM0001", Status: acquirer.Authenticated, Merchant: demoMerchant}
	for _, tt := range []struct {
		name, acq, merchant, mcc, want string
	}{
		{"as registered", "01020000", "104110054110001", "5411", ""},
		{"no MCC (a reversal)", "01020000", "104110054110001", "", ""},
		{"other acquirer", "01050000", "104110054110001", "5411", "03"},
		{"the switch as acquirer", "00010000", "104110054110001", "5411", "03"},
		{"other merchant", "01020000", "105110058120001", "5411", "03"},
		{"other MCC", "01020000", "104110054110001", "4111", "03"},
	} {
		if rc, _ := CheckAcceptor(from, tt.acq, tt.merchant, tt.mcc); rc != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, rc, tt.want)
		}
	}
}

func TestCheckRefund(t *testing.T) {
	req := Request{MTI: "0200", ProcessingCode: iso8583.ProcRefund, Token: "6299900012345672", Amount: 5_00,
		MerchantID: "104110054110001", Acquirer: "01020000", OriginalMTI: "0200"}
	orig := journal.Entry{MTI: "0200", ProcessingCode: iso8583.ProcPurchase, ResponseCode: "00", Amount: 12_34,
		Token: "6299900012345672", MerchantID: "104110054110001", Acquirer: "01020000"}
	change := func(f func(*journal.Entry)) journal.Entry { e := orig; f(&e); return e }
	for _, tt := range []struct {
		name     string
		orig     journal.Entry
		found    bool
		reversed bool
		refunded iso8583.Amount
		want     string
	}{
		{"approved purchase", orig, true, false, 0, ""},
		{"exactly the rest", orig, true, false, 7_34, ""},
		{"one fen over the rest", orig, true, false, 7_35, "13"},
		{"not found", orig, false, false, 0, "25"},
		{"reversed", orig, true, true, 0, "25"},
		{"declined", change(func(e *journal.Entry) { e.ResponseCode = "51" }), true, false, 0, "25"},
		{"a refund, not a purchase", change(func(e *journal.Entry) { e.ProcessingCode = iso8583.ProcRefund }), true, false, 0, "25"},
		{"a top-up", change(func(e *journal.Entry) { e.ProcessingCode = iso8583.ProcTransitTopUp }), true, false, 0, "25"},
		{"other MTI", change(func(e *journal.Entry) { e.MTI = "0100" }), true, false, 0, "25"},
		{"other token", change(func(e *journal.Entry) { e.Token = "6299900000000009" }), true, false, 0, "25"},
		{"other merchant", change(func(e *journal.Entry) { e.MerchantID = "x" }), true, false, 0, "25"},
		{"other acquirer", change(func(e *journal.Entry) { e.Acquirer = "01050000" }), true, false, 0, "25"},
	} {
		if rc, _ := CheckRefund(req, tt.orig, tt.found, tt.reversed, tt.refunded); rc != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, rc, tt.want)
		}
	}
	off, on := acquirer.RefundRule{}, acquirer.RefundRule{Enabled: true, AmountMax: 5_00}
	for _, tt := range []struct {
		rule   acquirer.RefundRule
		amount iso8583.Amount
		want   string
	}{{off, 1, "12"}, {on, 5_00, ""}, {on, 5_01, "13"}} {
		req.Amount = tt.amount
		if rc, _ := CheckRefundWithoutOriginal(req, tt.rule); rc != tt.want {
			t.Errorf("rule %+v amount %d: %q, want %q", tt.rule, tt.amount, rc, tt.want)
		}
	}
}

func TestCheckReversal(t *testing.T) {
	now := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	rev := Reversal{Request: Request{Token: "6299900012345672", Amount: 25_99, MerchantID: "104110054110001", Acquirer: "01020000"}}
	orig := journal.Entry{Token: "6299900012345672", Amount: 25_99, MerchantID: "104110054110001", Acquirer: "01020000",
		Time: now.Add(-time.Hour), ResponseCode: "00"}
	change := func(f func(*journal.Entry)) journal.Entry { e := orig; f(&e); return e }
	for _, tt := range []struct {
		name     string
		orig     journal.Entry
		found    bool
		refunded iso8583.Amount
		want     string
	}{
		{"its own purchase", orig, true, 0, ""},
		{"at the age limit", change(func(e *journal.Entry) { e.Time = now.Add(-24 * time.Hour) }), true, 0, ""},
		{"past the age limit", change(func(e *journal.Entry) { e.Time = now.Add(-24*time.Hour - time.Second) }), true, 0, "25"},
		{"not found", orig, false, 0, "25"},
		{"other token", change(func(e *journal.Entry) { e.Token = "6299900000000009" }), true, 0, "25"},
		{"other merchant", change(func(e *journal.Entry) { e.MerchantID = "x" }), true, 0, "25"},
		{"other acquirer", change(func(e *journal.Entry) { e.Acquirer = "01050000" }), true, 0, "25"},
		{"partial", change(func(e *journal.Entry) { e.Amount = 30_00 }), true, 0, "13"},
		{"refunded", orig, true, 1_00, "12"},
	} {
		if rc, _ := CheckReversal(rev, tt.orig, tt.found, tt.refunded, now, 24*time.Hour); rc != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, rc, tt.want)
		}
	}
}
