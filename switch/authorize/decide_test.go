package authorize

import (
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/configs"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/switch/vault"
)

var decideNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func goodRequest() Request {
	return Request{
		MTI: "0200", ProcessingCode: iso8583.ProcPurchase, Token: "6299901234567893",
		TokenExpiry: "2912", Amount: 1234, Currency: "156", POSEntryMode: "072",
		STAN: "000001", TransmissionTime: "1125120000", TerminalID: "TERM0001",
		RRN: "612345000001", MerchantID: "M1", MCC: "5411", Acquirer: "01020000",
	}
}

func goodToken() vault.Token {
	return vault.Token{
		Token: "6299901234567893", PAN: "6222020000000000000", CardExpiry: "2912",
		TokenExpiry: "2912", Status: vault.StatusActive, Domain: vault.Domain{ContactlessOnly: true},
	}
}

func TestDecide(t *testing.T) {
	table, err := bintable.Parse(configs.Bins)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		req   func(*Request)
		tok   func(*vault.Token)
		found bool
		rc    string
		route string
	}{
		{name: "approve path routes by PAN BIN", found: true, route: "ICBC"},
		{name: "unknown token", found: false, rc: "14"},
		{name: "suspended", found: true, tok: func(k *vault.Token) { k.Status = vault.StatusSuspended }, rc: "62"},
		{name: "deleted", found: true, tok: func(k *vault.Token) { k.Status = vault.StatusDeleted }, rc: "14"},
		{name: "token expired last month", found: true, tok: func(k *vault.Token) { k.TokenExpiry = "2610" },
			req: func(r *Request) { r.TokenExpiry = "2610" }, rc: "54"},
		{name: "token good through its expiry month", found: true, tok: func(k *vault.Token) { k.TokenExpiry = "2611" },
			req: func(r *Request) { r.TokenExpiry = "2611" }, route: "ICBC"},
		{name: "DE14 differs from the token", found: true, req: func(r *Request) { r.TokenExpiry = "3001" }, rc: "54"},
		{name: "magstripe on a contactless-only token", found: true, req: func(r *Request) { r.POSEntryMode = "901" }, rc: "57"},
		{name: "chip contact on a contactless-only token", found: true, req: func(r *Request) { r.POSEntryMode = "051" }, rc: "57"},
		{name: "no domain restriction allows contact", found: true, req: func(r *Request) { r.POSEntryMode = "051" },
			tok: func(k *vault.Token) { k.Domain.ContactlessOnly = false }, route: "ICBC"},
		{name: "PAN outside every BIN", found: true, tok: func(k *vault.Token) { k.PAN = "4000000000000002" }, rc: "92"},
		{name: "transit card routes to its operator", found: true, tok: func(k *vault.Token) { k.PAN = "9910000200000000001" }, route: "SPTC"},
		{name: "zero amount purchase", found: true, req: func(r *Request) { r.Amount = 0 }, rc: "13"},
		{name: "zero amount balance inquiry is fine", found: true,
			req: func(r *Request) { r.Amount, r.ProcessingCode = 0, iso8583.ProcBalanceInquiry }, route: "ICBC"},
		{name: "foreign currency", found: true, req: func(r *Request) { r.Currency = "840" }, rc: "13"},
		{name: "unknown processing code", found: true, req: func(r *Request) { r.ProcessingCode = "400000" }, rc: "12"},
		{name: "request checks come before the token", found: false, req: func(r *Request) { r.ProcessingCode = "400000" }, rc: "12"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, tok := goodRequest(), goodToken()
			if c.req != nil {
				c.req(&req)
			}
			if c.tok != nil {
				c.tok(&tok)
			}
			d := Decide(signed(req, signing{}), tok, c.found, testChip(), table, decideNow)
			if d.RC != c.rc {
				t.Fatalf("rc %q, want %q", d.RC, c.rc)
			}
			if c.rc == "" && d.Route.Issuer != c.route {
				t.Fatalf("routed to %q, want %q", d.Route.Issuer, c.route)
			}
		})
	}
}

func TestIssuerAnswer(t *testing.T) {
	cases := []struct{ pc, rc, auth, wantRC, wantAuth string }{
		{"000000", "00", "A1B2C3", "00", "A1B2C3"},
		{"000000", "00", "", "96", ""},
		{"200000", "00", "", "96", ""},
		{"310000", "00", "", "00", ""},
		{"000000", "51", "", "51", ""},
		{"000000", "51", "XXXXXX", "51", ""},
		{"000000", "77", "", "05", ""},
		{"000000", "", "", "05", ""},
	}
	for _, c := range cases {
		rc, auth := IssuerAnswer(c.pc, c.rc, c.auth)
		if rc != c.wantRC || auth != c.wantAuth {
			t.Errorf("IssuerAnswer(%q,%q) = %q,%q; want %q,%q", c.rc, c.auth, rc, auth, c.wantRC, c.wantAuth)
		}
	}
}

func TestDigestTellsContentApart(t *testing.T) {
	a, b := goodRequest(), goodRequest()
	if a.Digest() != b.Digest() {
		t.Fatal("same request, different digest")
	}
	b.Amount++
	if a.Digest() == b.Digest() {
		t.Fatal("different amount, same digest")
	}
	if a.Key() != b.Key() {
		t.Fatal("key depends on amount")
	}
}
