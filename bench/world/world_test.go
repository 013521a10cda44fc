package world

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/configs"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
)

var testNow = time.Date(2026, time.March, 15, 10, 0, 0, 0, time.UTC)

func loadTable(t *testing.T) *bintable.Table {
	t.Helper()
	table, err := bintable.Parse(configs.Bins)
	if err != nil {
		t.Fatal(err)
	}
	return table
}

func TestGenerateDeterministic(t *testing.T) {
	table := loadTable(t)
	a := Generate(table, 42, 200, testNow)
	b := Generate(table, 42, 200, testNow)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed gave different cards")
	}
	c := Generate(table, 43, 200, testNow)
	if reflect.DeepEqual(a, c) {
		t.Fatal("different seeds gave the same cards")
	}
	if want := 200 * len(table.Entries()); len(a) != want {
		t.Fatalf("got %d cards, want %d", len(a), want)
	}
	// A row's first cards do not depend on how many are asked for.
	small := Generate(table, 42, 10, testNow)
	if !reflect.DeepEqual(small[:10], a[:10]) {
		t.Fatal("first cards of a row changed with cardsPerBIN")
	}
}

func TestGenerateCards(t *testing.T) {
	table := loadTable(t)
	cards := Generate(table, 7, 1000, testNow)
	seen := make(map[string]bool)
	var blocked, expired int
	for _, c := range cards {
		pan := c.PAN.Clear()
		if seen[pan] {
			t.Fatalf("PAN %v generated twice", c.PAN)
		}
		seen[pan] = true
		if !iso8583.LuhnValid(pan) {
			t.Fatalf("PAN %v fails Luhn", c.PAN)
		}
		e, ok := table.Lookup(pan)
		if !ok || e.Issuer != c.IssuerID || e.Product != c.Product || !strings.HasPrefix(pan, e.Prefix) {
			t.Fatalf("PAN %v routes to %+v, card says %s %s", c.PAN, e, c.IssuerID, c.Product)
		}
		wantLen := 16
		if c.Product == bintable.ProductTransit {
			wantLen = 19
		}
		if len(pan) != wantLen {
			t.Fatalf("PAN %v has %d digits, want %d", c.PAN, len(pan), wantLen)
		}
		if pan[len(e.Prefix)] > '7' {
			t.Fatalf("PAN %v uses the reserved account range", c.PAN)
		}
		checkMoney(t, c)
		if c.Status == StatusBlocked {
			blocked++
		}
		if c.ExpiredAt(testNow) {
			expired++
		}
	}
	// Mostly usable, a few blocked and expired: within generous bounds of
	// the per-mille shares.
	n := len(cards)
	if blocked == 0 || blocked > n/20 || expired == 0 || expired > n/10 {
		t.Fatalf("of %d cards %d blocked, %d expired", n, blocked, expired)
	}
}

func checkMoney(t *testing.T, c Card) {
	t.Helper()
	switch c.Product {
	case bintable.ProductCredit:
		if c.Balance != 0 || c.CreditLimit <= 0 {
			t.Fatalf("credit card %v: balance %v limit %v", c.PAN, c.Balance, c.CreditLimit)
		}
	default:
		if c.Balance < 0 || c.CreditLimit != 0 {
			t.Fatalf("%s card %v: balance %v limit %v", c.Product, c.PAN, c.Balance, c.CreditLimit)
		}
	}
	if len(c.Expiry) != 4 || c.Expiry[2:] < "01" || c.Expiry[2:] > "12" {
		t.Fatalf("card %v: expiry %q", c.PAN, c.Expiry)
	}
}

// A longer BIN inside a shorter one keeps its numbers: the shorter row never
// generates a number the longer row owns.
func TestGenerateNestedBINs(t *testing.T) {
	table, err := bintable.Parse([]byte(`bins:
  - {prefix: "6222", issuer: AAA, product: debit}
  - {prefix: "62220", issuer: BBB, product: credit}
  - {prefix: "62221234567", issuer: CCC, product: debit}
`))
	if err != nil {
		t.Fatal(err)
	}
	cards := Generate(table, 1, 500, testNow)
	if len(cards) != 1500 {
		t.Fatalf("got %d cards", len(cards))
	}
	for _, c := range cards {
		e, _ := table.Lookup(c.PAN.Clear())
		if e.Issuer != c.IssuerID || !iso8583.LuhnValid(c.PAN.Clear()) {
			t.Fatalf("card %v of %s routes to %s", c.PAN, c.IssuerID, e.Issuer)
		}
	}
}

func TestDemo(t *testing.T) {
	table := loadTable(t)
	demo := Demo(table, testNow)
	if !reflect.DeepEqual(demo, Demo(table, testNow)) {
		t.Fatal("Demo is not deterministic")
	}
	want := map[string]struct {
		issuer  string
		product bintable.Product
		money   iso8583.Amount
		expired bool
	}{
		DemoApprove:      {"ICBC", bintable.ProductDebit, 1_000_000_00, false},
		DemoInsufficient: {"CMB", bintable.ProductDebit, 5_00, false},
		DemoExpired:      {"BOC", bintable.ProductCredit, 20_000_00, true},
		DemoSuspended:    {"CCB", bintable.ProductCredit, 50_000_00, false},
		DemoTransit:      {"SPTC", bintable.ProductTransit, 200_00, false},
	}
	if len(demo) != len(want) {
		t.Fatalf("got %d demo cards, want %d", len(demo), len(want))
	}
	generated := make(map[string]bool)
	for _, c := range Generate(table, 99, 500, testNow) {
		generated[c.PAN.Clear()] = true
	}
	for _, d := range demo {
		w, ok := want[d.Label]
		if !ok {
			t.Fatalf("unexpected label %q", d.Label)
		}
		c := d.Card
		pan := c.PAN.Clear()
		e, _ := table.Lookup(pan)
		if c.IssuerID != w.issuer || e.Issuer != w.issuer || c.Product != w.product || !iso8583.LuhnValid(pan) {
			t.Fatalf("%s: %+v routes to %+v", d.Label, c, e)
		}
		if c.Balance+c.CreditLimit != w.money || c.ExpiredAt(testNow) != w.expired || c.Status != StatusActive {
			t.Fatalf("%s: %+v", d.Label, c)
		}
		if generated[pan] || pan[len(e.Prefix)] != '9' {
			t.Fatalf("%s: PAN %v collides with the generated range", d.Label, c.PAN)
		}
	}
}

func TestGenerateBoundIsAnAssertion(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for cardsPerBIN above the maximum")
		}
	}()
	Generate(loadTable(t), 1, CardsPerBINMax+1, testNow)
}

func TestCVN2IsThreeDigitsFixedByTheNumber(t *testing.T) {
	a := Card{PAN: "6222020200112345679", Expiry: "2801"}
	b := a
	b.Expiry = "3012"
	if !a.CVN2().Valid() || a.CVN2() != b.CVN2() {
		t.Fatalf("CVN2 %q / %q: want 3 digits, the same for both expiries", a.CVN2().Clear(), b.CVN2().Clear())
	}
	seen := map[iso8583.CVN2]bool{}
	for i := range 50 {
		body := fmt.Sprintf("62220202001%07d", i)
		c := Card{PAN: iso8583.PAN(body + string(iso8583.LuhnCheckDigit(body)))}
		seen[c.CVN2()] = true
	}
	if len(seen) < 40 {
		t.Errorf("50 cards share only %d CVN2 values", len(seen))
	}
}

func TestEveryCardHasAPhoneFixedBySeed(t *testing.T) {
	table := loadTable(t)
	a := Generate(table, 1, 20, testNow)
	b := Generate(table, 1, 20, testNow)
	seen := map[iso8583.Phone]bool{}
	for i := range a {
		if !a[i].Phone.Valid() || a[i].Phone != b[i].Phone {
			t.Fatalf("card %d: phone %v / %v: want a valid number, the same for the same seed", i, a[i].Phone, b[i].Phone)
		}
		if a[i].Phone != PhoneFor(1, a[i].PAN) {
			t.Fatalf("card %d: phone is not PhoneFor(seed, PAN)", i)
		}
		seen[a[i].Phone] = true
	}
	if len(seen) < len(a)*9/10 {
		t.Errorf("%d cards share only %d phone numbers", len(a), len(seen))
	}
	for _, d := range Demo(table, testNow) {
		if !d.Card.Phone.Valid() {
			t.Errorf("demo card %s has no phone", d.Label)
		}
	}
	if PhoneFor(1, a[0].PAN) == PhoneFor(2, a[0].PAN) {
		t.Error("the phone does not depend on the seed")
	}
}
