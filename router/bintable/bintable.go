// Package bintable maps a card number to the issuer that holds it, by the
// longest matching BIN prefix. The table is read once from configs/bins.yaml
// and is immutable afterwards, so look-ups need no lock.
package bintable

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Product is a card product: what kind of account stands behind a number.
type Product string

const (
	ProductDebit   Product = "debit"
	ProductCredit  Product = "credit"
	ProductTransit Product = "transit"
)

// Entry is one row of the table.
type Entry struct {
	Prefix  string  `yaml:"prefix"`
	Issuer  string  `yaml:"issuer"`
	Product Product `yaml:"product"`
}

// prefixDigitsMin and prefixDigitsMax bound a BIN prefix: 4 digits is the
// shortest range a member may hold, 11 the longest the network routes on.
const (
	prefixDigitsMin = 4
	prefixDigitsMax = 11
)

// Table is the BIN table. Build it with Parse.
type Table struct {
	entries []Entry
	// byLength[n] maps every n-digit prefix to its entry.
	byLength [prefixDigitsMax + 1]map[string]Entry
}

// Parse reads a bins.yaml document and checks every row: digits only, a
// known product, no prefix listed twice.
func Parse(doc []byte) (*Table, error) {
	var file struct {
		Bins []Entry `yaml:"bins"`
	}
	if err := yaml.Unmarshal(doc, &file); err != nil {
		return nil, fmt.Errorf("bin table: %w", err)
	}
	if len(file.Bins) == 0 {
		return nil, fmt.Errorf("bin table: no bins")
	}
	t := &Table{}
	for i, e := range file.Bins {
		if err := e.validate(); err != nil {
			return nil, fmt.Errorf("bin table row %d: %w", i+1, err)
		}
		n := len(e.Prefix)
		if t.byLength[n] == nil {
			t.byLength[n] = make(map[string]Entry)
		}
		if _, dup := t.byLength[n][e.Prefix]; dup {
			return nil, fmt.Errorf("bin table row %d: prefix %s listed twice", i+1, e.Prefix)
		}
		t.byLength[n][e.Prefix] = e
		t.entries = append(t.entries, e)
	}
	return t, nil
}

func (e Entry) validate() error {
	if len(e.Prefix) < prefixDigitsMin || len(e.Prefix) > prefixDigitsMax {
		return fmt.Errorf("prefix %q must have %d to %d digits", e.Prefix, prefixDigitsMin, prefixDigitsMax)
	}
	for _, c := range e.Prefix {
		if c < '0' || c > '9' {
			return fmt.Errorf("prefix %q is not all digits", e.Prefix)
		}
	}
	if e.Issuer == "" {
		return fmt.Errorf("prefix %s has no issuer", e.Prefix)
	}
	switch e.Product {
	case ProductDebit, ProductCredit, ProductTransit:
		return nil
	}
	return fmt.Errorf("prefix %s: product %q is not debit, credit or transit", e.Prefix, e.Product)
}

// Lookup returns the entry with the longest prefix of pan.
func (t *Table) Lookup(pan string) (Entry, bool) {
	n := min(len(pan), prefixDigitsMax)
	for ; n >= prefixDigitsMin; n-- {
		if m := t.byLength[n]; m != nil {
			if e, ok := m[pan[:n]]; ok {
				return e, true
			}
		}
	}
	return Entry{}, false
}

// Entries returns the rows in file order.
func (t *Table) Entries() []Entry {
	return append([]Entry(nil), t.entries...)
}

// PrefixOf returns the first prefix the table routes to issuer for product
// (a transit operator's card BIN), "" for none.
func (t *Table) PrefixOf(issuer string, p Product) string {
	for _, e := range t.entries {
		if e.Issuer == issuer && e.Product == p {
			return e.Prefix
		}
	}
	return ""
}
