package fees

import (
	"bytes"
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/settlement"
)

// BpsMax is 100 %: no fee may exceed the amount it is taken from.
const BpsMax = 10_000

// Fees are what one transaction costs, in fen. Both are magnitudes; which
// way they flow follows from the transaction (see the package doc).
type Fees struct {
	Interchange iso8583.Amount // between acquirer and issuer
	Switch      iso8583.Amount // paid by the issuer and by the acquirer, each
}

// ApplyBps applies a rate to an amount with the package's one rounding rule,
// half up on the fen. amount must be 0 to settlement.AmountMax and bps 0 to
// BpsMax; the callers check both, so anything else is a bug.
func ApplyBps(amount iso8583.Amount, bps int64) iso8583.Amount {
	if amount < 0 || amount > settlement.AmountMax || bps < 0 || bps > BpsMax {
		panic(fmt.Sprintf("fees: ApplyBps(%d, %d) out of range", int64(amount), bps))
	}
	return (amount*iso8583.Amount(bps) + 5000) / 10000
}

// Rate is an interchange rate.
type Rate struct {
	Bps    int64
	Cap    iso8583.Amount // the most one transaction pays; only if Capped
	Capped bool
}

// Apply returns the fee on amount: the rate rounded half up, then capped.
func (r Rate) Apply(amount iso8583.Amount) iso8583.Amount {
	fee := ApplyBps(amount, r.Bps)
	if r.Capped && fee > r.Cap {
		fee = r.Cap
	}
	return fee
}

type mccKey struct {
	product bintable.Product
	mcc     string
}

// Schedule is a validated fee schedule. Build it with Parse; it is
// immutable afterwards.
type Schedule struct {
	products  map[bintable.Product]Rate
	byMCC     map[mccKey]Rate
	switchBps int64
	switchMin iso8583.Amount
}

// Interchange returns the interchange rate for a product and MCC.
func (s *Schedule) Interchange(p bintable.Product, mcc string) (Rate, bool) {
	if r, ok := s.byMCC[mccKey{p, mcc}]; ok {
		return r, true
	}
	r, ok := s.products[p]
	return r, ok
}

// SwitchFee returns the switch fee one party pays on amount.
func (s *Schedule) SwitchFee(amount iso8583.Amount) iso8583.Amount {
	return max(ApplyBps(amount, s.switchBps), s.switchMin)
}

// For prices a transaction. The fees of a reversal are those of its
// original (same amount, product and MCC); the direction undoes them.
func (s *Schedule) For(t *settlement.Txn) (Fees, error) {
	if t.Amount < 0 || t.Amount > settlement.AmountMax {
		return Fees{}, fmt.Errorf("fees: %s: amount %d out of range", t.ID(), int64(t.Amount))
	}
	r, ok := s.Interchange(t.Product, t.MCC)
	if !ok {
		return Fees{}, fmt.Errorf("fees: %s: no interchange rate for product %q", t.ID(), t.Product)
	}
	return Fees{Interchange: r.Apply(t.Amount), Switch: s.SwitchFee(t.Amount)}, nil
}

// rateDoc is one rate as written in fees.yaml. Pointers tell a missing
// field from a zero one: a rate must be stated, a cap may be left out.
type rateDoc struct {
	Product string `yaml:"product"`
	MCC     string `yaml:"mcc"`
	Bps     *int64 `yaml:"bps"`
	CapFen  *int64 `yaml:"cap_fen"`
}

type scheduleDoc struct {
	Interchange    map[string]rateDoc `yaml:"interchange"`
	InterchangeMCC []rateDoc          `yaml:"interchange_mcc"`
	SwitchFee      *struct {
		Bps    *int64 `yaml:"bps"`
		MinFen *int64 `yaml:"min_fen"`
	} `yaml:"switch_fee"`
}

// products are the card products every schedule must price.
var products = []bintable.Product{bintable.ProductDebit, bintable.ProductCredit, bintable.ProductTransit}

// Parse reads and validates a fees.yaml document: every product priced,
// rates 0 to 10000 bps, caps and the minimum not negative, MCCs of 4 digits,
// no override listed twice, no unknown field (a misspelt cap_fen would
// otherwise silently mean no cap).
func Parse(doc []byte) (*Schedule, error) {
	var d scheduleDoc
	dec := yaml.NewDecoder(bytes.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("fees: %w", err)
	}
	s := &Schedule{products: make(map[bintable.Product]Rate), byMCC: make(map[mccKey]Rate)}
	if err := s.readProducts(d.Interchange); err != nil {
		return nil, err
	}
	if err := s.readOverrides(d.InterchangeMCC); err != nil {
		return nil, err
	}
	if err := s.readSwitchFee(d); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Schedule) readProducts(m map[string]rateDoc) error {
	for name, rd := range m {
		if !knownProduct(name) {
			return fmt.Errorf("fees: interchange: unknown product %q (want debit, credit or transit)", name)
		}
		if rd.Product != "" || rd.MCC != "" {
			return fmt.Errorf("fees: interchange.%s: product and mcc belong in interchange_mcc", name)
		}
		r, err := rd.rate("interchange." + name)
		if err != nil {
			return err
		}
		s.products[bintable.Product(name)] = r
	}
	for _, p := range products {
		if _, ok := s.products[p]; !ok {
			return fmt.Errorf("fees: interchange: no rate for product %s", p)
		}
	}
	return nil
}

func (s *Schedule) readOverrides(list []rateDoc) error {
	for i, rd := range list {
		where := fmt.Sprintf("interchange_mcc entry %d", i+1)
		if !knownProduct(rd.Product) {
			return fmt.Errorf("fees: %s: product %q (want debit, credit or transit)", where, rd.Product)
		}
		if err := settlement.RuleMCC.Check("mcc", rd.MCC); err != nil {
			return fmt.Errorf("fees: %s: %w", where, err)
		}
		r, err := rd.rate(where)
		if err != nil {
			return err
		}
		k := mccKey{bintable.Product(rd.Product), rd.MCC}
		if _, dup := s.byMCC[k]; dup {
			return fmt.Errorf("fees: %s: %s MCC %s listed twice", where, rd.Product, rd.MCC)
		}
		s.byMCC[k] = r
	}
	return nil
}

func (s *Schedule) readSwitchFee(d scheduleDoc) error {
	sf := d.SwitchFee
	if sf == nil || sf.Bps == nil || sf.MinFen == nil {
		return fmt.Errorf("fees: switch_fee: want bps and min_fen")
	}
	if err := checkBps("switch_fee", *sf.Bps); err != nil {
		return err
	}
	if *sf.MinFen < 0 || *sf.MinFen > int64(settlement.AmountMax) {
		return fmt.Errorf("fees: switch_fee: min_fen %d: want 0 to %d", *sf.MinFen, int64(settlement.AmountMax))
	}
	s.switchBps, s.switchMin = *sf.Bps, iso8583.Amount(*sf.MinFen)
	return nil
}

func (rd rateDoc) rate(where string) (Rate, error) {
	if rd.Bps == nil {
		return Rate{}, fmt.Errorf("fees: %s: no bps", where)
	}
	if err := checkBps(where, *rd.Bps); err != nil {
		return Rate{}, err
	}
	r := Rate{Bps: *rd.Bps}
	if rd.CapFen != nil {
		if *rd.CapFen < 0 || *rd.CapFen > int64(settlement.AmountMax) {
			return Rate{}, fmt.Errorf("fees: %s: cap_fen %d: want 0 to %d", where, *rd.CapFen, int64(settlement.AmountMax))
		}
		r.Cap, r.Capped = iso8583.Amount(*rd.CapFen), true
	}
	return r, nil
}

func checkBps(where string, bps int64) error {
	if bps < 0 || bps > BpsMax {
		return fmt.Errorf("fees: %s: bps %d: want 0 to %d", where, bps, BpsMax)
	}
	return nil
}

func knownProduct(p string) bool {
	for _, k := range products {
		if string(k) == p {
			return true
		}
	}
	return false
}
