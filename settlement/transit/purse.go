package transit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/tapswitch/tapswitch/iso8583/mac"
)

// Sizes and bounds.
const (
	// PurseKeyBytes is the length of a purse key.
	PurseKeyBytes = 16
	// TACBytes is the length of a truncated TAC.
	TACBytes = 8
	// OperatorIDBytes is the length of an operator ID (ASCII digits).
	OperatorIDBytes = 4
	// GateIDBytes is the length of a gate ID: the operator ID then 8 digits.
	GateIDBytes = OperatorIDBytes + 8
	// cardBytesMin and cardBytesMax bound a card number's digits.
	cardBytesMin = 8
	cardBytesMax = 19
	// AmountMax bounds one tap and one balance: 1,000,000.00 yuan in fen.
	AmountMax = 100_000_000
	// CounterMax is the last counter a purse may spend.
	CounterMax = 0xFFFF

	purseKeyLabel = "tapswitch purse key v1\x00"
	tacLabel      = "tapswitch tac v1\x00"
	tacInputMax   = len(tacLabel) + 1 + cardBytesMax + 8 + 2 + 8 + GateIDBytes + 8
)

// Errors a debit refuses with.
var (
	ErrShort         = errors.New("transit: purse balance is short")
	ErrCounterSpent  = errors.New("transit: purse counter exhausted")
	ErrBadAmount     = errors.New("transit: amount out of range")
	ErrBadCard       = errors.New("transit: card number malformed")
	ErrBadGate       = errors.New("transit: gate ID malformed")
	ErrBadOperator   = errors.New("transit: operator ID malformed")
	ErrBadTime       = errors.New("transit: time before 1970 or after 9999")
	ErrWrongPurseKey = errors.New("transit: purse key is not 16 bytes")
)

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ValidCard reports whether s is a well-formed transit card number.
func ValidCard(s string) bool {
	return len(s) >= cardBytesMin && len(s) <= cardBytesMax && digits(s)
}

// ValidOperator reports whether s is a well-formed operator ID.
func ValidOperator(s string) bool { return len(s) == OperatorIDBytes && digits(s) }

// ValidGate reports whether s is a well-formed gate ID.
func ValidGate(s string) bool { return len(s) == GateIDBytes && digits(s) }

// GateOperator is the operator that runs gate g (its first four digits).
func GateOperator(g string) string { return g[:OperatorIDBytes] }

// PurseKey derives a card's purse key from its operator's master key.
func PurseKey(master []byte, card string) [PurseKeyBytes]byte {
	var in [len(purseKeyLabel) + cardBytesMax]byte
	n := copy(in[:], purseKeyLabel)
	n += copy(in[n:], card)
	sum := mac.HMACSHA256(master, in[:n])
	var k [PurseKeyBytes]byte
	copy(k[:], sum[:])
	return k
}

// Tap is one debit of a purse at a gate, as the gate records it.
type Tap struct {
	Card         string
	Amount       int64 // fen
	Counter      uint16
	BalanceAfter int64 // fen
	Gate         string
	Time         time.Time // UTC, whole seconds
	TAC          [TACBytes]byte
}

// Validate checks a tap's fields (not its TAC).
func (t *Tap) Validate() error {
	switch {
	case !ValidCard(t.Card):
		return ErrBadCard
	case t.Amount <= 0 || t.Amount > AmountMax:
		return ErrBadAmount
	case t.BalanceAfter < 0 || t.BalanceAfter > AmountMax:
		return ErrBadAmount
	case t.Counter == 0:
		return fmt.Errorf("transit: counter 0 is never spent")
	case !ValidGate(t.Gate):
		return ErrBadGate
	case t.Time.Unix() < 0 || t.Time.Year() > 9999:
		return ErrBadTime
	}
	return nil
}

// ComputeTAC computes the TAC of t under key (t.TAC is ignored).
func ComputeTAC(key [PurseKeyBytes]byte, t *Tap) [TACBytes]byte {
	var in [tacInputMax]byte
	n := copy(in[:], tacLabel)
	card := t.Card
	if len(card) > cardBytesMax {
		card = card[:cardBytesMax] // never valid; Validate refuses it first
	}
	in[n] = byte(len(card))
	n++
	n += copy(in[n:], card)
	binary.BigEndian.PutUint64(in[n:], uint64(t.Amount))
	n += 8
	binary.BigEndian.PutUint16(in[n:], t.Counter)
	n += 2
	binary.BigEndian.PutUint64(in[n:], uint64(t.BalanceAfter))
	n += 8
	var gate [GateIDBytes]byte
	copy(gate[:], t.Gate)
	n += copy(in[n:], gate[:])
	binary.BigEndian.PutUint64(in[n:], uint64(t.Time.Unix()))
	n += 8
	sum := mac.HMACSHA256(key[:], in[:n])
	var tac [TACBytes]byte
	copy(tac[:], sum[:])
	return tac
}

// VerifyTAC reports whether t carries the right TAC under key, in constant time.
func VerifyTAC(key [PurseKeyBytes]byte, t *Tap) bool {
	want := ComputeTAC(key, t)
	var d byte
	for i := range want {
		d |= want[i] ^ t.TAC[i]
	}
	return d == 0
}

// Purse is the stored-value purse in the phone's secure element.
type Purse struct {
	Operator string
	Card     string
	Balance  int64  // fen
	Counter  uint16 // counter of the last tap; 0 for a new purse
	// LoadSequence is the sequence of the last load (load.go); 0 before
	// the opening load.
	LoadSequence uint32
	Key          [PurseKeyBytes]byte

	// The journey in progress on a distance fare (docs/transit.md, "Fares"):
	// the gate and time of the tap-in, "" and zero when the purse is not
	// in a paid area. MissedExits counts the tap-ins made while already in
	// (a tap-out missed); the next exit charges the city's maximum fare for
	// each. None of them is in the TAC, which covers the debit only: an
	// entry moves no money, and the exit's tap says where it was taken.
	EntryGate   string
	EntryTime   time.Time // UTC, whole seconds
	MissedExits uint8
}

// MissedExitsMax bounds MissedExits: a purse that missed this many
// tap-outs in a row is refused at the next tap-in (the passenger settles
// at the service counter), so what one exit owes stays bounded.
const MissedExitsMax = 3

// ErrMissedExits refuses a tap-in to a purse at MissedExitsMax.
var ErrMissedExits = errors.New("transit: too many journeys without a tap-out")

// In reports whether the purse has an entry: a journey on a distance fare
// it has not tapped out of.
func (p Purse) In() bool { return p.EntryGate != "" }

// Enter records a tap-in at gate at time at: no debit, no tap. A purse
// already in missed its tap-out: the old entry is replaced and counted in
// MissedExits. Like Debit, a pure function; the phone saves the purse
// before the gate opens.
func (p Purse) Enter(gate string, at time.Time) (Purse, error) {
	if !ValidGate(gate) {
		return p, ErrBadGate
	}
	if at.Unix() < 0 || at.Year() > 9999 {
		return p, ErrBadTime
	}
	if p.In() {
		if p.MissedExits >= MissedExitsMax {
			return p, ErrMissedExits
		}
		p.MissedExits++
	}
	p.EntryGate = gate
	p.EntryTime = at.UTC().Truncate(time.Second)
	return p, nil
}

// Exit debits amount at the exit gate, as Debit does, and clears the
// entry and the missed exits the amount paid for.
func (p Purse) Exit(amount int64, gate string, at time.Time) (Purse, Tap, error) {
	after, tap, err := p.Debit(amount, gate, at)
	if err != nil {
		return p, Tap{}, err
	}
	after.EntryGate, after.EntryTime, after.MissedExits = "", time.Time{}, 0
	return after, tap, nil
}

// Debit takes amount fen at gate at time at, and returns the purse after the
// tap and the tap with its TAC. It refuses, leaving the purse as it was,
// when the balance is short, the counter is exhausted or an input is
// malformed. A pure function: the caller persists the new purse before the
// tap leaves (as termsim does for the ATC).
func (p Purse) Debit(amount int64, gate string, at time.Time) (Purse, Tap, error) {
	if !ValidOperator(p.Operator) {
		return p, Tap{}, ErrBadOperator
	}
	if p.Counter == CounterMax {
		return p, Tap{}, ErrCounterSpent
	}
	if amount <= 0 || amount > AmountMax {
		return p, Tap{}, ErrBadAmount
	}
	if amount > p.Balance {
		return p, Tap{}, ErrShort
	}
	t := Tap{
		Card:         p.Card,
		Amount:       amount,
		Counter:      p.Counter + 1,
		BalanceAfter: p.Balance - amount,
		Gate:         gate,
		Time:         at.UTC().Truncate(time.Second),
	}
	if err := t.Validate(); err != nil {
		return p, Tap{}, err
	}
	t.TAC = ComputeTAC(p.Key, &t)
	p.Balance = t.BalanceAfter
	p.Counter = t.Counter
	return p, t, nil
}
