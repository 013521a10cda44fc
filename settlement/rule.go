package settlement

import "fmt"

// Rule is how one field of a Txn is checked. The lengths are the widths of
// the clearing record's fields (docs/clearing-format.md), so that whatever
// validates here fits there; the clearing reader checks with the same rules.
type Rule struct {
	Min, Max int
	Digits   bool // digits only; otherwise printable ASCII
	Optional bool // "" is allowed; anything else must still obey the rule
}

// Check reports the first way v breaks the rule. Text may not end in a space:
// the clearing format pads text with spaces, so a trailing space could not be
// told from padding and would not survive a round trip.
func (r Rule) Check(name, v string) error {
	if r.Optional && v == "" {
		return nil
	}
	if len(v) < r.Min || len(v) > r.Max {
		if r.Min == r.Max {
			return fmt.Errorf("%s %q: want %d characters", name, v, r.Min)
		}
		return fmt.Errorf("%s %q: want %d to %d characters", name, v, r.Min, r.Max)
	}
	if r.Digits && !allDigits(v) {
		return fmt.Errorf("%s %q: want digits only", name, v)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return fmt.Errorf("%s %q: want printable ASCII", name, v)
		}
	}
	if v[len(v)-1] == ' ' {
		return fmt.Errorf("%s %q: ends in a space, which the fixed-width format cannot keep", name, v)
	}
	return nil
}

// The rules of the Txn fields.
var (
	RuleNodeID           = Rule{Min: 1, Max: 32}
	RuleTerminalID       = Rule{Min: 1, Max: 8}
	RuleSTAN             = Rule{Min: 6, Max: 6, Digits: true}
	RuleTransmissionTime = Rule{Min: 10, Max: 10, Digits: true}
	RuleRRN              = Rule{Min: 1, Max: 12}
	RuleMerchantID       = Rule{Min: 1, Max: 15}
	RuleMCC              = Rule{Min: 4, Max: 4, Digits: true}
	RuleInstitution      = Rule{Min: 1, Max: 11, Digits: true} // DE32/DE33 are up to 11 digits
	RuleIssuerID         = Rule{Min: 1, Max: 12}
	RuleToken            = Rule{Min: 13, Max: 19, Digits: true}
	RulePAN              = Rule{Min: 12, Max: 19, Digits: true}
	RuleCardNumber       = Rule{Min: 12, Max: 19, Digits: true} // a PAN or a token
	RuleAuthCode         = Rule{Min: 1, Max: 6, Optional: true}
)

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
