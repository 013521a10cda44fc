package issuersim

import (
	"fmt"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/bench/world"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
)

var testNow = time.Date(2026, time.March, 15, 10, 0, 0, 0, time.UTC)

// The test book's cards; expiry 2812 unless said otherwise.
const (
	panDebit   = "6222020000000001"
	panCredit  = "6253300000000002"
	panBlocked = "6222020000000003"
	panExpired = "6253300000000004"
	panTransit = "9910000200000000005"
	panOther   = "6214850000000006" // another issuer's card
	panUnknown = "6222029999999999"
)

func testCards() []world.Card {
	card := func(pan string, p bintable.Product, bal, limit iso8583.Amount) world.Card {
		return world.Card{PAN: iso8583.PAN(pan), Expiry: "2812", IssuerID: "TST", Product: p,
			Balance: bal, CreditLimit: limit, Status: world.StatusActive, Phone: world.PhoneFor(7, iso8583.PAN(pan))}
	}
	blocked := card(panBlocked, bintable.ProductDebit, 100_00, 0)
	blocked.Status = world.StatusBlocked
	expired := card(panExpired, bintable.ProductCredit, 0, 1000_00)
	expired.Expiry = "2602"
	other := card(panOther, bintable.ProductDebit, 100_00, 0)
	other.IssuerID = "OTHER"
	return []world.Card{
		card(panDebit, bintable.ProductDebit, 100_00, 0),
		card(panCredit, bintable.ProductCredit, 0, 500_00),
		blocked, expired,
		card(panTransit, bintable.ProductTransit, 20_00, 0),
		other,
	}
}

func testBook(t *testing.T) *book {
	t.Helper()
	b, err := newBook("TST", testCards(), 1, DefaultCutoff())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var stanSeq int

// fin is a valid financial request; stan is unique per call.
func fin(mti, pc, pan string, amount iso8583.Amount) request {
	stanSeq++
	return request{MTI: mti, ProcessingCode: pc, PAN: iso8583.PAN(pan), Expiry: "2812", Amount: amount,
		STAN: pad6(stanSeq), TransmissionTime: "0315100000", RRN: "RRN" + pad6(stanSeq), TerminalID: "TERM0001"}
}

func pad6(n int) string { return fmt.Sprintf("%06d", n) }

func reversalOf(mti string, orig request) request {
	stanSeq++
	return request{MTI: mti, ProcessingCode: orig.ProcessingCode, PAN: orig.PAN, Amount: orig.Amount,
		STAN: pad6(stanSeq), TransmissionTime: "0315100100",
		Original: originalData{MTI: orig.MTI, STAN: orig.STAN, TransmissionTime: orig.TransmissionTime,
			Acquirer: "00001020000", Forwarder: "00000000000"}}
}

func TestDecideOneRequest(t *testing.T) {
	with := func(r request, f func(*request)) request { f(&r); return r }
	const purchase, refund, topup, balance = iso8583.ProcPurchase, iso8583.ProcRefund, iso8583.ProcTransitTopUp, iso8583.ProcBalanceInquiry
	const auth, fin200, advice = iso8583.MTIAuthRequest, iso8583.MTIFinancialRequest, iso8583.MTIAdvice
	tests := []struct {
		name    string
		req     request
		rc      string
		balance string
	}{
		{"format error", with(fin(fin200, purchase, panDebit, 1), func(r *request) { r.invalid = "DE11 missing" }), "30", ""},
		{"unknown card", fin(fin200, purchase, panUnknown, 1), "14", ""},
		{"another issuer's card", fin(fin200, purchase, panOther, 1), "14", ""},
		{"blocked", fin(fin200, purchase, panBlocked, 1), "05", ""},
		{"expired", with(fin(fin200, purchase, panExpired, 1), func(r *request) { r.Expiry = "2602" }), "54", ""},
		{"expiry mismatch", with(fin(fin200, purchase, panDebit, 1), func(r *request) { r.Expiry = "2811" }), "54", ""},
		{"amount zero", fin(fin200, purchase, panDebit, 0), "13", ""},
		{"refund amount zero", fin(fin200, refund, panDebit, 0), "13", ""},
		{"debit within balance", fin(fin200, purchase, panDebit, 100_00), "00", ""},
		{"debit above balance", fin(fin200, purchase, panDebit, 100_01), "51", ""},
		{"auth credit within limit", fin(auth, purchase, panCredit, 500_00), "00", ""},
		{"auth credit above limit", fin(auth, purchase, panCredit, 500_01), "51", ""},
		{"transit top-up above stored value", fin(fin200, topup, panTransit, 20_01), "51", ""},
		{"transit purchase", fin(fin200, purchase, panTransit, 2_00), "00", ""},
		{"refund", fin(fin200, refund, panDebit, 1_000_00), "00", ""},
		{"balance debit", fin(fin200, balance, panDebit, 0), "00", "1002156C000000010000"},
		{"balance credit", fin(auth, balance, panCredit, 0), "00", "3002156C000000050000"},
		{"balance transit", fin(fin200, balance, panTransit, 0), "00", "0002156C000000002000"},
		{"unknown processing code", fin(fin200, "400000", panDebit, 1), "12", ""},
		{"advice posts above balance", fin(advice, purchase, panDebit, 200_00), "00", ""},
		{"advice posts on blocked card", fin(advice, purchase, panBlocked, 1_00), "00", ""},
		{"advice unknown card", fin(advice, purchase, panUnknown, 1_00), "14", ""},
		{"reversal not found", reversalOf(iso8583.MTIReversalRequest, fin(fin200, purchase, panDebit, 1)), "25", ""},
		{"echo", request{MTI: "0800", NetworkCode: "301"}, "00", ""},
		{"sign-on", request{MTI: "0800", NetworkCode: "001"}, "00", ""},
		{"unknown network code", request{MTI: "0800", NetworkCode: "999"}, "12", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := testBook(t)
			d := decide(b, tt.req, testNow)
			if d.rc != tt.rc || d.balance != tt.balance {
				t.Fatalf("rc %s balance %q, want %s %q", d.rc, d.balance, tt.rc, tt.balance)
			}
			if len(b.ledger) != 0 {
				t.Fatal("decide changed the book")
			}
			if (d.post != nil) != (tt.rc == "00" && tt.req.ProcessingCode != balance && tt.req.MTI != "0800") {
				t.Fatalf("post %+v for rc %s", d.post, d.rc)
			}
			if d.post != nil && len(d.authCode) != 6 {
				t.Fatalf("auth code %q", d.authCode)
			}
		})
	}
}

// step decides and applies one request and checks the answer.
func step(t *testing.T, b *book, req request, rc string) decision {
	t.Helper()
	d := decide(b, req, testNow)
	if d.rc != rc {
		t.Fatalf("%s %s STAN %s: rc %s, want %s", req.MTI, req.ProcessingCode, req.STAN, d.rc, rc)
	}
	b.apply(d)
	return d
}

func wantAccount(t *testing.T, b *book, pan string, available, held iso8583.Amount) {
	t.Helper()
	a := b.accounts[pan]
	if a.available() != available || a.held != held {
		t.Fatalf("%s: available %v held %v, want %v %v", pan, a.available(), a.held, available, held)
	}
}

func TestDecideHoldsAndReversals(t *testing.T) {
	b := testBook(t)
	p1 := fin("0200", iso8583.ProcPurchase, panDebit, 60_00)
	first := step(t, b, p1, "00")
	wantAccount(t, b, panDebit, 40_00, 60_00)
	step(t, b, fin("0200", iso8583.ProcPurchase, panDebit, 40_01), "51")

	// The same request again gets the first answer, not a second hold.
	again := step(t, b, p1, "00")
	if again.authCode != first.authCode || again.post != nil {
		t.Fatalf("repeat: %+v, first %+v", again, first)
	}
	wantAccount(t, b, panDebit, 40_00, 60_00)
	// Another request on the same key is a duplicate.
	dup := p1
	dup.Amount = 1_00
	step(t, b, dup, "94")

	// Reversal releases the hold once.
	step(t, b, reversalOf("0400", p1), "00")
	wantAccount(t, b, panDebit, 100_00, 0)
	step(t, b, reversalOf("0420", p1), "00")
	wantAccount(t, b, panDebit, 100_00, 0)
	if len(b.ledger) != 1 || !b.ledger[0].Reversed {
		t.Fatalf("ledger %+v", b.ledger)
	}
	// A reversed key is used up.
	step(t, b, p1, "94")

	// A reversal must name the original's MTI and PAN.
	p2 := fin("0100", iso8583.ProcPurchase, panCredit, 10_00)
	step(t, b, p2, "00")
	wrongMTI := reversalOf("0400", p2)
	wrongMTI.Original.MTI = "0200"
	step(t, b, wrongMTI, "25")
	wrongPAN := reversalOf("0400", p2)
	wrongPAN.PAN = panDebit
	step(t, b, wrongPAN, "25")
	wantAccount(t, b, panCredit, 490_00, 10_00)
}

func TestDecideRefundAndItsReversal(t *testing.T) {
	b := testBook(t)
	r := fin("0200", iso8583.ProcRefund, panTransit, 5_00)
	step(t, b, r, "00")
	wantAccount(t, b, panTransit, 25_00, 0)
	step(t, b, reversalOf("0400", r), "00")
	wantAccount(t, b, panTransit, 20_00, 0)
}

// A reversal that overtakes its original is remembered, and the late
// original takes no money.
func TestDecideLateOriginal(t *testing.T) {
	b := testBook(t)
	p := fin("0200", iso8583.ProcPurchase, panDebit, 10_00)
	step(t, b, reversalOf("0400", p), "25")
	step(t, b, p, "94")
	wantAccount(t, b, panDebit, 100_00, 0)
	if len(b.ledger) != 0 {
		t.Fatalf("ledger %+v", b.ledger)
	}
}

func TestOrphanSetBounded(t *testing.T) {
	var o orphanSet
	o.member = make(map[txKey]bool)
	for i := range orphanReversalsMax + 10 {
		o.add(txKey{pad6(i), "0000000000"})
	}
	if len(o.member) != orphanReversalsMax || o.member[txKey{pad6(0), "0000000000"}] || !o.member[txKey{pad6(orphanReversalsMax + 9), "0000000000"}] {
		t.Fatalf("%d members", len(o.member))
	}
}

func TestLedgerBounded(t *testing.T) {
	b := testBook(t)
	b.ledger = make([]LedgerEntry, ledgerEntriesMax)
	step(t, b, fin("0200", iso8583.ProcPurchase, panDebit, 1), "96")
}

func TestNewBookRejectsDuplicateCards(t *testing.T) {
	cards := testCards()
	if _, err := newBook("TST", append(cards, cards[0]), 1, DefaultCutoff()); err == nil {
		t.Fatal("duplicate card accepted")
	}
}

// Auth codes are the 6 zero-padded digits fmt gave them before they were
// written without it: a replayed run answers with the same codes.
func TestAuthCodeDigits(t *testing.T) {
	for _, salt := range []uint64{0, 1, 0x9e3779b97f4a7c15, ^uint64(0)} {
		for seq := uint64(0); seq < 2000; seq++ {
			x := seq*0x9e3779b97f4a7c15 ^ salt
			x *= 0xbf58476d1ce4e5b9
			x ^= x >> 29
			if got, want := authCode(seq, salt), fmt.Sprintf("%06d", x%1_000_000); got != want {
				t.Fatalf("authCode(%d, %#x) = %s, want %s", seq, salt, got, want)
			}
		}
	}
}
