// Package issuers is the directory of the network's members that hold card
// accounts: issuing banks and city transit operators, read from
// configs/issuers.yaml.
package issuers

import (
	"fmt"
	"net"

	"go.yaml.in/yaml/v3"
)

// Kind says what sort of member an issuer is.
type Kind string

const (
	KindBank    Kind = "bank"
	KindTransit Kind = "transit"
)

// Issuer is one member the switch routes authorizations to.
type Issuer struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	Kind Kind   `yaml:"kind"`
	City string `yaml:"city,omitempty"`
	// Operator is a transit member's 4-digit operator code: the first 4
	// digits of its gate IDs and the operator of its tap files
	// (docs/transit.md). Empty for banks.
	Operator    string `yaml:"operator,omitempty"`
	Institution string `yaml:"institution"`
	Address     string `yaml:"address"`
}

// Parse reads an issuers.yaml document.
func Parse(doc []byte) ([]Issuer, error) {
	var file struct {
		Issuers []Issuer `yaml:"issuers"`
	}
	if err := yaml.Unmarshal(doc, &file); err != nil {
		return nil, fmt.Errorf("issuers: %w", err)
	}
	if len(file.Issuers) == 0 {
		return nil, fmt.Errorf("issuers: none listed")
	}
	seen := make(map[string]bool)
	operators := make(map[string]string)
	for i, is := range file.Issuers {
		if err := is.validate(); err != nil {
			return nil, fmt.Errorf("issuers entry %d: %w", i+1, err)
		}
		if seen[is.ID] {
			return nil, fmt.Errorf("issuers entry %d: id %s listed twice", i+1, is.ID)
		}
		seen[is.ID] = true
		if is.Operator == "" {
			continue
		}
		if other, dup := operators[is.Operator]; dup {
			return nil, fmt.Errorf("issuers entry %d: %s: operator %s is already %s's", i+1, is.ID, is.Operator, other)
		}
		operators[is.Operator] = is.ID
	}
	return file.Issuers, nil
}

func (is Issuer) validate() error {
	if is.ID == "" {
		return fmt.Errorf("no id")
	}
	if is.Kind != KindBank && is.Kind != KindTransit {
		return fmt.Errorf("%s: kind %q is not bank or transit", is.ID, is.Kind)
	}
	if len(is.Institution) != 8 {
		return fmt.Errorf("%s: institution %q is not 8 digits", is.ID, is.Institution)
	}
	for _, c := range is.Institution {
		if c < '0' || c > '9' {
			return fmt.Errorf("%s: institution %q is not 8 digits", is.ID, is.Institution)
		}
	}
	switch {
	case is.Kind == KindTransit && !fourDigits(is.Operator):
		return fmt.Errorf("%s: operator %q: a transit member needs a 4-digit operator code", is.ID, is.Operator)
	case is.Kind == KindBank && is.Operator != "":
		return fmt.Errorf("%s: operator %q: only transit members have an operator code", is.ID, is.Operator)
	}
	if _, _, err := net.SplitHostPort(is.Address); err != nil {
		return fmt.Errorf("%s: address %q: %w", is.ID, is.Address, err)
	}
	return nil
}

func fourDigits(s string) bool {
	if len(s) != 4 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// ByOperator returns the transit member with operator code op.
func ByOperator(list []Issuer, op string) (Issuer, bool) {
	for _, is := range list {
		if is.Kind == KindTransit && is.Operator == op {
			return is, true
		}
	}
	return Issuer{}, false
}
