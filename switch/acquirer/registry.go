// Package acquirer is who may speak for which acquirer: the registry of
// acquirers, their merchants and terminals (configs/acquirers.yaml), the
// acquirers' keys (a key file of their own, mode 0600), and the check of
// each terminal message's MAC (iso8583/mac) that turns a frame into an
// Identity the authorization pipeline decides on.
//
// The trust chain: the switch holds one key per acquirer; an acquirer's host
// holds its own and derives each of its terminals' keys from it; a terminal
// holds only its own key and MACs every request with it. A request whose
// MAC verifies under the key of the terminal its DE41 names was made by
// that terminal (or its acquirer's host), so its DE41 is authenticated; the
// registry then says which merchant (DE42) and acquirer (DE32) it may name.
package acquirer

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/tapswitch/tapswitch/iso8583"
)

// Bounds of the registry.
const (
	terminalsMax  = 200_000 // terminals, ranges expanded
	terminalRange = 100_000 // terminals in one range
	// RefundWithoutOriginalCapMax is the most a merchant's rule may let one
	// refund without an original be: 1,000.00 CNY.
	RefundWithoutOriginalCapMax iso8583.Amount = 1000_00
)

// Acquirer is a member bank acquiring merchants.
type Acquirer struct {
	Institution string `yaml:"institution"` // as sent in DE32, 8 digits
	Name        string `yaml:"name"`
}

// RefundRule is a merchant's rule for refunds that name no original.
type RefundRule struct {
	Enabled   bool           `yaml:"enabled"`
	AmountMax iso8583.Amount `yaml:"amount_max"` // fen per refund, at most RefundWithoutOriginalCapMax
}

// Merchant is one card acceptor (DE42) of one acquirer.
type Merchant struct {
	ID                     string     `yaml:"id"`
	Acquirer               string     `yaml:"acquirer"`
	Name                   string     `yaml:"name"`
	MCCs                   []string   `yaml:"mccs"`
	RefundsWithoutOriginal RefundRule `yaml:"refunds_without_original"`
}

// AllowsMCC reports whether the merchant may send mcc in DE18.
func (m Merchant) AllowsMCC(mcc string) bool {
	for _, c := range m.MCCs {
		if c == mcc {
			return true
		}
	}
	return false
}

// terminalEntry is one line of the terminals list: one ID, or a range
// "FROM-TO" of IDs that share a prefix and end in a number.
type terminalEntry struct {
	ID       string `yaml:"id"`
	Range    string `yaml:"range"`
	Merchant string `yaml:"merchant"`
}

type document struct {
	Acquirers []Acquirer      `yaml:"acquirers"`
	Merchants []Merchant      `yaml:"merchants"`
	Terminals []terminalEntry `yaml:"terminals"`
}

// Registry is the parsed, checked registry.
type Registry struct {
	acquirers map[string]Acquirer
	merchants map[string]Merchant
	terminals map[string]string // terminal ID → merchant ID
}

var (
	institutionPattern = regexp.MustCompile(`^[0-9]{8}$`)
	mccPattern         = regexp.MustCompile(`^[0-9]{4}$`)
	merchantPattern    = regexp.MustCompile(`^[!-~]([ -~]{0,13}[!-~])?$`)
	terminalPattern    = regexp.MustCompile(`^[!-~]{8}$`)
)

// Parse reads a registry. members are the institution IDs that settle
// (the issuer directory's); an acquirer outside them could not be paid, and
// the switch's own institution acquires nothing: either is an error.
func Parse(doc []byte, members map[string]bool, switchInstitution string) (*Registry, error) {
	var d document
	dec := yaml.NewDecoder(bytes.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("acquirers: %w", err)
	}
	r := &Registry{acquirers: map[string]Acquirer{}, merchants: map[string]Merchant{}, terminals: map[string]string{}}
	if err := r.addAcquirers(d.Acquirers, members, switchInstitution); err != nil {
		return nil, err
	}
	if err := r.addMerchants(d.Merchants); err != nil {
		return nil, err
	}
	for _, t := range d.Terminals {
		if err := r.addTerminals(t); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *Registry) addAcquirers(list []Acquirer, members map[string]bool, switchInstitution string) error {
	if len(list) == 0 {
		return fmt.Errorf("acquirers: no acquirer listed")
	}
	for _, a := range list {
		switch {
		case !institutionPattern.MatchString(a.Institution):
			return fmt.Errorf("acquirers: institution %q must be 8 digits", a.Institution)
		case a.Institution == switchInstitution:
			return fmt.Errorf("acquirers: %s is the switch's own institution, which acquires nothing", a.Institution)
		case !members[a.Institution]:
			return fmt.Errorf("acquirers: %s (%s) is not a member of the issuer directory: settlement could not pay it", a.Institution, a.Name)
		case r.acquirers[a.Institution] != Acquirer{}:
			return fmt.Errorf("acquirers: %s listed twice", a.Institution)
		}
		r.acquirers[a.Institution] = a
	}
	return nil
}

func (r *Registry) addMerchants(list []Merchant) error {
	for _, m := range list {
		switch {
		case !merchantPattern.MatchString(m.ID):
			return fmt.Errorf("acquirers: merchant ID %q: 1 to 15 printable characters, no outer spaces", m.ID)
		case r.acquirers[m.Acquirer] == Acquirer{}:
			return fmt.Errorf("acquirers: merchant %s names acquirer %q, which is not listed", m.ID, m.Acquirer)
		case len(m.MCCs) == 0:
			return fmt.Errorf("acquirers: merchant %s has no MCC", m.ID)
		}
		if _, dup := r.merchants[m.ID]; dup {
			return fmt.Errorf("acquirers: merchant %s listed twice", m.ID)
		}
		for _, c := range m.MCCs {
			if !mccPattern.MatchString(c) {
				return fmt.Errorf("acquirers: merchant %s: MCC %q must be 4 digits", m.ID, c)
			}
		}
		if rule := m.RefundsWithoutOriginal; rule.AmountMax < 0 || rule.AmountMax > RefundWithoutOriginalCapMax ||
			(rule.Enabled && rule.AmountMax == 0) {
			return fmt.Errorf("acquirers: merchant %s: refunds_without_original amount_max %d outside 1..%d fen",
				m.ID, rule.AmountMax, RefundWithoutOriginalCapMax)
		}
		r.merchants[m.ID] = m
	}
	return nil
}

func (r *Registry) addTerminals(t terminalEntry) error {
	if _, ok := r.merchants[t.Merchant]; !ok {
		return fmt.Errorf("acquirers: terminal %s%s names merchant %q, which is not listed", t.ID, t.Range, t.Merchant)
	}
	ids := []string{t.ID}
	if (t.ID == "") == (t.Range == "") {
		return fmt.Errorf("acquirers: a terminal entry needs exactly one of id and range (merchant %s)", t.Merchant)
	}
	if t.Range != "" {
		var err error
		if ids, err = expandRange(t.Range); err != nil {
			return err
		}
	}
	for _, id := range ids {
		if !terminalPattern.MatchString(id) {
			return fmt.Errorf("acquirers: terminal ID %q must be 8 printable characters without spaces", id)
		}
		if _, dup := r.terminals[id]; dup {
			return fmt.Errorf("acquirers: terminal %s listed twice", id)
		}
		if len(r.terminals) >= terminalsMax {
			return fmt.Errorf("acquirers: more than %d terminals", terminalsMax)
		}
		r.terminals[id] = t.Merchant
	}
	return nil
}

// expandRange turns "TERM0001-TERM0999" into its IDs: both ends of one
// length, the same prefix, and a number at the end.
func expandRange(s string) ([]string, error) {
	from, to, ok := strings.Cut(s, "-")
	bad := func(why string) error { return fmt.Errorf("acquirers: terminal range %q: %s", s, why) }
	if !ok || len(from) != len(to) || len(from) == 0 {
		return nil, bad("want FROM-TO of one length")
	}
	digits := 0
	for digits < len(from) && isDigit(from[len(from)-1-digits]) && isDigit(to[len(to)-1-digits]) {
		digits++
	}
	prefix := from[:len(from)-digits]
	if digits == 0 || prefix != to[:len(to)-digits] {
		return nil, bad("both ends must share a prefix and end in digits")
	}
	lo, _ := strconv.Atoi(from[len(prefix):])
	hi, _ := strconv.Atoi(to[len(prefix):])
	if hi < lo || hi-lo >= terminalRange {
		return nil, bad(fmt.Sprintf("want 1 to %d terminals, FROM first", terminalRange))
	}
	ids := make([]string, 0, hi-lo+1)
	for n := lo; n <= hi; n++ {
		ids = append(ids, fmt.Sprintf("%s%0*d", prefix, digits, n))
	}
	return ids, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// Terminal returns the merchant of terminal id and whether it is
// registered.
func (r *Registry) Terminal(id string) (Merchant, bool) {
	m, ok := r.terminals[id]
	if !ok {
		return Merchant{}, false
	}
	return r.merchants[m], true
}

// Acquirers lists the registered acquirers' institution IDs.
func (r *Registry) Acquirers() []string {
	out := make([]string, 0, len(r.acquirers))
	for id := range r.acquirers {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// Terminals is the number of registered terminals.
func (r *Registry) Terminals() int { return len(r.terminals) }
