// Package wallet reads and writes wallet files: the tokens a phone holds,
// as JSON. switchd -dev writes dev-wallet.json with one demo card per
// outcome; termsim reads it to tap.
package wallet

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"

	"github.com/tapswitch/tapswitch/internal/durable"
)

// DevFileName is the dev wallet's name inside the data directory.
const DevFileName = "dev-wallet.json"

// DevAcquirerKeysFileName is the acquirer key file switchd -dev writes
// beside the dev wallet: the keys an acquirer's host would hold, from which
// termsim and bench derive their terminals' MAC keys.
const DevAcquirerKeysFileName = "dev-acquirer.keys"

// DevAcquirerKeysPath is where the acquirer keys of the switch that wrote
// the wallet at walletPath are.
func DevAcquirerKeysPath(walletPath string) string {
	return filepath.Join(filepath.Dir(walletPath), DevAcquirerKeysFileName)
}

// DevDataDir is where switchd -dev keeps its data unless told otherwise, and
// so where termsim looks for the dev wallet by default.
func DevDataDir() string {
	return filepath.Join(os.TempDir(), "tapswitch-dev")
}

// DevFilePath is the default dev wallet path.
func DevFilePath() string {
	return filepath.Join(DevDataDir(), DevFileName)
}

// Card is one token on the phone. The wallet never holds the card number.
type Card struct {
	Label       string `json:"label"`
	Token       string `json:"token"`
	TokenExpiry string `json:"token_expiry"` // YYMM
	DeviceID    string `json:"device_id"`
	Issuer      string `json:"issuer,omitempty"`
	Product     string `json:"product,omitempty"`
	Outcome     string `json:"outcome,omitempty"` // what a tap should get, for demo cards
	// Key is the token's cryptogram key in hex, as the token service
	// handed it over once when the card was bound (switchd -dev writes
	// its demo tokens' keys); "" for a card that cannot make cryptograms.
	Key string `json:"key,omitempty"`
	// ATC is the application transaction counter of the last tap: the next
	// tap uses ATC+1 and saves it. 0 for a new token.
	ATC uint32 `json:"atc"`
	// LastPurchase is the card's last approved purchase as termsim made it,
	// for a refund to name in DE90.
	LastPurchase *Purchase `json:"last_purchase,omitempty"`

	counter *atomic.Uint32 // shared by the copies of a card read by Load (counter.go)
}

// Purchase is an approved purchase as the receipt shows it: where, its
// STAN and transmission time (DE11, DE7), and its amount in fen.
type Purchase struct {
	Terminal         string `json:"terminal"`
	STAN             string `json:"stan"`
	TransmissionTime string `json:"transmission_time"`
	Amount           int64  `json:"amount"`
}

// File is a wallet file.
type File struct {
	Switch  string        `json:"switch"` // terminal listener of the switch
	Cards   []Card        `json:"cards"`
	Transit []TransitCard `json:"transit,omitempty"` // city transit cards (purse.go)
	// The phone's side of the token service, written by cmd/wallet.
	API      string   `json:"api,omitempty"`       // base URL of the token service
	Login    string   `json:"login,omitempty"`     // the wallet account
	Session  string   `json:"session,omitempty"`   // bearer session, short-lived
	DeviceID string   `json:"device_id,omitempty"` // this phone
	Pending  *Pending `json:"pending,omitempty"`   // a card waiting for its SMS code
	// TopUps are transit top-ups paid but not yet credited to their purse
	// (purse.go): written before the pay call leaves, so a lost answer is
	// asked for again, and the purse takes no tap until its top-up is
	// settled one way or the other.
	TopUps []PendingTopUp `json:"topups,omitempty"`
}

// Pending is a card binding waiting for its SMS code.
type Pending struct {
	BindingID string `json:"binding_id"`
	Label     string `json:"label"`
	Card      string `json:"card"` // masked
	Issuer    string `json:"issuer,omitempty"`
}

// Load reads a wallet file.
func Load(path string) (File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return File{}, fmt.Errorf("wallet: %w", err)
	}
	var f File
	if err := json.Unmarshal(data, &f); err != nil {
		return File{}, fmt.Errorf("wallet %s: %w", path, err)
	}
	f.attachCounters()
	return f, nil
}

// Card returns the card with the label.
func (f File) Card(label string) (Card, error) {
	for _, c := range f.Cards {
		if c.Label == label {
			return c, nil
		}
	}
	labels := make([]string, 0, len(f.Cards))
	for _, c := range f.Cards {
		labels = append(labels, c.Label)
	}
	return Card{}, fmt.Errorf("wallet has no card %q (it has %v)", label, labels)
}

// Save writes the file atomically and durably: a temporary file, fsync,
// rename, fsync of the directory. Each card's ATC is saved as advanced by
// NextATC.
func Save(path string, f File) error {
	f.Cards = slices.Clone(f.Cards)
	for i := range f.Cards {
		f.Cards[i].ATC = f.Cards[i].advancedATC()
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := durable.WriteFile(path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("wallet: %w", err)
	}
	return nil
}
