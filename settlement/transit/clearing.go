package transit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// The transit clearing file: what one operator is told of a business day's
// cleared taps that concern it, beside the bank clearing files. One record
// per line, fields separated by '|', every line ended by '\n', numbers in
// decimal without sign or leading zeros (docs/clearing-format.md, "Transit
// clearing file"):
//
//	H|TCLR1|<day>|<operator 4>|<member ID>|<institution>|<switch institution>|156
//	D|<seq>|<kind>|<card>|<amount>|<counter>|<balance after>|<gate 12>|<time>|<TAC>|<card operator>|<gate operator>|<tap file>|<line>
//	...
//	Z|<records>|<home taps>|<home fen>|<taps paid>|<fen paid>|<taps received>|<fen received>|<SHA-256 hex of every byte before the Z line>
//
// kind is H (the operator's card on its own gates: no money moves), P (its
// card on another operator's gates: it pays the fare) or R (another
// operator's card on its gates: it is paid the fare). Records are in
// ingestion order: card, then counter.

const (
	clearingMagic = "TCLR1"
	currencyCNY   = "156"
)

// Kinds of a transit clearing record, seen from the file's operator.
const (
	KindHome     = 'H'
	KindPaid     = 'P'
	KindReceived = 'R'
)

// ClearingHeader names the operator a transit clearing file is for.
type ClearingHeader struct {
	Day               string // YYYYMMDD
	Operator          string // operator code
	Member            string // its member ID, e.g. BJT
	Institution       string // its institution ID
	SwitchInstitution string
}

// ClearingTotals is a transit clearing file's trailer.
type ClearingTotals struct {
	Records                   int
	HomeTaps, HomeFen         int64
	PaidTaps, PaidFen         int64
	ReceivedTaps, ReceivedFen int64
}

// ClearingRecord is one detail line.
type ClearingRecord struct {
	Kind byte
	Cleared
	GateOperator string
}

// TapFileNameOK reports whether a tap file's name can be written in the
// clearing and rejection files: no separator, no line end, no path.
var TapFileNameOK = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`).MatchString

var memberPattern = regexp.MustCompile(`^[A-Za-z0-9]{1,12}$`)

// kindOf is what cleared tap c is to operator op, false if nothing.
func kindOf(op string, c *Cleared) (byte, bool) {
	gate := GateOperator(c.Gate)
	switch {
	case c.Operator == op && gate == op:
		return KindHome, true
	case c.Operator == op:
		return KindPaid, true
	case gate == op:
		return KindReceived, true
	}
	return 0, false
}

// WriteClearing renders operator h.Operator's clearing file from the day's
// cleared taps (every operator's: those that do not concern it are left
// out).
func WriteClearing(h ClearingHeader, cleared []Cleared) ([]byte, ClearingTotals, error) {
	var t ClearingTotals
	if !ValidOperator(h.Operator) || !memberPattern.MatchString(h.Member) || !digitsN(h.Institution, 1, 11) ||
		!digitsN(h.SwitchInstitution, 1, 11) || !validDay(h.Day) {
		return nil, t, fmt.Errorf("transit clearing: header %+v malformed", h)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "H|%s|%s|%s|%s|%s|%s|%s\n", clearingMagic, h.Day, h.Operator, h.Member, h.Institution, h.SwitchInstitution, currencyCNY)
	for i := range cleared {
		c := &cleared[i]
		kind, ok := kindOf(h.Operator, c)
		if !ok {
			continue
		}
		if c.Day != h.Day || !TapFileNameOK(c.File) || c.Validate() != nil {
			return nil, t, fmt.Errorf("transit clearing: tap %s:%d of day %s cannot be written in day %s's file", c.File, c.Line, c.Day, h.Day)
		}
		t.Records++
		switch kind {
		case KindHome:
			t.HomeTaps++
			t.HomeFen += c.Amount
		case KindPaid:
			t.PaidTaps++
			t.PaidFen += c.Amount
		case KindReceived:
			t.ReceivedTaps++
			t.ReceivedFen += c.Amount
		}
		fmt.Fprintf(&b, "D|%d|%c|%s|%d|%d|%d|%s|%s|%s|%s|%s|%s|%d\n", t.Records, kind, c.Card, c.Amount, c.Counter,
			c.BalanceAfter, c.Gate, c.Time.UTC().Format(tapTimeLayout), hex.EncodeToString(c.TAC[:]),
			c.Operator, GateOperator(c.Gate), c.File, c.Line)
	}
	sum := sha256.Sum256(b.Bytes())
	fmt.Fprintf(&b, "Z|%d|%d|%d|%d|%d|%d|%d|%s\n", t.Records, t.HomeTaps, t.HomeFen, t.PaidTaps, t.PaidFen,
		t.ReceivedTaps, t.ReceivedFen, hex.EncodeToString(sum[:]))
	return b.Bytes(), t, nil
}

func digitsN(s string, min, max int) bool { return len(s) >= min && len(s) <= max && digits(s) }

func validDay(s string) bool {
	h := Header{Operator: "0000", Batch: "000000000000", Day: s}
	return h.validate() == nil
}

// ReadClearing parses a transit clearing file and checks it whole: the
// header, every record, the trailer's counts and totals recomputed, and
// the digest.
func ReadClearing(data []byte) (ClearingHeader, []ClearingRecord, ClearingTotals, error) {
	var h ClearingHeader
	var t ClearingTotals
	bad := func(line int, what string) error {
		return fmt.Errorf("transit clearing line %d: %s", line, what)
	}
	if len(data) == 0 || data[len(data)-1] != '\n' {
		return h, nil, t, bad(0, "empty or not ended by a newline")
	}
	lines := strings.Split(string(data[:len(data)-1]), "\n")
	if len(lines) < 2 {
		return h, nil, t, bad(1, "no trailer")
	}
	hf := strings.Split(lines[0], "|")
	if len(hf) != 8 || hf[0] != "H" || hf[1] != clearingMagic || hf[7] != currencyCNY {
		return h, nil, t, bad(1, "bad header")
	}
	h = ClearingHeader{Day: hf[2], Operator: hf[3], Member: hf[4], Institution: hf[5], SwitchInstitution: hf[6]}
	var recs []ClearingRecord
	for i, l := range lines[1 : len(lines)-1] {
		rec, err := parseClearingRecord(l, i+1)
		if err != nil {
			return h, nil, t, bad(i+2, err.Error())
		}
		rec.Day = h.Day
		recs = append(recs, rec)
	}
	again, want, err := WriteClearing(h, clearedOf(recs))
	if err != nil {
		return h, nil, t, err
	}
	if !bytes.Equal(again, data) {
		return h, nil, t, bad(len(lines), "trailer, digest or a record's kind does not match the records")
	}
	return h, recs, want, nil
}

func clearedOf(recs []ClearingRecord) []Cleared {
	out := make([]Cleared, len(recs))
	for i, r := range recs {
		out[i] = r.Cleared
	}
	return out
}

func parseClearingRecord(l string, seq int) (ClearingRecord, error) {
	f := strings.Split(l, "|")
	if len(f) != 14 || f[0] != "D" || f[1] != strconv.Itoa(seq) || len(f[2]) != 1 {
		return ClearingRecord{}, fmt.Errorf("bad record")
	}
	tap, ok := parseTap(strings.Join([]string{"T", f[3], f[4], f[5], f[6], f[7], f[8], f[9]}, "|"))
	line, lok := number(f[13], tapFileRecordsMax+2)
	if !ok || !lok || !ValidOperator(f[10]) || f[11] != GateOperator(tap.Gate) || !TapFileNameOK(f[12]) {
		return ClearingRecord{}, fmt.Errorf("bad record")
	}
	return ClearingRecord{Kind: f[2][0], Cleared: Cleared{Tap: tap, File: f[12], Line: int(line), Operator: f[10]}, GateOperator: f[11]}, nil
}

// WriteRejections renders the rejections of one operator's tap files for
// a day: a comment line, then FILE|LINE|CARD|REASON per rejection, line 0
// for the whole file, card empty for a record that did not parse.
func WriteRejections(day, operator, member string, rejections []Rejection) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# tapswitch transit rejections, business day %s, operator %s (%s): FILE|LINE|CARD|REASON; line 0 is the whole file\n", day, operator, member)
	for _, x := range rejections {
		fmt.Fprintf(&b, "%s|%d|%s|%s\n", x.File, x.Line, x.Card, x.Reason)
	}
	return b.Bytes()
}

// BlacklistRequest renders the cards an ingestion blacklisted as the body
// of the switch's POST /admin/transit/blacklist, {"cards": [...],
// "reason": "clone"}: the switch adds them to the next version of the
// blacklist file the gates load (blacklist.go). Cards in the order given
// (Result.Blacklist is sorted); never null, so an empty day is "[]".
func BlacklistRequest(cards []string) []byte {
	body := struct {
		Cards  []string        `json:"cards"`
		Reason BlacklistReason `json:"reason"`
	}{append([]string{}, cards...), ReasonClone}
	out, err := json.MarshalIndent(body, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("transit: marshal blacklist request: %v", err)) // strings only: cannot fail
	}
	return append(out, '\n')
}
