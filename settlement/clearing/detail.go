package clearing

import (
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/settlement"
)

// Detail is one transaction in a file. Its card number is the PAN in an
// issuer's file and the token in an acquirer's; it is an iso8583.PAN, so it
// masks itself when a Detail is printed. For the same reason Detail has no
// String method: Record returns the clear record, for the file only.
//
//	bytes    field                      type  content
//	  1-1    record type                F     "D"
//	  2-10   sequence                   N     1, 2, 3 ... within the file
//	 11-42   node ID                    A     the switch node whose journal holds it
//	 43-62   journal seq                N     the entry's sequence number on that node
//	 63-66   MTI                        N     0100 0200 0220 0400 0420
//	 67-72   processing code            N     000000 200000 210000
//	 73-73   debit/credit               F     D cardholder debited, C credited
//	 74-74   reversal                   F     Y or N
//	 75-86   amount                     N     fen
//	 87-89   currency                   N     equal to the header's
//	 90-101  interchange fee            N     fen; see "Money" in the format doc
//	102-113  switch fee                 N     fen, paid by each of issuer and acquirer
//	114-127  time                       N     YYYYMMDDhhmmss UTC, when the switch decided
//	128-137  transmission time          N     DE7, MMDDhhmmss
//	138-143  STAN                       N     DE11
//	144-155  RRN                        A     DE37
//	156-161  auth code                  A     DE38, spaces if none
//	162-169  terminal ID                A     DE41
//	170-184  merchant ID                A     DE42
//	185-188  MCC                        N     DE18
//	189-199  acquirer                   A     acquiring institution ID, 1 to 11 digits
//	200-211  issuer ID                  A     e.g. ICBC
//	212-222  issuer institution         A     1 to 11 digits
//	223-229  product                    A     debit, credit or transit
//	230-248  card number                A     PAN (issuer file) or token (acquirer file), 12 to 19 digits
//	249-249  stand-in                   F     Y or N
//	250-255  original STAN              N     a reversal's original; spaces otherwise
//	256-265  original transmission time N     a reversal's original; spaces otherwise
//	266-271  issuer STAN                N     DE11 the switch sent the issuer
//	272-281  issuer transmission time   N     DE7 the switch sent the issuer, MMDDhhmmss
//	282-300  reserved                   X     spaces
//
// The issuer STAN and transmission time are how the issuer knows the
// transaction (settlement.Txn): a stand-in approval's are its 0220
// advice's, a reversal's are its original's. Both roles' files carry them.
type Detail struct {
	Seq                      uint64 // position in the file, from 1; the Writer assigns it
	NodeID                   string
	JournalSeq               uint64
	MTI                      string
	ProcessingCode           string
	Direction                settlement.Direction
	Reversal                 bool
	Amount                   iso8583.Amount
	Currency                 string
	Interchange              iso8583.Amount
	SwitchFee                iso8583.Amount
	Time                     time.Time // UTC, whole seconds
	TransmissionTime         string
	STAN                     string
	RRN                      string
	AuthCode                 string
	TerminalID               string
	MerchantID               string
	MCC                      string
	Acquirer                 string
	IssuerID                 string
	IssuerInstitution        string
	Product                  bintable.Product
	CardNumber               iso8583.PAN
	StandIn                  bool
	OriginalSTAN             string
	OriginalTransmissionTime string
	IssuerSTAN               string
	IssuerTransmissionTime   string
}

var (
	dType         = field{"record type", 1, 1, kindF}
	dSeq          = field{"sequence", 2, 9, kindN}
	dNode         = field{"node ID", 11, 32, kindA}
	dJournalSeq   = field{"journal seq", 43, 20, kindN}
	dMTI          = field{"MTI", 63, 4, kindN}
	dProcCode     = field{"processing code", 67, 6, kindN}
	dDC           = field{"debit/credit", 73, 1, kindF}
	dReversal     = field{"reversal", 74, 1, kindF}
	dAmount       = field{"amount", 75, 12, kindN}
	dCurrency     = field{"currency", 87, 3, kindN}
	dInterchange  = field{"interchange fee", 90, 12, kindN}
	dSwitchFee    = field{"switch fee", 102, 12, kindN}
	dTime         = field{"time", 114, 14, kindN}
	dTransTime    = field{"transmission time", 128, 10, kindN}
	dSTAN         = field{"STAN", 138, 6, kindN}
	dRRN          = field{"RRN", 144, 12, kindA}
	dAuthCode     = field{"auth code", 156, 6, kindA}
	dTerminal     = field{"terminal ID", 162, 8, kindA}
	dMerchant     = field{"merchant ID", 170, 15, kindA}
	dMCC          = field{"MCC", 185, 4, kindN}
	dAcquirer     = field{"acquirer", 189, 11, kindA}
	dIssuerID     = field{"issuer ID", 200, 12, kindA}
	dIssuerInst   = field{"issuer institution", 212, 11, kindA}
	dProduct      = field{"product", 223, 7, kindA}
	dCard         = field{"card number", 230, 19, kindA}
	dStandIn      = field{"stand-in", 249, 1, kindF}
	dOrigSTAN     = field{"original STAN", 250, 6, kindN}
	dOrigTransTim = field{"original transmission time", 256, 10, kindN}
	dIssSTAN      = field{"issuer STAN", 266, 6, kindN}
	dIssTransTime = field{"issuer transmission time", 272, 10, kindN}
	dReserved     = field{"reserved", 282, 19, kindX}

	detailLayout = []field{dType, dSeq, dNode, dJournalSeq, dMTI, dProcCode, dDC, dReversal,
		dAmount, dCurrency, dInterchange, dSwitchFee, dTime, dTransTime, dSTAN, dRRN, dAuthCode,
		dTerminal, dMerchant, dMCC, dAcquirer, dIssuerID, dIssuerInst, dProduct, dCard, dStandIn,
		dOrigSTAN, dOrigTransTim, dIssSTAN, dIssTransTime, dReserved}
)

// timeLayout is the record's time: UTC to the second. Sub-second digits
// would add width and nothing a bank reconciles on.
const timeLayout = "20060102150405"

// SeqMax is the most detail records one file holds: the sequence field and
// the trailer's count are 9 digits.
const SeqMax = 999_999_999

// Record returns the 300 bytes of the record, without its newline. It holds
// the clear card number.
func (d *Detail) Record() string { return string(d.appendRecord(nil)) }

func (d *Detail) appendRecord(dst []byte) []byte {
	dst = append(dst, make([]byte, RecordBytes)...)
	e := newEncoder(dst[len(dst)-RecordBytes:])
	e.flag(dType, 'D')
	e.num(dSeq, d.Seq)
	e.text(dNode, d.NodeID)
	e.num(dJournalSeq, d.JournalSeq)
	e.digits(dMTI, d.MTI)
	e.digits(dProcCode, d.ProcessingCode)
	e.flag(dDC, byte(d.Direction))
	e.flag(dReversal, flagOf(d.Reversal))
	e.num(dAmount, uint64(d.Amount))
	e.digits(dCurrency, d.Currency)
	e.num(dInterchange, uint64(d.Interchange))
	e.num(dSwitchFee, uint64(d.SwitchFee))
	e.digits(dTime, d.Time.UTC().Format(timeLayout))
	e.digits(dTransTime, d.TransmissionTime)
	e.digits(dSTAN, d.STAN)
	e.text(dRRN, d.RRN)
	e.text(dAuthCode, d.AuthCode)
	e.text(dTerminal, d.TerminalID)
	e.text(dMerchant, d.MerchantID)
	e.digits(dMCC, d.MCC)
	e.text(dAcquirer, d.Acquirer)
	e.text(dIssuerID, d.IssuerID)
	e.text(dIssuerInst, d.IssuerInstitution)
	e.text(dProduct, string(d.Product))
	e.text(dCard, d.CardNumber.Clear())
	e.flag(dStandIn, flagOf(d.StandIn))
	if d.Reversal {
		e.digits(dOrigSTAN, d.OriginalSTAN)
		e.digits(dOrigTransTim, d.OriginalTransmissionTime)
	}
	e.digits(dIssSTAN, d.IssuerSTAN)
	e.digits(dIssTransTime, d.IssuerTransmissionTime)
	return dst
}

// ParseDetail reads and validates a detail record (300 bytes, no newline).
// It checks the record alone; the Reader also checks it against the header
// and the records before it.
func ParseDetail(rec []byte) (Detail, error) {
	if err := checkLength(rec, "detail"); err != nil {
		return Detail{}, err
	}
	dd := decoder{rec: rec, record: "detail"}
	dd.flag(dType, "D")
	d := Detail{
		Seq: dd.num(dSeq), NodeID: dd.text(dNode), JournalSeq: dd.num(dJournalSeq),
		MTI: dd.digits(dMTI, false), ProcessingCode: dd.digits(dProcCode, false),
		Direction: settlement.Direction(dd.flag(dDC, "DC")), Reversal: dd.yesNo(dReversal),
		Amount: iso8583.Amount(dd.num(dAmount)), Currency: dd.digits(dCurrency, false),
		Interchange: iso8583.Amount(dd.num(dInterchange)), SwitchFee: iso8583.Amount(dd.num(dSwitchFee)),
	}
	d.Time = dd.time(dTime)
	d.TransmissionTime, d.STAN = dd.digits(dTransTime, false), dd.digits(dSTAN, false)
	d.RRN, d.AuthCode = dd.text(dRRN), dd.text(dAuthCode)
	d.TerminalID, d.MerchantID, d.MCC = dd.text(dTerminal), dd.text(dMerchant), dd.digits(dMCC, false)
	d.Acquirer, d.IssuerID, d.IssuerInstitution = dd.text(dAcquirer), dd.text(dIssuerID), dd.text(dIssuerInst)
	d.Product, d.CardNumber = bintable.Product(dd.text(dProduct)), iso8583.PAN(dd.text(dCard))
	d.StandIn = dd.yesNo(dStandIn)
	d.OriginalSTAN = dd.digits(dOrigSTAN, true)
	d.OriginalTransmissionTime = dd.digits(dOrigTransTim, true)
	d.IssuerSTAN, d.IssuerTransmissionTime = dd.digits(dIssSTAN, false), dd.digits(dIssTransTime, false)
	dd.reserved(dReserved)
	if dd.err != nil {
		return Detail{}, dd.err
	}
	if err := d.Validate(); err != nil {
		return Detail{}, err
	}
	return d, nil
}

func (d *decoder) time(f field) time.Time {
	s := d.digits(f, false)
	if d.err != nil {
		return time.Time{}
	}
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		d.fail(f, "%q is not a time as YYYYMMDDhhmmss", s)
	}
	return t
}

// Validate checks every field and that the fields agree with each other:
// the debit/credit indicator follows from MTI, processing code and the
// reversal flag, and the original's key is there exactly for a reversal.
func (d *Detail) Validate() error {
	fail := func(f field, format string, args ...any) error { return fieldError("detail", f, format, args...) }
	if d.Seq < 1 || d.Seq > SeqMax {
		return fail(dSeq, "%d: want 1 to %d", d.Seq, SeqMax)
	}
	if d.JournalSeq == 0 {
		return fail(dJournalSeq, "0: journal sequence numbers start at 1")
	}
	if err := d.validateText(); err != nil {
		return err
	}
	for _, m := range [...]struct {
		f   field
		v   iso8583.Amount
		min iso8583.Amount
	}{{dAmount, d.Amount, 1}, {dInterchange, d.Interchange, 0}, {dSwitchFee, d.SwitchFee, 0}} {
		if m.v < m.min || m.v > settlement.AmountMax {
			return fail(m.f, "%d: want %d to %d fen", int64(m.v), int64(m.min), int64(settlement.AmountMax))
		}
	}
	if d.Time.IsZero() || d.Time.Year() < 1 || d.Time.Year() > 9999 || d.Time.Nanosecond() != 0 {
		return fail(dTime, "%v: want a set time in whole seconds, years 0001 to 9999", d.Time)
	}
	switch d.Product {
	case bintable.ProductDebit, bintable.ProductCredit, bintable.ProductTransit:
	default:
		return fail(dProduct, "%q: want debit, credit or transit", d.Product)
	}
	return d.validateKind()
}

func (d *Detail) validateText() error {
	for _, c := range [...]struct {
		f field
		v string
		r settlement.Rule
	}{
		{dNode, d.NodeID, settlement.RuleNodeID}, {dMTI, d.MTI, digitsRule(4)},
		{dProcCode, d.ProcessingCode, digitsRule(6)}, {dCurrency, d.Currency, digitsRule(3)},
		{dTransTime, d.TransmissionTime, settlement.RuleTransmissionTime}, {dSTAN, d.STAN, settlement.RuleSTAN},
		{dRRN, d.RRN, settlement.RuleRRN}, {dAuthCode, d.AuthCode, settlement.RuleAuthCode},
		{dTerminal, d.TerminalID, settlement.RuleTerminalID}, {dMerchant, d.MerchantID, settlement.RuleMerchantID},
		{dMCC, d.MCC, settlement.RuleMCC}, {dAcquirer, d.Acquirer, settlement.RuleInstitution},
		{dIssuerID, d.IssuerID, settlement.RuleIssuerID}, {dIssuerInst, d.IssuerInstitution, settlement.RuleInstitution},
		{dCard, d.CardNumber.Clear(), settlement.RuleCardNumber},
		{dIssSTAN, d.IssuerSTAN, settlement.RuleSTAN},
		{dIssTransTime, d.IssuerTransmissionTime, settlement.RuleTransmissionTime},
	} {
		if err := c.r.Check(c.f.name, c.v); err != nil {
			// The message names the value; a card number's is masked.
			if c.f == dCard {
				return fieldError("detail", c.f, "%s: want 12 to 19 digits", d.CardNumber)
			}
			return fieldError("detail", c.f, "%v", err)
		}
	}
	return nil
}

func digitsRule(n int) settlement.Rule { return settlement.Rule{Min: n, Max: n, Digits: true} }

// validateKind checks that MTI, processing code, reversal flag, indicator
// and original key tell one consistent story, with the rules of package
// settlement.
func (d *Detail) validateKind() error {
	fail := func(f field, format string, args ...any) error { return fieldError("detail", f, format, args...) }
	reversal, ok := settlement.ClassifyMTI(d.MTI)
	if !ok {
		return fail(dMTI, "%s does not settle", d.MTI)
	}
	dir, ok := settlement.DirectionOf(d.ProcessingCode)
	if !ok {
		return fail(dProcCode, "%s does not settle", d.ProcessingCode)
	}
	if reversal != d.Reversal {
		return fail(dReversal, "%c for MTI %s", flagOf(d.Reversal), d.MTI)
	}
	if reversal {
		dir = dir.Opposite()
	}
	if d.Direction != dir {
		return fail(dDC, "%q for MTI %s code %s: want %q", string(rune(d.Direction)), d.MTI, d.ProcessingCode, string(rune(dir)))
	}
	if !d.Reversal {
		if d.OriginalSTAN != "" {
			return fail(dOrigSTAN, "%q on a record that is not a reversal: want spaces", d.OriginalSTAN)
		}
		if d.OriginalTransmissionTime != "" {
			return fail(dOrigTransTim, "%q on a record that is not a reversal: want spaces", d.OriginalTransmissionTime)
		}
		return nil
	}
	if err := settlement.RuleSTAN.Check(dOrigSTAN.name, d.OriginalSTAN); err != nil {
		return fail(dOrigSTAN, "%v", err)
	}
	if err := settlement.RuleTransmissionTime.Check(dOrigTransTim.name, d.OriginalTransmissionTime); err != nil {
		return fail(dOrigTransTim, "%v", err)
	}
	if d.OriginalSTAN == d.STAN && d.OriginalTransmissionTime == d.TransmissionTime {
		return fail(dOrigSTAN, "a reversal cannot reverse itself")
	}
	return nil
}
