package settlement

import (
	"fmt"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// Currency is the one currency the network settles in. A transaction in
// another currency would need an exchange rate, which the network does not
// have, so it cannot settle.
const Currency = iso8583.CurrencyCNY

// AmountMax is the largest amount one transaction may move: 12 digits of
// fen, the width of DE4 and of the clearing record's amount field.
const AmountMax iso8583.Amount = 999_999_999_999

// Direction is which way a transaction moves money, seen from the cardholder.
type Direction byte

const (
	// Debit: the cardholder is debited, the issuer pays the acquirer.
	Debit Direction = 'D'
	// Credit: the cardholder is credited, the acquirer pays the issuer.
	Credit Direction = 'C'
)

// String returns "D" or "C".
func (d Direction) String() string { return string(rune(d)) }

// MarshalText writes the direction as "D" or "C", the clearing record's
// indicator, in JSON reports.
func (d Direction) MarshalText() ([]byte, error) {
	if d != Debit && d != Credit {
		return nil, fmt.Errorf("settlement: direction %q: want D or C", byte(d))
	}
	return []byte{byte(d)}, nil
}

// UnmarshalText reads "D" or "C".
func (d *Direction) UnmarshalText(b []byte) error {
	if len(b) != 1 || Direction(b[0]) != Debit && Direction(b[0]) != Credit {
		return fmt.Errorf("settlement: direction %q: want D or C", b)
	}
	*d = Direction(b[0])
	return nil
}

// Sign is +1 for Debit and -1 for Credit: the sign of the money flowing
// from issuer to acquirer.
func (d Direction) Sign() int64 {
	if d == Credit {
		return -1
	}
	return 1
}

// Opposite returns the direction that undoes d.
func (d Direction) Opposite() Direction {
	if d == Credit {
		return Debit
	}
	return Credit
}

// DirectionOf returns the direction of an original (not reversal)
// transaction with processing code pc, and false for a code that does not
// settle.
func DirectionOf(pc string) (Direction, bool) {
	switch pc {
	case iso8583.ProcPurchase, iso8583.ProcTransitTopUp:
		return Debit, true
	case iso8583.ProcRefund:
		return Credit, true
	}
	return 0, false
}

// ClassifyMTI reports whether a request MTI that settles is a reversal; ok
// is false for an MTI that never settles (network management, responses).
func ClassifyMTI(mti string) (reversal, ok bool) {
	switch mti {
	case iso8583.MTIAuthRequest, iso8583.MTIFinancialRequest, iso8583.MTIAdvice:
		return false, true
	case iso8583.MTIReversalRequest, iso8583.MTIReversalAdvice:
		return true, true
	}
	return false, false
}

// Txn is one settling transaction: everything a clearing record and the
// netting need, taken from a journal entry plus what the journal does not
// hold (the clear PAN, the issuer's institution, a reversal's original).
type Txn struct {
	BusinessDay      string         // YYYYMMDD, the day the switch processed it
	NodeID           string         // the switch node whose journal holds it
	Seq              uint64         // the entry's journal sequence number on that node
	Time             time.Time      // when the switch decided
	MTI              string         // request MTI, e.g. "0200"
	ProcessingCode   string         // DE3: 000000, 200000 or 210000
	Amount           iso8583.Amount // DE4, fen, always positive; Direction gives the sign
	Currency         string         // DE49, always Currency
	TerminalID       string         // DE41
	STAN             string         // DE11 from the terminal
	TransmissionTime string         // DE7 from the terminal, MMDDhhmmss
	RRN              string         // DE37
	// IssuerSTAN and IssuerTransmissionTime are the DE11 and DE7 the
	// switch sent the issuer: how the issuer knows the transaction in its
	// own books. For a stand-in approval they are the 0220 advice's; for a
	// reversal, its original's (the issuer posts one entry and marks it
	// reversed).
	IssuerSTAN             string
	IssuerTransmissionTime string
	MerchantID             string // DE42
	MCC                    string // DE18
	Acquirer               string // DE32, the acquiring member's institution ID
	IssuerID               string // the issuer's short ID, e.g. ICBC
	IssuerInstitution      string // the issuer's institution ID
	Product                bintable.Product
	Token                  string      // DE2 as the terminal sent it; the acquirer's card number
	PAN                    iso8583.PAN // clear card number: only ever written to the issuer's file
	AuthCode               string      // DE38, "" when there is none
	StandIn                bool        // approved by the switch on the issuer's behalf
	Direction              Direction   // DirectionOf(ProcessingCode), opposite for a reversal
	Reversal               bool        // this cancels the transaction named by Original
	Original               journal.Key // a reversal's original; zero otherwise
}

// Key returns the transaction's duplicate key, the one a reversal names.
func (t *Txn) Key() journal.Key {
	return journal.Key{TerminalID: t.TerminalID, STAN: t.STAN, TransmissionTime: t.TransmissionTime}
}

// ID names the transaction in messages: node and journal sequence number.
func (t *Txn) ID() string { return fmt.Sprintf("%s/%d", t.NodeID, t.Seq) }

// Signed returns Amount with the sign of the money flowing from issuer to
// acquirer: positive for a debit, negative for a credit.
func (t *Txn) Signed() iso8583.Amount {
	return t.Amount * iso8583.Amount(t.Direction.Sign())
}

// Validate checks every field against what a clearing record can hold, so a
// transaction that validates can always be written.
func (t *Txn) Validate() error {
	err := t.validateAllButPAN()
	if err == nil && RulePAN.Check("PAN", t.PAN.Clear()) != nil {
		// Checked apart so that the message masks it.
		err = fmt.Errorf("PAN %s: want 12 to 19 digits", t.PAN)
	}
	if err != nil {
		return fmt.Errorf("settlement: %s: %w", t.ID(), err)
	}
	return nil
}

// validateAllButPAN is Validate without the clear PAN, which only the
// vault can supply (see CheckEntry).
func (t *Txn) validateAllButPAN() error {
	if err := t.validateStrings(); err != nil {
		return err
	}
	if err := t.validateMoney(); err != nil {
		return err
	}
	return t.validateKind()
}

func (t *Txn) validateStrings() error {
	checks := [...]struct {
		name, v string
		r       Rule
	}{
		{"NodeID", t.NodeID, RuleNodeID}, {"TerminalID", t.TerminalID, RuleTerminalID},
		{"STAN", t.STAN, RuleSTAN}, {"TransmissionTime", t.TransmissionTime, RuleTransmissionTime},
		{"RRN", t.RRN, RuleRRN}, {"MerchantID", t.MerchantID, RuleMerchantID},
		{"IssuerSTAN", t.IssuerSTAN, RuleSTAN}, {"IssuerTransmissionTime", t.IssuerTransmissionTime, RuleTransmissionTime},
		{"MCC", t.MCC, RuleMCC}, {"Acquirer", t.Acquirer, RuleInstitution},
		{"IssuerID", t.IssuerID, RuleIssuerID}, {"IssuerInstitution", t.IssuerInstitution, RuleInstitution},
		{"AuthCode", t.AuthCode, RuleAuthCode},
	}
	for _, c := range checks {
		if err := c.r.Check(c.name, c.v); err != nil {
			return err
		}
	}
	// The token is checked apart so that the message masks it.
	if RuleToken.Check("Token", t.Token) != nil {
		return fmt.Errorf("Token %s: want 13 to 19 digits", iso8583.MaskPAN(t.Token))
	}
	if !ValidDay(t.BusinessDay) {
		return fmt.Errorf("BusinessDay %q: want a date as YYYYMMDD", t.BusinessDay)
	}
	switch t.Product {
	case bintable.ProductDebit, bintable.ProductCredit, bintable.ProductTransit:
	default:
		return fmt.Errorf("Product %q: want debit, credit or transit", t.Product)
	}
	return nil
}

func (t *Txn) validateMoney() error {
	if t.Seq == 0 {
		return fmt.Errorf("Seq is 0: journal sequence numbers start at 1")
	}
	if y := t.Time.UTC().Year(); t.Time.IsZero() || y < 1 || y > 9999 {
		return fmt.Errorf("Time %v: want a set time in years 0001 to 9999", t.Time)
	}
	if t.Amount <= 0 || t.Amount > AmountMax {
		return fmt.Errorf("Amount %d: want 1 to %d fen", int64(t.Amount), int64(AmountMax))
	}
	if t.Currency != Currency {
		return fmt.Errorf("Currency %q: the network settles in %s only", t.Currency, Currency)
	}
	return nil
}

// validateKind checks that MTI, processing code, Direction and the reversal
// fields tell one consistent story.
func (t *Txn) validateKind() error {
	reversal, ok := ClassifyMTI(t.MTI)
	if !ok {
		return fmt.Errorf("MTI %q does not settle", t.MTI)
	}
	dir, ok := DirectionOf(t.ProcessingCode)
	if !ok {
		return fmt.Errorf("ProcessingCode %q does not settle", t.ProcessingCode)
	}
	if reversal != t.Reversal {
		return fmt.Errorf("Reversal is %v for MTI %s", t.Reversal, t.MTI)
	}
	if reversal {
		dir = dir.Opposite()
	}
	if t.Direction != dir {
		return fmt.Errorf("Direction %q for MTI %s code %s: want %q", string(rune(t.Direction)), t.MTI, t.ProcessingCode, string(rune(dir)))
	}
	if !t.Reversal {
		if t.Original != (journal.Key{}) {
			return fmt.Errorf("Original is set on a transaction that is not a reversal")
		}
		return nil
	}
	o := t.Original
	if o.TerminalID != t.TerminalID {
		return fmt.Errorf("Original.TerminalID %q: a reversal comes from its original's terminal %q", o.TerminalID, t.TerminalID)
	}
	if err := RuleSTAN.Check("Original.STAN", o.STAN); err != nil {
		return err
	}
	if err := RuleTransmissionTime.Check("Original.TransmissionTime", o.TransmissionTime); err != nil {
		return err
	}
	if o == t.Key() {
		return fmt.Errorf("Original is the reversal's own key")
	}
	return nil
}

// ValidDay reports whether s is a real date written YYYYMMDD.
func ValidDay(s string) bool {
	if len(s) != 8 || !allDigits(s) {
		return false
	}
	_, err := time.Parse("20060102", s)
	return err == nil
}
