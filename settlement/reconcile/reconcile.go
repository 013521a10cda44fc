package reconcile

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/settlement"
	"github.com/tapswitch/tapswitch/settlement/clearing"
)

// LedgerEntry is one approved posting in an issuer's books: a purchase or
// transit top-up (the cardholder debited) or a refund (credited), with
// whether and on which day the issuer reversed it.
type LedgerEntry struct {
	STAN             string               `json:"stan"`                      // DE11 the issuer received
	TransmissionTime string               `json:"transmission_time"`         // DE7 the issuer received, MMDDhhmmss
	ProcessingCode   string               `json:"processing_code,omitempty"` // DE3; "" if the ledger does not keep it
	Amount           iso8583.Amount       `json:"amount_fen"`
	Direction        settlement.Direction `json:"direction"` // Debit: the cardholder was debited
	RRN              string               `json:"rrn,omitempty"`
	TerminalID       string               `json:"terminal_id,omitempty"`
	AuthCode         string               `json:"auth_code,omitempty"`
	BusinessDay      string               `json:"business_day"` // YYYYMMDD, the issuer's day of the posting
	Reversed         bool                 `json:"reversed"`
	ReversalDay      string               `json:"reversal_day,omitempty"` // YYYYMMDD, set exactly when Reversed
}

// Key is the issuer trace, the pair an issuer knows a transaction by.
type Key struct {
	STAN             string `json:"stan"`
	TransmissionTime string `json:"transmission_time"`
}

// Key returns the entry's issuer trace.
func (e *LedgerEntry) Key() Key { return Key{STAN: e.STAN, TransmissionTime: e.TransmissionTime} }

// displayBytesMax bounds the fields a report only shows (RRN, terminal,
// auth code), so that a bad export cannot fill a report line.
const displayBytesMax = 32

// Validate checks an entry as this package needs it: a trace of digits,
// an amount a clearing record can hold, a direction that agrees with the
// processing code when there is one, and days in order.
func (e *LedgerEntry) Validate() error {
	if err := settlement.RuleSTAN.Check("STAN", e.STAN); err != nil {
		return err
	}
	if err := settlement.RuleTransmissionTime.Check("TransmissionTime", e.TransmissionTime); err != nil {
		return err
	}
	for _, f := range [...]struct{ name, v string }{{"RRN", e.RRN}, {"TerminalID", e.TerminalID}, {"AuthCode", e.AuthCode}} {
		if err := checkDisplay(f.name, f.v); err != nil {
			return err
		}
	}
	if e.Amount <= 0 || e.Amount > settlement.AmountMax {
		return fmt.Errorf("Amount %d: want 1 to %d fen", int64(e.Amount), int64(settlement.AmountMax))
	}
	if e.Direction != settlement.Debit && e.Direction != settlement.Credit {
		return fmt.Errorf("Direction %q: want D or C", byte(e.Direction))
	}
	if e.ProcessingCode != "" {
		dir, ok := settlement.DirectionOf(e.ProcessingCode)
		if !ok {
			return fmt.Errorf("ProcessingCode %q: want 000000, 200000 or 210000", e.ProcessingCode)
		}
		if dir != e.Direction {
			return fmt.Errorf("Direction %s for processing code %s: want %s", e.Direction, e.ProcessingCode, dir)
		}
	}
	if !settlement.ValidDay(e.BusinessDay) {
		return fmt.Errorf("BusinessDay %q: want a date as YYYYMMDD", e.BusinessDay)
	}
	switch {
	case !e.Reversed && e.ReversalDay != "":
		return fmt.Errorf("ReversalDay %s on an entry that is not reversed", e.ReversalDay)
	case e.Reversed && !settlement.ValidDay(e.ReversalDay):
		return fmt.Errorf("ReversalDay %q: want a date as YYYYMMDD on a reversed entry", e.ReversalDay)
	case e.Reversed && e.ReversalDay < e.BusinessDay:
		return fmt.Errorf("ReversalDay %s is before BusinessDay %s", e.ReversalDay, e.BusinessDay)
	}
	return nil
}

// checkDisplay checks a field the report only shows. Trailing spaces are
// allowed: an issuer may keep DE41 and DE37 as padded on the wire.
func checkDisplay(name, v string) error {
	if len(v) > displayBytesMax {
		return fmt.Errorf("%s is %d bytes, more than %d", name, len(v), displayBytesMax)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return fmt.Errorf("%s %q: want printable ASCII", name, v)
		}
	}
	return nil
}

// Kind is what sort of break a Break is.
type Kind string

const (
	Missing          Kind = "missing"           // the ledger expects a record the file lacks
	Extra            Kind = "extra"             // the file has a record no ledger entry expects
	AmountDiffers    Kind = "amount_differs"    // a matched record's amount is not the ledger's
	DirectionDiffers Kind = "direction_differs" // a matched record's debit/credit is not the expected one
)

// kindOrder is the order of breaks of one record in a report.
func kindOrder(k Kind) int {
	return slices.Index([]Kind{Missing, Extra, AmountDiffers, DirectionDiffers}, k)
}

// Record is a clearing record as a report shows it: where it is and what
// it says about money, without the card number.
type Record struct {
	Seq            uint64               `json:"seq"` // its number in the file
	NodeID         string               `json:"node_id"`
	JournalSeq     uint64               `json:"journal_seq"`
	MTI            string               `json:"mti"`
	ProcessingCode string               `json:"processing_code"`
	Reversal       bool                 `json:"reversal"`
	Amount         iso8583.Amount       `json:"amount_fen"`
	Direction      settlement.Direction `json:"direction"`
	RRN            string               `json:"rrn"`
	TerminalID     string               `json:"terminal_id"`
	StandIn        bool                 `json:"stand_in"`
}

func recordOf(d *clearing.Detail) *Record {
	return &Record{Seq: d.Seq, NodeID: d.NodeID, JournalSeq: d.JournalSeq, MTI: d.MTI,
		ProcessingCode: d.ProcessingCode, Reversal: d.Reversal, Amount: d.Amount, Direction: d.Direction,
		RRN: d.RRN, TerminalID: d.TerminalID, StandIn: d.StandIn}
}

// Break is one disagreement between the ledger and the file.
type Break struct {
	Kind Kind `json:"kind"`
	Key  Key  `json:"key"`
	// Reversal says which record of the posting the break is about: the
	// reversal record (flag Y) or the original (N).
	Reversal bool         `json:"reversal"`
	Ledger   *LedgerEntry `json:"ledger,omitempty"` // the ledger's entry with the key, if it has one
	File     *Record      `json:"file,omitempty"`   // the record; nil for a missing one
	Reason   string       `json:"reason"`
}

// Report is the outcome of one issuer's day.
type Report struct {
	BusinessDay string `json:"business_day"`
	Institution string `json:"institution,omitempty"` // the issuer, when known (File)
	// LedgerEntries counts the entries posted or reversed on the day.
	LedgerEntries int `json:"ledger_entries"`
	FileRecords   int `json:"file_records"`
	// ReversedNotCleared counts the entries posted and reversed on the
	// day that have no record, rightly (see the package doc): most are
	// time-outs the switch reversed.
	ReversedNotCleared int     `json:"reversed_not_cleared"`
	Breaks             []Break `json:"breaks"` // sorted by key, then original before reversal; never nil
}

// Clean reports whether the day has no break.
func (r *Report) Clean() bool { return len(r.Breaks) == 0 }

// File reconciles an issuer's ledger with its clearing file, for the
// file's business day.
func File(ledger []LedgerEntry, f *clearing.File) (Report, error) {
	if f.Header.Role != clearing.Issuer {
		return Report{}, fmt.Errorf("reconcile: %s is an acquirer's file; a ledger reconciles against the issuer's file", f.Header.FileID)
	}
	r, err := Day(f.Header.BusinessDay, ledger, f.Details)
	if err != nil {
		return Report{}, err
	}
	r.Institution = f.Header.Institution
	return r, nil
}

// records are the detail records of one key, in file order.
type records struct{ originals, reversals []*clearing.Detail }

// Day reconciles one business day (YYYYMMDD). The ledger may span any
// number of days: entries neither posted nor reversed on day expect no
// record, and only explain extra ones. The details are the records of the
// issuer's clearing file for day. Bad input (an entry that does not
// validate, two entries of the day with one trace, records of two issuers)
// is an error; every disagreement between valid inputs is a Break.
func Day(day string, ledger []LedgerEntry, details []clearing.Detail) (Report, error) {
	if !settlement.ValidDay(day) {
		return Report{}, fmt.Errorf("reconcile: day %q: want a date as YYYYMMDD", day)
	}
	expected, err := indexLedger(day, ledger)
	if err != nil {
		return Report{}, err
	}
	got, err := indexRecords(details)
	if err != nil {
		return Report{}, err
	}
	c := checker{day: day, r: Report{BusinessDay: day, LedgerEntries: len(expected),
		FileRecords: len(details), Breaks: []Break{}}}
	for k, e := range expected {
		c.entry(e, got[k])
	}
	unknown := map[Key]*LedgerEntry{}
	for k := range got {
		if _, ok := expected[k]; !ok {
			unknown[k] = nil
		}
	}
	// Extra records are explained by the ledger's entry of another day,
	// when it has one: a second pass, only for their keys.
	for i := range ledger {
		if e, ok := unknown[ledger[i].Key()]; ok && e == nil {
			unknown[ledger[i].Key()] = &ledger[i]
		}
	}
	for k, e := range unknown {
		c.extras(e, k, false, got[k].originals)
		c.extras(e, k, true, got[k].reversals)
	}
	sortBreaks(c.r.Breaks)
	return c.r, nil
}

// indexLedger validates every entry and returns those that expect records
// on day, by key.
func indexLedger(day string, ledger []LedgerEntry) (map[Key]*LedgerEntry, error) {
	out := map[Key]*LedgerEntry{}
	where := map[Key]int{}
	for i := range ledger {
		e := &ledger[i]
		if err := e.Validate(); err != nil {
			return nil, fmt.Errorf("reconcile: ledger entry %d: %w", i+1, err)
		}
		if e.BusinessDay != day && e.ReversalDay != day {
			continue
		}
		if j, dup := where[e.Key()]; dup {
			return nil, fmt.Errorf("reconcile: ledger entries %d and %d both have STAN %s transmission time %s on %s: a trace must name one posting",
				j+1, i+1, e.STAN, e.TransmissionTime, day)
		}
		out[e.Key()], where[e.Key()] = e, i
	}
	return out, nil
}

// indexRecords validates every record and groups them by issuer trace.
func indexRecords(details []clearing.Detail) (map[Key]records, error) {
	out := map[Key]records{}
	for i := range details {
		d := &details[i]
		if err := d.Validate(); err != nil {
			return nil, fmt.Errorf("reconcile: record %d: %w", i+1, err)
		}
		if d.IssuerInstitution != details[0].IssuerInstitution {
			return nil, fmt.Errorf("reconcile: record %d is of issuer %s, record 1 of %s: one issuer's records at a time",
				i+1, d.IssuerInstitution, details[0].IssuerInstitution)
		}
		k := Key{STAN: d.IssuerSTAN, TransmissionTime: d.IssuerTransmissionTime}
		g := out[k]
		if d.Reversal {
			g.reversals = append(g.reversals, d)
		} else {
			g.originals = append(g.originals, d)
		}
		out[k] = g
	}
	return out, nil
}

// checker collects the breaks of one day.
type checker struct {
	day string
	r   Report
}

// entry checks the records of one ledger entry that expects some on the
// day, by the rules of the package doc.
func (c *checker) entry(e *LedgerEntry, g records) {
	postedToday := e.BusinessDay == c.day
	reversedToday := e.Reversed && e.ReversalDay == c.day
	if postedToday && reversedToday && len(g.originals) == 0 && len(g.reversals) == 0 {
		c.r.ReversedNotCleared++
		return
	}
	c.side(e, false, postedToday, g.originals)
	c.side(e, true, reversedToday, g.reversals)
}

// side checks the original records (reversal false) or the reversal
// records of an entry: want says whether the day expects one.
func (c *checker) side(e *LedgerEntry, reversal, want bool, recs []*clearing.Detail) {
	if !want {
		c.extras(e, e.Key(), reversal, recs)
		return
	}
	if len(recs) == 0 {
		c.add(Missing, e.Key(), reversal, e, nil, c.missingReason(e, reversal))
		return
	}
	c.compare(e, reversal, recs[0])
	c.extras(e, e.Key(), reversal, recs[1:])
}

// compare checks a record against the entry it stands for.
func (c *checker) compare(e *LedgerEntry, reversal bool, d *clearing.Detail) {
	if d.Amount != e.Amount {
		c.add(AmountDiffers, e.Key(), reversal, e, d,
			fmt.Sprintf("the ledger says %s, the record %s", e.Amount, d.Amount))
	}
	want, reason := e.Direction, fmt.Sprintf("the ledger posted %s, the record has %s", e.Direction, d.Direction)
	if reversal {
		want = e.Direction.Opposite()
		reason = fmt.Sprintf("the reversal of a %s posting is %s, the record has %s", e.Direction, want, d.Direction)
	}
	if d.Direction != want {
		c.add(DirectionDiffers, e.Key(), reversal, e, d, reason)
	}
}

// extras reports records no entry expects; e is the ledger's entry with
// the key, or nil.
func (c *checker) extras(e *LedgerEntry, k Key, reversal bool, recs []*clearing.Detail) {
	for _, d := range recs {
		c.add(Extra, k, reversal, e, d, c.extraReason(e, reversal))
	}
}

func (c *checker) missingReason(e *LedgerEntry, reversal bool) string {
	day := c.day
	switch {
	case !reversal && e.Reversed && e.ReversalDay == day:
		return fmt.Sprintf("the ledger posted and reversed it on %s; the file has its reversal record but not the original", day)
	case !reversal && e.Reversed:
		return fmt.Sprintf("the ledger posted it on %s and reversed it on %s; the file has no record of it", day, e.ReversalDay)
	case !reversal:
		return fmt.Sprintf("the ledger posted it on %s; the file has no record of it", day)
	case e.BusinessDay == day:
		return fmt.Sprintf("the ledger posted and reversed it on %s; the file has the original record but not its reversal", day)
	}
	return fmt.Sprintf("the ledger reversed it on %s (posted on %s); the file has no reversal record", day, e.BusinessDay)
}

// extraReason says why no entry expects a record. The cases follow from
// the rules: an original record is expected only on its posting's day, a
// reversal record only on its reversal's, each once.
func (c *checker) extraReason(e *LedgerEntry, reversal bool) string {
	day := c.day
	switch {
	case e == nil:
		return "the ledger has no posting with this STAN and transmission time"
	case !reversal && e.BusinessDay != day:
		return fmt.Sprintf("the ledger posted it on %s, not on %s", e.BusinessDay, day)
	case !reversal:
		return "a second original record of the same posting"
	case !e.Reversed:
		return fmt.Sprintf("the ledger posted it on %s and has not reversed it", e.BusinessDay)
	case e.ReversalDay != day:
		return fmt.Sprintf("the ledger reversed it on %s, not on %s", e.ReversalDay, day)
	}
	return "a second reversal record of the same posting"
}

func (c *checker) add(k Kind, key Key, reversal bool, e *LedgerEntry, d *clearing.Detail, reason string) {
	b := Break{Kind: k, Key: key, Reversal: reversal, Reason: reason}
	if e != nil {
		le := *e // the report does not alias the caller's ledger
		b.Ledger = &le
	}
	if d != nil {
		b.File = recordOf(d)
	}
	c.r.Breaks = append(c.r.Breaks, b)
}

// sortBreaks orders breaks by key, original before reversal, kind, and
// record number. No two breaks agree on all of these, so the order, and
// with it the report, is the same on every run.
func sortBreaks(bs []Break) {
	slices.SortFunc(bs, func(a, b Break) int {
		return cmp.Or(cmp.Compare(a.Key.STAN, b.Key.STAN),
			cmp.Compare(a.Key.TransmissionTime, b.Key.TransmissionTime),
			cmp.Compare(b2i(a.Reversal), b2i(b.Reversal)),
			cmp.Compare(kindOrder(a.Kind), kindOrder(b.Kind)),
			cmp.Compare(fileSeq(a), fileSeq(b)))
	})
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func fileSeq(b Break) uint64 {
	if b.File == nil {
		return 0
	}
	return b.File.Seq
}
