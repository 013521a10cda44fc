package walletcli

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/tapswitch/tapswitch/bench/pos"
	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/settlement/transit"
)

// topUpView is the token service's answer about a top-up (docs/api.md).
type topUpView struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	RC       string `json:"rc"`
	Operator string `json:"operator"`
	Code     string `json:"operator_code"`
	Open     bool   `json:"open"`
	Card     string `json:"card"`
	Amount   int64  `json:"amount"`
	BankLeg  struct {
		TerminalID string `json:"terminal_id"`
		MerchantID string `json:"merchant_id"`
		Acquirer   string `json:"acquirer"`
		MCC        string `json:"mcc"`
		STAN       string `json:"stan"`
		Time       string `json:"time"`
	} `json:"bank_leg"`
	Grant *struct {
		BalanceAfter int64  `json:"balance_after"`
		MAC          string `json:"mac"`
		Sequence     uint32 `json:"sequence"`
	} `json:"grant"`
	PurseKey string `json:"purse_key"`
}

// runTransitOpen opens a city transit card paid by a bank card.
func runTransitOpen(args []string, stdout, stderr io.Writer) error {
	set, path := flags("transit-open", stdout, stderr)
	operator := set.String("operator", "", "the city operator's ID: BJT, SPTC, LNT, SZT, WHT or FST")
	card := set.String("card", "", "label of the bank card that pays (wallet tokens lists them)")
	amount := set.String("amount", "", "the opening load, in yuan, e.g. 50.00")
	label := set.String("label", "", "name of the transit card in the wallet (default: the operator's ID)")
	if err := parse(set, args); err != nil {
		return err
	}
	if *operator == "" || *card == "" || *amount == "" {
		return usagef("-operator, -card and -amount are required")
	}
	fen, err := iso8583.ParseDecimalAmount(*amount)
	if err != nil {
		return usageError{err}
	}
	name := *label
	if name == "" {
		name = *operator
	}
	_, err = topUp(*path, name, *operator, "", *card, int64(fen), stdout)
	return err
}

// runTransitTopUp loads a transit card of the wallet from a bank card.
func runTransitTopUp(args []string, stdout, stderr io.Writer) error {
	set, path := flags("transit-topup", stdout, stderr)
	label := set.String("transit", "", "label of the transit card to load (wallet transit lists them)")
	card := set.String("card", "", "label of the bank card that pays")
	amount := set.String("amount", "", "the load, in yuan, e.g. 20.00")
	if err := parse(set, args); err != nil {
		return err
	}
	if *label == "" || *card == "" || *amount == "" {
		return usagef("-transit, -card and -amount are required")
	}
	fen, err := iso8583.ParseDecimalAmount(*amount)
	if err != nil {
		return usageError{err}
	}
	w, err := load(*path, false)
	if err != nil {
		return err
	}
	tc, err := w.TransitCard(*label)
	if err != nil {
		return usageError{err}
	}
	_, err = topUp(*path, *label, "", tc.Card, *card, int64(fen), stdout)
	return err
}

// Outcome is what one top-up came to, for a program that drives the
// wallet as a library (bench/load): the switch's answer and how long the
// pay call took.
type Outcome struct {
	ID     string
	State  string // loaded, declined, undone (or, asked before the end, prepared or paying)
	RC     string
	Card   string // the transit card's number
	Amount int64  // fen
	// Pay is the pay call, from sending it to its answer; zero when the
	// top-up was not paid by this call (TopUpState).
	Pay time.Duration
}

// OpenTransit is wallet transit-open on the wallet file at path: it opens
// a card of operator (its member ID, e.g. BJT) labelled label, its first
// load of amount fen paid by the bank card bankLabel, and returns the
// outcome once applied to the wallet. On an error after the switch
// prepared the top-up, the Outcome has its ID.
func OpenTransit(path, label, operator, bankLabel string, amount int64, stdout io.Writer) (Outcome, error) {
	return topUp(path, label, operator, "", bankLabel, amount, stdout)
}

// TopUpTransit is wallet transit-topup: it loads the wallet's transit card
// label with amount fen paid by the bank card bankLabel.
func TopUpTransit(path, label, bankLabel string, amount int64, stdout io.Writer) (Outcome, error) {
	w, err := load(path, false)
	if err != nil {
		return Outcome{}, err
	}
	tc, err := w.TransitCard(label)
	if err != nil {
		return Outcome{}, err
	}
	return topUp(path, label, "", tc.Card, bankLabel, amount, stdout)
}

// TopUpState asks the switch for top-up id of the wallet's device as it
// stands (GET), without applying it.
func TopUpState(path, id string) (Outcome, error) {
	w, a, err := loggedIn(path)
	if err != nil {
		return Outcome{}, err
	}
	var v topUpView
	if err := a.call("GET", "/v1/devices/"+w.DeviceID+"/transit/topups/"+id, nil, &v); err != nil {
		return Outcome{}, err
	}
	return Outcome{ID: v.ID, State: v.State, RC: v.RC, Card: v.Card, Amount: v.Amount}, nil
}

// topUp prepares and pays one top-up, then applies its outcome.
func topUp(path, label, operator, transitCard, bankLabel string, amount int64, stdout io.Writer) (Outcome, error) {
	w, a, err := loggedIn(path)
	if err != nil {
		return Outcome{}, err
	}
	if err := finishTopUps(path, stdout); err != nil {
		return Outcome{}, err
	}
	if w, err = load(path, false); err != nil {
		return Outcome{}, err
	}
	if transitCard == "" && slices.ContainsFunc(w.Transit, func(c wallet.TransitCard) bool { return c.Label == label }) {
		return Outcome{}, usagef("the wallet already has a transit card %q; pass -label", label)
	}
	bank, err := w.Card(bankLabel)
	if err != nil {
		return Outcome{}, usageError{err}
	}
	key, err := bank.TokenKey()
	if err != nil {
		return Outcome{}, err
	}
	var v topUpView
	body := map[string]any{"operator": operator, "card": transitCard, "token": bank.Token, "amount": amount}
	if err := a.call("POST", "/v1/devices/"+w.DeviceID+"/transit/topups", body, &v); err != nil {
		return Outcome{}, err
	}
	o := Outcome{ID: v.ID, State: v.State, Card: v.Card, Amount: amount}
	pending := wallet.PendingTopUp{ID: v.ID, Label: label, Open: v.Open, Operator: v.Code, Card: v.Card, Amount: amount, Sequence: 1}
	pay := map[string]any{}
	if !v.Open {
		tc, err := w.TransitCard(label)
		if err != nil {
			return o, err
		}
		purse, err := tc.Purse()
		if err != nil {
			return o, err
		}
		req, err := purse.LoadRequest(amount)
		if err != nil {
			return o, fmt.Errorf("the purse refuses the load: %w", err)
		}
		pending.Balance, pending.Counter, pending.Sequence = req.Balance, req.Counter, req.Sequence
		pending.MAC = hex.EncodeToString(req.MAC[:])
		pay["purse"] = map[string]any{"card": req.Card, "amount": req.Amount, "balance": req.Balance,
			"counter": req.Counter, "sequence": req.Sequence, "mac": pending.MAC}
	}
	at, err := time.Parse(time.RFC3339, v.BankLeg.Time)
	if err != nil {
		return o, fmt.Errorf("the switch's bank leg time %q: %w", v.BankLeg.Time, err)
	}
	// The phone's secure element: the counter is spent and saved, and the
	// top-up remembered, before anything leaves.
	atc := bank.NextATC()
	w.TopUps = append(w.TopUps, pending)
	if err := wallet.Save(path, w); err != nil {
		return o, err
	}
	tap := pos.Tap{
		Terminal: pos.Terminal{TerminalID: v.BankLeg.TerminalID, MerchantID: v.BankLeg.MerchantID,
			MerchantName: "TRANSIT TOP-UP " + v.Operator, MCC: v.BankLeg.MCC, Acquirer: v.BankLeg.Acquirer},
		ProcessingCode: iso8583.ProcTransitTopUp, Token: bank.Token, TokenExpiry: bank.TokenExpiry,
		Amount: iso8583.Amount(amount), STAN: v.BankLeg.STAN, Time: at, Key: key, ATC: atc,
	}
	packed, err := iso8583.Pack(tap.Message())
	if err != nil {
		return o, err
	}
	pay["bank_leg"] = hex.EncodeToString(packed)
	var out topUpView
	sent := time.Now()
	err = a.call("POST", "/v1/devices/"+w.DeviceID+"/transit/topups/"+v.ID+"/pay", pay, &out)
	o.Pay = time.Since(sent)
	if err != nil {
		return o, fmt.Errorf("%w (the top-up is remembered: 'wallet transit' asks for its outcome)", err)
	}
	o.State, o.RC = out.State, out.RC
	return o, apply(path, out, stdout)
}

// finishTopUps asks for the outcome of every top-up the wallet paid without
// applying it, and applies it.
func finishTopUps(path string, stdout io.Writer) error {
	w, a, err := loggedIn(path)
	if err != nil {
		return err
	}
	for _, p := range w.TopUps {
		var v topUpView
		if err := a.call("GET", "/v1/devices/"+w.DeviceID+"/transit/topups/"+p.ID, nil, &v); err != nil {
			var ae *apiError
			if errors.As(err, &ae) && ae.Status == 404 {
				fmt.Fprintf(stdout, "top-up %s is unknown to the switch: it was never paid; forgotten\n", p.ID)
				if err := forget(path, p.ID); err != nil {
					return err
				}
				continue
			}
			return err
		}
		if v.State == "prepared" {
			fmt.Fprintf(stdout, "top-up %s was never paid; forgotten\n", p.ID)
			if err := forget(path, p.ID); err != nil {
				return err
			}
			continue
		}
		if err := apply(path, v, stdout); err != nil {
			return err
		}
	}
	return nil
}

func forget(path, id string) error {
	w, err := load(path, false)
	if err != nil {
		return err
	}
	w.TopUps = slices.DeleteFunc(w.TopUps, func(p wallet.PendingTopUp) bool { return p.ID == id })
	return wallet.Save(path, w)
}

// apply credits the purse with a grant, or reports why there is none, and
// forgets the pending top-up once its outcome is final.
func apply(path string, v topUpView, stdout io.Writer) error {
	w, err := load(path, false)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(w.TopUps, func(p wallet.PendingTopUp) bool { return p.ID == v.ID })
	if i < 0 {
		return fmt.Errorf("top-up %s is not one this wallet paid", v.ID)
	}
	p := w.TopUps[i]
	switch v.State {
	case "loaded":
	case "declined", "undone":
		fmt.Fprintf(stdout, "top-up of %s %s: %s (rc %s); no money was taken\n", p.Label, iso8583.Amount(p.Amount), v.State, v.RC)
		w.TopUps = slices.Delete(w.TopUps, i, i+1)
		return wallet.Save(path, w)
	default:
		return fmt.Errorf("top-up %s is %s; ask again later with 'wallet transit'", v.ID, v.State)
	}
	if v.Grant == nil {
		return fmt.Errorf("top-up %s loaded without a grant", v.ID)
	}
	var purse transit.Purse
	if p.Open {
		key, err := hex.DecodeString(v.PurseKey)
		if err != nil || len(key) != transit.PurseKeyBytes {
			return fmt.Errorf("top-up %s: the opening came without a purse key", v.ID)
		}
		purse = transit.Purse{Operator: p.Operator, Card: p.Card}
		copy(purse.Key[:], key)
	} else {
		tc, err := w.TransitCard(p.Label)
		if err != nil {
			return err
		}
		if purse, err = tc.Purse(); err != nil {
			return err
		}
	}
	req := transit.LoadRequest{Card: p.Card, Amount: p.Amount, Balance: p.Balance, Counter: p.Counter, Sequence: p.Sequence}
	g := transit.LoadGrant{BalanceAfter: v.Grant.BalanceAfter}
	if mac, err := hex.DecodeString(v.Grant.MAC); err != nil || len(mac) != transit.LoadMACBytes {
		return fmt.Errorf("top-up %s: the grant's MAC is malformed", v.ID)
	} else {
		copy(g.MAC[:], mac)
	}
	credited, err := purse.Credit(req, g)
	if err != nil {
		return fmt.Errorf("top-up %s: the purse refuses the grant: %w", v.ID, err)
	}
	if p.Open {
		w.Transit = append(w.Transit, wallet.TransitCardOf(p.Label, credited))
	} else if err := w.SetPurse(p.Label, credited); err != nil {
		return err
	}
	w.TopUps = slices.Delete(w.TopUps, i, i+1)
	if err := wallet.Save(path, w); err != nil {
		return err
	}
	if p.Open {
		// The phone holds the key now: the switch erases its copy. If this
		// call fails, the copy stays sealed at the switch, for this device.
		if _, a, err := loggedIn(path); err == nil {
			if err := a.call("POST", "/v1/devices/"+w.DeviceID+"/transit/topups/"+v.ID+"/ack", nil, nil); err != nil {
				fmt.Fprintf(stdout, "the switch keeps the purse key until acknowledged: %v\n", err)
			}
		}
	}
	verb := "loaded"
	if p.Open {
		verb = "opened"
	}
	fmt.Fprintf(stdout, "%s %s card %s with %s: balance %s\n", verb, v.Operator, p.Card, iso8583.Amount(p.Amount), iso8583.Amount(credited.Balance))
	return nil
}

// runTransit finishes pending top-ups and lists the transit cards.
func runTransit(args []string, stdout, stderr io.Writer) error {
	set, path := flags("transit", stdout, stderr)
	if err := parse(set, args); err != nil {
		return err
	}
	if err := finishTopUps(*path, stdout); err != nil {
		return err
	}
	w, err := load(*path, false)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LABEL\tOPERATOR\tCARD\tBALANCE\tTAPS\tLOADS")
	for _, c := range w.Transit {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\n", c.Label, c.Operator, c.Card, iso8583.Amount(c.Balance), c.Counter, c.LoadSequence)
	}
	return tw.Flush()
}
