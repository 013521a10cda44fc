package settlement

import (
	"fmt"
	"strings"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// Settles reports whether a journal entry moves money (see the package doc):
// approved, a positive amount, routed to an issuer, a settling MTI and
// processing code. It looks at the entry alone, so the caller can skip
// entries before paying for a PAN unseal.
func Settles(e *journal.Entry) bool {
	if e.ResponseCode != iso8583.RCApproved || e.Amount <= 0 || e.IssuerID == "" {
		return false
	}
	if _, ok := ClassifyMTI(e.MTI); !ok {
		return false
	}
	_, ok := DirectionOf(e.ProcessingCode)
	return ok
}

// Supplied is what a Txn needs that the journal entry does not hold.
type Supplied struct {
	// PAN is the clear card number, unsealed by the vault from
	// Entry.PANSealed.
	PAN iso8583.PAN
	// IssuerInstitution is the institution ID of the member named by
	// Entry.IssuerID (configs/issuers.yaml).
	IssuerInstitution string
	// Original is, for a reversal (MTI 0400 or 0420), the duplicate key of
	// the transaction it reverses: the reversal's own terminal with the
	// STAN and transmission time of DE90. Zero for anything else.
	Original journal.Key
}

// FromEntry turns a settling journal entry into a Txn. It is an error to
// pass an entry for which Settles is false, or one whose fields cannot be
// written to a clearing file.
func FromEntry(e *journal.Entry, s Supplied) (Txn, error) {
	if !Settles(e) {
		return Txn{}, fmt.Errorf("settlement: %s/%d: entry does not settle (MTI %s, code %q, response %s, amount %d, issuer %q)",
			e.NodeID, e.Seq, e.MTI, e.ProcessingCode, e.ResponseCode, int64(e.Amount), e.IssuerID)
	}
	t := newTxn(e, s)
	if err := t.Validate(); err != nil {
		return Txn{}, err
	}
	return t, nil
}

// CheckEntry reports the first reason a settling entry could not become a
// Txn, checking everything FromEntry checks but the PAN (s.PAN is
// ignored). Settlement decides with it which records to set aside before
// it opens any sealed PAN: a record's fault is a fact about the record,
// never about the keys. The error names the field, not the entry.
func CheckEntry(e *journal.Entry, s Supplied) error {
	if !Settles(e) {
		return fmt.Errorf("entry does not settle")
	}
	t := newTxn(e, s)
	return t.validateAllButPAN()
}

func newTxn(e *journal.Entry, s Supplied) Txn {
	reversal, _ := ClassifyMTI(e.MTI)
	dir, _ := DirectionOf(e.ProcessingCode)
	if reversal {
		dir = dir.Opposite()
	}
	t := Txn{
		BusinessDay: e.BusinessDay, NodeID: e.NodeID, Seq: e.Seq, Time: e.Time.UTC(),
		MTI: e.MTI, ProcessingCode: e.ProcessingCode, Amount: e.Amount, Currency: e.Currency,
		TerminalID: trimPad(e.TerminalID), STAN: e.STAN, TransmissionTime: e.TransmissionTime,
		RRN: trimPad(e.RRN), MerchantID: trimPad(e.MerchantID), MCC: e.MCC, Acquirer: e.Acquirer,
		IssuerSTAN: e.IssuerSTAN, IssuerTransmissionTime: e.IssuerTransmissionTime,
		IssuerID: e.IssuerID, IssuerInstitution: s.IssuerInstitution,
		Product: bintable.Product(e.Product), Token: e.Token, PAN: s.PAN,
		AuthCode: trimPad(e.AuthCode), StandIn: e.StandIn, Direction: dir, Reversal: reversal,
	}
	if reversal {
		t.Original = s.Original
		t.Original.TerminalID = trimPad(t.Original.TerminalID)
	}
	return t
}

// trimPad drops trailing spaces. Terminals send fixed-length text elements
// (DE41, DE42) padded with spaces; in the clearing file's fixed-width fields
// padding cannot be told from content, so it is dropped once, here.
func trimPad(s string) string { return strings.TrimRight(s, " ") }
