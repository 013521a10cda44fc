package tokensvc

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	moov "github.com/moov-io/iso8583"
	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/switch/replica"
	"github.com/tapswitch/tapswitch/switch/sms"
	"github.com/tapswitch/tapswitch/switch/vault"
)

// Exchanger sends one request to an issuer and returns its answer
// (router/link.Link in the switch). NextSTAN reserves the request's DE11.
type Exchanger interface {
	Exchange(ctx context.Context, req *moov.Message) (*moov.Message, error)
	NextSTAN() string
}

// Issuer is an issuer as the service sees it: its link and the institution
// ID that goes in DE100.
type Issuer struct {
	Institution string
	Link        Exchanger
}

// Config is everything the service works with, handed in so the switch and
// the tests wire the same code.
type Config struct {
	// DataDir holds the service's own Pebble store (accounts, sessions,
	// bindings, devices, audit trail), e.g. DATA/tokensvc.
	DataDir string
	Vault   *vault.Vault
	// Keys is the switch's keyring: its data key seals the PAN of a pending
	// binding, its index key keys the hash of the SMS code, and its token
	// master derives the cryptogram key handed out with each new token
	// (docs/keys.md).
	Keys  *vault.Keyring
	Table *bintable.Table
	// Issuers by issuer ID, as the BIN table names them.
	Issuers map[string]Issuer
	// TokenBIN is the range new tokens are drawn from (config token_bins[0]).
	TokenBIN string
	// Institution is the switch's own institution ID: DE32 and DE33 of the
	// account verification.
	Institution string
	// RequestorID is the token requestor (wallet provider) ID recorded with
	// every token, 11 digits.
	RequestorID string
	// SMS delivers the one-time codes, e.g. sms.NewOutbox(DATA/sms-outbox.log).
	SMS sms.Sender
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the source of sessions, codes, binding IDs and token
	// numbers; nil means crypto/rand.
	Rand io.Reader
	Log  zerolog.Logger
	// Argon2 is the password hashing cost; zero means DefaultArgon2.
	Argon2 Argon2Params
	// SessionTTL is how long a session lasts; zero means 15 minutes.
	SessionTTL time.Duration
	// SecureCookies marks the lost-phone page's session cookie Secure: set
	// when the public listener serves TLS (or sits behind a proxy that
	// does), so a browser never sends the session over plain HTTP. A
	// request that arrived over TLS gets a Secure cookie regardless.
	SecureCookies bool
	// Replica, in cluster mode, attaches the service's store to its
	// replicated log (package replica, docs/cluster.md); nil on one node.
	Replica replica.Open
}

// Bounds; the package doc says what happens at each.
const (
	sessionTTLDefault            = 15 * time.Minute
	sessionTTLMax                = 24 * time.Hour
	verificationsInFlightMax     = 32
	passwordHashesInFlightMax    = 4
	issuerRequestorIDBytes       = 11
	tokenBINDigitsMin            = 4
	tokenBINDigitsMax            = 11
	devicesPerAccountMax         = 16
	pendingBindingsPerAccountMax = 4
)

// Service is the token service. Its handlers run concurrently; every write
// to its store and every vault change it makes is serialized by mu, since
// each reads a record before rewriting it. Those are provisioning and
// lifecycle events, rare next to authorizations.
type Service struct {
	cfg      Config
	st       *store
	log      zerolog.Logger
	mu       writeLock // serializes writes; guards auditSeq
	auditSeq uint64
	// throttle slows password guessing by client address (throttle.go).
	throttle *throttle
	// passwordHashes counts the password hashes run, for tests: an
	// unknown login must cost one as a known one does.
	passwordHashes atomic.Int64

	hashSlots   chan struct{}
	verifySlots chan struct{}
	// closeMu: handlers hold it shared, Close exclusively, so the store is
	// never used after Close.
	closeMu sync.RWMutex
	closed  bool
	// failAt, set only by tests, makes a step of issue fail as a full disk
	// or a dying vault would.
	failAt func(step string) error
	// limitsSwept is, per cross-account limit, the window whose older
	// windows sweepLimits last deleted (guarded by mu).
	limitsSwept map[string]time.Time
	// topups runs transit top-ups (transit.go); nil until SetTopUps.
	topups atomic.Pointer[TopUps]
}

var tokenBINPattern = regexp.MustCompile(`^[0-9]+$`)

func (c *Config) validate() error {
	switch {
	case c.DataDir == "":
		return errors.New("tokensvc: DataDir is required")
	case c.Vault == nil || c.Keys == nil || c.Table == nil:
		return errors.New("tokensvc: Vault, Keys and Table are required")
	case c.SMS == nil:
		return errors.New("tokensvc: an SMS sender is required (sms.NewOutbox for the file outbox)")
	case len(c.TokenBIN) < tokenBINDigitsMin || len(c.TokenBIN) > tokenBINDigitsMax || !tokenBINPattern.MatchString(c.TokenBIN):
		return fmt.Errorf("tokensvc: token BIN %q must be %d-%d digits", c.TokenBIN, tokenBINDigitsMin, tokenBINDigitsMax)
	case len(c.RequestorID) != issuerRequestorIDBytes || !tokenBINPattern.MatchString(c.RequestorID):
		return fmt.Errorf("tokensvc: requestor ID %q must be %d digits", c.RequestorID, issuerRequestorIDBytes)
	case len(c.Institution) < 1 || len(c.Institution) > 11 || !tokenBINPattern.MatchString(c.Institution):
		return fmt.Errorf("tokensvc: institution %q must be 1-11 digits", c.Institution)
	case c.SessionTTL < 0 || c.SessionTTL > sessionTTLMax:
		return fmt.Errorf("tokensvc: session TTL %v outside 0..%v", c.SessionTTL, sessionTTLMax)
	}
	if e, ok := c.Table.Lookup(c.TokenBIN + "0000000000"); ok {
		return fmt.Errorf("tokensvc: token BIN %s falls in card BIN %s", c.TokenBIN, e.Prefix)
	}
	return c.Argon2.validate()
}

// New opens the service's store in cfg.DataDir and finishes any binding a
// crash cut off between its token's creation and its confirmation.
func New(cfg Config) (*Service, error) {
	if cfg.Argon2 == (Argon2Params{}) {
		cfg.Argon2 = DefaultArgon2
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = sessionTTLDefault
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("tokensvc: %w", err)
	}
	st, err := openStore(cfg.DataDir, cfg.Replica)
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg: cfg, st: st, log: cfg.Log.With().Str("component", "tokensvc").Logger(), throttle: newThrottle(throttleKeysMax),
		hashSlots:   make(chan struct{}, passwordHashesInFlightMax),
		verifySlots: make(chan struct{}, verificationsInFlightMax),
		limitsSwept: make(map[string]time.Time, len(limits)),
	}
	if err := s.loadAuditSeq(); err != nil {
		st.close()
		return nil, err
	}
	s.mu.st = st
	if err := s.recoverLocked(); err != nil {
		st.close()
		return nil, err
	}
	return s, nil
}

// Close waits for the requests in progress and closes the store. Requests
// after it are answered 503.
func (s *Service) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.st.close()
}

func (s *Service) now() time.Time { return s.cfg.Now() }

// random fills b from the configured source.
func (s *Service) random(b []byte) error {
	if _, err := io.ReadFull(s.cfg.Rand, b); err != nil {
		return fmt.Errorf("tokensvc: random source: %w", err)
	}
	return nil
}

// randomDigits returns n decimal digits, each uniform: bytes of 250 and
// above are drawn again so that no digit is likelier than another.
func (s *Service) randomDigits(n int) (string, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, n+8)
	for len(out) < n {
		if err := s.random(buf); err != nil {
			return "", err
		}
		for _, c := range buf {
			if c < 250 && len(out) < n {
				out = append(out, '0'+c%10)
			}
		}
	}
	return string(out), nil
}

// route is one endpoint: a ServeMux pattern and its handler.
type route struct {
	pattern string
	h       http.HandlerFunc
}

// routes lists every endpoint; docs/api.md documents each (a test checks).
func (s *Service) routes() []route {
	return []route{
		{"POST /v1/accounts", s.open(s.handleCreateAccount)},
		{"POST /v1/sessions", s.open(s.handleLogin)},
		{"DELETE /v1/sessions", s.open(s.handleLogout)},
		{"GET /v1/devices", s.authed(s.handleDevices)},
		{"POST /v1/devices/{device}/cards", s.authed(s.handleAddCard)},
		{"POST /v1/bindings/{id}/confirm", s.authed(s.handleConfirm)},
		{"GET /v1/devices/{device}/tokens", s.authed(s.handleListTokens)},
		{"POST /v1/devices/{device}/suspend", s.authed(s.handleDeviceSuspend)},
		{"POST /v1/devices/{device}/resume", s.authed(s.handleDeviceResume)},
		{"POST /v1/tokens/{token}/{action}", s.authed(s.handleTokenAction)},
		{"POST /v1/devices/{device}/tokens/{token}/{action}", s.authed(s.handleTokenAction)},
		{"GET /v1/audit", s.authed(s.handleAudit)},
		{"POST /v1/devices/{device}/transit/topups", s.authed(s.handleTopUp)},
		{"POST /v1/devices/{device}/transit/topups/{id}/pay", s.authed(s.handleTopUpPay)},
		{"GET /v1/devices/{device}/transit/topups/{id}", s.authed(s.handleTopUpGet)},
		{"POST /v1/devices/{device}/transit/topups/{id}/ack", s.authed(s.handleTopUpAck)},
	}
}

// Handler serves the API, every path under /v1/. Mount it on the public mux
// at "/v1/".
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, r := range s.routes() {
		mux.HandleFunc(r.pattern, r.h)
	}
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, newError(http.StatusNotFound, "no_such_endpoint",
			fmt.Sprintf("no endpoint %s %s (docs/api.md lists them)", r.Method, r.URL.Path)))
	})
	return mux
}

// open wraps a handler that needs no session.
func (s *Service) open(h http.HandlerFunc) http.HandlerFunc {
	retried := s.retryConflicts(h)
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.enter() {
			writeError(w, newError(http.StatusServiceUnavailable, "closing", "the token service is shutting down"))
			return
		}
		defer s.closeMu.RUnlock()
		retried(w, r)
	}
}

// authed wraps a handler that needs a live session; it gets the login.
func (s *Service) authed(h func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return s.open(func(w http.ResponseWriter, r *http.Request) {
		login, apiErr := s.authenticate(r)
		if apiErr != nil {
			writeError(w, apiErr)
			return
		}
		h(w, r, login)
	})
}

func (s *Service) enter() bool {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return false
	}
	return true
}

// internal answers 500 and logs err, which by the package's rules carries
// no clear PAN, code or secret.
func (s *Service) internal(w http.ResponseWriter, what string, err error) {
	writeError(w, s.internalErr(what, err))
}

// remote is the client's address for the audit trail.
func remote(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
