package wallet

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/settlement/transit"
)

func testPurse() transit.Purse {
	return transit.Purse{Operator: "1001", Card: "1001000000000017", Balance: 50_00,
		Key: transit.PurseKey([]byte("operator 1001 master key, 32 b.."), "1001000000000017")}
}

// TestPurseSavedAndLoaded: a debit saved to the wallet file comes back as
// the same purse, whose next debit follows on.
func TestPurseSavedAndLoaded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wallet.json")
	p := testPurse()
	f := File{Transit: []TransitCard{TransitCardOf("metro", p)}}
	after, tap, err := p.Debit(3_00, "100100000001", time.Date(2026, 12, 4, 8, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.SetPurse("metro", after); err != nil {
		t.Fatal(err)
	}
	if err := Save(path, f); err != nil {
		t.Fatal(err)
	}
	back, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := back.TransitCard("metro")
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Purse()
	if err != nil {
		t.Fatal(err)
	}
	if got != after || got.Counter != tap.Counter || got.Balance != 47_00 {
		t.Fatalf("purse back %+v, want %+v", got, after)
	}
}

// TestSetPurseRefusesAnotherCardOrAnOlderPurse: the wallet never moves a
// purse back, nor swaps a card's purse for another card's.
func TestSetPurseRefusesAnotherCardOrAnOlderPurse(t *testing.T) {
	p := testPurse()
	p.Counter = 5
	f := File{Transit: []TransitCard{TransitCardOf("metro", p)}}
	older := p
	older.Counter = 4
	if err := f.SetPurse("metro", older); err == nil || !strings.Contains(err.Error(), "go back") {
		t.Fatalf("older purse: %v", err)
	}
	other := p
	other.Card = "1001000000000025"
	if err := f.SetPurse("metro", other); err == nil {
		t.Fatal("another card's purse accepted")
	}
	if err := f.SetPurse("bus", p); err == nil {
		t.Fatal("a label the wallet lacks accepted")
	}
}

// TestTransitCardKeyErrorsDoNotQuoteTheKey: a malformed key is refused
// with a message that does not print it.
func TestTransitCardKeyErrorsDoNotQuoteTheKey(t *testing.T) {
	c := TransitCardOf("metro", testPurse())
	c.Key = c.Key[:30] + "zz"
	_, err := c.Purse()
	if err == nil || strings.Contains(err.Error(), c.Key[:20]) {
		t.Fatalf("bad key: %v", err)
	}
}

// TestEntrySavedAndLoaded: a tap-in saved to the wallet file comes back
// with its gate, time and missed exits; a malformed entry is refused.
func TestEntrySavedAndLoaded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wallet.json")
	p := testPurse()
	at := time.Date(2026, 12, 4, 8, 0, 0, 0, time.UTC)
	in, err := p.Enter("001000010001", at)
	if err == nil {
		in, err = in.Enter("001000020001", at.Add(5*time.Hour))
	}
	if err != nil {
		t.Fatal(err)
	}
	f := File{Transit: []TransitCard{TransitCardOf("metro", in)}}
	if err := Save(path, f); err != nil {
		t.Fatal(err)
	}
	back, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := back.TransitCard("metro")
	got, err := c.Purse()
	if err != nil || got != in || got.MissedExits != 1 || got.EntryGate != "001000020001" {
		t.Fatalf("purse back %+v (%v), want %+v", got, err, in)
	}
	if out := TransitCardOf("metro", p); out.EntryGate != "" || out.EntryTime != 0 {
		t.Fatalf("a purse that is out saved an entry: %+v", out)
	}
	for _, edit := range []func(*TransitCard){
		func(c *TransitCard) { c.EntryGate = "0010" },
		func(c *TransitCard) { c.MissedExits = transit.MissedExitsMax + 1 },
		func(c *TransitCard) { c.EntryGate = "" },
	} {
		bad := c
		edit(&bad)
		if _, err := bad.Purse(); err == nil {
			t.Errorf("malformed entry accepted: %+v", bad)
		}
	}
}
