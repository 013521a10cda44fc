package authorize

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	moov "github.com/moov-io/iso8583"
	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/router/link"
	"github.com/tapswitch/tapswitch/switch/acquirer"
	"github.com/tapswitch/tapswitch/switch/journal"
	"github.com/tapswitch/tapswitch/switch/metrics"
	"github.com/tapswitch/tapswitch/switch/vault"
)

// Issuer is one issuer as the pipeline sees it: where to send, and the
// institution ID to put in DE100.
type Issuer struct {
	Institution string
	Link        Exchanger
}

// Exchanger sends one request to an issuer, packed from a Builder, and
// reads its answer in place (router/link.Link in the switch, a fake in no
// test: tests use real links). NextSTAN reserves a DE11 before the request
// is built, so the request's reversal can be armed before it is sent.
type Exchanger interface {
	ExchangeBuilt(ctx context.Context, req *iso8583.Builder, ans *link.Answer) error
	NextSTAN() string
}

// Deps is everything the pipeline does I/O with, handed in so the daemon
// and the tests wire the same code.
type Deps struct {
	Vault       *vault.Vault
	Table       *bintable.Table
	Issuers     map[string]Issuer // by issuer ID
	Journal     *journal.Journal
	NodeID      string
	Institution string // the switch's own institution ID, DE33 towards issuers
	Now         func() time.Time
	Log         zerolog.Logger
	Metrics     *metrics.Set // nil: none
	// StandIn holds each issuer's stand-in rules by issuer ID; an issuer
	// without an entry is never stood in for.
	StandIn map[string]StandInRules
	// AdviceQueued is called after an Append queued an advice, to wake the
	// store-and-forward sender. nil: nobody to wake.
	AdviceQueued func()
	// CVMLimit is the amount above which a purchase or top-up needs the
	// cardholder verified on the phone (docs/cryptogram.md). 0: every one.
	CVMLimit iso8583.Amount
	// Zone is the network's time zone (the config's timezone): Now's date
	// in it is the switch's date, which a tap's date (9A) must be near.
	// Required: New panics without it.
	Zone *time.Location
	// ReversalAgeMax is how old an original may be and still be reversed
	// (docs/wire.md section 9); older ones are answered 25.
	ReversalAgeMax time.Duration
	// TransactionLevel is the level of the one log line per authorization
	// and reversal; the zero value is debug (switchd -dev: info).
	TransactionLevel zerolog.Level
	// Counters keeps the tokens' cryptogram counter windows. nil: the
	// journal's, this node alone (a cluster's nodes share one store,
	// switch/cluster).
	Counters Counters
	// Duplicates checks duplicate keys across a cluster's nodes. nil: the
	// journal's index alone, this node alone.
	Duplicates Duplicates
	// StandIns keeps the tokens' stand-in usage per business day. nil:
	// the journal's, this node alone.
	StandIns StandIns
}

// Pipeline authorizes terminal requests.
type Pipeline struct {
	d        Deps
	inflight keyLocks[journal.Key] // one request per duplicate key
	standIns StandIns              // one stand-in decision per token at a time
	counters Counters              // one cryptogram check per token at a time
}

// New returns a pipeline over deps.
func New(d Deps) *Pipeline {
	if d.Zone == nil {
		panic("authorize: Deps.Zone is nil; the cryptogram's date check needs the network's time zone")
	}
	if d.AdviceQueued == nil {
		d.AdviceQueued = func() {}
	}
	counters := d.Counters
	if counters == nil {
		counters = journalCounters{c: newCounters(), j: d.Journal}
	}
	standIns := d.StandIns
	if standIns == nil {
		standIns = journalStandIns{tokens: newKeyLocks[string](), j: d.Journal}
	}
	return &Pipeline{d: d, inflight: newKeyLocks[journal.Key](), standIns: standIns, counters: counters}
}

// Deps returns the dependencies p was built with (Counters nil when p
// uses the journal's), so a test can build a second node's pipeline on the
// same vault and issuer links.
func (p *Pipeline) Deps() Deps { return p.d }

// Handle answers one terminal message from sender from (established by the
// terminal session from the frame's MAC). It returns nil when the message
// deserves no answer (a response sent to us, an MTI we do not know).
func (p *Pipeline) Handle(ctx context.Context, msg *moov.Message, from acquirer.Identity) *moov.Message {
	mti, _ := msg.GetMTI()
	if iso8583.ResponseMTI(mti) == "" {
		p.d.Log.Warn().Str("mti", mti).Msg("message with no response MTI dropped")
		return nil
	}
	if rc, reason := CheckSender(from); rc != "" {
		return p.refuse(msg, mti, from, rc, reason)
	}
	switch mti {
	case iso8583.MTIAuthRequest, iso8583.MTIFinancialRequest:
		start := p.d.Now()
		req, err := ParseRequest(msg)
		if err != nil {
			p.d.Log.Info().Err(err).Msg("request refused: format error")
			p.d.Metrics.FormatError(metrics.StageRequest)
			p.d.Metrics.Authorization(mti, iso8583.RCFormatError, "", p.d.Now().Sub(start))
			return EchoAnswer(msg, iso8583.RCFormatError)
		}
		a := p.authorizeTimed(ctx, req, from, start)
		return a.Message()
	case iso8583.MTIReversalRequest, iso8583.MTIReversalAdvice:
		start := p.d.Now()
		resp, o := p.reverse(ctx, msg, from)
		p.d.Metrics.Authorization(mti, o.rc, o.issuer, p.d.Now().Sub(start))
		return resp
	case iso8583.MTINetworkMgmtRequest:
		return networkManagementAnswer(msg)
	}
	return EchoAnswer(msg, iso8583.RCInvalidTransaction)
}

// HandleRequest answers a terminal's 0100 or 0200 read by ParseFields,
// from sender from: the hot path's Handle, whose answer the caller packs
// with an iso8583.Builder (Answer.Build). It does what Handle does for the
// same request unpacked by moov, in the same order, and answers the same
// fields.
func (p *Pipeline) HandleRequest(ctx context.Context, req Request, from acquirer.Identity) Answer {
	if rc, reason := CheckSender(from); rc != "" {
		p.d.Log.Info().Str("mti", req.MTI).Str("terminal", from.TerminalID).
			Str("stan", req.STAN).Str("acquirer", req.Acquirer).Str("merchant", req.MerchantID).
			Str("rc", rc).Str("reason", reason).Msg("request refused: sender")
		p.d.Metrics.Authorization(req.MTI, rc, "", 0)
		return Answer{Request: req, RC: rc, echo: true}
	}
	return p.authorizeTimed(ctx, req, from, p.d.Now())
}

// authorizeTimed authorizes req and counts it in the metrics.
func (p *Pipeline) authorizeTimed(ctx context.Context, req Request, from acquirer.Identity, start time.Time) Answer {
	a, o := p.authorize(ctx, req, from, start)
	if o.done.IsZero() {
		o.done = p.d.Now()
	}
	p.d.Metrics.Authorization(req.MTI, o.rc, o.issuer, o.done.Sub(start))
	return a
}

// refuse answers a message whose sender may not ask for it, without
// journaling it: an unauthenticated request must not take a journal key
// (DE41, STAN, time) that the real terminal may still use.
func (p *Pipeline) refuse(msg *moov.Message, mti string, from acquirer.Identity, rc, reason string) *moov.Message {
	p.d.Log.Info().Str("mti", mti).Str("terminal", from.TerminalID).
		Str("stan", iso8583.FieldValue(msg, iso8583.FieldSTAN)).
		Str("acquirer", iso8583.FieldValue(msg, iso8583.FieldAcquirer)).
		Str("merchant", iso8583.FieldValue(msg, iso8583.FieldMerchantID)).
		Str("rc", rc).Str("reason", reason).Msg("request refused: sender")
	if mti != iso8583.MTINetworkMgmtRequest {
		p.d.Metrics.Authorization(mti, rc, "", 0)
	}
	if mti == iso8583.MTIReversalRequest || mti == iso8583.MTIReversalAdvice {
		return reversalAnswer(msg, rc)
	}
	return EchoAnswer(msg, rc)
}

// outcome is what the metrics take from one authorization: the response
// code answered, the issuer asked ("" when none) and the instant the
// journal entry became durable (zero when nothing was journaled).
type outcome struct {
	rc, issuer string
	done       time.Time
	journaled  bool // the entry committed (a cluster node then records the answer under its key)
}

// authorize is the fixed order of one authorization (the request parsed
// by the caller): hold the
// sender to its registration, wait out an identical request in flight (and
// any other on the refund's original), answer a duplicate from the
// journal, decide, ask the issuer, journal durably, reply.
func (p *Pipeline) authorize(ctx context.Context, req Request, from acquirer.Identity, start time.Time) (Answer, outcome) {
	if rc, reason := CheckAcceptor(from, req.Acquirer, req.MerchantID, req.MCC); rc != "" {
		p.logRefusal(req, rc, reason)
		return answer(req, rc, ""), outcome{rc: rc}
	}
	keys := []journal.Key{req.Key()}
	if req.HasOriginal() {
		keys = append(keys, req.Original)
	}
	unlock, err := p.lockKeys(ctx, keys)
	if err != nil {
		return answer(req, iso8583.RCSystemError, ""), outcome{rc: iso8583.RCSystemError}
	}
	defer unlock()

	prior, found, absent, err := p.d.Journal.Find(req.Key())
	if err != nil {
		p.d.Log.Error().Err(err).Msg("journal look-up failed")
		return answer(req, iso8583.RCSystemError, ""), outcome{rc: iso8583.RCSystemError}
	} else if found {
		return p.duplicate(req, prior)
	}
	hold, a, o, answered := p.claim(ctx, req)
	if answered {
		return a, o
	}
	decideCtx := ctx
	if hold != nil {
		var cancel context.CancelFunc
		decideCtx, cancel = context.WithDeadline(ctx, hold.DecideBy())
		defer cancel()
	}
	entry, reply, change := p.decideRefund(decideCtx, req, from.Merchant, start)
	a, o = p.finish(req, entry, reply, change, absent, start)
	if hold != nil {
		p.settleClaim(ctx, hold, req, a, o)
	}
	return a, o
}

// finish journals the outcome durably, then builds the terminal's answer.
// absent is the look-up's proof that the request's key was not journaled.
func (p *Pipeline) finish(req Request, entry journal.Entry, reply issuerReply, change *journal.Change, absent journal.Absence, start time.Time) (Answer, outcome) {
	// The issuer's answer is the instant the commit starts; read the
	// clock again only when no issuer was asked.
	committing := reply.answered
	if committing.IsZero() {
		committing = p.d.Now()
	}
	err := p.d.Journal.AppendAbsent(&entry, change, absent)
	if reply.release != nil {
		reply.release(err == nil)
	}
	done := p.d.Now()
	if err != nil {
		// The issuer may have approved; without a durable record the
		// terminal must not see an approval. The journal hands the
		// armed reversal to the store-and-forward sender, which makes it
		// due (journal.ReleaseAbandoned).
		p.d.Log.Error().Err(err).Str("stan", req.STAN).Str("terminal", req.TerminalID).Msg("journal append failed")
		entry.ResponseCode, entry.AuthCode, reply.balance = iso8583.RCSystemError, "", ""
		if errors.Is(err, journal.ErrReplication) { // a cluster node cut off from the quorum
			entry.ResponseCode = iso8583.RCIssuerUnavailable
		}
	} else {
		p.d.Metrics.JournalCommit(done.Sub(committing))
		if change != nil && (change.Activate != nil || len(change.Enqueue) > 0) {
			p.d.AdviceQueued()
		}
	}
	p.logOutcome(req, entry, done.Sub(start))
	resp := answer(req, entry.ResponseCode, entry.AuthCode)
	resp.Balance = reply.balance
	return resp, outcome{rc: entry.ResponseCode, issuer: entry.IssuerID, done: done, journaled: err == nil}
}

// lockKeys takes the in-flight locks of keys in one global order (by
// terminal, STAN, time), so two requests that need the same two keys
// cannot each hold one and wait for the other.
func (p *Pipeline) lockKeys(ctx context.Context, keys []journal.Key) (func(), error) {
	slices.SortFunc(keys, func(a, b journal.Key) int {
		return cmp.Or(cmp.Compare(a.TerminalID, b.TerminalID), cmp.Compare(a.STAN, b.STAN),
			cmp.Compare(a.TransmissionTime, b.TransmissionTime))
	})
	keys = slices.Compact(keys)
	for i, k := range keys {
		if err := p.inflight.lock(ctx, k); err != nil {
			for _, held := range keys[:i] {
				p.inflight.unlock(held)
			}
			return nil, err
		}
	}
	return func() {
		for _, k := range keys {
			p.inflight.unlock(k)
		}
	}, nil
}

// logRefusal logs why the switch itself refused a request (never a PAN).
func (p *Pipeline) logRefusal(req Request, rc, reason string) {
	p.d.Log.Info().Str("mti", req.MTI).Str("pc", req.ProcessingCode).Str("terminal", req.TerminalID).
		Str("stan", req.STAN).Str("acquirer", req.Acquirer).Str("merchant", req.MerchantID).
		Str("rc", rc).Str("reason", reason).Msg("request refused")
}

// duplicate answers a request whose key is already journaled: the first
// answer again for a retransmission, 94 for other content under the key.
func (p *Pipeline) duplicate(req Request, prior journal.Entry) (Answer, outcome) {
	if prior.RequestDigest != req.Digest() {
		p.d.Log.Info().Str("stan", req.STAN).Str("terminal", req.TerminalID).Msg("duplicate key with other content: 94")
		return answer(req, iso8583.RCDuplicate, ""), outcome{rc: iso8583.RCDuplicate}
	}
	p.d.Log.Info().Str("stan", req.STAN).Str("terminal", req.TerminalID).Str("rc", prior.ResponseCode).
		Msg("retransmission answered from the journal")
	return answer(req, prior.ResponseCode, prior.AuthCode), outcome{rc: prior.ResponseCode, issuer: prior.IssuerID}
}

// decide runs the checks and, when they pass, the issuer exchange (or
// stand-in), and returns the journal entry of the outcome, the issuer's
// reply (empty when no issuer was asked; its DE54 is passed on, not
// journaled) and what the journal append must also do.
func (p *Pipeline) decide(ctx context.Context, req Request, now time.Time) (journal.Entry, issuerReply, *journal.Change) {
	entry := newEntry(req, now, p.d.NodeID)
	tok, err := p.d.Vault.Get(req.Token.Clear())
	found := err == nil
	if err != nil && !errors.Is(err, vault.ErrNotFound) {
		p.d.Metrics.VaultLookup(metrics.VaultError)
		p.d.Log.Error().Err(err).Msg("vault look-up failed")
		entry.ResponseCode = iso8583.RCSystemError
		return entry, issuerReply{}, nil
	}
	if found {
		p.d.Metrics.VaultLookup(metrics.VaultFound)
	} else {
		p.d.Metrics.VaultLookup(metrics.VaultNotFound)
	}
	d, atc, release, err := p.decideLocked(ctx, req, tok, found, now)
	if err != nil {
		p.d.Log.Error().Err(err).Msg("token counters unreadable")
		entry.ResponseCode = iso8583.RCSystemError
		if errors.Is(err, ErrCountersUnavailable) {
			entry.ResponseCode = iso8583.RCIssuerUnavailable
			p.d.Metrics.CountersUnavailable()
		}
		return entry, issuerReply{}, nil
	}
	if found {
		entry.PANSealed = p.d.Vault.Keys().Seal([]byte(tok.PAN.Clear()), JournalAAD(req.Token.Clear()))
	}
	if d.RC != "" {
		if d.Reason != "" {
			p.d.Log.Info().Str("terminal", req.TerminalID).Str("stan", req.STAN).Str("rc", d.RC).
				Str("reason", d.Reason).Msg("cryptogram check refused the tap")
		}
		entry.ResponseCode = d.RC
		var change *journal.Change
		if atc != nil {
			change = &journal.Change{ATC: atc}
		}
		return entry, issuerReply{release: release}, change
	}
	e, reply, change := p.forward(ctx, req, tok, d.Route, &entry, now)
	if atc != nil {
		if change == nil {
			change = &journal.Change{}
		}
		change.ATC = atc
	}
	reply.release = both(reply.release, release)
	return e, reply, change
}

// decideLocked is Decide under the token's counters hold: the token's
// window in, its counter spent when the cryptogram verified (checked again
// on the new window when the store says another node moved it on, and
// before a 59 when the store's window may have been stale). The
// returned snapshot (nil when none is to be journaled) goes into the
// outcome's batch; release must be called once the append of that batch
// has returned. A store that cannot answer is an error wrapping
// ErrCountersUnavailable.
func (p *Pipeline) decideLocked(ctx context.Context, req Request, tok vault.Token, found bool, now time.Time) (Decision, *journal.ATCUpdate, func(bool), error) {
	if !found {
		return Decide(req, tok, false, Chip{}, p.d.Table, now), nil, nil, nil
	}
	token := req.Token.Clear()
	held, err := p.counters.Hold(ctx, token)
	if err != nil {
		return Decision{}, nil, nil, err
	}
	var d Decision
	var atc *journal.ATCUpdate
	fresh := false // the window was read again before a 59
	for try := 1; ; try++ {
		chip := Chip{Key: p.d.Vault.Keys().TokenKey(token), Counters: held.Window(), CVMLimit: p.d.CVMLimit,
			Today: now.In(p.d.Zone)}
		d = Decide(req, tok, true, chip, p.d.Table, now)
		if d.Counter == 0 {
			if d.RC != iso8583.RCSuspectedFraud || fresh {
				break
			}
			fresh = true
			var reread bool
			if reread, err = held.Fresh(ctx); err == nil && !reread {
				break
			}
		} else {
			var spent bool
			atc, spent, err = held.Accept(ctx, d.Counter)
			if err == nil && spent {
				break
			}
			if err == nil && try >= acceptTriesMax {
				err = fmt.Errorf("%w: counter of a token lost to other nodes %d times", ErrCountersUnavailable, try)
			}
		}
		if err != nil {
			held.Checked()
			held.Release(nil, false)
			return Decision{}, nil, nil, err
		}
	}
	held.Checked()
	release := func(journaled bool) { held.Release(atc, journaled) }
	return d, atc, release, nil
}

// both returns a func calling f then g, either of which may be nil.
func both(f, g func(bool)) func(bool) {
	switch {
	case f == nil:
		return g
	case g == nil:
		return f
	}
	return func(journaled bool) { f(journaled); g(journaled) }
}

// issuerReply is what the terminal's answer takes from the issuer's.
type issuerReply struct {
	rc, authCode string
	balance      string               // DE54
	answered     time.Time            // when the exchange returned; zero if none was made
	release      func(journaled bool) // called once the outcome's append returned (stand-in's token lock, the token's counters)
}

// JournalAAD binds a sealed PAN in the journal (and in its advices) to the
// token: a sealed PAN copied to another entry does not open.
func JournalAAD(token string) []byte {
	return []byte("journal:" + token)
}

func newEntry(req Request, now time.Time, node string) journal.Entry {
	return journal.Entry{
		Time: now.UTC(), NodeID: node, MTI: req.MTI, ProcessingCode: req.ProcessingCode,
		Amount: req.Amount, Currency: req.Currency, TerminalID: req.TerminalID,
		STAN: req.STAN, TransmissionTime: req.TransmissionTime, RRN: req.RRN,
		MerchantID: req.MerchantID, MCC: req.MCC, Acquirer: req.Acquirer,
		Token: req.Token.Clear(), RequestDigest: req.Digest(),
	}
}

func (p *Pipeline) logOutcome(req Request, e journal.Entry, took time.Duration) {
	ev := p.d.Log.WithLevel(p.d.TransactionLevel)
	if !ev.Enabled() {
		return
	}
	ev.Str("mti", req.MTI).Str("pc", req.ProcessingCode).Stringer("token", req.Token).
		Int64("amount", int64(req.Amount)).Str("terminal", req.TerminalID).Str("stan", req.STAN).
		Str("rrn", req.RRN).Str("issuer", e.IssuerID).Str("rc", e.ResponseCode).
		Uint64("seq", e.Seq).Str("day", e.BusinessDay).
		Int64("switch_us", took.Microseconds()).Msg("authorization")
}

// keyLocks lets one holder per key through at a time: one request per
// duplicate key, so a retransmission that arrives while the original is
// still at the issuer waits for the original's journal entry instead of
// charging twice; one stand-in decision per token, so two taps cannot both
// take the token's last stand-in allowance.
type keyLocks[K comparable] struct {
	mu   *sync.Mutex
	held map[K]chan struct{}
}

func newKeyLocks[K comparable]() keyLocks[K] {
	return keyLocks[K]{mu: &sync.Mutex{}, held: make(map[K]chan struct{})}
}

func (k keyLocks[K]) lock(ctx context.Context, key K) error {
	for {
		k.mu.Lock()
		wait, busy := k.held[key]
		if !busy {
			k.held[key] = make(chan struct{})
			k.mu.Unlock()
			return nil
		}
		k.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (k keyLocks[K]) unlock(key K) {
	k.mu.Lock()
	done := k.held[key]
	delete(k.held, key)
	k.mu.Unlock()
	close(done)
}
