// Package termsim is the POS terminal simulator behind cmd/termsim: it taps
// a token from a wallet file (or given on the command line) at the switch
// and prints each answer as a readable line or as JSON.
package termsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	moov "github.com/moov-io/iso8583"

	"github.com/tapswitch/tapswitch/bench/pos"
	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/internal/cli"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/acquirer"
)

// DefaultAddr is switchd -dev's terminal listener.
const DefaultAddr = "127.0.0.1:8583"

const usage = `usage: termsim COMMAND [flags]

commands:
  pay      purchase (DE3 000000)      termsim pay -card approve -amount 12.34
  refund   refund (DE3 200000)        termsim refund -card approve -amount 2.00
           of the card's last approved purchase at this terminal, or of
           -original STAN/MMDDhhmmss (DE11/DE7 of the purchase)
  topup    transit top-up (210000)    termsim topup -card approve -amount 50
  balance  balance inquiry (310000)   termsim balance -card transit
  echo     network echo test (0800)   termsim echo
  gate     a metro gate, offline      termsim gate -card metro -gate 100100000001 -fare 3.00
           takes the fare from a transit card's purse in the wallet and
           records the tap; -write-file YYYYMMDD writes the gate's tap file

Each tap carries DE55 with an ARQC under the wallet card's key and its next
ATC, saved back to the wallet first; the phone's fingerprint check is in it
unless -no-fingerprint (a purchase above the CVM limit, or any balance
inquiry, then gets 05). -token taps a token that is in no wallet: with
-expiry and -token-key (its cryptogram key) it gets a real answer; without
-token-key the tap has no cryptogram and the switch refuses it.
Every request carries a MAC under the terminal's key, derived from its
acquirer's key in -acquirer-keys (switchd -dev writes it beside its wallet).

Run 'termsim COMMAND -h' for the flags (docs/cli.md). Defaults fit
'switchd -dev'.
`

var commands = []string{"pay", "refund", "topup", "balance", "echo", "gate"}

var processingCodes = map[string]string{
	"pay":     iso8583.ProcPurchase,
	"refund":  iso8583.ProcRefund,
	"topup":   iso8583.ProcTransitTopUp,
	"balance": iso8583.ProcBalanceInquiry,
}

// Answer is one response as termsim reports it.
type Answer struct {
	MTI       string `json:"mti"`
	RC        string `json:"rc"`
	Text      string `json:"text"`
	AuthCode  string `json:"auth_code"`
	RRN       string `json:"rrn"`
	STAN      string `json:"stan"`
	Token     string `json:"token"`
	Amount    string `json:"amount,omitempty"`
	ATC       uint32 `json:"atc,omitempty"` // the counter the tap's cryptogram used
	LatencyUS int64  `json:"latency_us"`
}

// Run runs termsim with args (without the program name). It returns the
// exit code: 0 when every request got an answer, 1 when one did not, 2 for
// bad usage.
func Run(args []string, stdout, stderr io.Writer) int {
	if i, code := cli.Dispatch("termsim", usage, commands, args, stdout, stderr); i < 0 {
		return code
	}
	cmd := args[0]
	var err error
	switch cmd {
	case "echo":
		err = runEcho(args[1:], stdout, stderr)
	case "gate":
		err = runGate(args[1:], stdout, stderr)
	default:
		err = runTap(cmd, args[1:], stdout, stderr)
	}
	var ue usageError
	switch {
	case err == nil, errors.Is(err, cli.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "termsim %s: %v (termsim %s -h lists the flags)\n", cmd, err, cmd)
		return 2
	default:
		fmt.Fprintf(stderr, "termsim %s: %v\n", cmd, err)
		return 1
	}
}

type usageError struct{ error }

// asUsage marks a parse error as bad usage; -h stays cli.ErrHelp.
func asUsage(err error) error {
	if errors.Is(err, cli.ErrHelp) {
		return err
	}
	return usageError{err}
}

type tapFlags struct {
	switchAddr, walletPath, card, token, expiry, amount, terminal, entryMode, key string
	keysPath, original                                                            string
	count                                                                         int
	atc                                                                           uint
	timeout                                                                       time.Duration
	asJSON, noFingerprint                                                         bool
}

func parseTapFlags(cmd string, args []string, stdout, stderr io.Writer) (tapFlags, error) {
	var f tapFlags
	fs := cli.New("termsim "+cmd, "", stdout, stderr)
	fs.StringVar(&f.switchAddr, "switch", "", "the switch's terminal listener `HOST:PORT` (default: the wallet's, else "+DefaultAddr+")")
	fs.StringVar(&f.walletPath, "wallet", wallet.DevFilePath(), "wallet `FILE`")
	fs.StringVar(&f.card, "card", "approve", "`LABEL` of the wallet card to tap")
	fs.StringVar(&f.token, "token", "", "tap this token instead of a wallet card")
	fs.StringVar(&f.expiry, "expiry", "", "token expiry `YYMM` (with -token)")
	fs.StringVar(&f.key, "token-key", "", "the token's cryptogram key, 32 `HEX` digits (with -token; without it no DE55, and the switch refuses the tap)")
	fs.UintVar(&f.atc, "atc", 1, "the counter of the first tap (with -token -token-key)")
	fs.BoolVar(&f.noFingerprint, "no-fingerprint", false, "tap without the fingerprint verified on the phone (CVM results: no CVM)")
	fs.StringVar(&f.amount, "amount", "1.00", "amount in yuan, e.g. 12.34")
	fs.StringVar(&f.terminal, "terminal", pos.DemoTerminal.TerminalID, "terminal ID (DE41), 8 characters")
	fs.StringVar(&f.entryMode, "entry-mode", "072", "POS entry mode (DE22); 07x is contactless chip")
	fs.IntVar(&f.count, "count", 1, "how many taps, one after the other")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "how long to wait for each answer")
	fs.BoolVar(&f.asJSON, "json", false, "print one JSON object per answer on stdout")
	fs.StringVar(&f.keysPath, "acquirer-keys", "", "acquirer key `FILE` the terminal's MAC key derives from (default: dev-acquirer.keys beside -wallet)")
	if cmd == "refund" {
		fs.StringVar(&f.original, "original", "", "the purchase refunded, as `STAN/MMDDhhmmss` (its DE11 and DE7; default: the card's last purchase here)")
	}
	fs.Alias("addr", "switch")
	fs.Alias("key", "token-key")
	if err := fs.Parse(args); err != nil {
		return f, asUsage(err)
	}
	if f.keysPath == "" {
		f.keysPath = wallet.DevAcquirerKeysPath(f.walletPath)
	}
	if f.count < 1 || f.count > 100000 {
		return f, usageError{fmt.Errorf("-count %d outside 1..100000", f.count)}
	}
	if len(f.terminal) != 8 {
		return f, usageError{fmt.Errorf("-terminal %q must be 8 characters", f.terminal)}
	}
	if f.atc < 1 || f.atc > math.MaxUint32 {
		return f, usageError{fmt.Errorf("-atc %d outside 1..%d", f.atc, uint32(math.MaxUint32))}
	}
	return f, nil
}

// resolveCard finds the token to tap, as the phone holding it, and the
// switch address.
func (f tapFlags) resolveCard() (*phone, string, error) {
	addr := f.switchAddr
	if f.token != "" {
		if len(f.expiry) != 4 {
			return nil, "", usageError{errors.New("-token needs -expiry YYMM")}
		}
		if addr == "" {
			addr = DefaultAddr
		}
		card := wallet.Card{Label: "command line", Token: f.token, TokenExpiry: f.expiry, Key: f.key}
		key, err := card.TokenKey()
		if err != nil {
			return nil, "", usageError{fmt.Errorf("-token-key: %v", err)}
		}
		return &phone{card: card, key: key, next: uint32(f.atc)}, addr, nil
	}
	w, err := wallet.Load(f.walletPath)
	if err != nil {
		return nil, "", fmt.Errorf("%w (is 'switchd -dev' running? or pass -wallet, or -token -expiry -token-key)", err)
	}
	card, err := w.Card(f.card)
	if err != nil {
		return nil, "", usageError{err}
	}
	key, err := card.TokenKey()
	if err != nil {
		return nil, "", err
	}
	if addr == "" {
		addr = w.Switch
	}
	if addr == "" {
		addr = DefaultAddr
	}
	return &phone{card: card, key: key, file: &w, path: f.walletPath}, addr, nil
}

// phone is the card side of a tap: the token's key and its counter. A
// wallet card's counter is advanced and saved to the wallet file before the
// tap leaves, as a phone's secure element does, so that no counter is used
// twice even if termsim dies before the answer.
type phone struct {
	card wallet.Card
	key  []byte
	file *wallet.File // nil for -token
	path string
	next uint32 // -token: the next tap's counter
}

// nextATC returns the counter of the tap about to be made.
func (p *phone) nextATC() (uint32, error) {
	if p.key == nil {
		return 0, nil
	}
	if p.file == nil {
		atc := p.next
		p.next++
		return atc, nil
	}
	atc := p.card.NextATC()
	if err := wallet.Save(p.path, *p.file); err != nil {
		return 0, fmt.Errorf("saving the advanced ATC: %w", err)
	}
	return atc, nil
}

func runTap(cmd string, args []string, stdout, stderr io.Writer) error {
	f, err := parseTapFlags(cmd, args, stdout, stderr)
	if err != nil {
		return err
	}
	amount, err := iso8583.ParseDecimalAmount(f.amount)
	if err != nil {
		return usageError{err}
	}
	ph, addr, err := f.resolveCard()
	if err != nil {
		return err
	}
	keys, err := acquirer.LoadKeysFile(f.keysPath)
	if err != nil {
		return fmt.Errorf("%w (is 'switchd -dev' running? or pass -acquirer-keys)", err)
	}
	terminal := pos.DemoTerminal
	terminal.TerminalID = f.terminal
	var orig pos.Original
	if cmd == "refund" {
		if orig, err = f.refunded(ph); err != nil {
			return err
		}
	}
	client, err := pos.Dial(addr, f.timeout, keys)
	if err != nil {
		return fmt.Errorf("no connection to the switch at %s: %w", addr, err)
	}
	defer client.Close()
	stan := stanFromClock(time.Now())
	for i := range f.count {
		atc, err := ph.nextATC()
		if err != nil {
			return err
		}
		tap := pos.Tap{
			Terminal: terminal, ProcessingCode: processingCodes[cmd], Token: ph.card.Token,
			TokenExpiry: ph.card.TokenExpiry, Amount: amount, STAN: nextSTAN(stan, i),
			Time: time.Now(), POSEntryMode: f.entryMode,
			Key: ph.key, ATC: atc, NoFingerprint: f.noFingerprint, Original: orig,
		}
		msg := tap.Message()
		a, err := exchange(client, msg, atc, f.timeout, f.asJSON, stdout)
		if err != nil {
			return err
		}
		if cmd == "pay" && a.RC == iso8583.RCApproved {
			if err := ph.rememberPurchase(msg, amount); err != nil {
				return err
			}
		}
	}
	return nil
}

// refunded is the purchase a refund names: -original, else the card's
// last approved purchase at this terminal.
func (f tapFlags) refunded(ph *phone) (pos.Original, error) {
	if f.original != "" {
		stan, de7, ok := strings.Cut(f.original, "/")
		if !ok || len(stan) != 6 || len(de7) != 10 || !digits(stan+de7) {
			return pos.Original{}, usageError{fmt.Errorf("-original %q: want STAN/MMDDhhmmss, e.g. 123456/1125083015", f.original)}
		}
		return pos.Original{STAN: stan, TransmissionTime: de7}, nil
	}
	last := ph.card.LastPurchase
	if last == nil || last.Terminal != f.terminal {
		return pos.Original{}, usageError{fmt.Errorf("card %q has no purchase at terminal %s to refund: pay first, or give -original STAN/MMDDhhmmss", ph.card.Label, f.terminal)}
	}
	return pos.Original{STAN: last.STAN, TransmissionTime: last.TransmissionTime}, nil
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// rememberPurchase saves an approved purchase in the wallet card, for a
// later refund to name (a wallet card only).
func (p *phone) rememberPurchase(msg *moov.Message, amount iso8583.Amount) error {
	if p.file == nil {
		return nil
	}
	last := &wallet.Purchase{Terminal: iso8583.FieldValue(msg, iso8583.FieldTerminalID),
		STAN: iso8583.FieldValue(msg, iso8583.FieldSTAN), TransmissionTime: iso8583.FieldValue(msg, iso8583.FieldTransmissionTime),
		Amount: int64(amount)}
	p.card.LastPurchase = last
	for i := range p.file.Cards {
		if p.file.Cards[i].Label == p.card.Label {
			p.file.Cards[i].LastPurchase = last
		}
	}
	return wallet.Save(p.path, *p.file)
}

func runEcho(args []string, stdout, stderr io.Writer) error {
	fs := cli.New("termsim echo", "", stdout, stderr)
	addr := fs.String("switch", "", "the switch's terminal listener `HOST:PORT` (default: the wallet's, else "+DefaultAddr+")")
	walletPath := fs.String("wallet", wallet.DevFilePath(), "wallet `FILE`, for its switch address (an echo taps no card)")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the answer")
	asJSON := fs.Bool("json", false, "print the answer as JSON on stdout")
	keysPath := fs.String("acquirer-keys", "", "acquirer key `FILE` the terminal's MAC key derives from (default: dev-acquirer.keys beside -wallet)")
	fs.Alias("addr", "switch")
	if err := fs.Parse(args); err != nil {
		return asUsage(err)
	}
	if *keysPath == "" {
		*keysPath = wallet.DevAcquirerKeysPath(*walletPath)
	}
	if *addr == "" {
		*addr = DefaultAddr
		if w, err := wallet.Load(*walletPath); err == nil && w.Switch != "" {
			*addr = w.Switch
		}
	}
	keys, err := acquirer.LoadKeysFile(*keysPath)
	if err != nil {
		return fmt.Errorf("%w (is 'switchd -dev' running? or pass -acquirer-keys)", err)
	}
	client, err := pos.Dial(*addr, *timeout, keys)
	if err != nil {
		return fmt.Errorf("no connection to the switch at %s: %w", *addr, err)
	}
	defer client.Close()
	now := time.Now()
	_, err = exchange(client, pos.Echo(pos.DemoTerminal, nextSTAN(stanFromClock(now), 0), now), 0, *timeout, *asJSON, stdout)
	return err
}

// exchange sends one request, waits for its answer and prints it with the
// tap's counter (0: none).
func exchange(client *pos.Client, req *moov.Message, atc uint32, timeout time.Duration, asJSON bool, stdout io.Writer) (Answer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	resp, err := client.Do(ctx, req)
	if err != nil {
		return Answer{}, fmt.Errorf("no answer: %w", err)
	}
	a := answerOf(resp, time.Since(start))
	a.ATC = atc
	if asJSON {
		return a, json.NewEncoder(stdout).Encode(a)
	}
	_, err = fmt.Fprintln(stdout, a.line())
	return a, err
}

func answerOf(resp *moov.Message, latency time.Duration) Answer {
	mti, _ := resp.GetMTI()
	rc := iso8583.FieldValue(resp, iso8583.FieldResponseCode)
	a := Answer{
		MTI: mti, RC: rc, Text: iso8583.ResponseText(rc),
		AuthCode:  iso8583.FieldValue(resp, iso8583.FieldAuthCode),
		RRN:       iso8583.FieldValue(resp, iso8583.FieldRRN),
		STAN:      iso8583.FieldValue(resp, iso8583.FieldSTAN),
		Token:     iso8583.FieldValue(resp, iso8583.FieldPAN),
		LatencyUS: latency.Microseconds(),
	}
	if v := iso8583.FieldValue(resp, iso8583.FieldAmount); v != "" {
		if amt, err := iso8583.ParseAmountField(v); err == nil {
			a.Amount = amt.String()
		}
	}
	return a
}

func (a Answer) line() string {
	s := fmt.Sprintf("%s rc=%s (%s)", a.MTI, a.RC, a.Text)
	if a.AuthCode != "" {
		s += " auth=" + a.AuthCode
	}
	if a.Token != "" {
		s += " token=" + a.Token
	}
	if a.Amount != "" {
		s += " amount=" + a.Amount
	}
	if a.ATC != 0 {
		s += fmt.Sprintf(" atc=%d", a.ATC)
	}
	return s + fmt.Sprintf(" stan=%s rrn=%s %.2fms", a.STAN, a.RRN, float64(a.LatencyUS)/1000)
}

// stanFromClock picks a starting STAN from the clock's microseconds, so
// runs in the same second do not share a duplicate key.
func stanFromClock(now time.Time) int {
	return int(now.UnixMicro() % 1000000)
}

func nextSTAN(start, i int) string {
	n := (start+i)%999999 + 1
	return fmt.Sprintf("%06d", n)
}
