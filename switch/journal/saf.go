package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Store and forward: messages the switch owes an issuer (a reversal of a
// request whose answer never came, an advice of a stand-in approval) are
// kept in the journal's own store, so that writing one and journaling the
// outcome it belongs to is one atomic batch.
//
//	advice   'q' | ID (8 bytes BE)          -> advice record
//	reversed 'r' | TerminalID | 0 | STAN | 0 | TransmissionTime -> pointer to the reversal entry
//	usage    'u' | day | 0 | token          -> stand-in usage of the token that day
//	counters 'c' | token | 0 | version      -> the token's accepted transaction counters (atc.go)
//	refunded 'f' | TerminalID | 0 | STAN | 0 | TransmissionTime -> refunded total of a purchase (refund.go)
//	top-up   't' | ID                      -> a transit top-up's record (topup.go)
//
// Advice record: ver u8 | kind u8 | state u8 | attempts u32 | next attempt
// i64 Unix ns | entry record (as under an entry key) | CRC-32C u32.
//
// An advice is armed before the switch sends a request to an issuer: it is
// the reversal of that request, written durably first. When the answer
// comes, the outcome's Append disarms (deletes) it in the same batch; when
// it does not, the Append makes it due. If the switch dies in between, Open
// makes every armed advice due; if the Append itself fails, the sender's
// next ReleaseAbandoned does. So an issuer hold the switch never learnt of
// is always released.

// AdviceKind says which message an advice becomes.
type AdviceKind uint8

const (
	AdviceReversal AdviceKind = 1 // 0420 reversal advice
	AdviceStandIn  AdviceKind = 2 // 0220 advice of a stand-in approval
)

// AdviceState is where an advice is in its life.
type AdviceState uint8

const (
	AdviceArmed AdviceState = 1 // written before an issuer call; not sent unless the call fails
	AdviceDue   AdviceState = 2 // to be sent at NextAttempt
	AdviceDead  AdviceState = 3 // retries exhausted; left for an operator
)

// AdvicesMax bounds the queue. Arm and an Append that enqueues fail beyond
// it, and the switch answers 91 rather than promise what it cannot keep.
const AdvicesMax = 100_000

// ErrQueueFull is returned when the advice queue is at AdvicesMax.
var ErrQueueFull = errors.New("journal: store-and-forward queue full")

const (
	prefixAdvice   = 'q'
	prefixReversed = 'r'
	prefixUsage    = 'u'
	adviceVersion  = 1
	adviceHeadEnd  = 1 + 1 + 1 + 4 + 8
	usageBytes     = 8 + 8 + crcBytes
)

// Advice is one message owed to an issuer, about Entry.
type Advice struct {
	ID          uint64
	Kind        AdviceKind
	State       AdviceState
	Attempts    int
	NextAttempt time.Time // zero: at once
	Entry       Entry
}

// Usage is a token's stand-in approvals on one business day.
type Usage struct {
	Day, Token string
	Count      int
	Amount     int64
}

// Change is what an Append does besides writing the entry, in the same
// batch: settle the armed advice of the issuer call, queue new advices,
// record a reversal, the token's stand-in usage and its accepted counters.
type Change struct {
	Disarm       uint64       // the issuer answered: delete this armed advice
	Activate     *Advice      // the issuer did not answer: the armed advice with this ID becomes due, holding this entry
	Enqueue      []Advice     // new advices, due at once (ID assigned)
	MarkReversed bool         // the entry reverses its original: index it under the original's key
	Usage        *Usage       // write this stand-in usage
	ATC          *ATCUpdate   // the tap's counter is spent: write the token's accepted counters (atc.go)
	Refunded     *Refunded    // an approved refund: the purchase's new refunded total (refund.go)
	TopUp        *TopUpRecord // the top-up this entry decides: its new record (topup.go)
}

func appendAdviceKey(dst []byte, id uint64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, prefixAdvice), id)
}

func appendReversedKey(dst []byte, k Key) []byte {
	return appendKeyed(dst, prefixReversed, k)
}

func appendUsageKey(dst []byte, day, token string) []byte {
	dst = append(dst, prefixUsage)
	dst = append(dst, day...)
	dst = append(dst, 0)
	return append(dst, token...)
}

func appendAdviceRecord(dst []byte, a *Advice) []byte {
	start := len(dst)
	dst = append(dst, adviceVersion, byte(a.Kind), byte(a.State))
	dst = binary.BigEndian.AppendUint32(dst, uint32(a.Attempts))
	var next int64
	if !a.NextAttempt.IsZero() {
		next = a.NextAttempt.UnixNano()
	}
	dst = binary.BigEndian.AppendUint64(dst, uint64(next))
	dst = appendRecord(dst, &a.Entry)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

func decodeAdvice(key, v []byte) (Advice, error) {
	var a Advice
	if len(key) != 9 || key[0] != prefixAdvice {
		return a, fmt.Errorf("%w: malformed advice key %q", ErrCorrupt, key)
	}
	a.ID = binary.BigEndian.Uint64(key[1:])
	body, err := checkCRC(v, adviceHeadEnd)
	if err != nil || body[0] != adviceVersion {
		return a, fmt.Errorf("%w: advice %d: bad record (%v)", ErrCorrupt, a.ID, err)
	}
	a.Kind, a.State = AdviceKind(body[1]), AdviceState(body[2])
	a.Attempts = int(binary.BigEndian.Uint32(body[3:]))
	if next := int64(binary.BigEndian.Uint64(body[7:])); next != 0 {
		a.NextAttempt = time.Unix(0, next).UTC()
	}
	if a.Kind < AdviceReversal || a.Kind > AdviceStandIn || a.State < AdviceArmed || a.State > AdviceDead {
		return a, fmt.Errorf("%w: advice %d: kind %d state %d", ErrCorrupt, a.ID, a.Kind, a.State)
	}
	if a.Entry, err = decodeRecord(body[adviceHeadEnd:]); err != nil {
		return a, fmt.Errorf("%w: advice %d: %v", ErrCorrupt, a.ID, err)
	}
	return a, nil
}

// Arm durably writes the reversal of the issuer request e describes, before
// the request is sent. It returns the advice's ID for the outcome's Change.
func (j *Journal) Arm(e *Entry) (uint64, error) {
	if err := e.validate(); err != nil {
		return 0, err
	}
	if !j.life.enter() {
		return 0, errClosed
	}
	defer j.life.leave()
	if j.advices.Load() >= AdvicesMax {
		return 0, ErrQueueFull
	}
	a := Advice{ID: j.adviceSeq.Add(1), Kind: AdviceReversal, State: AdviceArmed, Entry: *e}
	a.Entry.BusinessDay = BusinessDay(e.Time, j.cutoff)
	j.advices.Add(1)
	if err := j.set(appendAdviceKey(nil, a.ID), appendAdviceRecord(nil, &a)); err != nil {
		// It may have committed locally (a cluster write whose quorum
		// acknowledgement failed): ReleaseAbandoned deletes it then.
		j.advices.Add(-1)
		j.abandonArm(abandonedArm{id: a.ID})
		return 0, fmt.Errorf("journal: arm advice %d: %w", a.ID, err)
	}
	return a.ID, nil
}

// abandonedArms are armed advices left behind by a failed write, kept
// until ReleaseAbandoned settles them. Two writes can fail that way (on
// one node by a disk error, in a cluster far more often by a moment
// without the quorum, when the write may or may not have committed
// locally):
//
//   - an Arm: the request was never sent, so the advice, if it was
//     written, is deleted;
//   - the outcome's Append that carried the advice's Disarm or Activate:
//     the issuer was asked and the terminal was not told of an approval,
//     but no outcome says so; if the advice is still armed it is made due,
//     as Open makes every armed advice due after a crash.
//
// Only memory holds the list: a restart finds such advices armed and
// makes them due anyway.
type abandonedArms struct {
	mu   sync.Mutex
	arms []abandonedArm
}

type abandonedArm struct {
	id      uint64
	sent    bool // the issuer was asked: make due, never delete
	disarms bool // the failed Append deleted it if it committed locally
}

func (j *Journal) abandonArm(a abandonedArm) {
	j.abandoned.mu.Lock()
	j.abandoned.arms = append(j.abandoned.arms, a)
	j.abandoned.mu.Unlock()
}

// abandon records the armed advice of a Change whose Append failed.
func (j *Journal) abandon(c *Change) {
	switch {
	case c == nil:
	case c.Disarm != 0:
		j.abandonArm(abandonedArm{id: c.Disarm, sent: true, disarms: true})
	case c.Activate != nil:
		j.abandonArm(abandonedArm{id: c.Activate.ID, sent: true})
	}
}

// ReleaseAbandoned settles the armed advices failed writes left behind
// (abandonedArms) and returns how many reversals it made due. It never
// touches an advice whose issuer call may still be running: an advice is
// listed only after its Arm or its outcome's Append has returned. On a
// failed write the advices not yet settled stay listed for the next call.
// The store-and-forward sender calls it before each look for due advices.
func (j *Journal) ReleaseAbandoned(now time.Time) (int, error) {
	if !j.life.enter() {
		return 0, errClosed
	}
	defer j.life.leave()
	j.abandoned.mu.Lock()
	arms := j.abandoned.arms
	j.abandoned.arms = nil
	j.abandoned.mu.Unlock()
	released := 0
	for i, a := range arms {
		made, err := j.releaseArm(a, now)
		if err != nil {
			j.abandoned.mu.Lock()
			j.abandoned.arms = slices.Concat(arms[i:], j.abandoned.arms)
			j.abandoned.mu.Unlock()
			return released, fmt.Errorf("journal: release abandoned advice %d: %w", a.id, err)
		}
		if made {
			released++
		}
	}
	return released, nil
}

// releaseArm settles one abandoned advice; true when it made it due.
func (j *Journal) releaseArm(ab abandonedArm, now time.Time) (bool, error) {
	key := appendAdviceKey(nil, ab.id)
	v, closer, err := j.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		if ab.disarms { // the failed Append committed locally: its Disarm was not counted
			j.advices.Add(-1)
		}
		return false, nil
	}
	if err != nil {
		return false, err
	}
	a, err := decodeAdvice(key, v)
	_ = closer.Close()
	if err != nil || a.State != AdviceArmed {
		return false, err // already due: the failed Append committed its Activate locally
	}
	if !ab.sent { // the failed Arm took it off the count already
		return false, j.del(key)
	}
	a.State, a.NextAttempt = AdviceDue, now
	return true, j.set(key, appendAdviceRecord(nil, &a))
}

// applyChange adds c to the batch that appends rec.
func (j *Journal) applyChange(b *pebble.Batch, rec *Entry, c *Change) error {
	if c == nil {
		return nil
	}
	if c.Disarm != 0 {
		if err := b.Delete(appendAdviceKey(nil, c.Disarm), nil); err != nil {
			return err
		}
	}
	if a := c.Activate; a != nil {
		a.Kind, a.State = AdviceReversal, AdviceDue
		if a.Entry.BusinessDay == "" {
			a.Entry.BusinessDay = rec.BusinessDay
		}
		if err := b.Set(appendAdviceKey(nil, a.ID), appendAdviceRecord(nil, a), nil); err != nil {
			return err
		}
	}
	for i := range c.Enqueue {
		a := &c.Enqueue[i]
		a.ID, a.State = j.adviceSeq.Add(1), AdviceDue
		if a.Entry.BusinessDay == "" {
			a.Entry.BusinessDay = rec.BusinessDay
		}
		if err := b.Set(appendAdviceKey(nil, a.ID), appendAdviceRecord(nil, a), nil); err != nil {
			return err
		}
	}
	if err := j.applyIndexes(b, rec, c); err != nil {
		return err
	}
	return nil
}

func (j *Journal) applyIndexes(b *pebble.Batch, rec *Entry, c *Change) error {
	if c.MarkReversed {
		orig, ok := rec.OriginalKey()
		if !ok {
			return errors.New("journal: MarkReversed on an entry that names no original")
		}
		if err := b.Set(appendReversedKey(nil, orig), appendPointer(nil, rec.BusinessDay, rec.Seq), nil); err != nil {
			return err
		}
	}
	if u := c.Usage; u != nil {
		v := binary.BigEndian.AppendUint64(nil, uint64(u.Count))
		v = binary.BigEndian.AppendUint64(v, uint64(u.Amount))
		v = binary.BigEndian.AppendUint32(v, crc32.Checksum(v, castagnoli))
		if err := b.Set(appendUsageKey(nil, u.Day, u.Token), v, nil); err != nil {
			return err
		}
	}
	if c.Refunded != nil {
		if err := applyRefunded(b, c.Refunded); err != nil {
			return err
		}
	}
	if t := c.TopUp; t != nil {
		if err := t.validate(); err != nil {
			return err
		}
		if err := b.Set(appendTopUpKey(nil, t.ID), t.Value, nil); err != nil {
			return err
		}
	}
	if c.ATC != nil {
		return applyATC(b, c.ATC)
	}
	return nil
}
