package wallet

import (
	"encoding/hex"
	"fmt"
	"time"

	"github.com/tapswitch/tapswitch/settlement/transit"
)

// TransitCard is a city transit card in the phone: the purse its secure
// element holds (docs/transit.md). The phone saves the purse after every
// debit and before the tap leaves for the gate, as it saves a token's ATC,
// so a crash can lose a tap the gate never saw but never spend a counter
// twice.
type TransitCard struct {
	Label    string `json:"label"`
	Operator string `json:"operator"` // 4 digits: the city operator
	Card     string `json:"card"`     // the transit card number
	Balance  int64  `json:"balance"`  // fen
	Counter  uint16 `json:"counter"`  // of the last tap; 0 for a new purse
	// LoadSequence is the sequence of the last online load; 0 before the
	// opening load (docs/transit.md).
	LoadSequence uint32 `json:"load_sequence"`
	// Key is the purse key in hex, as the operator handed it to the phone
	// once, when the card was opened.
	Key string `json:"key"`
	// The tap-in of a journey on a distance fare not yet tapped out of:
	// the entry gate ("" when out), its time in Unix seconds, and the
	// tap-outs missed before it (transit.Purse, docs/transit.md "Fares").
	EntryGate   string `json:"entry_gate,omitempty"`
	EntryTime   int64  `json:"entry_time,omitempty"`
	MissedExits uint8  `json:"missed_exits,omitempty"`
}

// Purse returns the card's purse. Its errors do not quote the key.
func (c TransitCard) Purse() (transit.Purse, error) {
	p := transit.Purse{Operator: c.Operator, Card: c.Card, Balance: c.Balance, Counter: c.Counter, LoadSequence: c.LoadSequence}
	k, err := hex.DecodeString(c.Key)
	if err != nil || len(k) != transit.PurseKeyBytes {
		return transit.Purse{}, fmt.Errorf("wallet transit card %s: key must be %d bytes of hex", c.Label, transit.PurseKeyBytes)
	}
	copy(p.Key[:], k)
	if !transit.ValidOperator(p.Operator) || !transit.ValidCard(p.Card) || p.Balance < 0 {
		return transit.Purse{}, fmt.Errorf("wallet transit card %s: operator, card number or balance malformed", c.Label)
	}
	if c.EntryGate != "" {
		if !transit.ValidGate(c.EntryGate) || c.EntryTime < 0 || c.MissedExits > transit.MissedExitsMax {
			return transit.Purse{}, fmt.Errorf("wallet transit card %s: entry gate, time or missed exits malformed", c.Label)
		}
		p.EntryGate, p.EntryTime, p.MissedExits = c.EntryGate, time.Unix(c.EntryTime, 0).UTC(), c.MissedExits
	} else if c.EntryTime != 0 || c.MissedExits != 0 {
		return transit.Purse{}, fmt.Errorf("wallet transit card %s: an entry time or missed exits without an entry gate", c.Label)
	}
	return p, nil
}

// TransitCardOf returns the wallet entry holding purse p under label.
func TransitCardOf(label string, p transit.Purse) TransitCard {
	c := TransitCard{Label: label, Operator: p.Operator, Card: p.Card, Balance: p.Balance,
		Counter: p.Counter, LoadSequence: p.LoadSequence, Key: hex.EncodeToString(p.Key[:])}
	if p.In() {
		c.EntryGate, c.EntryTime, c.MissedExits = p.EntryGate, p.EntryTime.Unix(), p.MissedExits
	}
	return c
}

// TransitCard returns the transit card with the label.
func (f File) TransitCard(label string) (TransitCard, error) {
	for _, c := range f.Transit {
		if c.Label == label {
			return c, nil
		}
	}
	labels := make([]string, 0, len(f.Transit))
	for _, c := range f.Transit {
		labels = append(labels, c.Label)
	}
	return TransitCard{}, fmt.Errorf("wallet has no transit card %q (it has %v)", label, labels)
}

// SetPurse replaces the purse of the transit card with the label, keeping
// its label, and refuses a purse of another card or an older one: a purse
// only moves forward.
func (f *File) SetPurse(label string, p transit.Purse) error {
	for i, c := range f.Transit {
		if c.Label != label {
			continue
		}
		if c.Card != p.Card || c.Operator != p.Operator {
			return fmt.Errorf("wallet transit card %s holds card %s, not %s", label, c.Card, p.Card)
		}
		if p.Counter < c.Counter {
			return fmt.Errorf("wallet transit card %s: counter %d would go back to %d", label, c.Counter, p.Counter)
		}
		if p.LoadSequence < c.LoadSequence {
			return fmt.Errorf("wallet transit card %s: load sequence %d would go back to %d", label, c.LoadSequence, p.LoadSequence)
		}
		f.Transit[i] = TransitCardOf(label, p)
		return nil
	}
	return fmt.Errorf("wallet has no transit card %q", label)
}

// PendingTopUp is a top-up the phone has paid (or is about to) and whose
// outcome it has not applied: its ID at the token service and the purse's
// signed request, which the grant must match (transit.Purse.Credit).
type PendingTopUp struct {
	ID       string `json:"id"`
	Label    string `json:"label"`    // the transit card's label in the wallet
	Open     bool   `json:"open"`     // an opening: the card is not in the wallet yet
	Operator string `json:"operator"` // 4-digit operator code
	Card     string `json:"card"`
	Amount   int64  `json:"amount"`
	Balance  int64  `json:"balance"`  // the purse's, when it signed
	Counter  uint16 `json:"counter"`  // the purse's tap counter, when it signed
	Sequence uint32 `json:"sequence"` // the load sequence it asked for
	MAC      string `json:"mac,omitempty"`
}

// TopUpPending reports whether the transit card with the label has a
// top-up whose outcome the phone has not applied: its purse must not be
// tapped meanwhile, or the grant would no longer match it.
func (f File) TopUpPending(label string) bool {
	for _, t := range f.TopUps {
		if t.Label == label {
			return true
		}
	}
	return false
}
