// Package configs holds the network's default configuration files. They are
// embedded so that switchd -dev, issuersim and the tests run from any folder;
// each command also takes a path to an edited copy.
package configs

import _ "embed"

// Issuers is issuers.yaml: the member banks and transit operators.
//
//go:embed issuers.yaml
var Issuers []byte

// Bins is bins.yaml: the BIN table.
//
//go:embed bins.yaml
var Bins []byte

// Fees is fees.yaml: the fee schedule settlement prices transactions with.
//
//go:embed fees.yaml
var Fees []byte

// Switch is switch.yaml: switchd's default configuration.
//
//go:embed switch.yaml
var Switch []byte

// Acquirers is acquirers.yaml: the acquirers, merchants and terminals that
// may send requests, and who may speak for whom.
//
//go:embed acquirers.yaml
var Acquirers []byte
