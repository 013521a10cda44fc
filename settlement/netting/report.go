package netting

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tapswitch/tapswitch/iso8583"
)

// column is one column of a text table: a heading and how a position fills it.
type column struct {
	head  string
	width int // negative: left-aligned
	cell  func(p *Position) string
}

func amountCol(head string, f func(p *Position) iso8583.Amount) column {
	// 18 characters hold -9999999999999.99 and a space; a larger amount
	// widens its row rather than losing digits.
	return column{head, 18, func(p *Position) string { return f(p).String() }}
}

func countCol(head string, f func(p *Position) int64) column {
	return column{head, 9, func(p *Position) string { return fmt.Sprint(f(p)) }}
}

var idCols = []column{
	{"institution", -11, func(p *Position) string { return p.Institution }},
	{"member", -8, func(p *Position) string { return p.Member }},
}

// The two tables of the text report. One table of all columns would be over
// 200 characters wide; two fit a terminal and a printed page.
var (
	grossCols = append(append([]column{}, idCols...),
		countCol("iss txns", func(p *Position) int64 { return p.IssuerCount }),
		amountCol("issuer debits", func(p *Position) iso8583.Amount { return p.IssuerDebits }),
		amountCol("issuer credits", func(p *Position) iso8583.Amount { return p.IssuerCredits }),
		countCol("acq txns", func(p *Position) int64 { return p.AcquirerCount }),
		amountCol("acquirer debits", func(p *Position) iso8583.Amount { return p.AcquirerDebits }),
		amountCol("acquirer credits", func(p *Position) iso8583.Amount { return p.AcquirerCredits }),
	)
	netCols = append(append([]column{}, idCols...),
		amountCol("interchange paid", func(p *Position) iso8583.Amount { return p.InterchangePaid }),
		amountCol("interchange recv", func(p *Position) iso8583.Amount { return p.InterchangeReceived }),
		amountCol("switch fees paid", func(p *Position) iso8583.Amount { return p.SwitchFeesPaid }),
		amountCol("switch fees recv", func(p *Position) iso8583.Amount { return p.SwitchFeesReceived }),
		amountCol("net position", func(p *Position) iso8583.Amount { return p.Net }),
	)
	transitCols = append(append([]column{}, idCols...),
		countCol("taps paid", func(p *Position) int64 { return p.TransitTapsPaid }),
		amountCol("fares paid", func(p *Position) iso8583.Amount { return p.TransitPaid }),
		countCol("taps recv", func(p *Position) int64 { return p.TransitTapsReceived }),
		amountCol("fares recv", func(p *Position) iso8583.Amount { return p.TransitReceived }),
	)
)

// Text renders the report for people: fixed columns, amounts in yuan with
// two decimals, positions in institution order, a total row per table.
func (r Report) Text() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "TAPSWITCH NET SETTLEMENT  business day %s  currency %s  switch %s\n",
		r.BusinessDay, r.Currency, r.Switch)
	fmt.Fprintf(&b, "%d transactions settled. Amounts in yuan. A positive net position is owed\n", r.Transactions)
	b.WriteString("to the member by the network, a negative one is owed by the member.\n")
	b.WriteString("\nGROSS AMOUNTS (debit: cardholder debited; credit: cardholder credited)\n")
	r.table(&b, grossCols)
	if r.Transit {
		fmt.Fprintf(&b, "\nTRANSIT FARES BETWEEN OPERATORS (%d taps; a card's operator pays the gate's operator)\n", r.TransitTaps)
		r.table(&b, transitCols)
	}
	b.WriteString("\nFEES AND NET POSITIONS (switch fees net of refunds on reversals)\n")
	r.table(&b, netCols)
	return b.Bytes()
}

func (r Report) table(b *bytes.Buffer, cols []column) {
	row := func(cell func(c column) string) {
		var line strings.Builder
		for i, c := range cols {
			if i > 0 {
				line.WriteByte(' ')
			}
			fmt.Fprintf(&line, "%*s", c.width, cell(c))
		}
		b.WriteString(strings.TrimRight(line.String(), " "))
		b.WriteByte('\n')
	}
	row(func(c column) string { return c.head })
	row(func(c column) string { return strings.Repeat("-", abs(c.width)) })
	for i := range r.Positions {
		row(func(c column) string { return c.cell(&r.Positions[i]) })
	}
	row(func(c column) string { return strings.Repeat("-", abs(c.width)) })
	row(func(c column) string { return c.cell(&r.Total) })
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// JSON renders the report for programs: amounts as integers in fen, the
// fields in a fixed order, two-space indented, ending in a newline.
func (r Report) JSON() []byte {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		// Strings and integers only: marshalling cannot fail.
		panic(fmt.Sprintf("netting: marshal report: %v", err))
	}
	return append(b, '\n')
}
