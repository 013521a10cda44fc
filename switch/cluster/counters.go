// Package cluster is what several switch nodes share through NATS
// JetStream (docs/cluster.md). This slice: the tokens' cryptogram counter
// windows, one key per token in a replicated key-value bucket, each
// accepted counter a compare-and-swap on the key's revision.
package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapswitch/tapswitch/switch/authorize"
	"github.com/tapswitch/tapswitch/switch/cryptogram"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// CountersConfig names the bucket of the counter windows.
type CountersConfig struct {
	Bucket   string // e.g. "tapswitch_counters"
	Replicas int    // 3 in a cluster of three NATS servers; 1 to 5
	// OpTimeout bounds each read or compare-and-swap; a store that does not
	// answer within it (no quorum) makes the tap 91.
	OpTimeout time.Duration
}

// windowsCached bounds the idle windows a node keeps (about 200 bytes
// each): a cached window saves the read before the compare-and-swap, and
// a stale one costs a lost swap and a read, never a wrong answer.
const windowsCached = 1 << 16

// valueVersion is the first byte of a window's value.
const valueVersion = 1

// Counters is authorize.Counters on a JetStream key-value bucket shared by
// every node: the window of token T is key T. A tap accepts its counter by
// Update with the revision it read: the stream takes the write only if
// the key is still at that revision, through its RAFT leader with a quorum
// of replicas, so of two nodes accepting counters of one token from the
// same window exactly one wins, and the other reads the window again and
// checks again (a replay is refused 59 there). The counter is committed
// before Accept returns, so before the tap goes to the issuer; a node that
// dies after the swap loses that counter, as a phone whose tap was lost
// does: its next tap carries a higher one.
//
// Within one node, taps of a token take turns on the token's entry across
// check and swap, so the node's own taps do not lose swaps to each other.
type Counters struct {
	kv      jetstream.KeyValue
	timeout time.Duration
	mu      sync.Mutex
	tokens  map[string]*entry
}

// entry is one token's window on this node: the last one read or written,
// at its revision (0: the key did not exist).
type entry struct {
	owner  *Counters
	token  string
	mu     sync.Mutex // held from Hold to Checked
	refs   int        // guarded by owner.mu
	loaded bool       // guarded by mu; false after an error: read again
	fresh  bool       // guarded by mu; read or written by the current hold
	window cryptogram.Window
	rev    uint64
}

// OpenCounters creates the bucket, or binds to it when another node did.
func OpenCounters(ctx context.Context, js jetstream.JetStream, cfg CountersConfig) (*Counters, error) {
	if cfg.Bucket == "" || cfg.Replicas < 1 || cfg.Replicas > 5 || cfg.OpTimeout <= 0 {
		return nil, fmt.Errorf("cluster counters: bucket %q, replicas %d (1-5), op timeout %v (> 0)",
			cfg.Bucket, cfg.Replicas, cfg.OpTimeout)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "tapswitch: each token's accepted cryptogram counters",
		History:     1,
		Replicas:    cfg.Replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster counters bucket %s: %w", cfg.Bucket, err)
	}
	return &Counters{kv: kv, timeout: cfg.OpTimeout, tokens: make(map[string]*entry)}, nil
}

// Hold implements authorize.Counters.
func (c *Counters) Hold(ctx context.Context, token string) (authorize.CounterHold, error) {
	c.mu.Lock()
	e := c.tokens[token]
	if e == nil {
		e = &entry{owner: c, token: token}
		c.tokens[token] = e
	}
	e.refs++
	c.mu.Unlock()
	e.mu.Lock()
	e.fresh = false
	if !e.loaded {
		if err := e.read(ctx); err != nil {
			e.mu.Unlock()
			e.Release(nil, false)
			return nil, err
		}
	}
	return e, nil
}

// read loads the stored window. The caller holds e.mu.
func (e *entry) read(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, e.owner.timeout)
	defer cancel()
	kve, err := e.owner.kv.Get(ctx, e.token)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		e.window, e.rev, e.loaded, e.fresh = cryptogram.Window{}, 0, true, true
		return nil
	}
	if err != nil {
		e.loaded = false
		return fmt.Errorf("%w: read: %w", authorize.ErrCountersUnavailable, err)
	}
	w, err := decodeWindow(kve.Value())
	if err != nil {
		e.loaded = false
		return fmt.Errorf("%w: token window at revision %d: %w", authorize.ErrCountersUnavailable, kve.Revision(), err)
	}
	e.window, e.rev, e.loaded, e.fresh = w, kve.Revision(), true, true
	return nil
}

// Window implements authorize.CounterHold.
func (e *entry) Window() cryptogram.Window { return e.window }

// Accept implements authorize.CounterHold: one compare-and-swap. A lost
// swap reads the window again and reports spent false; no journal record
// is returned (the window lives in the bucket, docs/cluster.md).
func (e *entry) Accept(ctx context.Context, counter uint32) (*journal.ATCUpdate, bool, error) {
	next := e.window.Accept(counter)
	value := encodeWindow(next)
	opCtx, cancel := context.WithTimeout(ctx, e.owner.timeout)
	defer cancel()
	var rev uint64
	var err error
	if e.rev == 0 {
		rev, err = e.owner.kv.Create(opCtx, e.token, value)
	} else {
		rev, err = e.owner.kv.Update(opCtx, e.token, value, e.rev)
	}
	if err == nil {
		e.window, e.rev = next, rev
		return nil, true, nil
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return nil, false, e.read(ctx)
	}
	// The swap may or may not have been committed: read before the next
	// check either way.
	e.loaded = false
	return nil, false, fmt.Errorf("%w: compare-and-swap: %w", authorize.ErrCountersUnavailable, err)
}

// Fresh implements authorize.CounterHold: a window cached by an earlier
// tap may lag the bucket (another node accepted counters since); read it
// unless this hold already did.
func (e *entry) Fresh(ctx context.Context) (bool, error) {
	if e.fresh {
		return false, nil
	}
	return true, e.read(ctx)
}

// Checked implements authorize.CounterHold.
func (e *entry) Checked() { e.mu.Unlock() }

// Release implements authorize.CounterHold. An idle entry stays cached,
// up to windowsCached of them; one whose read or swap failed does not.
func (e *entry) Release(_ *journal.ATCUpdate, _ bool) {
	c := e.owner
	c.mu.Lock()
	defer c.mu.Unlock()
	e.refs--
	if e.refs > 0 {
		return
	}
	e.mu.Lock()
	loaded := e.loaded
	e.mu.Unlock()
	if !loaded {
		delete(c.tokens, e.token)
		return
	}
	if len(c.tokens) > windowsCached {
		for tok, o := range c.tokens {
			if o.refs == 0 && tok != e.token {
				delete(c.tokens, tok)
				break
			}
		}
	}
}

// encodeWindow is a window's value: version u8 | last u32 BE | bitmap.
func encodeWindow(w cryptogram.Window) []byte {
	b := make([]byte, 5, 5+cryptogram.SeenBytes)
	b[0] = valueVersion
	binary.BigEndian.PutUint32(b[1:], w.Last)
	return w.AppendSeen(b)
}

// decodeWindow reads a value encodeWindow wrote.
func decodeWindow(b []byte) (cryptogram.Window, error) {
	if len(b) != 5+cryptogram.SeenBytes || b[0] != valueVersion {
		return cryptogram.Window{}, fmt.Errorf("value of %d bytes, not a version %d window", len(b), valueVersion)
	}
	return cryptogram.WindowOf(binary.BigEndian.Uint32(b[1:]), b[5:])
}

var _ authorize.Counters = (*Counters)(nil)
