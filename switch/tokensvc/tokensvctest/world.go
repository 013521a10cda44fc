// Package tokensvctest starts a token service for tests, the way the switch
// runs it: real simulated issuers on loopback TCP, real issuer links, a
// real vault, the file SMS outbox, and the API on a real HTTP listener. The
// clock is the test's to move; every log line goes into a buffer the test
// can search for secrets.
package tokensvctest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/bench/issuersim"
	"github.com/tapswitch/tapswitch/bench/world"
	"github.com/tapswitch/tapswitch/configs"
	"github.com/tapswitch/tapswitch/internal/syncbuf"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/router/issuers"
	"github.com/tapswitch/tapswitch/router/link"
	"github.com/tapswitch/tapswitch/switch/sms"
	"github.com/tapswitch/tapswitch/switch/tokensvc"
	"github.com/tapswitch/tapswitch/switch/vault"
)

// Test constants.
const (
	TokenBIN    = "629990"
	RequestorID = "40010075001"
	Institution = "00010000"
)

// The issuers the world starts; cards of other issuers' BINs get 503.
var startedIssuers = []string{"ICBC", "BOC", "CCB"}

// Card labels of World.Cards.
const (
	CardGood    = "good"    // ICBC debit, active
	CardGood2   = "good2"   // CCB credit, active
	CardBlocked = "blocked" // ICBC debit, blocked at the issuer
	CardExpired = "expired" // BOC credit, expired last month
	CardUnknown = "unknown" // an ICBC number the issuer does not hold
	CardNoPhone = "nophone" // ICBC debit, active, no phone number on the issuer's file
)

// PhoneSeed is the world seed the test cards' phone numbers come from
// (world.PhoneFor).
const PhoneSeed = 1

// World is a running token service with its issuers.
type World struct {
	URL     string
	Service *tokensvc.Service
	Vault   *vault.Vault
	Keys    *vault.Keyring
	Table   *bintable.Table
	Fleet   *issuersim.Fleet
	Outbox  string // the SMS outbox file
	DataDir string // the service's store
	Clock   *Clock
	Logs    *syncbuf.Buffer
	Cards   map[string]world.Card
	cfg     tokensvc.Config
	server  *httptest.Server
	handler *swappable
	links   []*link.Link
}

// Start starts a world; t.Cleanup stops it.
func Start(t testing.TB) *World { return StartWith(t, nil) }

// StartWith starts a world whose service configuration mutate changes
// first (nil: none).
func StartWith(t testing.TB, mutate func(*tokensvc.Config)) *World {
	t.Helper()
	dir := t.TempDir()
	w := &World{Clock: NewClock(time.Now()), Logs: &syncbuf.Buffer{}, Outbox: sms.OutboxPath(dir), DataDir: filepath.Join(dir, "tokensvc")}
	log := zerolog.New(w.Logs).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	list, err := issuers.Parse(configs.Issuers)
	if err != nil {
		t.Fatal(err)
	}
	if w.Table, err = bintable.Parse(configs.Bins); err != nil {
		t.Fatal(err)
	}
	w.Cards = testCards(t, w.Table, time.Now())
	var started []issuers.Issuer
	for _, is := range list {
		for _, id := range startedIssuers {
			if is.ID == id {
				started = append(started, is)
			}
		}
	}
	cards := make([]world.Card, 0, len(w.Cards))
	for label, c := range w.Cards {
		if label != CardUnknown {
			cards = append(cards, c)
		}
	}
	if w.Fleet, err = issuersim.StartAll("127.0.0.1", started, cards, issuersim.Faults{}, 7, log.With().Str("component", "issuersim").Logger()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Fleet.Close() })
	links := w.startLinks(t, started, log)
	w.openVault(t, dir)
	w.cfg = tokensvc.Config{
		DataDir: w.DataDir, Vault: w.Vault, Keys: w.Keys, Table: w.Table, Issuers: links,
		TokenBIN: TokenBIN, Institution: Institution, RequestorID: RequestorID,
		SMS: sms.NewOutbox(w.Outbox), Now: w.Clock.Now, Log: log,
		Argon2: tokensvc.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1},
	}
	if mutate != nil {
		mutate(&w.cfg)
	}
	if w.Service, err = tokensvc.New(w.cfg); err != nil {
		t.Fatal(err)
	}
	w.handler = &swappable{h: mount(w.Service)}
	w.server = httptest.NewServer(w.handler)
	w.URL = w.server.URL
	t.Cleanup(func() {
		w.server.Close()
		w.Service.Close()
		w.Vault.Close()
	})
	return w
}

// mount puts the service on a mux as the public listener does.
func mount(s *tokensvc.Service) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/", s.Handler())
	return mux
}

func (w *World) startLinks(t testing.TB, list []issuers.Issuer, log zerolog.Logger) map[string]tokensvc.Issuer {
	out := make(map[string]tokensvc.Issuer, len(list))
	for _, is := range list {
		l, err := link.New(link.Config{
			IssuerID: is.ID, Address: w.Fleet.Addr(is.ID), Connections: 1, InflightMax: 64,
			RequestTimeout: 3 * time.Second, EchoInterval: 10 * time.Second, DialTimeout: time.Second,
			BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond, FrameBytesMax: iso8583.FrameBytesMaxDefault,
			BreakerFailures: 5, BreakerCooldown: time.Second, Logger: log.With().Str("component", "link").Logger(),
		})
		if err != nil {
			t.Fatal(err)
		}
		l.Start()
		t.Cleanup(l.Close)
		w.links = append(w.links, l)
		out[is.ID] = tokensvc.Issuer{Institution: is.Institution, Link: l}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, l := range w.links {
		for !l.Up() {
			if time.Now().After(deadline) {
				t.Fatalf("link %s not up", l.IssuerID())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return out
}

func (w *World) openVault(t testing.TB, dir string) {
	keyFile := filepath.Join(dir, "vault.keys")
	if err := vault.GenerateKeyringFile(keyFile); err != nil {
		t.Fatal(err)
	}
	var err error
	if w.Keys, err = vault.LoadKeyringFile(keyFile); err != nil {
		t.Fatal(err)
	}
	if w.Vault, err = vault.Open(filepath.Join(dir, "vault"), w.Keys); err != nil {
		t.Fatal(err)
	}
}

// Restart closes the service and opens it again on the same store, as a
// switch restart (or a crash: the store is synced after every change) does.
func (w *World) Restart(t testing.TB) {
	t.Helper()
	if err := w.Service.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := tokensvc.New(w.cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.Service = s
	w.handler.set(mount(s))
}

// Config returns the configuration the service runs with.
func (w *World) Config() tokensvc.Config { return w.cfg }

// testCards makes the world's cards under the reserved account digit 8,
// which world.Generate never uses.
func testCards(t testing.TB, table *bintable.Table, now time.Time) map[string]world.Card {
	card := func(prefix string, n int, status world.CardStatus, expiry string) world.Card {
		e, ok := table.Lookup(prefix + "0000000000")
		if !ok || e.Prefix != prefix {
			t.Fatalf("no BIN %s", prefix)
		}
		body := fmt.Sprintf("%s8%08d", prefix, n)
		pan := iso8583.PAN(body + string(iso8583.LuhnCheckDigit(body)))
		return world.Card{PAN: pan, Expiry: expiry, IssuerID: e.Issuer, Product: e.Product,
			Balance: 1000_00, CreditLimit: 5000_00, Status: status, Phone: world.PhoneFor(PhoneSeed, pan)}
	}
	future := world.YYMM(now.AddDate(3, 0, 0))
	lastMonth := world.YYMM(time.Date(now.Year(), now.Month()-1, 1, 0, 0, 0, 0, now.Location()))
	noPhone := card("622202", 6, world.StatusActive, future)
	noPhone.Phone = ""
	return map[string]world.Card{
		CardNoPhone: noPhone,
		CardGood:    card("622202", 1, world.StatusActive, future),
		CardGood2:   card("625362", 2, world.StatusActive, future),
		CardBlocked: card("622202", 3, world.StatusBlocked, future),
		CardExpired: card("625907", 4, world.StatusActive, lastMonth),
		CardUnknown: card("622202", 5, world.StatusActive, future),
	}
}

// Clock is a clock the test moves.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock starts a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// swappable lets Restart put a new service behind the same listener.
type swappable struct {
	mu sync.RWMutex
	h  http.Handler
}

func (s *swappable) set(h http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.h = h
}

func (s *swappable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	h := s.h
	s.mu.RUnlock()
	h.ServeHTTP(w, r)
}

// SMS returns the newest message the SMS outbox holds for a binding: the
// text the cardholder's phone got, and the number masked.
func (w *World) SMS(t testing.TB, bindingID string) sms.Message {
	t.Helper()
	m, err := sms.Latest(w.Outbox, bindingID)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Code returns the one-time code the SMS outbox holds for a binding.
func (w *World) Code(t testing.TB, bindingID string) string {
	t.Helper()
	m := w.SMS(t, bindingID)
	code, err := sms.Code(m.Text)
	if err != nil {
		t.Fatal(err)
	}
	return code
}
