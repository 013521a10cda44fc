package netting

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/settlement"
	"github.com/tapswitch/tapswitch/settlement/fees"
)

// volumeMax bounds a day: the sum over all transactions of amount,
// interchange and both switch fees. Every column of every position is at
// most this in magnitude, so it fits the 18-digit totals of the clearing
// trailer and int64 arithmetic never overflows.
const volumeMax = 999_999_999_999_999_999

// Member names an institution in the reports.
type Member struct {
	Institution string // institution ID, as in configs/issuers.yaml
	Name        string // its short ID, e.g. ICBC
}

// SwitchName is the name the network's own position is reported under.
const SwitchName = "SWITCH"

// Position is one member's day. Amounts are in fen.
type Position struct {
	Institution         string         `json:"institution"`
	Member              string         `json:"member"`
	IssuerCount         int64          `json:"issuer_count"`
	IssuerDebits        iso8583.Amount `json:"issuer_debits_fen"`
	IssuerCredits       iso8583.Amount `json:"issuer_credits_fen"`
	AcquirerCount       int64          `json:"acquirer_count"`
	AcquirerDebits      iso8583.Amount `json:"acquirer_debits_fen"`
	AcquirerCredits     iso8583.Amount `json:"acquirer_credits_fen"`
	InterchangePaid     iso8583.Amount `json:"interchange_paid_fen"`
	InterchangeReceived iso8583.Amount `json:"interchange_received_fen"`
	SwitchFeesPaid      iso8583.Amount `json:"switch_fees_paid_fen"`
	SwitchFeesReceived  iso8583.Amount `json:"switch_fees_received_fen"`
	// Transit fares (AddTransit), on a day settled with tap files only:
	// paid for this operator's cards tapped on other operators' gates,
	// received for other operators' cards tapped on its gates.
	TransitTapsPaid     int64          `json:"transit_taps_paid,omitempty"`
	TransitPaid         iso8583.Amount `json:"transit_paid_fen,omitempty"`
	TransitTapsReceived int64          `json:"transit_taps_received,omitempty"`
	TransitReceived     iso8583.Amount `json:"transit_received_fen,omitempty"`
	Net                 iso8583.Amount `json:"net_fen"`
}

// Report is the day's net settlement.
type Report struct {
	BusinessDay  string `json:"business_day"`
	Currency     string `json:"currency"`
	Switch       string `json:"switch_institution"`
	Transactions int64  `json:"transactions"`
	// Transit is set on a day settled with tap files (EnableTransit):
	// the text report then has its transit table, even on a day without
	// a tap between cities. TransitTaps counts the taps netted.
	Transit     bool       `json:"transit,omitempty"`
	TransitTaps int64      `json:"transit_taps,omitempty"`
	Positions   []Position `json:"positions"` // sorted by institution ID
	Total       Position   `json:"total"`     // column sums; Net is always 0
}

// Netting accumulates one business day's transactions, one at a time, so a
// day of any size is netted in memory proportional to the number of members.
type Netting struct {
	day, switchInst string
	pos             map[string]*Position
	txns            int64
	volume          int64
	transit         bool
	transitTaps     int64
}

// New starts the netting of day for the switch institution switchInst. Every
// member listed gets a position, idle or not; an institution met in a
// transaction but not listed gets one too, with no name.
func New(day, switchInst string, members []Member) (*Netting, error) {
	if !settlement.ValidDay(day) {
		return nil, fmt.Errorf("netting: business day %q: want YYYYMMDD", day)
	}
	if err := settlement.RuleInstitution.Check("switch institution", switchInst); err != nil {
		return nil, fmt.Errorf("netting: %w", err)
	}
	n := &Netting{day: day, switchInst: switchInst, pos: make(map[string]*Position)}
	n.pos[switchInst] = &Position{Institution: switchInst, Member: SwitchName}
	for _, m := range members {
		if err := settlement.RuleInstitution.Check("member institution", m.Institution); err != nil {
			return nil, fmt.Errorf("netting: %s: %w", m.Name, err)
		}
		if _, dup := n.pos[m.Institution]; dup {
			return nil, fmt.Errorf("netting: institution %s listed twice (or is the switch's)", m.Institution)
		}
		n.pos[m.Institution] = &Position{Institution: m.Institution, Member: m.Name}
	}
	return n, nil
}

func (n *Netting) position(inst string) *Position {
	p, ok := n.pos[inst]
	if !ok {
		p = &Position{Institution: inst}
		n.pos[inst] = p
	}
	return p
}

// Add nets one transaction with its fees. An error leaves the netting as it
// was.
func (n *Netting) Add(t *settlement.Txn, f fees.Fees) error {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("netting: %w", err)
	}
	if t.BusinessDay != n.day {
		return fmt.Errorf("netting: %s is of business day %s, not %s", t.ID(), t.BusinessDay, n.day)
	}
	if t.Acquirer == n.switchInst || t.IssuerInstitution == n.switchInst {
		return fmt.Errorf("netting: %s names the switch's institution %s as a bank", t.ID(), n.switchInst)
	}
	if f.Interchange < 0 || f.Interchange > settlement.AmountMax || f.Switch < 0 || f.Switch > settlement.AmountMax {
		return fmt.Errorf("netting: %s: fees %d and %d: want 0 to %d fen", t.ID(), int64(f.Interchange), int64(f.Switch), int64(settlement.AmountMax))
	}
	v := int64(t.Amount + f.Interchange + 2*f.Switch)
	if n.volume > volumeMax-v {
		return fmt.Errorf("netting: %s: the day's volume would exceed %d fen", t.ID(), int64(volumeMax))
	}
	n.volume += v
	n.txns++
	n.apply(t, f)
	return nil
}

// apply moves the money of one transaction, as the package doc's table says.
func (n *Netting) apply(t *settlement.Txn, f fees.Fees) {
	iss, acq, sw := n.position(t.IssuerInstitution), n.position(t.Acquirer), n.position(n.switchInst)
	iss.IssuerCount++
	acq.AcquirerCount++
	if t.Direction == settlement.Debit {
		iss.IssuerDebits += t.Amount
		acq.AcquirerDebits += t.Amount
		acq.InterchangePaid += f.Interchange
		iss.InterchangeReceived += f.Interchange
	} else {
		iss.IssuerCredits += t.Amount
		acq.AcquirerCredits += t.Amount
		iss.InterchangePaid += f.Interchange
		acq.InterchangeReceived += f.Interchange
	}
	m := iso8583.Amount(t.Direction.Sign())
	iss.Net += -m*t.Amount + m*f.Interchange
	acq.Net += m*t.Amount - m*f.Interchange
	s := f.Switch
	if t.Reversal {
		s = -s
	}
	iss.SwitchFeesPaid += s
	acq.SwitchFeesPaid += s
	sw.SwitchFeesReceived += 2 * s
	iss.Net -= s
	acq.Net -= s
	sw.Net += 2 * s
}

// EnableTransit marks the day as settled with tap files: the reports show
// the transit columns, zero or not.
func (n *Netting) EnableTransit() { n.transit = true }

// AddTransit nets the fares of taps cards of debtor's made on creditor's
// gates (docs/transit.md, "Inter-city clearing"): debtor holds the purses'
// money and pays creditor, who carried the passengers. No fee is charged
// on a fare. Both are institutions, neither the switch's, and different:
// a tap on the card's own operator's gates moves no money between members.
// An error leaves the netting as it was.
func (n *Netting) AddTransit(debtor, creditor string, amount iso8583.Amount, taps int64) error {
	switch {
	case !n.transit:
		return fmt.Errorf("netting: transit fares on a day not settled with tap files (EnableTransit)")
	case debtor == creditor:
		return fmt.Errorf("netting: transit fares from %s to itself", debtor)
	case debtor == n.switchInst || creditor == n.switchInst:
		return fmt.Errorf("netting: transit fares name the switch's institution %s as an operator", n.switchInst)
	case amount <= 0 || taps <= 0 || int64(amount) < taps:
		return fmt.Errorf("netting: transit fares %s to %s: %d fen over %d taps: want at least a fen a tap", debtor, creditor, int64(amount), taps)
	}
	for _, inst := range []string{debtor, creditor} {
		if err := settlement.RuleInstitution.Check("transit operator institution", inst); err != nil {
			return fmt.Errorf("netting: %w", err)
		}
	}
	if n.volume > volumeMax-int64(amount) {
		return fmt.Errorf("netting: transit fares %s to %s: the day's volume would exceed %d fen", debtor, creditor, int64(volumeMax))
	}
	n.volume += int64(amount)
	n.transitTaps += taps
	d, c := n.position(debtor), n.position(creditor)
	d.TransitTapsPaid += taps
	d.TransitPaid += amount
	d.Net -= amount
	c.TransitTapsReceived += taps
	c.TransitReceived += amount
	c.Net += amount
	return nil
}

// Report returns the positions so far, sorted by institution ID, with their
// totals. It panics if the positions do not balance: that is a bug.
func (n *Netting) Report() Report {
	r := Report{BusinessDay: n.day, Currency: settlement.Currency, Switch: n.switchInst, Transactions: n.txns,
		Transit: n.transit, TransitTaps: n.transitTaps}
	for _, p := range n.pos {
		r.Positions = append(r.Positions, *p)
	}
	slices.SortFunc(r.Positions, func(a, b Position) int { return cmp.Compare(a.Institution, b.Institution) })
	r.Total = sum(r.Positions)
	mustBalance(r)
	return r
}

func sum(ps []Position) Position {
	t := Position{Institution: "total"}
	for _, p := range ps {
		t.IssuerCount += p.IssuerCount
		t.IssuerDebits += p.IssuerDebits
		t.IssuerCredits += p.IssuerCredits
		t.AcquirerCount += p.AcquirerCount
		t.AcquirerDebits += p.AcquirerDebits
		t.AcquirerCredits += p.AcquirerCredits
		t.InterchangePaid += p.InterchangePaid
		t.InterchangeReceived += p.InterchangeReceived
		t.SwitchFeesPaid += p.SwitchFeesPaid
		t.SwitchFeesReceived += p.SwitchFeesReceived
		t.TransitTapsPaid += p.TransitTapsPaid
		t.TransitPaid += p.TransitPaid
		t.TransitTapsReceived += p.TransitTapsReceived
		t.TransitReceived += p.TransitReceived
		t.Net += p.Net
	}
	return t
}

// mustBalance asserts the day's invariants: net positions sum to zero, and
// every flow was paid exactly as much as it was received. It also recomputes
// each member's net from its columns, so a column and the net cannot drift.
func mustBalance(r Report) {
	t := r.Total
	for _, c := range [...]struct {
		what string
		a, b iso8583.Amount
	}{
		{"net positions sum", t.Net, 0},
		{"issuer debits vs acquirer debits", t.IssuerDebits, t.AcquirerDebits},
		{"issuer credits vs acquirer credits", t.IssuerCredits, t.AcquirerCredits},
		{"interchange paid vs received", t.InterchangePaid, t.InterchangeReceived},
		{"switch fees paid vs received", t.SwitchFeesPaid, t.SwitchFeesReceived},
		{"transit fares paid vs received", t.TransitPaid, t.TransitReceived},
		{"transit taps paid vs received", iso8583.Amount(t.TransitTapsPaid), iso8583.Amount(t.TransitTapsReceived)},
		{"transit taps paid vs netted", iso8583.Amount(t.TransitTapsPaid), iso8583.Amount(r.TransitTaps)},
	} {
		if c.a != c.b {
			panic(fmt.Sprintf("netting: day %s does not balance: %s: %d != %d fen", r.BusinessDay, c.what, int64(c.a), int64(c.b)))
		}
	}
	if t.IssuerCount != t.AcquirerCount || t.IssuerCount != r.Transactions {
		panic(fmt.Sprintf("netting: day %s: %d transactions, counted %d as issuer and %d as acquirer",
			r.BusinessDay, r.Transactions, t.IssuerCount, t.AcquirerCount))
	}
	for _, p := range r.Positions {
		net := -p.IssuerDebits + p.IssuerCredits + p.AcquirerDebits - p.AcquirerCredits +
			p.InterchangeReceived - p.InterchangePaid - p.SwitchFeesPaid + p.SwitchFeesReceived -
			p.TransitPaid + p.TransitReceived
		if net != p.Net {
			panic(fmt.Sprintf("netting: day %s: %s's columns give a net of %d fen, its position says %d",
				r.BusinessDay, p.Institution, int64(net), int64(p.Net)))
		}
	}
}
