package journal

import (
	"fmt"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
)

// Entry is one authorization outcome as the switch decided it.
type Entry struct {
	Seq              uint64         // assigned by Append, strictly increasing across the journal's life (recovered at Open)
	BusinessDay      string         // YYYYMMDD, assigned by Append from Time and the journal's Cutoff
	Time             time.Time      // when the switch decided (UTC), set by the caller
	NodeID           string         // which switch node wrote it (several nodes settle together later)
	MTI              string         // request MTI as received, e.g. "0200"
	ProcessingCode   string         // DE3
	Amount           iso8583.Amount // DE4, minor units
	Currency         string         // DE49
	TerminalID       string         // DE41
	STAN             string         // DE11 from the terminal
	TransmissionTime string         // DE7 from the terminal, MMDDhhmmss
	RRN              string         // DE37
	MerchantID       string         // DE42
	MCC              string         // DE18
	Acquirer         string         // DE32
	Token            string         // DE2 the terminal sent
	PANSealed        []byte         // the card number sealed by the vault's keyring (opaque here; never a clear PAN)
	IssuerID         string         // "" when not routed
	Product          string         // debit / credit / transit / ""
	IssuerSTAN       string         // the STAN the switch used towards the issuer
	ResponseCode     string         // DE39 sent to the terminal
	AuthCode         string         // DE38
	RequestDigest    [32]byte       // hash of the request's content, so a later same-key request with other content can be told apart
	StandIn          bool           // approved by the switch on the issuer's behalf

	CardExpiry             string // YYMM of the real card, for advices to the issuer
	IssuerTransmissionTime string // DE7 the switch sent the issuer; with IssuerSTAN it names the issuer-side request
	// A reversal (MTI 0400/0420) names its original: same terminal, this
	// STAN and transmission time.
	OriginalSTAN             string
	OriginalTransmissionTime string

	// PurseLoad is set on the operator leg of a transit top-up (processing
	// code 220000 or 720000): the purse load the operator authorized. Token
	// then holds the transit card number (docs/transit.md).
	PurseLoad *PurseLoad
}

// PurseLoad is a credit to a transit purse: the card's load sequence and
// the purse's tap counter when the load was applied (it lands between tap
// AfterCounter and tap AfterCounter+1).
type PurseLoad struct {
	Sequence     uint32
	AfterCounter uint16
}

// Key identifies a terminal's request for duplicate detection: a terminal
// repeating a request sends the same STAN and transmission time again.
type Key struct{ TerminalID, STAN, TransmissionTime string }

// Key returns the entry's duplicate key.
func (e *Entry) Key() Key {
	return Key{TerminalID: e.TerminalID, STAN: e.STAN, TransmissionTime: e.TransmissionTime}
}

// OriginalKey returns the key of the transaction a reversal reverses, and
// false for an entry that is not a reversal.
func (e *Entry) OriginalKey() (Key, bool) {
	if e.OriginalSTAN == "" {
		return Key{}, false
	}
	return Key{TerminalID: e.TerminalID, STAN: e.OriginalSTAN, TransmissionTime: e.OriginalTransmissionTime}, true
}

// Limits on what one entry may hold. They follow the wire contract's field
// lengths so that anything the switch accepted fits, and they bound the
// record so a bad caller cannot write megabytes per authorization.
const (
	nodeIDBytesMax    = 32
	issuerIDBytesMax  = 32
	panSealedBytesMax = 512
	amountMax         = 999_999_999_999 // 12 digits, the width of DE4
)

// rule is how one string field is checked.
type rule struct {
	min, max int
	digits   bool // digits only; otherwise printable ASCII
	optional bool // "" is allowed; anything else must still obey the rule
}

func (r rule) check(name, v string) error {
	if r.optional && v == "" {
		return nil
	}
	if len(v) < r.min || len(v) > r.max {
		if r.min == r.max {
			return fmt.Errorf("journal: %s %q: want %d characters", name, v, r.min)
		}
		return fmt.Errorf("journal: %s %q: want %d to %d characters", name, v, r.min, r.max)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if r.digits && (c < '0' || c > '9') {
			return fmt.Errorf("journal: %s %q: want digits only", name, v)
		}
		if c < 0x20 || c > 0x7e {
			return fmt.Errorf("journal: %s %q: want printable ASCII", name, v)
		}
	}
	return nil
}

// Field rules, after the wire contract's data elements.
var (
	ruleDay       = rule{8, 8, true, false}
	ruleNodeID    = rule{1, nodeIDBytesMax, false, false}
	ruleMTI       = rule{4, 4, true, false}
	ruleProcCode  = rule{6, 6, true, true}
	ruleCurrency  = rule{3, 3, true, true}
	ruleTerminal  = rule{1, 8, false, false} // DE41 is 8 on the wire
	ruleSTAN      = rule{6, 6, true, false}
	ruleTransTime = rule{10, 10, true, false}
	ruleRRN       = rule{1, 12, false, true}
	ruleMerchant  = rule{1, 15, false, true}
	ruleMCC       = rule{4, 4, true, true}
	ruleAcquirer  = rule{1, 11, true, true}
	ruleToken     = rule{1, 19, true, true}
	ruleIssuerID  = rule{1, issuerIDBytesMax, false, true}
	ruleIssSTAN   = rule{6, 6, true, true}
	ruleRespCode  = rule{2, 2, false, false}
	ruleAuthCode  = rule{1, 6, false, true}
	ruleExpiry    = rule{4, 4, true, true}
	ruleOptSTAN   = rule{6, 6, true, true}
	ruleOptTime   = rule{10, 10, true, true}
)

// validate checks everything the caller sets, so a bad entry is refused
// before it reaches the disk.
func (e *Entry) validate() error {
	checks := [...]struct {
		name, v string
		r       rule
	}{
		{"NodeID", e.NodeID, ruleNodeID}, {"MTI", e.MTI, ruleMTI},
		{"ProcessingCode", e.ProcessingCode, ruleProcCode}, {"Currency", e.Currency, ruleCurrency},
		{"TerminalID", e.TerminalID, ruleTerminal}, {"STAN", e.STAN, ruleSTAN},
		{"TransmissionTime", e.TransmissionTime, ruleTransTime}, {"RRN", e.RRN, ruleRRN},
		{"MerchantID", e.MerchantID, ruleMerchant}, {"MCC", e.MCC, ruleMCC},
		{"Acquirer", e.Acquirer, ruleAcquirer}, {"Token", e.Token, ruleToken},
		{"IssuerID", e.IssuerID, ruleIssuerID}, {"IssuerSTAN", e.IssuerSTAN, ruleIssSTAN},
		{"ResponseCode", e.ResponseCode, ruleRespCode}, {"AuthCode", e.AuthCode, ruleAuthCode},
		{"CardExpiry", e.CardExpiry, ruleExpiry}, {"IssuerTransmissionTime", e.IssuerTransmissionTime, ruleOptTime},
		{"OriginalSTAN", e.OriginalSTAN, ruleOptSTAN}, {"OriginalTransmissionTime", e.OriginalTransmissionTime, ruleOptTime},
	}
	for _, c := range checks {
		if err := c.r.check(c.name, c.v); err != nil {
			return err
		}
	}
	if (e.OriginalSTAN == "") != (e.OriginalTransmissionTime == "") {
		return fmt.Errorf("journal: OriginalSTAN and OriginalTransmissionTime go together")
	}
	return e.validateRest()
}

// validateRest checks the fields that are not plain strings.
func (e *Entry) validateRest() error {
	switch e.Product {
	case "", "debit", "credit", "transit":
	default:
		return fmt.Errorf("journal: Product %q: want debit, credit, transit or empty", e.Product)
	}
	if e.Amount < 0 || e.Amount > amountMax {
		return fmt.Errorf("journal: Amount %d: want 0 to %d minor units", int64(e.Amount), amountMax)
	}
	if e.Time.IsZero() || !time.Unix(0, e.Time.UnixNano()).Equal(e.Time) {
		return fmt.Errorf("journal: Time %v: want a set time between 1678 and 2262", e.Time)
	}
	if len(e.PANSealed) > panSealedBytesMax {
		return fmt.Errorf("journal: PANSealed is %d bytes, more than %d", len(e.PANSealed), panSealedBytesMax)
	}
	if e.PurseLoad != nil && e.ProcessingCode != iso8583.ProcPurseLoad && e.ProcessingCode != iso8583.ProcPurseOpen {
		return fmt.Errorf("journal: PurseLoad on processing code %s: only a purse load (%s, %s) carries one",
			e.ProcessingCode, iso8583.ProcPurseLoad, iso8583.ProcPurseOpen)
	}
	if looksLikeClearPAN(e.PANSealed) {
		// Refuse rather than write a card number to disk in the clear; the
		// message must not echo it either.
		return fmt.Errorf("journal: PANSealed is %d ASCII digits: a clear PAN, not a sealed one", len(e.PANSealed))
	}
	return nil
}

// looksLikeClearPAN reports whether b is 12 to 19 ASCII digits: the shape of
// a card number, which a sealed (encrypted, versioned) value never has.
func looksLikeClearPAN(b []byte) bool {
	if len(b) < 12 || len(b) > 19 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// stringFields lists the record's variable string fields in their on-disk
// order (see the package doc). Encoding and decoding both range over it, so
// the order is written down once.
func (e *Entry) stringFields() [22]*string {
	return [22]*string{
		&e.BusinessDay, &e.NodeID, &e.MTI, &e.ProcessingCode, &e.Currency,
		&e.TerminalID, &e.STAN, &e.TransmissionTime, &e.RRN, &e.MerchantID,
		&e.MCC, &e.Acquirer, &e.Token, &e.IssuerID, &e.Product,
		&e.IssuerSTAN, &e.ResponseCode, &e.AuthCode, &e.CardExpiry,
		&e.IssuerTransmissionTime, &e.OriginalSTAN, &e.OriginalTransmissionTime,
	}
}

// validateKey checks the three fields of the duplicate key.
func (e *Entry) validateKey() error {
	if err := ruleTerminal.check("TerminalID", e.TerminalID); err != nil {
		return err
	}
	if err := ruleSTAN.check("STAN", e.STAN); err != nil {
		return err
	}
	return ruleTransTime.check("TransmissionTime", e.TransmissionTime)
}
