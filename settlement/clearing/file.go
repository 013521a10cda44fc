package clearing

import (
	"fmt"
)

// File is a whole clearing file, as Read returns it.
type File struct {
	Header  Header
	Details []Detail
	Trailer Trailer
}

// fileState is what checking a file needs across its records: the header,
// the running totals and the sort key of the last detail. The Writer and
// the Reader share it, so a file is checked by one set of rules whichever
// way it goes.
type fileState struct {
	h        Header
	sum      *summer
	lastNode string
	lastSeq  uint64
}

func newFileState(h Header) fileState { return fileState{h: h, sum: newSummer()} }

// addDetail checks d against the header and the records before it, then
// counts it. d itself must have validated.
func (s *fileState) addDetail(d *Detail) *Error {
	if want := s.sum.t.Count + 1; d.Seq != want {
		if want > SeqMax {
			return fieldError("detail", dSeq, "the file already holds %d records, the most it can", SeqMax)
		}
		return fieldError("detail", dSeq, "%d: want %d", d.Seq, want)
	}
	if d.Currency != s.h.Currency {
		return fieldError("detail", dCurrency, "%s: the header's currency is %s", d.Currency, s.h.Currency)
	}
	if s.h.Role == Issuer && d.IssuerInstitution != s.h.Institution {
		return fieldError("detail", dIssuerInst, "%s: this is the issuer file of %s", d.IssuerInstitution, s.h.Institution)
	}
	if s.h.Role == Acquirer && d.Acquirer != s.h.Institution {
		return fieldError("detail", dAcquirer, "%s: this is the acquirer file of %s", d.Acquirer, s.h.Institution)
	}
	if s.sum.t.Count > 0 && (d.NodeID < s.lastNode || d.NodeID == s.lastNode && d.JournalSeq <= s.lastSeq) {
		return fieldError("detail", dJournalSeq, "%s/%d after %s/%d: records are sorted by node ID, then journal seq, each once",
			d.NodeID, d.JournalSeq, s.lastNode, s.lastSeq)
	}
	if err := s.sum.add(d); err != nil {
		return err
	}
	s.lastNode, s.lastSeq = d.NodeID, d.JournalSeq
	return nil
}

// checkTrailer compares a file's trailer with the totals recomputed from
// its records.
func (s *fileState) checkTrailer(got Trailer) *Error {
	want := s.sum.trailer()
	for _, c := range [...]struct {
		f         field
		got, want uint64
		what      string
	}{
		{tCount, got.Count, want.Count, "detail records"},
		{tDebit, uint64(got.DebitTotal), uint64(want.DebitTotal), "fen of debits"},
		{tCredit, uint64(got.CreditTotal), uint64(want.CreditTotal), "fen of credits"},
		{tICDebit, uint64(got.InterchangeDebits), uint64(want.InterchangeDebits), "fen of interchange on debits"},
		{tICCredit, uint64(got.InterchangeCredits), uint64(want.InterchangeCredits), "fen of interchange on credits"},
		{tSwCharged, uint64(got.SwitchFeesCharged), uint64(want.SwitchFeesCharged), "fen of switch fees charged"},
		{tSwRefunded, uint64(got.SwitchFeesRefunded), uint64(want.SwitchFeesRefunded), "fen of switch fees refunded"},
		{tHash, got.HashTotal, want.HashTotal, "as the sum of card numbers mod 10^18"},
	} {
		if c.got != c.want {
			return fieldError("trailer", c.f, "trailer says %d, the records give %d %s", c.got, c.want, c.what)
		}
	}
	if got.Digest != want.Digest {
		return fieldError("trailer", tDigest, "trailer says %x, the header and records hash to %x", got.Digest, want.Digest)
	}
	return nil
}

// atLine returns err with its line set. err must be an *Error.
func atLine(err error, line int) error {
	if e, ok := err.(*Error); ok {
		c := *e
		c.Line = line
		return &c
	}
	return fmt.Errorf("clearing: line %d: %w", line, err)
}
