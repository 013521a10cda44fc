package clearing

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/settlement"
)

// Trailer is the last record of a file: control totals over its detail
// records, which a reader recomputes.
//
//	bytes    field                    type  content
//	  1-1    record type              F     "T"
//	  2-10   record count             N     detail records in the file
//	 11-28   debit total              N     sum of amounts of D records, fen
//	 29-46   credit total             N     sum of amounts of C records, fen
//	 47-64   interchange on debits    N     sum of interchange fees of D records, fen
//	 65-82   interchange on credits   N     sum of interchange fees of C records, fen
//	 83-100  switch fees charged      N     sum of switch fees of records with reversal N, fen
//	101-118  switch fees refunded     N     sum of switch fees of records with reversal Y, fen
//	119-136  hash total               N     sum of the card numbers as numbers, mod 10^18
//	137-200  digest                   A     SHA-256 of every byte before this record, lowercase hex
//	201-300  reserved                 X     spaces
type Trailer struct {
	Count              uint64
	DebitTotal         iso8583.Amount
	CreditTotal        iso8583.Amount
	InterchangeDebits  iso8583.Amount
	InterchangeCredits iso8583.Amount
	SwitchFeesCharged  iso8583.Amount
	SwitchFeesRefunded iso8583.Amount
	HashTotal          uint64
	Digest             [sha256.Size]byte
}

var (
	tType         = field{"record type", 1, 1, kindF}
	tCount        = field{"record count", 2, 9, kindN}
	tDebit        = field{"debit total", 11, 18, kindN}
	tCredit       = field{"credit total", 29, 18, kindN}
	tICDebit      = field{"interchange on debits", 47, 18, kindN}
	tICCredit     = field{"interchange on credits", 65, 18, kindN}
	tSwCharged    = field{"switch fees charged", 83, 18, kindN}
	tSwRefunded   = field{"switch fees refunded", 101, 18, kindN}
	tHash         = field{"hash total", 119, 18, kindN}
	tDigest       = field{"digest", 137, 64, kindA}
	tReserved     = field{"reserved", 201, 100, kindX}
	trailerLayout = []field{tType, tCount, tDebit, tCredit, tICDebit, tICCredit, tSwCharged, tSwRefunded,
		tHash, tDigest, tReserved}
)

// totalMax is the largest value of an 18-digit total. A file whose totals
// would exceed it cannot be written; a day that large is refused rather
// than wrapped.
const totalMax = 999_999_999_999_999_999

// hashModulus keeps the hash total within its 18 digits. Card numbers are
// up to 19 digits, so each is taken mod 10^18 before it is added.
const hashModulus = 1_000_000_000_000_000_000

// Record returns the 300 bytes of the record, without its newline.
func (t *Trailer) Record() string { return string(t.appendRecord(nil)) }

func (t *Trailer) appendRecord(dst []byte) []byte {
	dst = append(dst, make([]byte, RecordBytes)...)
	e := newEncoder(dst[len(dst)-RecordBytes:])
	e.flag(tType, 'T')
	e.num(tCount, t.Count)
	e.num(tDebit, uint64(t.DebitTotal))
	e.num(tCredit, uint64(t.CreditTotal))
	e.num(tICDebit, uint64(t.InterchangeDebits))
	e.num(tICCredit, uint64(t.InterchangeCredits))
	e.num(tSwCharged, uint64(t.SwitchFeesCharged))
	e.num(tSwRefunded, uint64(t.SwitchFeesRefunded))
	e.num(tHash, t.HashTotal)
	e.text(tDigest, hex.EncodeToString(t.Digest[:]))
	return dst
}

// ParseTrailer reads a trailer record (300 bytes, no newline) and checks
// its syntax. Whether its totals are right depends on the records before
// it; the Reader checks that.
func ParseTrailer(rec []byte) (Trailer, error) {
	if err := checkLength(rec, "trailer"); err != nil {
		return Trailer{}, err
	}
	d := decoder{rec: rec, record: "trailer"}
	d.flag(tType, "T")
	t := Trailer{
		Count:              d.num(tCount),
		DebitTotal:         iso8583.Amount(d.num(tDebit)),
		CreditTotal:        iso8583.Amount(d.num(tCredit)),
		InterchangeDebits:  iso8583.Amount(d.num(tICDebit)),
		InterchangeCredits: iso8583.Amount(d.num(tICCredit)),
		SwitchFeesCharged:  iso8583.Amount(d.num(tSwCharged)),
		SwitchFeesRefunded: iso8583.Amount(d.num(tSwRefunded)),
		HashTotal:          d.num(tHash),
	}
	t.Digest = d.digest(tDigest)
	d.reserved(tReserved)
	if d.err != nil {
		return Trailer{}, d.err
	}
	return t, nil
}

// digest reads lowercase hex only: the writer writes lowercase, and a
// second spelling of the same digest would not survive a round trip.
func (d *decoder) digest(f field) (out [sha256.Size]byte) {
	b := f.bytes(d.rec)
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			d.fail(f, "%q: want 64 lowercase hex digits", b)
			return out
		}
	}
	hex.Decode(out[:], b)
	return out
}

// summer keeps the running control totals of a file, for the writer that
// puts them in the trailer and the reader that checks them.
type summer struct {
	t      Trailer
	digest hash.Hash
}

func newSummer() *summer { return &summer{digest: sha256.New()} }

// add counts one detail record. It fails only when a total would outgrow
// its 18 digits.
func (s *summer) add(d *Detail) *Error {
	t := s.t
	t.Count++
	amt, ic := &t.DebitTotal, &t.InterchangeDebits
	if d.Direction == settlement.Credit {
		amt, ic = &t.CreditTotal, &t.InterchangeCredits
	}
	sw := &t.SwitchFeesCharged
	if d.Reversal {
		sw = &t.SwitchFeesRefunded
	}
	*amt += d.Amount
	*ic += d.Interchange
	*sw += d.SwitchFee
	if *amt > totalMax || *ic > totalMax || *sw > totalMax {
		return &Error{Record: "detail", Reason: fmt.Sprintf("the file's totals would exceed %d fen", int64(totalMax))}
	}
	t.HashTotal = (t.HashTotal + cardNumberValue(d.CardNumber.Clear())) % hashModulus
	s.t = t
	return nil
}

// cardNumberValue is the number a card number spells, mod 10^18.
func cardNumberValue(s string) uint64 {
	if len(s) > 18 {
		s = s[len(s)-18:]
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		v = v*10 + uint64(s[i]-'0')
	}
	return v
}

// trailer returns the trailer for what was added, with the digest of the
// bytes written to s.digest.
func (s *summer) trailer() Trailer {
	t := s.t
	s.digest.Sum(t.Digest[:0])
	return t
}
