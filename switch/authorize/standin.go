package authorize

import (
	"fmt"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// StandInRules are one issuer's stand-in limits: what the switch may approve
// on the issuer's behalf while the issuer cannot answer.
type StandInRules struct {
	Enabled        bool               `yaml:"enabled"`
	AmountMax      iso8583.Amount     `yaml:"amount_max"`       // per transaction
	DailyCountMax  int                `yaml:"daily_count_max"`  // approvals per token per business day
	DailyAmountMax iso8583.Amount     `yaml:"daily_amount_max"` // per token per business day
	Products       []bintable.Product `yaml:"products"`         // card products stood in for
}

// Validate checks the rules are usable.
func (r StandInRules) Validate() error {
	if !r.Enabled {
		return nil
	}
	if r.AmountMax <= 0 || r.DailyCountMax <= 0 || r.DailyAmountMax <= 0 {
		return fmt.Errorf("stand-in: amount_max, daily_count_max and daily_amount_max must be positive")
	}
	for _, p := range r.Products {
		switch p {
		case bintable.ProductDebit, bintable.ProductCredit, bintable.ProductTransit:
		default:
			return fmt.Errorf("stand-in: unknown product %q", p)
		}
	}
	return nil
}

// StandInAllowed decides whether the switch approves req on the issuer's
// behalf, given the token's stand-in usage so far that business day. Only
// purchases and transit top-ups are stood in for: a refund or a balance
// inquiry needs the issuer's books.
func StandInAllowed(r StandInRules, req Request, product bintable.Product, used journal.Usage) bool {
	if !r.Enabled {
		return false
	}
	if req.ProcessingCode != iso8583.ProcPurchase && req.ProcessingCode != iso8583.ProcTransitTopUp {
		return false
	}
	productAllowed := false
	for _, p := range r.Products {
		productAllowed = productAllowed || p == product
	}
	return productAllowed && req.Amount <= r.AmountMax &&
		used.Count+1 <= r.DailyCountMax && iso8583.Amount(used.Amount)+req.Amount <= r.DailyAmountMax
}

// standInAuthCode is the DE38 of a stand-in approval: 'S' and the last five
// digits of the advice's STAN, so an issuer can tell it from its own codes.
func standInAuthCode(issuerSTAN string) string {
	return "S" + issuerSTAN[len(issuerSTAN)-5:]
}
