// Package topup is the online half of a city transit card: opening a card
// and loading its purse from a bank card, as one pair of legs the switch
// runs for the phone (docs/transit.md, "The top-up"):
//
//  1. the bank leg: a 210000 top-up of the bank token, from the operator's
//     in-app top-up terminal, through the authorization pipeline with every
//     check a tap gets (cryptogram, CDCVM above the limit, token status,
//     duplicates, store and forward);
//  2. the operator leg: the load (220000) or opening (720000) at the city
//     operator, whose grant (MAC2) is what lets the purse credit itself.
//
// If the operator leg fails or gets no answer after the bank approved, the
// bank leg is reversed and the purse is not credited; an operator leg that
// got no answer is itself reversed by the journal's armed advice. Each step
// is journaled before the next starts, and the top-up's record moves with
// the entry that decides it, in one batch; Recover finishes every pair a
// crash left half done. A pair therefore ends Loaded (both legs stand) or
// Declined/Undone (neither does), never one leg alone.
package topup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	moov "github.com/moov-io/iso8583"
	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/settlement/transit"
	"github.com/tapswitch/tapswitch/switch/acquirer"
	"github.com/tapswitch/tapswitch/switch/authorize"
	"github.com/tapswitch/tapswitch/switch/journal"
	"github.com/tapswitch/tapswitch/switch/metrics"
	"github.com/tapswitch/tapswitch/switch/vault"
)

// MCC is the merchant category of a top-up: 4111, local and suburban
// commuter passenger transportation.
const MCC = "4111"

// Operator is one city operator as the top-up sees it.
type Operator struct {
	ID          string // issuer ID, e.g. BJT
	Code        string // 4-digit operator code (docs/transit.md)
	Institution string
	BIN         string // the 8-digit BIN its cards are numbered under
	Terminal    string // its in-app top-up terminal (configs/acquirers.yaml)
	Link        Exchanger
}

// Exchanger is the link to an operator (router/link.Link).
type Exchanger interface {
	Exchange(ctx context.Context, req *moov.Message) (*moov.Message, error)
	NextSTAN() string
}

// Bank is the authorization pipeline the bank leg runs through.
type Bank interface {
	HandleRequest(ctx context.Context, req authorize.Request, from acquirer.Identity) authorize.Answer
	Handle(ctx context.Context, msg *moov.Message, from acquirer.Identity) *moov.Message
}

// Config is what the service works with.
type Config struct {
	Journal     *journal.Journal
	Bank        Bank
	Senders     *acquirer.Checker
	Operators   map[string]Operator // by issuer ID
	Keys        func() *vault.Keyring
	NodeID      string
	Institution string // the switch's, DE33
	Now         func() time.Time
	Log         zerolog.Logger
	Metrics     *metrics.Set // nil: none
	// LoadTimeout bounds the operator leg; past it the pair is undone.
	LoadTimeout time.Duration
	// Sent reports whether an exchange error means the request may have
	// reached the operator (router/link.Sent).
	Sent func(error) bool
}

// Service runs top-ups.
type Service struct {
	cfg  Config
	stan atomic.Uint32
	mu   sync.Mutex // one step of one top-up at a time
	busy map[string]bool
}

// New returns the service. Call Recover before serving.
func New(cfg Config) (*Service, error) {
	if cfg.Journal == nil || cfg.Bank == nil || cfg.Senders == nil || cfg.Keys == nil || cfg.Now == nil || cfg.Sent == nil {
		return nil, errors.New("topup: Journal, Bank, Senders, Keys, Now and Sent are required")
	}
	if cfg.LoadTimeout <= 0 {
		cfg.LoadTimeout = 5 * time.Second
	}
	for id, op := range cfg.Operators {
		if _, ok := cfg.Senders.Originated(op.Terminal); !ok {
			return nil, fmt.Errorf("topup: operator %s: top-up terminal %q is not registered (configs/acquirers.yaml)", id, op.Terminal)
		}
		if len(op.BIN) != 8 || !transit.ValidOperator(op.Code) {
			return nil, fmt.Errorf("topup: operator %s: BIN %q or operator code %q malformed", id, op.BIN, op.Code)
		}
	}
	s := &Service{cfg: cfg, busy: map[string]bool{}}
	var seed [4]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, err
	}
	s.stan.Store(uint32(seed[0])<<16 | uint32(seed[1])<<8 | uint32(seed[2]))
	return s, nil
}

// Errors the API maps to its answers.
var (
	ErrNotFound = errors.New("topup: no such top-up")
	ErrBusy     = errors.New("topup: this top-up is being worked on")
	ErrMismatch = errors.New("topup: the bank leg is not the one prepared")
	ErrState    = errors.New("topup: the top-up is not waiting for payment")
	ErrOperator = errors.New("topup: no such operator")
	ErrInvalid  = errors.New("topup: invalid request")
)

// nextSTAN is a STAN for a leg: unique among this process's recent legs,
// which with the transmission time makes the journal key unique.
func (s *Service) nextSTAN() string {
	return fmt.Sprintf("%06d", s.stan.Add(1)%1_000_000)
}

func (s *Service) key(terminal string, at time.Time) journal.Key {
	return journal.Key{TerminalID: terminal, STAN: s.nextSTAN(), TransmissionTime: at.UTC().Format("0102150405")}
}

// Prepare is the first call: who pays, how much, onto which card (or a new
// card of operator). The switch fixes the bank leg's acceptor, STAN and
// time, which the phone's cryptogram covers.
type Prepare struct {
	Login, Device string
	Operator      string // issuer ID, for an opening; a load's is its card's
	Card          string // "" for an opening
	Token         string // the bank token that pays
	Amount        int64
}

// Prepare records a new top-up and returns it.
func (s *Service) Prepare(p Prepare) (Record, error) {
	if p.Card != "" {
		p.Operator = s.operatorOf(p.Card)
	}
	op, ok := s.cfg.Operators[p.Operator]
	if !ok {
		return Record{}, ErrOperator
	}
	if p.Amount <= 0 || p.Amount > transit.AmountMax {
		return Record{}, fmt.Errorf("%w: amount %d fen: want 1 to %d", ErrInvalid, p.Amount, transit.AmountMax)
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return Record{}, err
	}
	now := s.cfg.Now()
	r := Record{
		ID: hex.EncodeToString(id), Login: p.Login, Device: p.Device, Created: now.UTC(),
		Operator: op.ID, Code: op.Code, Open: p.Card == "", Card: p.Card, Amount: p.Amount, Token: p.Token,
		Terminal: op.Terminal, State: Prepared,
	}
	if id, ok := s.cfg.Senders.Originated(op.Terminal); ok {
		r.Merchant, r.Acquirer = id.Merchant.ID, id.Merchant.Acquirer
	}
	if r.Open {
		card, err := newCardNumber(op.BIN)
		if err != nil {
			return Record{}, err
		}
		r.Card = card
	}
	r.Bank = s.key(op.Terminal, now)
	r.Load = s.key(op.Terminal, now)
	r.Reversal = s.key(op.Terminal, now)
	if err := s.put(&r); err != nil {
		return Record{}, err
	}
	return r, nil
}

// operatorOf is the operator whose BIN card is numbered under, "" for none.
func (s *Service) operatorOf(card string) string {
	for id, op := range s.cfg.Operators {
		if transit.ValidCard(card) && strings.HasPrefix(card, op.BIN) {
			return id
		}
	}
	return ""
}

// newCardNumber is a new 19-digit card number under bin: 10 random digits
// and a Luhn check digit. The network numbers the card (it holds the BIN
// table); the operator registers it when it grants the opening load.
func newCardNumber(bin string) (string, error) {
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	digits := []byte(bin)
	for _, c := range b {
		digits = append(digits, '0'+c%10)
	}
	return string(append(digits, luhnDigit(digits))), nil
}

func luhnDigit(d []byte) byte {
	sum := 0
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if (len(d)-1-i)%2 == 0 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return byte('0' + (10-sum%10)%10)
}

func (s *Service) put(r *Record) error {
	jr, err := r.journalRecord()
	if err != nil {
		return err
	}
	return s.cfg.Journal.PutTopUp(*jr)
}

// Get returns a top-up.
func (s *Service) Get(id string) (Record, error) {
	v, found, err := s.cfg.Journal.TopUp(id)
	if err != nil {
		return Record{}, err
	}
	if !found {
		return Record{}, ErrNotFound
	}
	return decodeRecord(v)
}

// PurseKey opens an opening's purse key, for the phone that opened it.
func (s *Service) PurseKey(r Record) (string, error) {
	if len(r.PurseKeySealed) == 0 {
		return "", nil
	}
	k, err := s.cfg.Keys().Open(r.PurseKeySealed, purseKeyAAD(r.ID))
	if err != nil {
		return "", fmt.Errorf("topup %s: open the purse key: %w", r.ID, err)
	}
	return hex.EncodeToString(k), nil
}

func purseKeyAAD(id string) []byte { return []byte("topup purse key:" + id) }

// claim marks a top-up as being worked on by one caller.
func (s *Service) claim(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy[id] {
		return false
	}
	s.busy[id] = true
	return true
}

func (s *Service) release(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.busy, id)
}

// Pay is the phone's second call: the bank leg it built (the packed 0200
// of the prepared terminal, STAN and time, with its cryptogram in DE55)
// and, for a load, its purse's signed request.
type Pay struct {
	ID, Login, Device string
	BankLeg           []byte // a packed ISO 8583 0200, without MAC
	Purse             *transit.LoadRequest
}

// Pay runs both legs and returns the top-up's outcome. A top-up already
// past Prepared is returned as it stands: the phone repeating its call
// after a lost answer gets the same outcome, and nothing runs twice.
func (s *Service) Pay(ctx context.Context, p Pay) (Record, error) {
	if !s.claim(p.ID) {
		return Record{}, ErrBusy
	}
	defer s.release(p.ID)
	r, err := s.Get(p.ID)
	if err != nil {
		return Record{}, err
	}
	if r.Login != p.Login || r.Device != p.Device {
		return Record{}, ErrNotFound // another account's top-up is not there for this one
	}
	if r.State != Prepared {
		return r, nil
	}
	req, err := s.bankRequest(r, p.BankLeg)
	if err != nil {
		return Record{}, err
	}
	if !r.Open {
		if p.Purse == nil || p.Purse.Card != r.Card || p.Purse.Amount != r.Amount {
			return Record{}, fmt.Errorf("%w: a load needs the purse's signed request for this card and amount", ErrMismatch)
		}
		if err := p.Purse.Validate(); err != nil {
			return Record{}, fmt.Errorf("%w: %v", ErrMismatch, err)
		}
		r.PurseBalance, r.PurseCounter, r.PurseSequence = p.Purse.Balance, p.Purse.Counter, p.Purse.Sequence
		r.PurseMAC = hex.EncodeToString(p.Purse.MAC[:])
	}
	r.State = Paying
	if err := s.put(&r); err != nil {
		return Record{}, err
	}
	return s.run(ctx, r, req)
}

// bankRequest parses the phone's bank leg and holds it to the prepared
// top-up: the phone chooses nothing the switch fixed.
func (s *Service) bankRequest(r Record, packed []byte) (authorize.Request, error) {
	msg, err := iso8583.Unpack(packed)
	if err != nil {
		return authorize.Request{}, fmt.Errorf("%w: %v", ErrMismatch, err)
	}
	req, err := authorize.ParseRequest(msg)
	if err != nil {
		return authorize.Request{}, fmt.Errorf("%w: %v", ErrMismatch, err)
	}
	id, _ := s.cfg.Senders.Originated(r.Terminal)
	m := id.Merchant
	switch {
	case req.MTI != iso8583.MTIFinancialRequest || req.ProcessingCode != iso8583.ProcTransitTopUp:
		return req, fmt.Errorf("%w: want a 0200 with processing code %s", ErrMismatch, iso8583.ProcTransitTopUp)
	case req.Key() != r.Bank:
		return req, fmt.Errorf("%w: terminal, STAN or transmission time is not the prepared one", ErrMismatch)
	case int64(req.Amount) != r.Amount || req.Token.Clear() != r.Token:
		return req, fmt.Errorf("%w: amount or token is not the prepared one", ErrMismatch)
	case req.MerchantID != m.ID || req.Acquirer != m.Acquirer || len(req.ICC) == 0:
		return req, fmt.Errorf("%w: merchant, acquirer or cryptogram missing or wrong", ErrMismatch)
	}
	return req, nil
}

// Cards returns the transit cards opened on a device of login, in card
// order. It reads every top-up record: the lost-phone switch is rare, and
// the records are few per device. (An index by device would make this a
// prefix scan when the records grow.)
func (s *Service) Cards(login, device string) ([]string, error) {
	var cards []string
	err := s.cfg.Journal.EachTopUp(func(jr journal.TopUpRecord) error {
		r, err := decodeRecord(jr.Value)
		if err != nil {
			return fmt.Errorf("top-up %s: %w", jr.ID, err)
		}
		if r.Open && r.State == Loaded && r.Login == login && r.Device == device {
			cards = append(cards, r.Card)
		}
		return nil
	})
	slices.Sort(cards)
	return slices.Compact(cards), err
}

// Acknowledge records that the phone holds its new card's purse key: the
// key is erased from the top-up's record, so it went to the phone once.
// Acknowledging again, or a top-up without a key, changes nothing.
func (s *Service) Acknowledge(id, login, device string) (Record, error) {
	if !s.claim(id) {
		return Record{}, ErrBusy
	}
	defer s.release(id)
	r, err := s.Get(id)
	if err != nil {
		return Record{}, err
	}
	if r.Login != login || r.Device != device {
		return Record{}, ErrNotFound
	}
	if r.State != Loaded || len(r.PurseKeySealed) == 0 {
		return r, nil
	}
	r.PurseKeySealed, r.KeyDelivered = nil, true
	return r, s.put(&r)
}
