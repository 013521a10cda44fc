package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// Replication: in a cluster (docs/cluster.md) every batch the journal
// commits is also copied to a Replica, a stream replicated on a quorum of
// servers, and the write returns only when both the local fsync and the
// quorum's acknowledgement are done. The batch's Pebble representation is
// the copy, so rebuilding a journal is applying the batches in stream order.
//
//	batch mark  'w' | batch number (8 bytes BE) -> low u64 BE
//	floor       "vreplica" -> floor u64 BE | stream sequence u64 BE
//
// Each replicated batch carries its own mark, numbered under one lock in
// the order it is published, so the stream holds the batches in number
// order (a batch republished after a lost acknowledgement comes later).
// low is the number below which every batch had committed locally when
// this one was published. The floor (written in a local batch, never
// published) says every batch below it has committed locally and the
// stream position to read from: marks below the floor are deleted then.
//
// Why the stream's order is one the local journal could have committed:
// two batches that touch a common key are never in flight together; the
// callers order them (an Append holds its key's stripe across commit, a
// tap's Arm returns before its outcome's Append starts, an advice is
// rescheduled or completed only by the sender that took it, sealing holds
// the day lock against every Append). So of two conflicting batches one's
// write returned before the other's began, and it was both published and
// committed first. Batches in flight together touch disjoint keys and
// commute. Applying the stream in order therefore gives the local state.
//
// At Open, a journal with a Replica applies every batch the stream holds
// from its floor on whose mark is missing: the batches that reached the
// quorum but not the local disk before a crash. None of them can conflict
// with a batch that committed after it (its write never returned), so
// applying them late is applying them in order.

// Replica is the replicated copy of one node's journal batches.
type Replica interface {
	// Publish starts sending batch number n. Calls come in number order,
	// and a batch must be stored after every batch published before it or
	// not at all (no retry behind the journal's back: the floor's stream
	// position relies on it); the returned wait blocks until a quorum has
	// stored it and returns its stream sequence, or fails.
	Publish(n uint64, repr []byte) (wait func() (uint64, error))
	// Replay calls fn with each batch of this node stored after stream
	// sequence after, in stream order.
	Replay(after uint64, fn func(streamSeq, n uint64, repr []byte) error) error
	// LastBatch is the highest batch number the stream holds for this node.
	LastBatch() (uint64, error)
}

const (
	prefixBatchMark = 'w'
	keyReplicaFloor = "vreplica"
	// batchWindowMax bounds the batches between the oldest not yet
	// committed locally and the newest published; beyond it writes fail.
	batchWindowMax = 1 << 14
	// pruneEvery is how many completed batches pass between deletions of
	// the marks below the floor.
	pruneEvery = 4096
)

// ErrReplication wraps every failure to get a batch to the quorum.
var ErrReplication = errors.New("journal: not replicated")

// unacked is a batch committed locally whose copy was not acknowledged.
type unacked struct {
	n    uint64
	repr []byte
}

// replicator numbers, publishes and tracks the journal's batches.
type replicator struct {
	r         Replica
	mu        sync.Mutex // numbering and publishing, so stream order is number order
	next      uint64     // the next batch number
	low       uint64     // every batch below it has committed locally
	floorSeq  uint64     // highest stream sequence acknowledged of a batch below low
	done      [batchWindowMax]bool
	seqs      [batchWindowMax]uint64
	unacked   []unacked
	broken    error // a local commit failed: the journal refuses writes
	completed int
	healthy   func() bool // nil: always try
}

func appendBatchMark(dst []byte, n uint64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, prefixBatchMark), n)
}

// write commits b durably: locally with Sync and, in a cluster, also on
// the replica, both before it returns.
func (j *Journal) write(b *pebble.Batch) error {
	rp := j.rep
	if rp == nil {
		return b.Commit(pebble.Sync)
	}
	n, repr, wait, err := rp.publish(b)
	if err != nil {
		return err
	}
	cerr := b.Commit(pebble.Sync)
	seq, perr := wait()
	rp.finish(j, n, seq, cerr, perr, repr)
	if cerr != nil {
		return cerr
	}
	if perr != nil {
		return fmt.Errorf("%w: batch %d: %v", ErrReplication, n, perr)
	}
	return nil
}

// set is db.Set with Sync, replicated in a cluster.
func (j *Journal) set(key, value []byte) error {
	if j.rep == nil {
		return j.db.Set(key, value, pebble.Sync)
	}
	b := j.db.NewBatch()
	defer b.Close()
	if err := b.Set(key, value, nil); err != nil {
		return err
	}
	return j.write(b)
}

// del is db.Delete with Sync, replicated in a cluster.
func (j *Journal) del(key []byte) error {
	if j.rep == nil {
		return j.db.Delete(key, pebble.Sync)
	}
	b := j.db.NewBatch()
	defer b.Close()
	if err := b.Delete(key, nil); err != nil {
		return err
	}
	return j.write(b)
}

// publish numbers b, adds its mark and starts sending it. Batches whose
// copy failed earlier are sent again first, in order: until they are
// stored, nothing new is written.
func (rp *replicator) publish(b *pebble.Batch) (n uint64, repr []byte, wait func() (uint64, error), err error) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.broken != nil {
		return 0, nil, nil, fmt.Errorf("journal: a commit failed earlier, restart the node: %w", rp.broken)
	}
	if rp.healthy != nil && !rp.healthy() {
		return 0, nil, nil, fmt.Errorf("%w: the node has no quorum (its last heartbeat is older than the TTL)", ErrReplication)
	}
	for len(rp.unacked) > 0 {
		u := rp.unacked[0]
		if _, err := rp.r.Publish(u.n, u.repr)(); err != nil {
			return 0, nil, nil, fmt.Errorf("%w: batch %d again: %v", ErrReplication, u.n, err)
		}
		rp.unacked = rp.unacked[1:]
	}
	if rp.next-rp.low >= batchWindowMax {
		return 0, nil, nil, fmt.Errorf("%w: %d batches not yet committed locally", ErrReplication, rp.next-rp.low)
	}
	n = rp.next
	rp.next++
	if err := b.Set(appendBatchMark(nil, n), binary.BigEndian.AppendUint64(nil, rp.low), nil); err != nil {
		return 0, nil, nil, err
	}
	repr = append([]byte(nil), b.Repr()...)
	return n, repr, rp.r.Publish(n, repr), nil
}

// finish records batch n's fate and moves low past the batches that have
// committed locally.
func (rp *replicator) finish(j *Journal, n, seq uint64, cerr, perr error, repr []byte) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if cerr != nil {
		rp.broken = cerr // low stays below n: the next Open applies it from the stream
		return
	}
	if perr != nil {
		rp.unacked = append(rp.unacked, unacked{n: n, repr: repr})
	}
	rp.done[n%batchWindowMax], rp.seqs[n%batchWindowMax] = true, seq
	for rp.low < rp.next && rp.done[rp.low%batchWindowMax] {
		i := rp.low % batchWindowMax
		rp.floorSeq = max(rp.floorSeq, rp.seqs[i])
		rp.done[i], rp.seqs[i] = false, 0
		rp.low++
	}
	if rp.completed++; rp.completed%pruneEvery == 0 {
		rp.prune(j)
	}
}

// prune writes the floor and deletes the marks below it, in one local
// batch (not synced: if lost, the older floor and marks come back
// together). The caller holds rp.mu.
func (rp *replicator) prune(j *Journal) {
	b := j.db.NewBatch()
	defer b.Close()
	v := binary.BigEndian.AppendUint64(nil, rp.low)
	_ = b.Set([]byte(keyReplicaFloor), binary.BigEndian.AppendUint64(v, rp.floorSeq), nil)
	_ = b.DeleteRange(appendBatchMark(nil, 0), appendBatchMark(nil, rp.low), nil)
	_ = b.Commit(pebble.NoSync)
}

// openReplica catches the journal up with its replica and starts numbering
// after the highest batch either holds. It runs in Open before anything
// reads the store.
func (j *Journal) openReplica(r Replica) error {
	floor, floorSeq, err := j.replicaFloor()
	if err != nil {
		return err
	}
	next := max(floor, 1)
	err = r.Replay(floorSeq, func(_, n uint64, repr []byte) error {
		next = max(next, n+1)
		if n < floor {
			return nil
		}
		return j.applyMissing(n, repr, pebble.Sync)
	})
	if err != nil {
		return fmt.Errorf("journal: catch up from the replica: %w", err)
	}
	last, err := r.LastBatch()
	if err != nil {
		return fmt.Errorf("journal: replica's last batch: %w", err)
	}
	highest, err := j.highestMark()
	if err != nil {
		return err
	}
	// A batch a previous life committed locally whose copy never reached
	// the stream (its acknowledgement failed, then the node died) was in
	// flight with the first such batch, so its number is below the
	// stream's last plus batchWindowMax (no batch is published while one
	// waits to be sent again). Start above them all, so neither this life
	// nor an adopter writing this node's journal reuses one (a mark
	// present would hide the stream's batch of that number).
	next = max(next, last+1, highest+1) + batchWindowMax
	j.rep = &replicator{r: r, next: next, low: next, floorSeq: floorSeq}
	return nil
}

// applyMissing applies batch n unless its mark is already stored.
func (j *Journal) applyMissing(n uint64, repr []byte, opts *pebble.WriteOptions) error {
	_, closer, err := j.db.Get(appendBatchMark(nil, n))
	if err == nil {
		return closer.Close()
	}
	if !errors.Is(err, pebble.ErrNotFound) {
		return err
	}
	b := j.db.NewBatch()
	defer b.Close()
	if err := b.SetRepr(append([]byte(nil), repr...)); err != nil {
		return fmt.Errorf("%w: replicated batch %d: %v", ErrCorrupt, n, err)
	}
	return b.Commit(opts)
}

// replicaFloor reads the floor: 0, 0 when none was written.
func (j *Journal) replicaFloor() (floor, seq uint64, err error) {
	v, closer, err := j.db.Get([]byte(keyReplicaFloor))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	defer closer.Close()
	if len(v) != 16 {
		return 0, 0, fmt.Errorf("%w: replica floor of %d bytes", ErrCorrupt, len(v))
	}
	return binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:]), nil
}

// highestMark is the highest batch number marked in the store.
func (j *Journal) highestMark() (uint64, error) {
	it, err := j.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixBatchMark}, UpperBound: []byte{prefixBatchMark + 1}})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	if !it.Last() {
		return 0, it.Error()
	}
	if len(it.Key()) != 9 {
		return 0, fmt.Errorf("%w: batch mark key %q", ErrCorrupt, it.Key())
	}
	return binary.BigEndian.Uint64(it.Key()[1:]), nil
}

// Restore builds a journal in dir, which must hold none, from a replica:
// every batch in stream order (a batch stored twice, sent again after a
// lost acknowledgement, is applied once). Open it afterwards as usual.
func Restore(dir string, r Replica) error {
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("journal: restore into %s: it must not exist (%v)", dir, err)
	}
	db, err := pebble.Open(dir, storeOptions())
	if err != nil {
		return fmt.Errorf("journal: restore into %s: %w", dir, err)
	}
	j := &Journal{db: db}
	var highest, lastSeq uint64
	err = r.Replay(0, func(seq, n uint64, repr []byte) error {
		highest, lastSeq = max(highest, n), seq
		return j.applyMissing(n, repr, pebble.NoSync) // the floor's synced write below makes them durable
	})
	if err == nil { // every batch up to highest is applied: the next open reads from lastSeq on
		v := binary.BigEndian.AppendUint64(nil, highest+1)
		err = db.Set([]byte(keyReplicaFloor), binary.BigEndian.AppendUint64(v, lastSeq), pebble.Sync)
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("journal: restore into %s: %w", dir, err)
	}
	return nil
}
