// Package walletcli is the phone wallet behind cmd/wallet: it walks the
// four steps of a card binding against the token service (log in, add a
// card, key in its details, confirm the SMS code) and keeps the phone's
// session, device ID, tokens and their keys in a wallet file (bench/wallet),
// from which termsim taps.
package walletcli

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/internal/cli"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/sms"
)

// DefaultAPI is switchd -dev's public listener, where the token service is
// (plain HTTP on loopback; a switch with public_tls_cert is https://).
const DefaultAPI = "http://127.0.0.1:8585"

const usage = `usage: wallet COMMAND [flags]

The four steps of adding a card, then the card list:
  login      wallet login -login alice -password 'secret pass' [-create]
  add-card   wallet add-card -pan 6222020200112345679 -expiry 2812 -cvn2 123
  confirm    wallet confirm -code 123456
  dev-code   wallet dev-code          prints the SMS code the cardholder's phone got
                                      (dev: read from switchd -dev's SMS outbox)
  tokens     wallet tokens            this phone's cards and their statuses

City transit cards (docs/transit.md):
  transit-open   wallet transit-open -operator BJT -card LABEL -amount 50.00
                                      opens a card, its first load paid by a bank card
  transit-topup  wallet transit-topup -transit BJT -card LABEL -amount 20.00
  transit        wallet transit       the transit cards (finishes a top-up whose answer was lost)

Every command takes -wallet FILE (default: the dev wallet, which termsim
taps from). Run 'wallet COMMAND -h' for the flags (docs/cli.md).
`

var commands = []string{"login", "add-card", "confirm", "dev-code", "tokens", "transit-open", "transit-topup", "transit"}

// Run runs the wallet with args (without the program name) and returns the
// exit code: 0 done, 1 failed, 2 bad usage.
func Run(args []string, stdout, stderr io.Writer) int {
	i, code := cli.Dispatch("wallet", usage, commands, args, stdout, stderr)
	if i < 0 {
		return code
	}
	run := []func([]string, io.Writer, io.Writer) error{runLogin, runAddCard, runConfirm, runDevCode, runTokens,
		runTransitOpen, runTransitTopUp, runTransit}[i]
	err := run(args[1:], stdout, stderr)
	var ue usageError
	switch {
	case err == nil, errors.Is(err, cli.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "wallet %s: %v (wallet %s -h lists the flags)\n", args[0], err, args[0])
		return 2
	default:
		fmt.Fprintf(stderr, "wallet %s: %v\n", args[0], err)
		return 1
	}
}

type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// flags makes a command's flag set with -wallet.
func flags(name string, stdout, stderr io.Writer) (*cli.FlagSet, *string) {
	set := cli.New("wallet "+name, "", stdout, stderr)
	path := set.String("wallet", wallet.DevFilePath(), "wallet `FILE`")
	return set, path
}

func parse(set *cli.FlagSet, args []string) error {
	err := set.Parse(args)
	if err != nil && !errors.Is(err, cli.ErrHelp) {
		return usageError{err}
	}
	return err
}

// load reads the wallet file; a missing one is an empty wallet when
// missingOK, else it says to log in first.
func load(path string, missingOK bool) (wallet.File, error) {
	w, err := wallet.Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		if missingOK {
			return wallet.File{}, nil
		}
		return wallet.File{}, fmt.Errorf("no wallet at %s: run 'wallet login' first", path)
	}
	return w, err
}

// loggedIn reads the wallet file of a logged-in phone.
func loggedIn(path string) (wallet.File, *api, error) {
	w, err := load(path, false)
	if err != nil {
		return w, nil, err
	}
	if w.Session == "" || w.API == "" || w.DeviceID == "" {
		return w, nil, fmt.Errorf("the wallet at %s is not logged in: run 'wallet login' first", path)
	}
	return w, newAPI(w.API, w.Session), nil
}

func runLogin(args []string, stdout, stderr io.Writer) error {
	set, path := flags("login", stdout, stderr)
	base := set.String("api", "", "token service `URL`, the switch's public listener (default: the wallet's, else "+DefaultAPI+")")
	terminals := set.String("switch", "", "the switch's terminal listener `HOST:PORT`, saved in the wallet for termsim (default: the wallet's)")
	login := set.String("login", "", "wallet account")
	password := set.String("password", "", "password")
	device := set.String("device", "", "this phone's device `ID` (default: kept from the wallet, else generated)")
	create := set.Bool("create", false, "create the account first (dev convenience)")
	if err := parse(set, args); err != nil {
		return err
	}
	if *login == "" || *password == "" {
		return usagef("-login and -password are required")
	}
	w, err := load(*path, true)
	if err != nil {
		return err
	}
	switch {
	case *base == "" && w.API != "":
		*base = w.API
	case *base == "":
		*base = DefaultAPI
	}
	if *terminals != "" {
		w.Switch = *terminals
	}
	switch {
	case *device != "":
		w.DeviceID = *device
	case w.DeviceID == "":
		if w.DeviceID, err = newDeviceID(); err != nil {
			return err
		}
	}
	a := newAPI(*base, "")
	var created struct {
		Login string `json:"login"`
	}
	if *create {
		if err := a.call("POST", "/v1/accounts", map[string]string{"login": *login, "password": *password}, &created); err != nil {
			return fmt.Errorf("create account: %w", err)
		}
		fmt.Fprintf(stdout, "account %s created\n", created.Login)
	}
	// The session is this phone's: turning the phone off on the
	// lost-phone page ends it, and an off phone cannot log in.
	var sess struct {
		Session   string    `json:"session"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	body := map[string]string{"login": *login, "password": *password, "device": w.DeviceID}
	if err := a.call("POST", "/v1/sessions", body, &sess); err != nil {
		return err
	}
	w.API, w.Login, w.Session = a.base, strings.ToLower(*login), sess.Session
	if err := wallet.Save(*path, w); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "logged in as %s on device %s; the session expires at %s\n",
		w.Login, w.DeviceID, sess.ExpiresAt.Local().Format(time.TimeOnly))
	return nil
}

func newDeviceID() (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "PHONE-" + strings.ToUpper(hex.EncodeToString(b)), nil
}

func runAddCard(args []string, stdout, stderr io.Writer) error {
	set, path := flags("add-card", stdout, stderr)
	pan := set.String("pan", "", "card number")
	expiry := set.String("expiry", "", "card expiry `YYMM`")
	cvn2 := set.String("cvn2", "", "the 3 digits on the back of the card")
	label := set.String("label", "", "name of the card in the wallet (default: card-<last 4 digits>)")
	if err := parse(set, args); err != nil {
		return err
	}
	if *pan == "" || *expiry == "" || *cvn2 == "" {
		return usagef("-pan, -expiry and -cvn2 are required")
	}
	w, a, err := loggedIn(*path)
	if err != nil {
		return err
	}
	var got struct {
		BindingID     string    `json:"binding_id"`
		Card          string    `json:"card"`
		Issuer        string    `json:"issuer"`
		CodeSentTo    string    `json:"code_sent_to"`
		CodeExpiresAt time.Time `json:"code_expires_at"`
	}
	body := map[string]string{"pan": *pan, "expiry": *expiry, "cvn2": *cvn2}
	if err := a.call("POST", "/v1/devices/"+w.DeviceID+"/cards", body, &got); err != nil {
		return err
	}
	name := *label
	if name == "" {
		name = freeLabel(w, "card-"+got.Card[max(0, len(got.Card)-4):])
	}
	w.Pending = &wallet.Pending{BindingID: got.BindingID, Label: name, Card: got.Card, Issuer: got.Issuer}
	if err := wallet.Save(*path, w); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s approved card %s; a code was sent by SMS to the cardholder's phone %s, the number the bank has on file (valid until %s).\n"+
		"confirm it with: wallet confirm -code NNNNNN   (dev: wallet confirm -code $(wallet dev-code))\n",
		got.Issuer, got.Card, got.CodeSentTo, got.CodeExpiresAt.Local().Format(time.TimeOnly))
	return nil
}

// freeLabel returns want, or want-2, want-3, ... when a card has it.
func freeLabel(w wallet.File, want string) string {
	taken := func(l string) bool {
		return slices.ContainsFunc(w.Cards, func(c wallet.Card) bool { return c.Label == l })
	}
	name := want
	for i := 2; taken(name); i++ {
		name = fmt.Sprintf("%s-%d", want, i)
	}
	return name
}

func runConfirm(args []string, stdout, stderr io.Writer) error {
	set, path := flags("confirm", stdout, stderr)
	code := set.String("code", "", "the 6-digit code from the SMS")
	if err := parse(set, args); err != nil {
		return err
	}
	if *code == "" {
		return usagef("-code is required")
	}
	w, a, err := loggedIn(*path)
	if err != nil {
		return err
	}
	if w.Pending == nil {
		return errors.New("no card is waiting for a code: run 'wallet add-card' first")
	}
	var got struct {
		Token       string `json:"token"`
		TokenExpiry string `json:"token_expiry"`
		Key         string `json:"key"`
		DeviceID    string `json:"device_id"`
		Issuer      string `json:"issuer"`
		Product     string `json:"product"`
	}
	err = a.call("POST", "/v1/bindings/"+w.Pending.BindingID+"/confirm", map[string]string{"code": *code}, &got)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == 410 {
		w.Pending = nil // the binding is over: add the card again
		if serr := wallet.Save(*path, w); serr != nil {
			return errors.Join(err, serr)
		}
	}
	if err != nil {
		return err
	}
	card := wallet.Card{
		Label: w.Pending.Label, Token: got.Token, TokenExpiry: got.TokenExpiry, DeviceID: got.DeviceID,
		Issuer: got.Issuer, Product: got.Product, Key: got.Key, ATC: 0,
	}
	w.Cards = append(w.Cards, card)
	w.Pending = nil
	if err := wallet.Save(*path, w); err != nil {
		return fmt.Errorf("the token was issued but the wallet could not save it (delete it and add the card again): %w", err)
	}
	fmt.Fprintf(stdout, "card %q added: token %s, expires %s; tap it with: termsim pay -card %s -amount 12.34\n",
		card.Label, iso8583.PAN(card.Token), card.TokenExpiry, card.Label)
	return nil
}

// runDevCode reads the code the way the cardholder would, off their phone:
// in dev the phone is the switch's SMS outbox file, read directly, never
// through the API (which does not give codes to anyone). The outbox line
// is found by the pending binding's ID.
func runDevCode(args []string, stdout, stderr io.Writer) error {
	set, path := flags("dev-code", stdout, stderr)
	data := set.String("data", wallet.DevDataDir(), "the switch's data `DIR`, where "+sms.OutboxFileName+" is")
	if err := parse(set, args); err != nil {
		return err
	}
	w, err := load(*path, false)
	if err != nil {
		return err
	}
	if w.Pending == nil {
		return errors.New("no card is waiting for a code: run 'wallet add-card' first")
	}
	m, err := sms.Latest(filepath.Join(*data, sms.OutboxFileName), w.Pending.BindingID)
	if err != nil {
		return err
	}
	code, err := sms.Code(m.Text)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, code)
	return nil
}

func runTokens(args []string, stdout, stderr io.Writer) error {
	set, path := flags("tokens", stdout, stderr)
	all := set.Bool("deleted", false, "list deleted tokens too")
	if err := parse(set, args); err != nil {
		return err
	}
	w, a, err := loggedIn(*path)
	if err != nil {
		return err
	}
	var got struct {
		Off    bool `json:"off"`
		Tokens []struct {
			Token       string `json:"token"`
			TokenExpiry string `json:"token_expiry"`
			Card        string `json:"card"`
			Issuer      string `json:"issuer"`
			Product     string `json:"product"`
			Status      string `json:"status"`
		} `json:"tokens"`
	}
	q := ""
	if *all {
		q = "?deleted=true"
	}
	if err := a.call("GET", "/v1/devices/"+w.DeviceID+"/tokens"+q, nil, &got); err != nil {
		return err
	}
	state := "on"
	if got.Off {
		state = "OFF (lost-phone switch: every token suspended)"
	}
	fmt.Fprintf(stdout, "device %s of %s: %s\n", w.DeviceID, w.Login, state)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LABEL\tTOKEN\tEXPIRES\tCARD\tISSUER\tSTATUS")
	for _, t := range got.Tokens {
		label := "-"
		if i := slices.IndexFunc(w.Cards, func(c wallet.Card) bool { return c.Token == t.Token }); i >= 0 {
			label = w.Cards[i].Label
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s %s\t%s\n", label, iso8583.PAN(t.Token), t.TokenExpiry, t.Card, t.Issuer, t.Product, t.Status)
	}
	return tw.Flush()
}
