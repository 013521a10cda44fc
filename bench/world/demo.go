package world

import (
	"fmt"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
)

// DemoCard is a hand-picked card whose outcome a demo or an end-to-end test
// knows in advance.
type DemoCard struct {
	Label string
	Card  Card
}

// Demo labels, one per outcome the demo shows.
const (
	DemoApprove      = "approve"
	DemoInsufficient = "insufficient"
	DemoExpired      = "expired"
	DemoSuspended    = "suspended"
	DemoTransit      = "transit"
)

// demoSpec says where a demo card lives and what it holds; its index in
// demoSpecs makes its number.
type demoSpec struct {
	label   string
	issuer  string
	product bintable.Product
	balance iso8583.Amount
	limit   iso8583.Amount
	expired bool
}

var demoSpecs = []demoSpec{
	{label: DemoApprove, issuer: "ICBC", product: bintable.ProductDebit, balance: 1_000_000_00},
	{label: DemoInsufficient, issuer: "CMB", product: bintable.ProductDebit, balance: 5_00},
	{label: DemoExpired, issuer: "BOC", product: bintable.ProductCredit, limit: 20_000_00, expired: true},
	// Active at the issuer: the switch suspends its token, so a decline
	// proves the switch, not the bank, said no.
	{label: DemoSuspended, issuer: "CCB", product: bintable.ProductCredit, limit: 50_000_00},
	{label: DemoTransit, issuer: "SPTC", product: bintable.ProductTransit, balance: 200_00},
}

// demoPhoneSeed makes the demo cards' phone numbers: like their card
// numbers, they are the same whatever the world's seed.
const demoPhoneSeed = 0

// Demo returns the demo cards in a fixed order. Their numbers do not depend on
// now and use the reserved account digit 9 after the BIN, so Generate never
// produces them. A card whose issuer has no BIN of its product in the table is
// left out. The expired card expired last month; the others expire three
// years after now.
func Demo(table *bintable.Table, now time.Time) []DemoCard {
	var out []DemoCard
	for i, s := range demoSpecs {
		e, ok := findBIN(table, s.issuer, s.product)
		if !ok {
			continue
		}
		digits := panLength(e) - len(e.Prefix) - 1
		pan := makePAN(e.Prefix, fmt.Sprintf("9%0*d", digits-1, i+1))
		if got, ok := table.Lookup(pan); !ok || got.Prefix != e.Prefix {
			continue // a longer BIN owns the reserved range
		}
		expiry := YYMM(addMonths(now, 36))
		if s.expired {
			expiry = YYMM(addMonths(now, -1))
		}
		out = append(out, DemoCard{Label: s.label, Card: Card{
			PAN: iso8583.PAN(pan), Expiry: expiry, IssuerID: e.Issuer, Product: e.Product,
			Balance: s.balance, CreditLimit: s.limit, Status: StatusActive, Phone: PhoneFor(demoPhoneSeed, iso8583.PAN(pan)),
		}})
	}
	return out
}

// DemoCards returns just the cards of Demo, ready to append to a generated base.
func DemoCards(demo []DemoCard) []Card {
	cards := make([]Card, len(demo))
	for i, d := range demo {
		cards[i] = d.Card
	}
	return cards
}

func findBIN(table *bintable.Table, issuer string, product bintable.Product) (bintable.Entry, bool) {
	for _, e := range table.Entries() {
		if e.Issuer == issuer && e.Product == product {
			return e, true
		}
	}
	return bintable.Entry{}, false
}
