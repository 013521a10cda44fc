package load

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/bench/walletcli"
	"github.com/tapswitch/tapswitch/bench/world"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
)

// Purse loads, the phone's part of the mix (docs/bench.md, "Purse
// loads"). A phone tops up its city transit cards through the switch's
// token API, as cmd/wallet does (bench/walletcli, called as a library):
// it creates an account, binds a bank card through the four steps (the SMS
// code read from the switch's outbox, as 'wallet dev-code' reads it), opens
// one transit card in each city of the world, then loads them in turn. Each
// top-up is two legs in the switch: the bank leg (0200 210000 through the
// authorization pipeline) and the load (220000) at the city's operator.
//
// They run after the terminals' run, while the switch is still up: the
// count follows the requests the run sent (as gate taps do), and nothing
// of them falls into the measured time or its CPU window.
const (
	// LoadsMax bounds the loads of one run: each is four wallet-file
	// writes, each fsynced, and two legs in the switch, one at a time.
	LoadsMax = 500
	// loadErrorsMax bounds the error lines a report keeps (the count is
	// whole).
	loadErrorsMax = 20
	loadLogin     = "bench-phone"
	loadPassword  = "bench phone: purse loads"
	loadBankLabel = "bank"
)

// The outcomes of a top-up the switch answers (docs/api.md).
const (
	stateLoaded   = "loaded"
	stateDeclined = "declined"
	stateUndone   = "undone"
)

// LoadWorld is what a phone needs of a switch to bind a card and top up.
type LoadWorld struct {
	API  string     // the token service: the switch's public listener URL
	Data string     // the switch's data directory, where its SMS outbox is
	Card world.Card // the card the dev world offers for binding
}

// LoadReport is what the purse loads did.
type LoadReport struct {
	Opened int `json:"opened"` // transit cards opened, one per city
	// Loads counts the top-ups of the opened cards that were paid (or
	// tried): the figures below are theirs, openings apart.
	Loads   int64            `json:"loads"`
	ByState map[string]int64 `json:"by_state"` // loaded, declined, undone
	// PayP50US, PayP99US and PayMaxUS are the pay call's latency (the
	// two legs), in microseconds, of the loads the switch answered.
	PayP50US int64 `json:"pay_p50_us"`
	PayP99US int64 `json:"pay_p99_us"`
	PayMaxUS int64 `json:"pay_max_us"`
	// LoadedFen is what the switch says it loaded, openings included
	// (each top-up asked again at the end); PurseFen the purses'
	// balances in the phone. The check: they are equal, card by card.
	LoadedFen int64    `json:"loaded_fen"`
	PurseFen  int64    `json:"purse_fen"`
	Errors    []string `json:"errors,omitempty"`
	ErrorsN   int      `json:"errors_n"` // all errors, Errors keeps the first loadErrorsMax
	DurationS float64  `json:"duration_s"`

	topUps []walletcli.Outcome // every top-up the switch prepared, for the check
}

func (r *LoadReport) fail(format string, args ...any) {
	r.ErrorsN++
	if len(r.Errors) < loadErrorsMax {
		r.Errors = append(r.Errors, fmt.Sprintf(format, args...))
	}
}

// runLoads binds lw's card to a new phone whose wallet is walletPath,
// opens a transit card per city and loads them n times with amount fen
// each, then checks the purses against the switch. An error is returned
// only when the phone could not get as far as its first load.
func runLoads(ctx context.Context, lw LoadWorld, walletPath string, n int, amount int64) (*LoadReport, error) {
	began := time.Now()
	if err := bindPhone(lw, walletPath); err != nil {
		return nil, err
	}
	rep := &LoadReport{ByState: map[string]int64{}}
	var labels []string
	for _, c := range world.Cities() {
		o, err := walletcli.OpenTransit(walletPath, c.Name, c.Issuer, loadBankLabel, amount, io.Discard)
		if o.ID != "" {
			rep.topUps = append(rep.topUps, o)
		}
		switch {
		case err != nil:
			rep.fail("opening a %s card: %v", c.Name, err)
		case o.State != stateLoaded:
			rep.fail("opening a %s card: %s (rc %s)", c.Name, o.State, o.RC)
		default:
			rep.Opened++
			labels = append(labels, c.Name)
		}
	}
	if len(labels) == 0 {
		rep.fail("no transit card opened: no load to make")
	}
	var pays []time.Duration
	for i := 0; i < n && len(labels) > 0 && ctx.Err() == nil; i++ {
		label := labels[i%len(labels)]
		o, err := walletcli.TopUpTransit(walletPath, label, loadBankLabel, amount, io.Discard)
		if o.ID != "" {
			rep.topUps = append(rep.topUps, o)
		}
		rep.Loads++
		if final(o.State) {
			rep.ByState[o.State]++
			pays = append(pays, o.Pay)
		}
		if err != nil {
			rep.fail("load %d of the %s card: %v", i+1, label, err)
		}
	}
	rep.PayP50US, rep.PayP99US, rep.PayMaxUS = payPercentiles(pays)
	checkPurses(walletPath, rep.topUps, rep)
	rep.DurationS = time.Since(began).Seconds()
	return rep, nil
}

// loadCard is the card the phone binds: of cards, the active, unexpired
// debit card with the largest balance (bench's own pick, not the card the
// switchd -dev banner offers: any card of the simulated issuers binds).
func loadCard(cards []world.Card, now time.Time) world.Card {
	var best world.Card
	for _, c := range cards {
		if c.Product == bintable.ProductDebit && c.Status == world.StatusActive && !c.ExpiredAt(now) && c.Balance > best.Balance {
			best = c
		}
	}
	return best
}

// bindPhone is the four steps of cmd/wallet: log in (creating the
// account), add the card, read the SMS code, confirm it.
func bindPhone(lw LoadWorld, walletPath string) error {
	c := lw.Card
	if c.PAN == "" {
		return fmt.Errorf("purse loads: the dev world has no card to bind")
	}
	steps := [][]string{
		{"login", "-api", lw.API, "-login", loadLogin, "-password", loadPassword, "-create"},
		{"add-card", "-pan", c.PAN.Clear(), "-expiry", c.Expiry, "-cvn2", c.CVN2().Clear(), "-label", loadBankLabel},
		{"dev-code", "-data", lw.Data},
		{"confirm", "-code", ""},
	}
	var code string
	for _, step := range steps {
		if step[0] == "confirm" {
			step[len(step)-1] = code
		}
		var out, errs bytes.Buffer
		args := append([]string{step[0], "-wallet", walletPath}, step[1:]...)
		if rc := walletcli.Run(args, &out, &errs); rc != 0 {
			return fmt.Errorf("purse loads: the phone's 'wallet %s' failed: %s", step[0], strings.TrimSpace(errs.String()))
		}
		if step[0] == "dev-code" {
			code = strings.TrimSpace(out.String())
		}
	}
	return nil
}

// checkPurses has the wallet finish any top-up whose answer it lost, asks
// the switch for every top-up it prepared, and checks each purse's balance
// against what the switch loaded to its card.
func checkPurses(walletPath string, asked []walletcli.Outcome, rep *LoadReport) {
	var out, errs bytes.Buffer
	if rc := walletcli.Run([]string{"transit", "-wallet", walletPath}, &out, &errs); rc != 0 {
		rep.fail("the phone could not finish its top-ups: %s", strings.TrimSpace(errs.String()))
	}
	loaded := map[string]int64{} // by transit card number
	for _, a := range asked {
		now, err := walletcli.TopUpState(walletPath, a.ID)
		switch {
		case err != nil:
			rep.fail("asking for top-up %s: %v", a.ID, err)
			continue
		case final(a.State) && now.State != a.State:
			rep.fail("top-up %s was answered %s and is now %s", a.ID, a.State, now.State)
		case !final(now.State):
			rep.fail("top-up %s is still %s", a.ID, now.State)
		}
		if now.State == stateLoaded {
			loaded[now.Card] += now.Amount
			rep.LoadedFen += now.Amount
		}
	}
	w, err := wallet.Load(walletPath)
	if err != nil {
		rep.fail("the phone's wallet: %v", err)
		return
	}
	var cards []string
	for _, c := range w.Transit {
		rep.PurseFen += c.Balance
		if c.Balance != loaded[c.Card] {
			rep.fail("purse %s holds %d fen, the switch loaded %d", c.Label, c.Balance, loaded[c.Card])
		}
		cards = append(cards, c.Card)
	}
	for card, fen := range loaded {
		if !slices.Contains(cards, card) {
			rep.fail("the switch loaded %d fen to a card the phone does not hold", fen)
		}
	}
}

// final reports whether a top-up in state s is over.
func final(s string) bool { return s == stateLoaded || s == stateDeclined || s == stateUndone }

// payPercentiles is the nearest-rank p50, p99 and maximum of d, in µs.
func payPercentiles(d []time.Duration) (p50, p99, most int64) {
	if len(d) == 0 {
		return 0, 0, 0
	}
	slices.Sort(d)
	rank := func(p int) int64 { return d[(len(d)*p+99)/100-1].Microseconds() }
	return rank(50), rank(99), d[len(d)-1].Microseconds()
}

// summaryLines is the report's text for the loads.
func (r *LoadReport) summaryLines() string {
	var b strings.Builder
	fmt.Fprintf(&b, "purse loads  %d through the token API after the run, %d transit cards opened: %s; pay p50 %s p99 %s max %s; "+
		"purses %s, switch loaded %s; errors %d; %.1fs\n",
		r.Loads, r.Opened, r.StatesLine(), fmtUS(r.PayP50US), fmtUS(r.PayP99US), fmtUS(r.PayMaxUS),
		iso8583.Amount(r.PurseFen), iso8583.Amount(r.LoadedFen), r.ErrorsN, r.DurationS)
	for _, e := range r.Errors[:min(len(r.Errors), 5)] {
		fmt.Fprintf(&b, "               %s\n", e)
	}
	return b.String()
}

// StatesLine is the loads by outcome: "loaded 200, declined 0, undone 0".
func (r *LoadReport) StatesLine() string {
	return fmt.Sprintf("%s %d, %s %d, %s %d", stateLoaded, r.ByState[stateLoaded],
		stateDeclined, r.ByState[stateDeclined], stateUndone, r.ByState[stateUndone])
}

// PayP50 is the pay call's median latency, for reading.
func (r *LoadReport) PayP50() string { return fmtUS(r.PayP50US) }

// PayP99 is the pay call's 99th percentile latency, for reading.
func (r *LoadReport) PayP99() string { return fmtUS(r.PayP99US) }

// PurseAmount is the purses' balances in yuan.
func (r *LoadReport) PurseAmount() string { return iso8583.Amount(r.PurseFen).String() }

// LoadedAmount is what the switch loaded, in yuan.
func (r *LoadReport) LoadedAmount() string { return iso8583.Amount(r.LoadedFen).String() }
