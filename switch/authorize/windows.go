package authorize

import (
	"context"
	"errors"

	"github.com/tapswitch/tapswitch/switch/cryptogram"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// Counters keeps the tokens' cryptogram counter windows for the pipeline:
// on one node the journal-backed cache (counters.go, the default), in a
// cluster a store every node shares (switch/cluster). A tap holds its
// token's window across the cryptogram check, accepts its counter, and
// releases the hold once its outcome's journal append has returned.
type Counters interface {
	// Hold returns token's window, locked against this node's other taps
	// of the token until Checked. The caller calls Checked, then Release,
	// once each. An error means the window could not be read: no tap of
	// the token may be approved on it.
	Hold(ctx context.Context, token string) (CounterHold, error)
}

// CounterHold is one tap's hold on its token's window.
type CounterHold interface {
	// Window is the token's window as last read.
	Window() cryptogram.Window
	// Accept spends counter, which passed Window's Check. spent false: the
	// window had moved on (another node accepted a counter of the token
	// meanwhile); Window now returns the new one, and the tap must be
	// checked again. atc is the record to journal with the tap's outcome
	// (nil: none).
	//
	// When Accept returns spent, no other tap sharing the store can accept
	// counter, on this node or any other. When it is durable depends on the
	// store: the cluster's commits it before Accept returns (so before the
	// tap goes to the issuer); the journal's holds it in this node's memory
	// and makes it durable with atc's batch, and learns from Release
	// whether that batch committed.
	Accept(ctx context.Context, counter uint32) (atc *journal.ATCUpdate, spent bool, err error)
	// Fresh reads the window again when it may lag the store's (a cluster
	// node's cached window) and says whether it did: the pipeline calls it
	// before refusing a tap 59, so that no refusal rests on a stale window.
	// The journal's window is never stale: false, nil.
	Fresh(ctx context.Context) (reread bool, err error)
	// Checked ends the check: this node's next tap of the token may hold
	// the window.
	Checked()
	// Release ends the hold once the outcome's append returned; journaled
	// says whether it committed, atc is what Accept returned (nil if it
	// was not called or spent nothing).
	Release(atc *journal.ATCUpdate, journaled bool)
}

// ErrCountersUnavailable wraps the errors of a counters store that cannot
// answer (a cluster store without its quorum): the pipeline answers 91,
// never an approval on a window it could not read or write.
var ErrCountersUnavailable = errors.New("token counters unavailable")

// acceptTriesMax bounds the checks of one tap whose Accept found the window
// moved on: each lost try means another tap of the token was accepted, so
// a tap still losing after this many answers 91.
const acceptTriesMax = 16

// journalCounters is the single node's Counters: the windows cached over
// the journal's counter records, trusted because this node is the
// journal's only writer.
type journalCounters struct {
	c *counters
	j *journal.Journal
}

// Hold implements Counters.
func (jc journalCounters) Hold(_ context.Context, token string) (CounterHold, error) {
	held := jc.c.acquire(token)
	if err := held.load(jc.j, token); err != nil {
		held.mu.Unlock()
		jc.c.release(token, held)
		return nil, err
	}
	return held, nil
}

// Window implements CounterHold. The caller holds t.mu.
func (t *tokenCounters) Window() cryptogram.Window { return t.window }

// Accept implements CounterHold: the counter is spent in memory under
// t.mu, never refused by another tap of this node.
func (t *tokenCounters) Accept(_ context.Context, counter uint32) (*journal.ATCUpdate, bool, error) {
	return t.accept(t.token, counter), true, nil
}

// Fresh implements CounterHold: this node is the journal's only writer.
func (t *tokenCounters) Fresh(context.Context) (bool, error) { return false, nil }

// Checked implements CounterHold.
func (t *tokenCounters) Checked() { t.mu.Unlock() }

// Release implements CounterHold.
func (t *tokenCounters) Release(atc *journal.ATCUpdate, journaled bool) {
	if atc != nil {
		t.journaled(atc, journaled)
	}
	t.owner.release(t.token, t)
}
