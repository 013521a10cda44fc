package load

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapswitch/tapswitch/bench/pos"
	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/acquirer"
)

// Bounds of a terminal's memory.
const (
	// reversibleMax bounds the approved purchases a terminal remembers as
	// candidates for a reversal; the oldest is dropped past it.
	reversibleMax = 1024
	// declineAmount is tapped on the decline cards: more than the
	// insufficient card holds (5.00), so its issuer answers 51 however
	// often it is tapped.
	declineAmount iso8583.Amount = 10_000_00
)

// Wallet card labels the mix taps (switch/daemon's dev wallet).
var declineLabels = []string{"insufficient", "expired", "suspended", "unknown"}

// plan is what every terminal shares: the kind cycle, the cards and what
// each should get. Only declineSeq changes.
type plan struct {
	table      []Kind
	approve    wallet.Card
	declines   []wallet.Card
	amount     iso8583.Amount
	declineSeq atomic.Uint64
	direct     *directCard // a baseline run: purchases of this card to its issuer
}

func newPlan(cfg Config, target Target) (*plan, error) {
	p := &plan{table: cfg.Mix.Table(), amount: cfg.Amount, direct: target.Direct}
	if p.direct != nil {
		if len(cfg.Mix.Entries) != 1 || !cfg.Mix.Has(KindPurchase) {
			return nil, fmt.Errorf("a baseline run sends purchases only, not %s", cfg.Mix)
		}
		return p, nil
	}
	w := target.Wallet
	needApprove := cfg.Mix.Has(KindPurchase) || cfg.Mix.Has(KindRefund) || cfg.Mix.Has(KindTopUp) ||
		cfg.Mix.Has(KindReversal)
	if needApprove {
		c, err := outcomeCard(w, "approve")
		if err != nil {
			return nil, err
		}
		p.approve = c
	}
	if cfg.Mix.Has(KindDecline) {
		for _, label := range declineLabels {
			c, err := outcomeCard(w, label)
			if err != nil {
				return nil, err
			}
			p.declines = append(p.declines, c)
		}
	}
	return p, nil
}

func outcomeCard(w wallet.File, label string) (wallet.Card, error) {
	c, err := w.Card(label)
	if err != nil {
		return c, err
	}
	if len(c.Outcome) != 2 {
		return c, fmt.Errorf("wallet card %q names no outcome: bench needs the demo wallet of switchd -dev", label)
	}
	return c, nil
}

// original is an approved purchase a reversal can name.
type original struct {
	stan, transmissionTime, rrn string
	amount                      iso8583.Amount
}

// terminal is one connection to the switch with its own terminal ID.
type terminal struct {
	id     string
	base   pos.Terminal
	client *pos.Client
	key    []byte // the terminal's MAC key (docs/wire.md section 11); nil: unsigned
	stats  *stats
	lost   atomic.Bool // the connection broke; nothing more is sent on it

	mu         sync.Mutex
	stans      stanSeq
	reversible []original // oldest first
}

// newTerminal is terminal id of the demo acquirer on client, its key
// derived from keys (none: it sends unsigned).
func newTerminal(id string, client *pos.Client, keys acquirer.Keys, stanStart int, st *stats) *terminal {
	base := pos.DemoTerminal
	base.TerminalID = id
	key, _ := keys.TerminalKey(base.Acquirer, id)
	return &terminal{id: id, base: base, client: client, key: key, stats: st, stans: newSTANSeq(stanStart)}
}

// terminalID is connection k's terminal, one of the fleet registered in
// configs/acquirers.yaml: B0000000 (the pre-flight's) to B0004096, one per
// connection (connectionsMax). The same IDs serve every run: DE7, the
// time of each request, keeps a run's duplicate keys apart from the runs
// before it.
func terminalID(k int) string {
	return fmt.Sprintf("B%07d", k)
}

// nextSTAN returns a STAN for DE7 = the returned time. It waits out the rare
// full second (stanSeq) holding the terminal's lock: the terminal cannot
// number another request before then anyway.
func (t *terminal) nextSTAN() (string, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for range 3 {
		now := time.Now()
		stan, wait := t.stans.next(now)
		if wait == 0 {
			return stan, now
		}
		time.Sleep(wait)
	}
	panic("stanSeq: no STAN after waiting for the next second twice")
}

// request is one message to send and what its answer must say.
type request struct {
	kind    Kind
	stan    string
	payload []byte // packed and signed with the terminal's key
	want    string
	orig    original // purchases: remembered for a reversal or a refund when approved
}

// builders are reused across requests (a Builder keeps its value store);
// each request's payload is a buffer of its own, as the connection's
// writer holds it until it is written.
var builders = sync.Pool{New: func() any { return new(iso8583.Builder) }}

// requestBytesTypical sizes a payload so that it packs in one allocation.
const requestBytesTypical = 320

// pack packs what build set into b, signed with the terminal's key.
func (t *terminal) pack(b *iso8583.Builder) ([]byte, error) {
	dst := make([]byte, 0, requestBytesTypical)
	if t.key == nil {
		return b.Append(dst)
	}
	return b.AppendSigned(dst, t.key)
}

// build makes the request of kind k. A reversal or a refund takes an
// approved purchase of this terminal to name in DE90 (each purchase is
// reversed or refunded once); with none yet, a purchase is sent instead.
func (t *terminal) build(p *plan, k Kind) (request, error) {
	b := builders.Get().(*iso8583.Builder)
	defer builders.Put(b)
	r := t.set(b, p, k)
	var err error
	if r.payload, err = t.pack(b); err != nil {
		return r, fmt.Errorf("%s request does not pack: %w", r.kind, err)
	}
	return r, nil
}

// set sets b to the request of kind k and returns what its answer must say.
func (t *terminal) set(b *iso8583.Builder, p *plan, k Kind) request {
	if p.direct != nil {
		return t.directPurchase(b, p.direct, p.amount)
	}
	var orig original
	if k == KindReversal || k == KindRefund {
		var ok bool
		if orig, ok = t.popReversible(); !ok {
			k = KindPurchase
		} else if k == KindReversal {
			return t.reversal(b, p, orig)
		}
	}
	stan, now := t.nextSTAN()
	card, amount, code := p.approve, p.amount, iso8583.ProcPurchase
	var names pos.Original
	switch k {
	case KindRefund:
		code, amount = iso8583.ProcRefund, orig.amount
		names = pos.Original{STAN: orig.stan, TransmissionTime: orig.transmissionTime}
	case KindTopUp:
		code = iso8583.ProcTransitTopUp
	case KindDecline:
		card = p.declines[p.declineSeq.Add(1)%uint64(len(p.declines))]
		amount = declineAmount
	}
	// WithCard takes the card's next ATC last, just before the send, so
	// that taps of the token reach the switch nearly in counter order (it
	// accepts them up to 1024 out of order: docs/cryptogram.md).
	pos.Tap{Terminal: t.base, ProcessingCode: code, Amount: amount, STAN: stan, Time: now,
		Original: names}.WithCard(card).Build(b)
	r := request{kind: k, stan: stan, want: card.Outcome}
	if k == KindPurchase {
		r.orig = original{stan: stan, transmissionTime: transmissionTime(now), rrn: pos.RRN(now, stan), amount: amount}
	}
	return r
}

// reversal builds the 0400 of docs/wire.md for orig: its own STAN and DE7,
// the original's RRN, and DE90 naming the original 0200.
func (t *terminal) reversal(b *iso8583.Builder, p *plan, orig original) request {
	stan, now := t.nextSTAN()
	pos.Tap{Terminal: t.base, MTI: iso8583.MTIReversalRequest, ProcessingCode: iso8583.ProcPurchase,
		Token: p.approve.Token, TokenExpiry: p.approve.TokenExpiry, Amount: orig.amount, STAN: stan, Time: now}.Build(b)
	for _, id := range []int{iso8583.FieldExpiry, iso8583.FieldMCC, iso8583.FieldPOSEntryMode,
		iso8583.FieldPOSCondition, iso8583.FieldMerchantNameLocation} {
		b.Unset(id)
	}
	b.Set(iso8583.FieldRRN, orig.rrn)
	b.Set(iso8583.FieldOriginalData, pos.Original{STAN: orig.stan, TransmissionTime: orig.transmissionTime}.DE90(t.base.Acquirer))
	return request{kind: KindReversal, stan: stan, want: iso8583.RCApproved}
}

func transmissionTime(t time.Time) string {
	return t.UTC().Format("0102150405")
}

func (t *terminal) remember(o original) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.reversible) >= reversibleMax {
		t.reversible = t.reversible[1:]
	}
	t.reversible = append(t.reversible, o)
}

func (t *terminal) popReversible() (original, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.reversible) == 0 {
		return original{}, false
	}
	o := t.reversible[0]
	t.reversible = t.reversible[1:]
	return o, true
}
