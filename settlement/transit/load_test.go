package transit

import (
	"errors"
	"testing"
)

func loadPurse() Purse {
	master := []byte("0123456789abcdef0123456789abcdef")
	card := "9910000100000000017"
	return Purse{Operator: "0010", Card: card, Balance: 1_000, Counter: 4, LoadSequence: 2, Key: PurseKey(master, card)}
}

// The three messages of a load: the purse asks, the operator grants, the
// purse credits itself, once.
func TestLoadCreditsOnce(t *testing.T) {
	p := loadPurse()
	r, err := p.LoadRequest(5_000)
	if err != nil {
		t.Fatal(err)
	}
	if r.Sequence != 3 || r.Counter != 4 || r.Balance != 1_000 {
		t.Fatalf("request %+v", r)
	}
	g, err := Grant(p.Key, &r)
	if err != nil {
		t.Fatal(err)
	}
	after, err := p.Credit(r, g)
	if err != nil {
		t.Fatal(err)
	}
	if after.Balance != 6_000 || after.LoadSequence != 3 || after.Counter != 4 {
		t.Fatalf("after %+v", after)
	}
	if _, err := after.Credit(r, g); !errors.Is(err, ErrLoadSequence) {
		t.Fatalf("the same grant credited twice: %v", err)
	}
}

// Only the operator can make a purse take value, and only the purse can
// ask for a load of itself.
func TestLoadRefusesForgeries(t *testing.T) {
	p := loadPurse()
	r, _ := p.LoadRequest(5_000)
	other := p
	other.Key[0] ^= 1
	if _, err := Grant(other.Key, &r); !errors.Is(err, ErrLoadMAC) {
		t.Fatalf("MAC1 under another key granted: %v", err)
	}
	forged := r
	forged.Balance = 0 // the phone lies about the purse's balance
	if _, err := Grant(p.Key, &forged); !errors.Is(err, ErrLoadMAC) {
		t.Fatalf("a request whose balance was changed granted: %v", err)
	}
	g, _ := Grant(p.Key, &r)
	g.BalanceAfter += 100
	if _, err := p.Credit(r, g); !errors.Is(err, ErrLoadMAC) {
		t.Fatalf("a grant with a changed balance credited: %v", err)
	}
	g, _ = Grant(p.Key, &r)
	g.MAC[7] ^= 1
	if got, err := p.Credit(r, g); !errors.Is(err, ErrLoadMAC) || got != p {
		t.Fatalf("a bad MAC2 credited: %v", err)
	}
	if _, err := p.LoadRequest(AmountMax); !errors.Is(err, ErrOverBalance) {
		t.Fatalf("a load over the purse's maximum: %v", err)
	}
	if _, err := p.LoadRequest(0); !errors.Is(err, ErrBadAmount) {
		t.Fatalf("a zero load: %v", err)
	}
}
