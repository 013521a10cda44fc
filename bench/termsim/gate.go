package termsim

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/tapswitch/tapswitch/bench/gate"
	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/bench/world"
	"github.com/tapswitch/tapswitch/internal/cli"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/settlement/transit"
)

// GateTap is one tap at a gate as termsim reports it.
type GateTap struct {
	Gate    string `json:"gate"`
	Station string `json:"station,omitempty"` // when the gate is one of the world's
	// Passage is "in" at a distance gate's tap-in (nothing debited, no
	// counter spent, no TAC), "out" at its tap-out, "single" at a flat fare.
	Passage string `json:"passage"`
	Card    string `json:"card"`
	Fare    string `json:"fare"`
	Balance string `json:"balance"` // after the tap
	Counter uint16 `json:"counter"`
	TAC     string `json:"tac,omitempty"`
}

// Passages a GateTap reports.
const (
	PassageIn     = "in"
	PassageOut    = "out"
	PassageSingle = "single"
)

// defaultFare is the flat fare of a gate outside the world's six cities.
const defaultFare = "2.00"

// gateAndFare resolves -gate, -station and -fare: a station or a gate of
// the world's six cities charges its city's fare (flat, or Beijing's by
// distance); another gate charges -fare, flat.
func gateAndFare(gateID, station, fareText string) (id, name string, fare gate.Fare, err error) {
	var city world.City
	var st world.Station
	found := false
	switch {
	case station != "" && gateID != "":
		return "", "", fare, errors.New("-gate and -station: name the gate once")
	case station != "":
		if city, st, err = world.StationNamed(station); err != nil {
			return "", "", fare, fmt.Errorf("-station: %v", err)
		}
		found = true
	case gateID == "":
		return "", "", fare, errors.New("-gate or -station: name the gate")
	default:
		city, st, found = world.CityOfGate(gateID)
	}
	if found {
		if fareText != "" {
			return "", "", fare, fmt.Errorf("-fare: gate %s is %s's %s, which charges the city's fare", st.Gate, city.Name, st.Name)
		}
		if city.Distance() {
			return st.Gate, st.Name, gate.Fare{Distance: city}, nil
		}
		return st.Gate, st.Name, gate.Flat(city.Flat), nil
	}
	if fareText == "" {
		fareText = defaultFare
	}
	fen, err := iso8583.ParseDecimalAmount(fareText)
	if err != nil {
		return "", "", fare, fmt.Errorf("-fare: %v", err)
	}
	return gateID, "", gate.Flat(int64(fen)), nil
}

// runGate plays a metro gate offline: it takes the fare from a transit
// card's purse in the wallet (saved first, as the phone does), records the
// tap in the gate's directory, and with -write-file writes the gate's
// pending taps as a tap file instead.
func runGate(args []string, stdout, stderr io.Writer) error {
	var walletPath, card, gateID, station, fareText, dir, day, blacklistPath string
	var asJSON bool
	fs := cli.New("termsim gate", "", stdout, stderr)
	fs.StringVar(&walletPath, "wallet", wallet.DevFilePath(), "wallet `FILE` holding the transit card")
	fs.StringVar(&card, "card", "", "`LABEL` of the wallet's transit card to tap")
	fs.StringVar(&gateID, "gate", "", "gate `ID`: 12 digits, the first 4 its operator's")
	fs.StringVar(&station, "station", "", "`NAME` of a station of the world's six cities: its gate, at its city's fare")
	fs.StringVar(&fareText, "fare", "", "flat fare in `YUAN` of a gate outside the world's six cities (default "+defaultFare+")")
	fs.StringVar(&dir, "dir", "", "the gate's `DIR` (default: gates/ID beside -wallet)")
	fs.StringVar(&day, "write-file", "", "write the pending taps as the tap file of business day `YYYYMMDD`, and print its path; no tap")
	fs.StringVar(&blacklistPath, "blacklist", "", "load the blacklist `FILE` (docs/transit.md) into the gate first; alone, without -card, load it only")
	fs.BoolVar(&asJSON, "json", false, "print the tap as JSON")
	if err := fs.Parse(args); err != nil {
		return asUsage(err)
	}
	gateID, name, fare, err := gateAndFare(gateID, station, fareText)
	if err != nil {
		return usageError{err}
	}
	if day != "" {
		if _, err := time.Parse("20060102", day); err != nil || len(day) != 8 {
			return usageError{fmt.Errorf("-write-file %q: want a business day YYYYMMDD", day)}
		}
	}
	if dir == "" {
		dir = filepath.Join(filepath.Dir(walletPath), "gates", gateID)
	}
	var blacklist []byte
	if blacklistPath != "" {
		if blacklist, err = os.ReadFile(blacklistPath); err != nil {
			return err
		}
	}
	if day != "" || card == "" {
		if day == "" && blacklist == nil {
			return usageError{errors.New("-card: name the wallet's transit card (or -blacklist FILE to load a list, -write-file DAY to write the tap file)")}
		}
		g, err := openGate(dir, gateID, fare, blacklist)
		if err != nil {
			return err
		}
		if day == "" {
			fmt.Fprintf(stdout, "gate %s holds blacklist version %d\n", g.ID(), g.BlacklistVersion())
			return nil
		}
		path, err := g.WriteTapFile(day)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, path)
		return nil
	}
	// The phone and its card are checked before the gate's directory is
	// touched: a tap that cannot happen leaves no gate behind.
	w, err := wallet.Load(walletPath)
	if err != nil {
		return err
	}
	c, err := w.TransitCard(card)
	if err != nil {
		return usageError{err}
	}
	if w.TopUpPending(card) {
		// The operator's grant matches the purse as it signed the load: a
		// tap now would make the grant useless and the load lost.
		return fmt.Errorf("card %s has a top-up whose outcome the phone has not applied: run 'wallet transit' first", card)
	}
	p, err := c.Purse()
	if err != nil {
		return err
	}
	g, err := openGate(dir, gateID, fare, blacklist)
	if err != nil {
		return err
	}
	return tapGate(g, name, &w, walletPath, card, p, asJSON, stdout)
}

// tapGate takes one tap from purse p, the wallet's transit card label, at
// g, the gate of station (empty outside the world).
func tapGate(g *gate.Gate, station string, w *wallet.File, walletPath, label string, p transit.Purse, asJSON bool, stdout io.Writer) error {
	save := func(after transit.Purse) error {
		if err := w.SetPurse(label, after); err != nil {
			return err
		}
		return wallet.Save(walletPath, *w)
	}
	after, tap, err := g.Tap(p, save, time.Now())
	if err != nil {
		return fmt.Errorf("gate %s refused card %s: %w", g.ID(), p.Card, err)
	}
	t := GateTap{Gate: g.ID(), Station: station, Passage: PassageSingle, Card: p.Card, Fare: iso8583.Amount(tap.Amount).String(),
		Balance: iso8583.Amount(after.Balance).String(), Counter: after.Counter}
	switch {
	case tap.Counter == 0:
		t.Passage = PassageIn
	case p.In() && !after.In():
		t.Passage = PassageOut
	}
	if tap.Counter != 0 {
		t.TAC = hex.EncodeToString(tap.TAC[:])
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(t)
	}
	where := t.Gate
	if station != "" {
		where += " (" + station + ")"
	}
	if t.Passage == PassageIn {
		fmt.Fprintf(stdout, "gate %s  card %s  in: entry recorded, nothing debited  balance %s\n", where, t.Card, t.Balance)
		return nil
	}
	fmt.Fprintf(stdout, "gate %s  card %s  %s  fare %s  balance %s  counter %d  TAC %s\n", where, t.Card, t.Passage, t.Fare, t.Balance, t.Counter, t.TAC)
	return nil
}

// openGate opens the gate and loads the blacklist file data into it, if
// any. A malformed gate is a usage error; a refused list is not.
func openGate(dir, id string, fare gate.Fare, blacklist []byte) (*gate.Gate, error) {
	g, err := gate.Open(dir, id, fare)
	if err != nil {
		return nil, usageError{err}
	}
	if blacklist != nil {
		if err := g.LoadBlacklist(blacklist); err != nil {
			return nil, err
		}
	}
	return g, nil
}
