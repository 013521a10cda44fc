package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"

	"github.com/tapswitch/tapswitch/switch/pebblelog"
)

// ErrDuplicate is returned by Append when an entry with the same Key is
// already journaled. Nothing was written; Lookup returns the first entry,
// whose answer the terminal should get again.
var ErrDuplicate = errors.New("journal: an entry with this terminal, STAN and transmission time exists")

// ErrCorrupt marks a record or pointer that fails its checksum, its decoding
// or its cross-checks. It is a broken invariant: the error names the key and
// the caller should stop, not skip the entry.
var ErrCorrupt = errors.New("journal: corrupt")

var errClosed = errors.New("journal: closed")

// storeFormat pins Pebble's on-disk format by name, so upgrading Pebble does
// not silently ratchet a journal to a format an older build cannot open.
const storeFormat = pebble.FormatValueSeparation

// bloomBitsPerKey sizes the tables' Bloom filters: 10 bits per key gives
// about 1% false positives.
const bloomBitsPerKey = 10

// blockCacheBytes bounds the memory Pebble keeps for table blocks. Every
// Append's duplicate check reads the index and filter blocks of each table
// whose range covers its key; Pebble's 8 MB default is outgrown within hours
// of traffic, after which each check goes to the disk.
const blockCacheBytes = 64 << 20

// memTableBytes sizes Pebble's memtable. A forwarded authorization writes
// its reversal armed, then deletes it, and writes a counter window that a
// later tap of the token deletes: pairs that cancel when both land in one
// memtable, so the record never reaches a table. With Pebble's 4 MB
// default they mostly do not. BenchmarkAuthorizationWrites, table bytes
// per authorization: 808 at 4 MB, 291 at 16 MB, 177 at 64 MB. But every
// duplicate look-up searches the memtable's skiplist, and at 64 MB that
// search cost more CPU than the flushes it saved (switch CPU per
// authorization under bench was higher in each of two side-by-side runs).
// 16 MB against 4 MB, three interleaved bench runs (bench/scripts/
// profile.sh): 118-127 against 137-140 µs of switch CPU per authorization,
// and 11-22 % more TPS. The cost is memory, and up to 16 MB of WAL replayed
// at start.
const memTableBytes = 16 << 20

// storeOptions configures Pebble for the journal: a filter for the
// duplicate check, which nearly always misses (without one each miss reads
// a data block of every table whose key range covers the key), and a
// memtable large enough for short-lived records to die in memory.
func storeOptions() *pebble.Options {
	o := &pebble.Options{FormatMajorVersion: storeFormat, CacheSize: blockCacheBytes, Logger: pebblelog.Quiet,
		MemTableSize: memTableBytes}
	o.Levels[0].FilterPolicy = bloom.FilterPolicy(bloomBitsPerKey) // lower levels inherit it
	return o
}

// stripeCount is how many locks serialise appends of one Key. Appends of
// different keys rarely share a stripe, so they reach Pebble's commit
// pipeline together and share an fsync.
const stripeCount = 256

// stripe is padded to a cache line so neighbouring locks do not contend on
// one line.
type stripe struct {
	mu sync.Mutex
	_  [56]byte
}

// Options configure Open. The zero value uses DefaultCutoff.
type Options struct {
	Cutoff Cutoff
	// Replica, in a cluster, receives a copy of every batch before a write
	// returns (replica.go); nil on a single node.
	Replica Replica
	// ReplicaHealthy, if set, is asked before each replicated write: false
	// fails the write at once (ErrReplication) instead of after the
	// replica's time-out.
	ReplicaHealthy func() bool
}

// Journal is a node's journal. Its methods are safe for concurrent use.
type Journal struct {
	db     *pebble.DB
	cutoff Cutoff
	seq    atomic.Uint64 // the last Seq handed out
	// adviceSeq is the last advice ID handed out; advices counts the
	// advices stored (armed, due or dead), bounded by AdvicesMax.
	adviceSeq atomic.Uint64
	advices   atomic.Int64
	// sealed are the business days sealed (sealed.go); Append takes the
	// read lock, SealDay the write lock.
	sealedMu sync.RWMutex
	sealed   map[string]bool
	dayFloor string // no entry gets an earlier business day (CloseDay)
	seed     maphash.Seed
	life     lifecycle
	stripes  [stripeCount]stripe
	// indexed counts, per slot of index keys, the appends that may have
	// written an index key of the slot (absence.go).
	indexed [absenceSlots]atomic.Uint64
	// rep copies every batch to a replicated stream (replica.go); nil on a
	// single node. Last, so the single node's layout is what it was.
	rep *replicator
	// abandoned are the armed advices whose outcome's Append failed
	// (saf.go), waiting to be made due.
	abandoned abandonedArms
}

// Open opens (creating if needed) the journal in dir and resumes Seq after
// the largest one stored. It reads the last record of every day to do so,
// so a damaged tail is reported here rather than after new appends.
func Open(dir string, opts Options) (*Journal, error) {
	c := opts.Cutoff
	if c == (Cutoff{}) {
		c = DefaultCutoff()
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	db, err := pebble.Open(dir, storeOptions())
	if err != nil {
		return nil, fmt.Errorf("journal: open %s: %w", dir, err)
	}
	j := &Journal{db: db, cutoff: c, seed: maphash.MakeSeed()}
	j.life.idle.L = &j.life.mu
	if opts.Replica != nil {
		if err := j.openReplica(opts.Replica); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("journal: open %s: %w", dir, err)
		}
		j.rep.healthy = opts.ReplicaHealthy
	}
	last, err := j.lastSeq()
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("journal: open %s: %w", dir, err)
	}
	j.seq.Store(last)
	if err := j.loadSealed(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("journal: open %s: %w", dir, err)
	}
	if err := j.recoverAdvices(time.Now()); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("journal: open %s: %w", dir, err)
	}
	return j, nil
}

// Close waits for calls in progress, then closes the store. Calls after
// Close return an error.
func (j *Journal) Close() error {
	if !j.life.close() {
		return errClosed
	}
	return j.db.Close()
}

// Cutoff returns the cut-off Append assigns business days with.
func (j *Journal) Cutoff() Cutoff { return j.cutoff }

// Checkpoint writes a consistent copy of the journal to dir, which must not
// exist. Pebble locks a live store's directory, so a settlement run while
// the switch is up reads a checkpoint rather than the store itself.
func (j *Journal) Checkpoint(dir string) error {
	if !j.life.enter() {
		return errClosed
	}
	defer j.life.leave()
	if err := j.db.Checkpoint(dir); err != nil {
		return fmt.Errorf("journal: checkpoint to %s: %w", dir, err)
	}
	return nil
}

// scratch holds one append's encoded keys and values; pooled so that the
// hot path does not allocate them (the batch copies what it needs).
type scratch struct {
	entryKey, index, pointer, record []byte
}

var scratchPool = sync.Pool{New: func() any {
	return &scratch{
		entryKey: make([]byte, 0, entryKeyBytes),
		index:    make([]byte, 0, indexKeyBytesMax),
		pointer:  make([]byte, 0, pointerBytes),
		record:   make([]byte, 0, 512),
	}
}}

// Append assigns e's Seq and BusinessDay and makes it durable: the record
// and its index pointer in one batch committed with pebble.Sync. It returns
// ErrDuplicate, writing nothing and leaving e unchanged, if an entry with
// e.Key() exists, and a validation error for a malformed entry.
func (j *Journal) Append(e *Entry) error {
	return j.AppendWith(e, nil)
}

// AppendWith is Append that also applies c in the same batch. On
// ErrDuplicate nothing of c is applied either.
func (j *Journal) AppendWith(e *Entry, c *Change) error {
	return j.AppendAbsent(e, c, Absence{})
}

// AppendAbsent is AppendWith for an entry whose key Find found absent:
// when a still holds (no append that could have written the key has
// committed since), the duplicate check is not read again.
//
// When the Append fails, the armed advice c disarms or activates is left to
// ReleaseAbandoned: its issuer call is over and no outcome says so.
func (j *Journal) AppendAbsent(e *Entry, c *Change, a Absence) error {
	err := j.appendAbsent(e, c, a)
	if err != nil {
		j.abandon(c)
	}
	return err
}

func (j *Journal) appendAbsent(e *Entry, c *Change, a Absence) error {
	if err := e.validate(); err != nil {
		return err
	}
	if !j.life.enter() {
		return errClosed
	}
	defer j.life.leave()
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)

	k := e.Key()
	s.index = appendIndexKey(s.index[:0], k)
	st := &j.stripes[maphash.Bytes(j.seed, s.index)%stripeCount]
	// Held across check and commit: a concurrent append of the same key
	// must see this one's index pointer or wait for it.
	st.mu.Lock()
	defer st.mu.Unlock()
	slot := j.absenceSlot(s.index)
	if !a.holds(j, k, slot, j.indexed[slot].Load()) {
		if err := j.checkAbsent(s.index, k); err != nil {
			return err
		}
	}
	rec := *e
	j.sealedMu.RLock()
	defer j.sealedMu.RUnlock()
	rec.BusinessDay = j.dayOfLocked(e.Time)
	if j.sealed[rec.BusinessDay] {
		return fmt.Errorf("%w: %s", ErrDaySealed, rec.BusinessDay)
	}
	rec.Seq = j.seq.Add(1)
	s.entryKey = appendEntryKey(s.entryKey[:0], rec.BusinessDay, rec.Seq)
	s.record = appendRecord(s.record[:0], &rec)
	s.pointer = appendPointer(s.pointer[:0], rec.BusinessDay, rec.Seq)
	if c != nil && len(c.Enqueue) > 0 && j.advices.Load()+int64(len(c.Enqueue)) > AdvicesMax {
		return ErrQueueFull
	}
	err := j.commit(s, &rec, c)
	// Counted whatever the commit's fate, before the stripe is unlocked:
	// an Absence taken before this point no longer holds for the slot.
	j.indexed[slot].Add(1)
	if err != nil {
		return fmt.Errorf("journal: append %s as %s: %w", indexKeyName(k), entryKeyName(s.entryKey), err)
	}
	e.Seq, e.BusinessDay = rec.Seq, rec.BusinessDay
	if c != nil {
		j.advices.Add(int64(len(c.Enqueue)))
		if c.Disarm != 0 {
			j.advices.Add(-1)
		}
	}
	return nil
}

// checkAbsent returns ErrDuplicate if the index key exists.
func (j *Journal) checkAbsent(index []byte, k Key) error {
	_, closer, err := j.db.Get(index)
	switch {
	case err == nil:
		_ = closer.Close()
		return ErrDuplicate
	case errors.Is(err, pebble.ErrNotFound):
		return nil
	default:
		return fmt.Errorf("journal: look up %s: %w", indexKeyName(k), err)
	}
}

// commit writes the entry, its pointer and c atomically and durably.
func (j *Journal) commit(s *scratch, rec *Entry, c *Change) error {
	b := j.db.NewBatch()
	defer b.Close()
	if err := b.Set(s.entryKey, s.record, nil); err != nil {
		return err
	}
	if err := b.Set(s.index, s.pointer, nil); err != nil {
		return err
	}
	if err := j.applyChange(b, rec, c); err != nil {
		return err
	}
	return j.write(b)
}

// Lookup returns the entry with key k, if any. A key that no entry could
// have (it fails Append's validation) is an error, not a miss, so a caller
// that forgot to validate a request finds out.
func (j *Journal) Lookup(k Key) (Entry, bool, error) {
	e, found, _, err := j.Find(k)
	return e, found, err
}

// Find is Lookup that, when no entry has key k, also returns the proof of
// it that AppendAbsent takes.
func (j *Journal) Find(k Key) (Entry, bool, Absence, error) {
	probe := Entry{TerminalID: k.TerminalID, STAN: k.STAN, TransmissionTime: k.TransmissionTime}
	if err := probe.validateKey(); err != nil {
		return Entry{}, false, Absence{}, err
	}
	if !j.life.enter() {
		return Entry{}, false, Absence{}, errClosed
	}
	defer j.life.leave()
	index := appendIndexKey(make([]byte, 0, indexKeyBytesMax), k)
	slot := j.absenceSlot(index)
	absent := Absence{journal: j, key: k, slot: slot, appends: j.indexed[slot].Load()}
	day, seq, found, err := j.readPointer(index, k)
	if err != nil {
		return Entry{}, false, Absence{}, err
	}
	if !found {
		return Entry{}, false, absent, nil
	}
	e, err := j.readEntry(k, day, seq)
	return e, err == nil, Absence{}, err
}

// readEntry reads the entry an index pointer of k points to.
func (j *Journal) readEntry(k Key, day string, seq uint64) (Entry, error) {
	ek := appendEntryKey(make([]byte, 0, entryKeyBytes), day, seq)
	v, closer, err := j.db.Get(ek)
	if errors.Is(err, pebble.ErrNotFound) {
		return Entry{}, fmt.Errorf("%w: index %s points to %s, which is missing", ErrCorrupt, indexKeyName(k), entryKeyName(ek))
	}
	if err != nil {
		return Entry{}, fmt.Errorf("journal: read %s: %w", entryKeyName(ek), err)
	}
	e, err := decodeEntry(ek, v)
	_ = closer.Close()
	if err != nil {
		return Entry{}, err
	}
	if e.Key() != k {
		return Entry{}, fmt.Errorf("%w: index %s points to %s, which holds %s", ErrCorrupt, indexKeyName(k), entryKeyName(ek), indexKeyName(e.Key()))
	}
	return e, nil
}

// readPointer reads and checks the index pointer of k, stored under index.
func (j *Journal) readPointer(index []byte, k Key) (day string, seq uint64, found bool, err error) {
	v, closer, err := j.db.Get(index)
	if errors.Is(err, pebble.ErrNotFound) {
		return "", 0, false, nil
	}
	if err != nil {
		return "", 0, false, fmt.Errorf("journal: look up %s: %w", indexKeyName(k), err)
	}
	day, seq, err = decodePointer(v)
	_ = closer.Close()
	if err != nil {
		return "", 0, false, fmt.Errorf("%w: index %s: %v", ErrCorrupt, indexKeyName(k), err)
	}
	return day, seq, true, nil
}

// decodeEntry decodes the record stored under entry key ek and checks that
// it is the record the key says it is.
func decodeEntry(ek, v []byte) (Entry, error) {
	e, err := decodeRecord(v)
	if err != nil {
		return Entry{}, fmt.Errorf("%w: record %s: %v", ErrCorrupt, entryKeyName(ek), err)
	}
	if len(ek) != entryKeyBytes || string(ek[1:1+dayBytes]) != e.BusinessDay ||
		binary.BigEndian.Uint64(ek[1+dayBytes:]) != e.Seq {
		return Entry{}, fmt.Errorf("%w: record %s holds day %s Seq %d", ErrCorrupt, entryKeyName(ek), e.BusinessDay, e.Seq)
	}
	return e, nil
}

// Fresh reports whether the journal has never held an entry nor an advice:
// a switch that has never sent anything to an issuer.
func (j *Journal) Fresh() bool { return j.seq.Load() == 0 && j.advices.Load() == 0 }
