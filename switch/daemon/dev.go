package daemon

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/bench/issuersim"
	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/bench/world"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/router/issuers"
	"github.com/tapswitch/tapswitch/settlement/transit"
	"github.com/tapswitch/tapswitch/switch/acquirer"
	"github.com/tapswitch/tapswitch/switch/node"
	"github.com/tapswitch/tapswitch/switch/vault"
)

// Dev-mode constants: the demo wallet's device, account and requestor.
const (
	devCardsPerBIN  = 200
	devDeviceID     = "DEV-PHONE-0001"
	devAccount      = "dev@wallet"
	devRequestorID  = "40010075001"
	devKeyFileName  = "dev-vault.keys"  // the switch's: index, token master, data keys
	devSettleKeys   = "dev-settle.keys" // settle's: the data keys only (docs/keys.md)
	devUnknownLabel = "unknown"
)

// demoOutcome is what a tap of each demo card gets, written into the wallet
// so a user can check the switch against it.
var demoOutcome = map[string]string{
	"approve": "00", "insufficient": "51", "expired": "54",
	"suspended": "62", devUnknownLabel: "14", "transit": "00",
}

// DevWorld is a switch node with the simulated world around it.
type DevWorld struct {
	Node       *node.Node
	Fleet      *issuersim.Fleet
	WalletPath string
	Data       string
	// SettleKeyPath is the key file to give settle: the dev switch's data
	// keys only, rewritten at every start.
	SettleKeyPath string
	// AcquirerKeys are the keys of the acquirers of the registry, as their
	// hosts hold them (written to DATA/dev-acquirer.keys): the simulated
	// terminals derive their MAC keys from them.
	AcquirerKeys acquirer.Keys
	// OperatorKeyPath is the transit operators' master key file
	// (DATA/operator.keys, made once): the simulated operators grant loads
	// with it and settle verifies the gates' taps with it.
	OperatorKeyPath string
	// Bindable is a card of the simulated world that no demo token uses:
	// the banner offers it for binding with cmd/wallet.
	Bindable world.Card
}

// Close shuts the node down (draining terminals), then the issuers.
func (d *DevWorld) Close() error {
	err := d.Node.Shutdown()
	if d.Fleet != nil {
		d.Fleet.Close()
	}
	return err
}

// runDev is switchd -dev: simulated issuers on free loopback ports, a vault
// key generated into the data directory, demo tokens in the vault, a dev
// wallet file, a log line per transaction. Its console shows info and the
// transactions, no link chatter (trace), and the banner once the links are
// up, so that it stays on screen until the first tap.
func runDev(ctx context.Context, cfg node.Config, opts Options) error {
	cfg.Data = wallet.DevDataDir()
	cfg.LogLevel = "info" // with the one line per transaction; -log-level debug shows more
	cfg.LogTransactions = true
	cfg.AdminPprof = true
	cfg.CloseDayOnDemand = true // tapctl close-day: settle a day in minutes (README, "Settling a day")
	applyOverrides(&cfg, opts)
	log, err := newLogger(cfg.LogLevel, opts.Out, opts.LogFormat != LogFormatJSON)
	if err != nil {
		return err
	}
	d, err := startDev(cfg, opts.Seed, opts.DevExternalIssuers, log)
	if err != nil {
		return err
	}
	debug.SetGCPercent(cfg.GCPercent) // validated by Open
	logLinks(ctx, d.Node, log)        // the banner comes after start-up's lines, last
	printBanner(opts.Out, d)
	err = serveUntilDone(ctx, d.Node, log)
	if d.Fleet != nil {
		d.Fleet.Close()
	}
	return err
}

// StartDev builds the dev world for cfg (its key settings are replaced by a
// key file generated in cfg.Data) and starts serving, with the simulated
// issuers in this process.
func StartDev(cfg node.Config, seed int64, log zerolog.Logger) (*DevWorld, error) {
	return startDev(cfg, seed, false, log)
}

// startDev is StartDev; with externalIssuers the links go to the issuer
// addresses of the configuration, where cmd/issuersim (same seed) serves the
// same cards, so the bench harness can measure switch and issuers apart.
func startDev(cfg node.Config, seed int64, externalIssuers bool, log zerolog.Logger) (*DevWorld, error) {
	cfg.KeyFile, cfg.KeyEnv = filepath.Join(cfg.Data, devKeyFileName), ""
	settleKeys := filepath.Join(cfg.Data, devSettleKeys)
	added, err := ensureDevKeys(cfg.Data, cfg.KeyFile, settleKeys)
	if err != nil {
		return nil, err
	}
	if added {
		log.Warn().Msg("dev key file had no token master: added one; cards bound with cmd/wallet before now " +
			"hold keys derived the old way and get 59 until bound again")
	}
	list, table, err := cfg.Network()
	if err != nil {
		return nil, err
	}
	cfg.AcquirerKeysFile = filepath.Join(cfg.Data, wallet.DevAcquirerKeysFileName)
	acqKeys, err := ensureDevAcquirerKeys(cfg, list)
	if err != nil {
		return nil, err
	}
	operatorKeys := filepath.Join(cfg.Data, DevOperatorKeysFileName)
	masters, err := ensureDevOperatorKeys(operatorKeys, list)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	demo := world.Demo(table, now)
	cards := world.Generate(table, seed, devCardsPerBIN, now)
	for _, d := range demo {
		cards = append(cards, d.Card)
	}
	var fleet *issuersim.Fleet
	overrides := make(map[string]string, len(list))
	if !externalIssuers {
		fleet, err = issuersim.StartAllWith("127.0.0.1", list, issuersim.FleetConfig{Cards: cards, Seed: seed,
			Logger: log.With().Str("component", "issuersim").Logger(), OperatorKeys: masters, Bins: table})
		if err != nil {
			return nil, fmt.Errorf("simulated issuers: %w", err)
		}
		for _, is := range list {
			overrides[is.ID] = fleet.Addr(is.ID)
		}
	}
	n, err := node.Open(cfg, log, overrides)
	if err != nil {
		if fleet != nil {
			fleet.Close()
		}
		return nil, err
	}
	// The dev wallet, written next, tells tools and tests the switch is
	// ready: the links sign on first (bounded by linksSignOnWait).
	awaitLinks(context.Background(), n)
	d := &DevWorld{Node: n, Fleet: fleet, Data: cfg.Data, WalletPath: filepath.Join(cfg.Data, wallet.DevFileName),
		SettleKeyPath: settleKeys, Bindable: bindable(cards, now), AcquirerKeys: acqKeys, OperatorKeyPath: operatorKeys}
	if err := seedDemo(n, cfg.TokenBINs[0], demo, d.WalletPath); err != nil {
		d.Close()
		return nil, err
	}
	n.Start()
	return d, nil
}

// ensureDevKeys generates the dev switch's key file when there is none,
// adds a token master to one written before the token master existed
// (reporting that it did), and writes settle's data-keys-only file from it.
func ensureDevKeys(dir, path, settlePath string) (added bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("data directory: %w", err)
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if err := vault.GenerateKeyringFile(path); err != nil {
			return false, err
		}
	} else if added, err = addDevTokenMaster(path); err != nil {
		return false, err
	}
	return added, vault.WriteDataKeysFile(path, settlePath)
}

// addDevTokenMaster appends a fresh token-master line to a dev key file
// that has none. Only the dev world does this on its own: a production
// switch refuses such a file and says how to add the line.
func addDevTokenMaster(path string) (bool, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("dev keys: %w", err)
	}
	for line := range strings.Lines(string(text)) {
		if label, _, _ := strings.Cut(line, ":"); strings.TrimSpace(label) == "token-master" {
			return false, nil
		}
	}
	var master [32]byte
	rand.Read(master[:]) // never fails; crashes the program instead
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return false, fmt.Errorf("dev keys: %w", err)
	}
	_, err = fmt.Fprintf(f, "\ntoken-master: %s\n", base64.StdEncoding.EncodeToString(master[:]))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("dev keys: %w", err)
	}
	return true, nil
}

// ensureDevAcquirerKeys makes sure the dev acquirer key file holds a key
// for every acquirer of the registry, generating a new file when it does
// not (a new acquirer in acquirers.yaml, or the first start).
func ensureDevAcquirerKeys(cfg node.Config, list []issuers.Issuer) (acquirer.Keys, error) {
	reg, err := cfg.Registry(list)
	if err != nil {
		return nil, err
	}
	keys, err := acquirer.LoadKeysFile(cfg.AcquirerKeysFile)
	if err == nil && hasAll(keys, reg.Acquirers()) {
		return keys, nil
	}
	if err := acquirer.GenerateKeysFile(cfg.AcquirerKeysFile, reg.Acquirers()); err != nil {
		return nil, err
	}
	return acquirer.LoadKeysFile(cfg.AcquirerKeysFile)
}

// DevOperatorKeysFileName is the dev world's operator master key file, in
// its data directory.
const DevOperatorKeysFileName = "operator.keys"

// ensureDevOperatorKeys reads the dev operators' master key file, made
// once: every purse the dev world opened holds a key derived from it.
func ensureDevOperatorKeys(path string, list []issuers.Issuer) (map[string][]byte, error) {
	var ops []string
	for _, is := range list {
		if is.Kind == issuers.KindTransit {
			ops = append(ops, is.Operator)
		}
	}
	keys, err := transit.LoadMasterKeys(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := transit.CreateMasterKeysFile(path, ops); err != nil {
			return nil, err
		}
		keys, err = transit.LoadMasterKeys(path)
	}
	if err != nil {
		return nil, err
	}
	for _, op := range ops {
		if _, ok := keys[op]; !ok {
			return nil, fmt.Errorf("%s has no master key for operator %s: move it away and start again to make a new one", path, op)
		}
	}
	return keys, nil
}

func hasAll(keys acquirer.Keys, ids []string) bool {
	for _, id := range ids {
		if _, ok := keys[id]; !ok {
			return false
		}
	}
	return true
}

// seedDemo puts a token for every demo card in the vault (idempotently: the
// numbers derive from the labels) and writes the dev wallet: each card with
// its token's cryptogram key and, as its ATC, the last counter the journal
// accepted for the token, so taps after a restart carry counters the switch
// has not seen.
func seedDemo(n *node.Node, tokenBIN string, demo []world.DemoCard, walletPath string) error {
	w := wallet.File{Switch: n.TerminalAddr()}
	for _, d := range demo {
		tok := vault.Token{
			Token: devToken(tokenBIN, d.Label), PAN: d.Card.PAN,
			CardExpiry: d.Card.Expiry, TokenExpiry: d.Card.Expiry, Status: vault.StatusActive,
			DeviceID: devDeviceID, WalletAccount: devAccount, RequestorID: devRequestorID,
			Domain: vault.Domain{ContactlessOnly: true}, CreatedAt: time.Now().UTC(),
		}
		if d.Label == "suspended" {
			tok.Status = vault.StatusSuspended
		}
		if err := n.Vault.Put(tok); err != nil {
			return fmt.Errorf("seeding demo token %s: %w", d.Label, err)
		}
		card := wallet.Card{
			Label: d.Label, Token: tok.Token.Clear(), TokenExpiry: tok.TokenExpiry, DeviceID: devDeviceID,
			Issuer: d.Card.IssuerID, Product: string(d.Card.Product), Outcome: demoOutcome[d.Label],
		}
		if err := devChip(n, &card); err != nil {
			return err
		}
		w.Cards = append(w.Cards, card)
	}
	// The unknown token is in no vault, but a phone holding it still signs
	// its taps: the switch answers 14 before it looks at the cryptogram.
	unknown := wallet.Card{
		Label: devUnknownLabel, Token: devToken(tokenBIN, devUnknownLabel).Clear(),
		TokenExpiry: time.Now().AddDate(3, 0, 0).Format("0601"), DeviceID: devDeviceID,
		Outcome: demoOutcome[devUnknownLabel],
	}
	if err := devChip(n, &unknown); err != nil {
		return err
	}
	w.Cards = append(w.Cards, unknown)
	return wallet.Save(walletPath, keepWalletSide(w, walletPath, n.PublicURL()))
}

// devChip gives a demo card its token's key and the last counter accepted.
func devChip(n *node.Node, card *wallet.Card) error {
	last, _, err := n.Journal.LastATC(card.Token)
	if err != nil {
		return fmt.Errorf("demo token %s: %w", card.Label, err)
	}
	card.Key, card.ATC = hex.EncodeToString(n.Keys.TokenKey(card.Token)), last
	return nil
}

// devToken derives a Luhn-valid 16-digit token from the token BIN and a
// label, so every dev start finds the same numbers.
func devToken(bin, label string) iso8583.PAN {
	sum := sha256.Sum256([]byte("tapswitch-dev-token:" + label))
	body := []byte(bin)
	for i := 0; len(body) < 15; i++ {
		body = append(body, '0'+sum[i]%10)
	}
	return iso8583.PAN(string(body) + string(iso8583.LuhnCheckDigit(string(body))))
}

func printBanner(out io.Writer, d *DevWorld) {
	if out == nil {
		out = os.Stderr
	}
	fmt.Fprintf(out, `
tapswitch dev switch is up
  terminals  %s   (ISO 8583:1987, 2-byte length header; docs/wire.md)
  public     %s   (token API /v1/, lost-phone page /lost/%s)
  admin      http://%s   (operators: /healthz /readyz /metrics /admin/rotate /debug/pprof/)
  issuers    %d simulated banks and transit operators %s
  data       %s
  keys       %s (switch), %s (settle: data keys only)
  wallet     %s
  acquirers  %s   (the acquirers' keys: terminal MAC keys derive from them)
try, in another shell:
  go run ./cmd/termsim pay -card approve -amount 12.34
  cards: approve insufficient expired suspended unknown transit
bind a card of your own (the four steps), then tap it:
  go run ./cmd/wallet login -login alice -password 'correct horse' -create
  go run ./cmd/wallet add-card -pan %s -expiry %s -cvn2 %s
  go run ./cmd/wallet confirm -code $(go run ./cmd/wallet dev-code)
  go run ./cmd/termsim pay -card card-%s
lost phone: %s/lost/

`, d.Node.TerminalAddr(), d.Node.PublicURL(), publicNote(d), d.Node.AdminAddr(), len(d.Node.Issuers), issuerPlace(d), d.Data,
		devKeyFileName, devSettleKeys, d.WalletPath, wallet.DevAcquirerKeysPath(d.WalletPath),
		d.Bindable.PAN.Clear(), d.Bindable.Expiry, d.Bindable.CVN2().Clear(), d.Bindable.PAN.Clear()[len(d.Bindable.PAN)-4:], d.Node.PublicURL())
}

// publicNote says, in the banner, why the public listener may be plain.
func publicNote(d *DevWorld) string {
	if strings.HasPrefix(d.Node.PublicURL(), "https://") {
		return ""
	}
	return "; plain HTTP, loopback only: set public_tls_cert/key for TLS"
}

func issuerPlace(d *DevWorld) string {
	if d.Fleet == nil {
		return "at the configured addresses (run cmd/issuersim)"
	}
	return "in this process, on loopback"
}

// keepWalletSide carries over what cmd/wallet wrote into the dev wallet
// (its login, session, device, a pending binding and the cards it bound)
// when seedDemo rewrites the demo cards, and points it at this start's API.
func keepWalletSide(w wallet.File, path, api string) wallet.File {
	w.API = api
	old, err := wallet.Load(path)
	if err != nil {
		return w
	}
	w.Login, w.Session, w.DeviceID, w.Pending = old.Login, old.Session, old.DeviceID, old.Pending
	demo := map[string]bool{}
	for _, c := range w.Cards {
		demo[c.Label] = true
	}
	for _, c := range old.Cards {
		if !demo[c.Label] {
			w.Cards = append(w.Cards, c)
		}
	}
	return w
}

// bindable picks the first active, unexpired debit card of the generated
// base with a balance: a card the dev user can bind and pay with.
// DevBindableCard is the card the dev world of seed offers for binding
// (the banner's 'wallet add-card' line): tests that run switchd as a
// process bind it without reading the banner.
func DevBindableCard(table *bintable.Table, seed int64, now time.Time) world.Card {
	return bindable(world.Generate(table, seed, devCardsPerBIN, now), now)
}

func bindable(cards []world.Card, now time.Time) world.Card {
	for _, c := range cards {
		if c.Product == "debit" && c.Status == world.CardStatus("active") && !c.ExpiredAt(now) && c.Balance > 100_00 {
			return c
		}
	}
	return world.Card{}
}
