// Package replica is the seam between a node's local Pebble stores (the
// vault, the token service) and a replicated log of their writes
// (docs/cluster.md, "Slice: tokens and token-service data").
//
// On one node a store commits its batches to Pebble itself. In a cluster a
// store's batch is not written to Pebble by the store: its representation
// (pebble.Batch.Repr) is appended to the store's log, and every node's
// follower applies the log, in log order, to its own copy of the store,
// recording in the same Pebble batch the log position it applied:
//
//	m/replica/applied -> log sequence of the last batch applied, u64 BE
//
// So each node's store is a prefix of one sequence of batches, and a node
// restarted resumes after the batch it last applied.
//
// A store's writes read before they write (a token limit per device, a
// login already taken), so a write carries the log position its reads
// were made at, and the log accepts it only when no other batch of the
// store came after that position (optimistic concurrency); otherwise
// Commit returns ErrConflict once this node has applied the newer batches,
// and the store runs the write again on them.
package replica

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Log is one store's replicated log, as the store sees it.
type Log interface {
	// Applied is the log position the local store reflects now: the
	// sequence of the last batch the follower applied, 0 for none.
	Applied() uint64
	// Commit appends repr (a Pebble batch representation) to the log if
	// the store's last batch in the log is still the one at base, and
	// returns the new batch's sequence once this node has applied it (a
	// caller reads its own write). Errors wrap ErrConflict (another batch
	// came after base; this node has applied it by now) or ErrUnavailable
	// (no quorum, or the log did not answer in time: the batch may still
	// have been appended, and will then be applied).
	Commit(repr []byte, base uint64) (uint64, error)
	// Close stops the follower; no batch is applied after it returns.
	Close() error
}

// Open attaches a store's Pebble database to its log: it starts the
// follower from the position recorded in db and returns once db has caught
// up with the log as it was at the call.
type Open func(db *pebble.DB) (Log, error)

var (
	// ErrConflict: another node wrote to the store after the position the
	// write was read at. Run the write again.
	ErrConflict = errors.New("replica: another node changed the store first")
	// ErrUnavailable: the log has no quorum or did not answer in time.
	ErrUnavailable = errors.New("replica: the replicated log is unavailable")
)

// backoffMax bounds the pause before a write that lost runs again.
const backoffMax = 64 * time.Millisecond

// backoffAfter is the number of lost runs a write runs again at once.
const backoffAfter = 4

// Backoff pauses before the write that lost its try'th run (from 0) runs
// again: not at all for the first backoffAfter (the node has applied the
// batch that won, so it is on an equal footing with the node that wrote
// it), then a random time up to 1 ms, doubled each try, at most backoffMax,
// to spread out a storm of writes from several nodes.
func Backoff(try int) {
	if try < backoffAfter {
		return
	}
	limit := min(time.Millisecond<<min(try-backoffAfter, 16), backoffMax)
	time.Sleep(rand.N(limit) + 1)
}

// appliedKey holds the log position applied to the store. It is written
// only by Apply, never through the log, and sorts with the stores' other
// node-local metadata under "m/".
const appliedKey = "m/replica/applied"

// Applied reads the log position recorded in db: 0 for a store no batch
// was ever applied to.
func Applied(db *pebble.DB) (uint64, error) {
	val, closer, err := db.Get([]byte(appliedKey))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("replica: applied position: %w", err)
	}
	defer closer.Close()
	if len(val) != 8 {
		return 0, fmt.Errorf("replica: applied position is %d bytes, want 8", len(val))
	}
	return binary.BigEndian.Uint64(val), nil
}

// Apply writes the batch repr, at log sequence seq, to db together with
// the new applied position, in one synchronous commit.
func Apply(db *pebble.DB, seq uint64, repr []byte) error {
	logged := db.NewBatch()
	defer logged.Close()
	// The batch owns the slice it is given and may pool it after Close.
	if err := logged.SetRepr(slices.Clone(repr)); err != nil {
		return fmt.Errorf("replica: batch %d: %w", seq, err)
	}
	b := db.NewBatch()
	defer b.Close()
	if err := b.Apply(logged, nil); err != nil {
		return fmt.Errorf("replica: batch %d: %w", seq, err)
	}
	if err := b.Set([]byte(appliedKey), binary.BigEndian.AppendUint64(nil, seq), nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("replica: apply batch %d: %w", seq, err)
	}
	return nil
}
