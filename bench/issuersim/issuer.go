package issuersim

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/bench/world"
	"github.com/tapswitch/tapswitch/configs"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/router/issuers"
)

// Limits of one simulated issuer; the package doc says what happens at each.
const (
	connsMax           = 64
	inflightPerConnMax = 256
	receivedMax        = 1000
)

// Config sets up one Issuer.
type Config struct {
	Issuer issuers.Issuer
	// Cards may hold the whole world: only this issuer's cards are kept.
	Cards  []world.Card
	Faults Faults
	// Seed drives latency, faults and authorization codes.
	Seed int64
	// Cutoff closes the issuer's business days; zero means DefaultCutoff.
	Cutoff Cutoff
	// Now is the issuer's clock, for expiry and ledger times; nil means
	// time.Now.
	Now    func() time.Time
	Logger zerolog.Logger
	// OperatorKey is a transit member's master key (OperatorKeyBytes),
	// from which it derives each card's purse key to check MAC1 and sign
	// MAC2 (transit.PurseKey). Without one, a transit member answers loads
	// and openings 91; a bank must have none.
	OperatorKey []byte
	// Bins says which cards are a transit member's (its BINs); nil means
	// the network's default table, configs/bins.yaml.
	Bins *bintable.Table
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
	id  string
	log zerolog.Logger
	now func() time.Time

	mu   sync.Mutex // guards book
	book *book

	recvMu   sync.Mutex // guards received
	received ring

	faultMu sync.Mutex // guards faults, rng
	faults  Faults
	rng     *rand.Rand

	stats stats

	connMu    sync.Mutex // guards closed, down, listeners, conns
	closed    bool
	down      bool
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
	cutoff := cfg.Cutoff
	if cutoff == (Cutoff{}) {
		cutoff = DefaultCutoff()
	}
	b, err := newBook(cfg.Issuer.ID, cfg.Cards, uint64(cfg.Seed)^idHash(cfg.Issuer.ID), cutoff)
	if err != nil {
		return nil, fmt.Errorf("issuersim %s: %w", cfg.Issuer.ID, err)
	}
	log := cfg.Logger.With().Str("issuer", cfg.Issuer.ID).Logger()
	if b.operator, err = operatorOf(cfg); err != nil {
		return nil, fmt.Errorf("issuersim %s: %w", cfg.Issuer.ID, err)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Issuer{
		id:        cfg.Issuer.ID,
		log:       log,
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

// operatorOf is a transit member's load book, nil for a bank.
func operatorOf(cfg Config) (*operatorBook, error) {
	if cfg.Issuer.Kind != issuers.KindTransit {
		if cfg.OperatorKey != nil {
			return nil, errors.New("an operator master key for a member that is no transit operator")
		}
		return nil, nil
	}
	var master []byte
	// No key is no error: cmd/issuersim and switchd -dev run transit
	// members for their bank-side traffic without one. Its loads are
	// answered 91, and their request log lines say so.
	switch len(cfg.OperatorKey) {
	case 0:
	case OperatorKeyBytes:
		master = bytes.Clone(cfg.OperatorKey)
	default:
		return nil, fmt.Errorf("operator master key of %d bytes, want %d", len(cfg.OperatorKey), OperatorKeyBytes)
	}
	bins := cfg.Bins
	if bins == nil {
		var err error
		if bins, err = bintable.Parse(configs.Bins); err != nil {
			return nil, err
		}
	}
	return newOperatorBook(cfg.Issuer.ID, master, bins), nil
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

// Loads returns a copy of every load and opening the operator granted, in
// order, voided ones included; nil for a bank.
func (s *Issuer) Loads() []LoadEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.book.operator == nil {
		return nil
	}
	return append([]LoadEntry(nil), s.book.operator.loads...)
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

// SetFaults replaces the issuer's faults. It is safe while serving: each
// request is planned with the faults in force when it is read, so requests
// already read keep theirs.
func (s *Issuer) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return fmt.Errorf("issuersim %s: %w", s.id, err)
	}
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.faults = f
	return nil
}

// Faults returns the faults in force.
func (s *Issuer) Faults() Faults {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return s.faults
}

// plan draws one request's latency and fault from the seeded generator.
func (s *Issuer) plan() plan {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	f := s.faults
	p := plan{delay: f.Latency, wideBitmap: f.ZeroSecondaryBitmap}
	if f.Jitter > 0 {
		p.delay += time.Duration(s.rng.Int64N(int64(f.Jitter)))
	}
	p.fault = f.pick(s.rng.Float64())
	switch p.fault {
	case faultLate:
		p.lateBy = f.LateBy
	case faultGarbage:
		p.garbage = garbageBytes(s.rng)
	}
	return p
}

// stats counts what happened to requests, for Snapshot.
type stats struct {
	requests, answered atomic.Uint64
	faults             [faultCount]atomic.Uint64
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
