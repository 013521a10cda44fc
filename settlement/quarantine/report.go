package quarantine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/settlement"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// exceptionsMax bounds the report: every record with a fault of its own
// (RecordsMax) and as many again set aside with them as pairs.
const exceptionsMax = 2 * RecordsMax

// Exception is one quarantined record. It holds the token masked and never
// the PAN.
type Exception struct {
	NodeID           string         `json:"node_id"`
	Seq              uint64         `json:"seq"`
	MTI              string         `json:"mti"`
	ProcessingCode   string         `json:"processing_code"`
	Direction        string         `json:"direction"` // D or C, as in the clearing record
	Amount           iso8583.Amount `json:"amount_fen"`
	Currency         string         `json:"currency"`
	TerminalID       string         `json:"terminal_id"`
	STAN             string         `json:"stan"`
	TransmissionTime string         `json:"transmission_time"`
	RRN              string         `json:"rrn"`
	MerchantID       string         `json:"merchant_id"`
	Acquirer         string         `json:"acquirer"`
	IssuerID         string         `json:"issuer_id"`
	Token            string         `json:"token_masked"`
	Reason           Reason         `json:"reason"`
	Detail           string         `json:"detail"`
}

// Report is a day's exceptions: the records quarantined, in the day's order.
type Report struct {
	BusinessDay string         `json:"business_day"`
	Currency    string         `json:"currency"`
	Switch      string         `json:"switch_institution"`
	Count       int            `json:"count"`
	Amount      iso8583.Amount `json:"amount_fen"` // gross: the sum of the amounts, whatever their direction
	Exceptions  []Exception    `json:"exceptions"`
}

// NewReport starts the report of day for the network's institution.
func NewReport(day, switchInst string) *Report {
	return &Report{BusinessDay: day, Currency: settlement.Currency, Switch: switchInst, Exceptions: []Exception{}}
}

// Add lists the settling entry e, quarantined for f.
func (r *Report) Add(e *journal.Entry, f *Fault) error {
	if len(r.Exceptions) >= exceptionsMax {
		return fmt.Errorf("quarantine: more than %d records of day %s set aside", exceptionsMax, r.BusinessDay)
	}
	dir, _ := settlement.DirectionOf(e.ProcessingCode)
	if isReversal(e) {
		dir = dir.Opposite()
	}
	r.Exceptions = append(r.Exceptions, Exception{
		NodeID: e.NodeID, Seq: e.Seq, MTI: e.MTI, ProcessingCode: e.ProcessingCode, Direction: dir.String(),
		Amount: e.Amount, Currency: e.Currency, TerminalID: strings.TrimRight(e.TerminalID, " "),
		STAN: e.STAN, TransmissionTime: e.TransmissionTime, RRN: strings.TrimRight(e.RRN, " "),
		MerchantID: strings.TrimRight(e.MerchantID, " "), Acquirer: e.Acquirer, IssuerID: e.IssuerID,
		Token: iso8583.MaskPAN(e.Token), Reason: f.Reason, Detail: f.Detail,
	})
	r.Count++
	r.Amount += e.Amount
	return nil
}

// column is one column of the text report.
type column struct {
	head  string
	width int // negative: left-aligned
	cell  func(x *Exception) string
}

var columns = []column{
	{"node", -8, func(x *Exception) string { return x.NodeID }},
	{"seq", 8, func(x *Exception) string { return fmt.Sprint(x.Seq) }},
	{"mti", 4, func(x *Exception) string { return x.MTI }},
	{"proc", 6, func(x *Exception) string { return x.ProcessingCode }},
	{"d", 1, func(x *Exception) string { return x.Direction }},
	{"amount", 15, func(x *Exception) string { return x.Amount.String() }},
	{"terminal", -8, func(x *Exception) string { return x.TerminalID }},
	{"stan", 6, func(x *Exception) string { return x.STAN }},
	{"rrn", -12, func(x *Exception) string { return x.RRN }},
	{"acquirer", -11, func(x *Exception) string { return x.Acquirer }},
	{"issuer", -8, func(x *Exception) string { return x.IssuerID }},
	{"token", -19, func(x *Exception) string { return x.Token }},
	{"reason", -20, func(x *Exception) string { return string(x.Reason) }},
	{"detail", 0, func(x *Exception) string { return x.Detail }},
}

// Text renders the report for people: one line per record, amounts in
// yuan, fixed columns (a longer value widens its line).
func (r Report) Text() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "TAPSWITCH SETTLEMENT EXCEPTIONS  business day %s  currency %s  switch %s\n",
		r.BusinessDay, r.Currency, r.Switch)
	fmt.Fprintf(&b, "%s quarantined, %s yuan gross: left out of the clearing files and the\n", Records(r.Count), r.Amount)
	b.WriteString("net positions, and settled by no one until resolved with the members named.\n\n")
	row := func(cell func(c column) string) {
		var line strings.Builder
		for i, c := range columns {
			if i > 0 {
				line.WriteByte(' ')
			}
			fmt.Fprintf(&line, "%*s", c.width, cell(c))
		}
		b.WriteString(strings.TrimRight(line.String(), " "))
		b.WriteByte('\n')
	}
	row(func(c column) string { return c.head })
	row(func(c column) string { return strings.Repeat("-", max(len(c.head), abs(c.width))) })
	for i := range r.Exceptions {
		row(func(c column) string { return c.cell(&r.Exceptions[i]) })
	}
	return b.Bytes()
}

// Records says "1 record" or "n records".
func Records(n int) string {
	if n == 1 {
		return "1 record"
	}
	return fmt.Sprintf("%d records", n)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// JSON renders the report for programs: amounts in fen, fields in a fixed
// order, two-space indented, ending in a newline.
func (r Report) JSON() []byte {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		// Strings and integers only: marshalling cannot fail.
		panic(fmt.Sprintf("quarantine: marshal report: %v", err))
	}
	return append(b, '\n')
}
