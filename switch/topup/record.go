package topup

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/tapswitch/tapswitch/switch/journal"
)

// State is where a top-up is in its life.
type State string

const (
	// Prepared: the switch chose the bank leg's terminal, STAN and time;
	// the phone has not paid yet. Nothing has moved.
	Prepared State = "prepared"
	// Paying: the phone sent the bank leg; its outcome and the load's are
	// not both known. A restart finishes a paying top-up (Recover).
	Paying State = "paying"
	// Undoing: the bank approved and the load failed or got no answer; the
	// bank leg is being reversed. A restart reverses it again (a repeat of
	// the same reversal, answered as the first).
	Undoing State = "undoing"
	// Loaded: both legs approved; the grant lets the purse credit itself.
	Loaded State = "loaded"
	// Declined: the bank declined; nothing moved.
	Declined State = "declined"
	// Undone: the bank leg was reversed (or never decided); nothing moved.
	Undone State = "undone"
)

// Final reports whether s is an end state.
func (s State) Final() bool { return s == Loaded || s == Declined || s == Undone }

// Record is a top-up as the journal keeps it (journal.TopUpRecord, JSON).
// It holds no clear PAN: the bank leg names its token, and the operator leg
// the transit card number, which is the card's public number (printed on
// a physical transit card), not a bank PAN.
type Record struct {
	ID       string    `json:"id"`
	Login    string    `json:"login"`
	Device   string    `json:"device"`
	Created  time.Time `json:"created"`
	Operator string    `json:"operator"` // the operator's issuer ID, e.g. BJT
	Code     string    `json:"code"`     // its 4-digit operator code
	Open     bool      `json:"open"`     // an opening: the card is new
	Card     string    `json:"card"`     // the transit card number
	Amount   int64     `json:"amount"`   // fen
	Token    string    `json:"token"`    // the bank token paying
	Terminal string    `json:"terminal"` // the operator's top-up terminal (DE41 of both legs)
	Merchant string    `json:"merchant"` // its merchant (DE42 of the bank leg)
	Acquirer string    `json:"acquirer"` // its acquirer: the operator's institution (DE32)

	Bank     journal.Key `json:"bank"`     // the bank leg (210000)
	Load     journal.Key `json:"load"`     // the operator leg (220000 or 720000)
	Reversal journal.Key `json:"reversal"` // the bank leg's reversal, if it comes to that

	// The purse's signed request (loads only; an opening has none).
	PurseBalance  int64  `json:"purse_balance,omitempty"`
	PurseCounter  uint16 `json:"purse_counter,omitempty"`
	PurseSequence uint32 `json:"purse_sequence,omitempty"`
	PurseMAC      string `json:"purse_mac,omitempty"`

	State State  `json:"state"`
	RC    string `json:"rc,omitempty"` // what the phone is told: 00, or the leg that failed's code

	// The operator's grant (Loaded): what the purse credits itself with.
	BalanceAfter int64  `json:"balance_after,omitempty"`
	GrantMAC     string `json:"grant_mac,omitempty"`
	Sequence     uint32 `json:"sequence,omitempty"`
	// PurseKeySealed is an opening's purse key, sealed by the vault's
	// keyring, for the phone that opened the card.
	PurseKeySealed []byte `json:"purse_key_sealed,omitempty"`
	// KeyDelivered: the phone acknowledged the purse key, which was erased.
	KeyDelivered bool `json:"key_delivered,omitempty"`
}

func (r *Record) journalRecord() (*journal.TopUpRecord, error) {
	v, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("topup %s: %w", r.ID, err)
	}
	return &journal.TopUpRecord{ID: r.ID, Value: v}, nil
}

func decodeRecord(v []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(v, &r); err != nil {
		return r, fmt.Errorf("topup: corrupt record: %w", err)
	}
	return r, nil
}
