package issuersim

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/bench/world"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/issuers"
)

// Limits of one simulated issuer; the package doc says what happens at each.
const (
	connsMax           = 64
	inflightPerConnMax = 256
	receivedMax        = 1000
	// faultDelayMax bounds Latency+Jitter: a longer delay is a typo, not a
	// scenario any switch timeout would wait for.
	faultDelayMax = time.Minute
)

// Faults is how badly the issuer behaves.
type Faults struct {
	Latency time.Duration // added to every answer
	Jitter  time.Duration // plus a uniform share of this
	// DropRate is the share of requests never answered.
	DropRate float64
	// ErrorRate is the share of requests answered 96.
	ErrorRate float64
}

// Validate checks the rates are shares and the delays bounded.
func (f Faults) Validate() error {
	for _, r := range []struct {
		name string
		v    float64
	}{{"drop rate", f.DropRate}, {"error rate", f.ErrorRate}} {
		if math.IsNaN(r.v) || r.v < 0 || r.v > 1 {
			return fmt.Errorf("%s %v is not between 0 and 1", r.name, r.v)
		}
	}
	if f.DropRate+f.ErrorRate > 1 {
		return fmt.Errorf("drop rate %v and error rate %v add up to more than 1", f.DropRate, f.ErrorRate)
	}
	if f.Latency < 0 || f.Jitter < 0 || f.Latency+f.Jitter > faultDelayMax {
		return fmt.Errorf("latency %v and jitter %v must be non-negative and add up to at most %v", f.Latency, f.Jitter, faultDelayMax)
	}
	return nil
}

// Config sets up one Issuer.
type Config struct {
	Issuer issuers.Issuer
	// Cards may hold the whole world: only this issuer's cards are kept.
	Cards  []world.Card
	Faults Faults
	// Seed drives latency, faults and authorization codes.
	Seed int64
	// Now is the issuer's clock, for expiry and ledger times; nil means
	// time.Now.
	Now    func() time.Time
	Logger zerolog.Logger
}

// Received is one request as the issuer saw it, kept so a test can prove
// the issuer got the real PAN and the token data.
type Received struct {
	MTI       string
	PAN       iso8583.PAN
	Expiry    string
	TokenData iso8583.TokenData
	STAN      string
}

// Issuer is one simulated issuer. Serve it on one or more listeners.
type Issuer struct {
	id     string
	log    zerolog.Logger
	now    func() time.Time
	faults Faults

	mu   sync.Mutex // guards book
	book *book

	recvMu   sync.Mutex // guards received
	received ring

	rngMu sync.Mutex // guards rng
	rng   *rand.Rand

	connMu    sync.Mutex // guards closed, listeners, conns
	closed    bool
	done      chan struct{}
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	wg        sync.WaitGroup // connection readers, writers and handlers
}

// ErrClosed is returned by Serve on an Issuer already closed.
var ErrClosed = errors.New("issuersim: issuer closed")

// New builds an issuer holding cfg.Issuer's cards from cfg.Cards.
func New(cfg Config) (*Issuer, error) {
	if cfg.Issuer.ID == "" {
		return nil, errors.New("issuersim: issuer without id")
	}
	if err := cfg.Faults.Validate(); err != nil {
		return nil, fmt.Errorf("issuersim %s: %w", cfg.Issuer.ID, err)
	}
	b, err := newBook(cfg.Issuer.ID, cfg.Cards, uint64(cfg.Seed)^idHash(cfg.Issuer.ID))
	if err != nil {
		return nil, fmt.Errorf("issuersim %s: %w", cfg.Issuer.ID, err)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Issuer{
		id:        cfg.Issuer.ID,
		log:       cfg.Logger.With().Str("issuer", cfg.Issuer.ID).Logger(),
		now:       now,
		faults:    cfg.Faults,
		book:      b,
		received:  ring{items: make([]Received, receivedMax)},
		rng:       rand.New(rand.NewPCG(uint64(cfg.Seed), idHash(cfg.Issuer.ID))),
		done:      make(chan struct{}),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
	}, nil
}

// ID is the issuer's member ID.
func (s *Issuer) ID() string { return s.id }

// Cards is how many cards the issuer holds.
func (s *Issuer) Cards() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.book.accounts)
}

// Account returns the account of a card by its clear number.
func (s *Issuer) Account(pan string) (Account, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.book.accounts[pan]
	if !ok {
		return Account{}, false
	}
	return Account{Card: a.card, Available: a.available(), Held: a.held}, true
}

// Ledger returns a copy of every approved posting, in order.
func (s *Issuer) Ledger() []LedgerEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]LedgerEntry(nil), s.book.ledger...)
}

// Received returns the last receivedMax requests, oldest first.
func (s *Issuer) Received() []Received {
	s.recvMu.Lock()
	defer s.recvMu.Unlock()
	return s.received.list()
}

func (s *Issuer) record(req request) {
	s.recvMu.Lock()
	defer s.recvMu.Unlock()
	s.received.add(Received{MTI: req.MTI, PAN: req.PAN, Expiry: req.Expiry, TokenData: req.TokenData, STAN: req.STAN})
}

// fault is what the dice say about one request.
type fault int

const (
	faultNone fault = iota
	faultDrop
	faultError
)

func (s *Issuer) delay() time.Duration {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	d := s.faults.Latency
	if s.faults.Jitter > 0 {
		d += time.Duration(s.rng.Int64N(int64(s.faults.Jitter)))
	}
	return d
}

func (s *Issuer) drawFault() fault {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	x := s.rng.Float64()
	switch {
	case x < s.faults.DropRate:
		return faultDrop
	case x < s.faults.DropRate+s.faults.ErrorRate:
		return faultError
	}
	return faultNone
}

// ring keeps the last len(items) values.
type ring struct {
	items []Received
	next  int
	full  bool
}

func (r *ring) add(v Received) {
	r.items[r.next] = v
	r.next = (r.next + 1) % len(r.items)
	if r.next == 0 {
		r.full = true
	}
}

func (r *ring) list() []Received {
	if !r.full {
		return append([]Received(nil), r.items[:r.next]...)
	}
	return append(append([]Received(nil), r.items[r.next:]...), r.items[:r.next]...)
}

func idHash(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()
}
