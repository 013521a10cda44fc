// Package world is the simulated card base of the bench: every card the
// simulated issuers hold, generated from a seed so that two runs with the same
// seed, BIN table and clock hold exactly the same cards.
//
// Card numbers under a BIN prefix P are laid out as
//
//	P | account digits a1..an | Luhn check digit
//
// Generated cards have a1 in 0..7; a1 = 9 is reserved for the demo cards
// (Demo) and 8 for cards added by hand, so no generated number ever equals a
// demo one. Within a BIN, account numbers walk an arithmetic progression
// modulo the size of the 0..7 space with a stride coprime to it, a bijection,
// so numbers never repeat; the starting point comes from the seed. Every
// number is checked against the table's longest-prefix look-up, so a card is
// never generated under a BIN that a longer BIN overrides.
package world

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
)

// CardStatus is the issuer's view of a card.
type CardStatus string

const (
	StatusActive  CardStatus = "active"
	StatusBlocked CardStatus = "blocked"
)

// Card is one account the simulated world holds.
type Card struct {
	PAN      iso8583.PAN
	Expiry   string // YYMM, the last month the card is valid
	IssuerID string
	Product  bintable.Product
	// Balance is the funds of a debit card or the stored value of a transit
	// card; 0 for credit.
	Balance iso8583.Amount
	// CreditLimit is what a credit card may spend; 0 for debit and transit.
	CreditLimit iso8583.Amount
	Status      CardStatus
	// Phone is the cardholder's mobile number on the issuer's file: where
	// the issuer has the network send the one-time code of a binding.
	// Empty for a card the issuer has no number for; it cannot be bound.
	Phone iso8583.Phone
}

// ExpiredAt reports whether the card is past its expiry month at now. A card
// is valid through the whole of its expiry month. YYMM compares correctly as
// text within one century, which is all a simulation needs.
func (c Card) ExpiredAt(now time.Time) bool {
	return c.Expiry < YYMM(now)
}

// CVN2 is the card's 3-digit card verification number, printed on its back
// and asked for when the card is bound to a wallet. A real issuer derives
// it from PAN, expiry and service code under a key of its own; the world
// derives it from the card number alone (so it is the same in every run and
// in every process that builds the world: the switch's tests, the issuer
// simulator, the wallet CLI's user), and it does not change with the expiry
// that Generate and Demo compute from now.
func (c Card) CVN2() iso8583.CVN2 {
	sum := sha256.Sum256([]byte("tapswitch-world-cvn2:" + c.PAN.Clear()))
	return iso8583.CVN2(fmt.Sprintf("%03d", binary.BigEndian.Uint16(sum[:])%1000))
}

// mobilePrefixes are the first three digits of mainland mobile numbers
// (China Mobile, Unicom and Telecom ranges) that the world draws from.
var mobilePrefixes = []string{
	"130", "131", "132", "133", "134", "135", "136", "137", "138", "139",
	"150", "151", "152", "155", "156", "157", "158", "159",
	"176", "177", "178", "180", "181", "182", "185", "186", "187", "188", "189", "198", "199",
}

// PhoneFor is the mobile number of the cardholder of pan in the world of
// seed: a mainland number, 1xx-xxxx-xxxx. It is a hash of seed and number,
// not a draw from the card's random stream, so adding phones changed no
// other field of a generated card, and any process that knows the seed
// (the issuer simulator, a test) finds the same number.
func PhoneFor(seed int64, pan iso8583.PAN) iso8583.Phone {
	sum := sha256.Sum256(fmt.Appendf(nil, "tapswitch-world-phone:%d:%s", seed, pan.Clear()))
	x := binary.BigEndian.Uint64(sum[:8])
	prefix := mobilePrefixes[x%uint64(len(mobilePrefixes))]
	return iso8583.Phone(fmt.Sprintf("%s%08d", prefix, (x/uint64(len(mobilePrefixes)))%100_000_000))
}

// YYMM formats t's year and month, in t's own location, as card expiries are
// written.
func YYMM(t time.Time) string {
	return fmt.Sprintf("%02d%02d", t.Year()%100, int(t.Month()))
}

// CardsPerBINMax bounds Generate: a million cards per BIN is more than any
// bench needs and still fits the account space of every prefix length.
const CardsPerBINMax = 1_000_000

// Shares of the generated base in unusual states, in per mille.
const (
	blockedPerMille    = 20
	expiredPerMille    = 30
	lowBalancePerMille = 150
)

// accountStride walks the account space; it is prime and neither 2 nor 5, so
// it is coprime with every space size 8*10^k.
const accountStride = 1_000_003

// Generate returns cardsPerBIN cards for every row of the table, rows in
// table order. Each row draws from its own PCG stream, seeded by seed and the
// prefix, so a row's cards do not change when other rows are added and the
// first k cards of a row are the same for every cardsPerBIN >= k. now sets
// the expiries. cardsPerBIN outside 0..CardsPerBINMax is a caller bug.
func Generate(table *bintable.Table, seed int64, cardsPerBIN int, now time.Time) []Card {
	if cardsPerBIN < 0 || cardsPerBIN > CardsPerBINMax {
		panic(fmt.Sprintf("world: cardsPerBIN %d outside 0..%d", cardsPerBIN, CardsPerBINMax))
	}
	var cards []Card
	for _, e := range table.Entries() {
		cards = append(cards, generateRow(table, e, seed, cardsPerBIN, now)...)
	}
	return cards
}

func generateRow(table *bintable.Table, e bintable.Entry, seed int64, n int, now time.Time) []Card {
	rng := rand.New(rand.NewPCG(uint64(seed), prefixHash(e.Prefix)))
	length := panLength(e)
	digits := length - len(e.Prefix) - 1
	space := 8 * pow10(digits-1) // leading account digit 0..7
	value := rng.Uint64N(space)
	cards := make([]Card, 0, n)
	for tries := uint64(0); len(cards) < n && tries < space; tries++ {
		pan := makePAN(e.Prefix, fmt.Sprintf("%0*d", digits, value))
		value = (value + accountStride) % space
		if got, ok := table.Lookup(pan); !ok || got.Prefix != e.Prefix {
			continue // a longer BIN owns this number
		}
		c := randomCard(rng, e, pan, now)
		c.Phone = PhoneFor(seed, c.PAN)
		cards = append(cards, c)
	}
	return cards
}

// randomCard draws a card's money, expiry and status.
func randomCard(rng *rand.Rand, e bintable.Entry, pan string, now time.Time) Card {
	c := Card{PAN: iso8583.PAN(pan), IssuerID: e.Issuer, Product: e.Product, Status: StatusActive}
	switch e.Product {
	case bintable.ProductDebit:
		if rng.IntN(1000) < lowBalancePerMille {
			c.Balance = iso8583.Amount(rng.Int64N(100_00))
		} else {
			c.Balance = iso8583.Amount(100_00 + rng.Int64N(50_000_00))
		}
	case bintable.ProductCredit:
		limits := []iso8583.Amount{5_000_00, 10_000_00, 20_000_00, 50_000_00, 100_000_00}
		c.CreditLimit = limits[rng.IntN(len(limits))]
	case bintable.ProductTransit:
		c.Balance = iso8583.Amount(rng.Int64N(500_00))
	}
	if rng.IntN(1000) < expiredPerMille {
		c.Expiry = YYMM(addMonths(now, -1-rng.IntN(24)))
	} else {
		c.Expiry = YYMM(addMonths(now, 1+rng.IntN(60)))
	}
	if rng.IntN(1000) < blockedPerMille {
		c.Status = StatusBlocked
	}
	return c
}

// panLength is 16 digits for bank cards and 19 for transit cards, grown to
// 19 when a long prefix would leave too small an account space.
func panLength(e bintable.Entry) int {
	if e.Product == bintable.ProductTransit {
		return 19
	}
	if 8*pow10(16-len(e.Prefix)-2) < CardsPerBINMax {
		return 19
	}
	return 16
}

func makePAN(prefix, account string) string {
	body := prefix + account
	return body + string(iso8583.LuhnCheckDigit(body))
}

func addMonths(t time.Time, months int) time.Time {
	return time.Date(t.Year(), t.Month()+time.Month(months), 1, 0, 0, 0, 0, t.Location())
}

func prefixHash(prefix string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(prefix))
	return h.Sum64()
}

func pow10(n int) uint64 {
	p := uint64(1)
	for range n {
		p *= 10
	}
	return p
}
