package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// recoverAdvices runs at Open: it resumes advice IDs after the largest
// stored, counts the queue, and makes every armed advice due, since an
// armed advice left by a stopped switch belongs to an issuer call whose
// outcome was never journaled.
func (j *Journal) recoverAdvices(now time.Time) error {
	b := j.db.NewBatch()
	defer b.Close()
	var maxID uint64
	var count int64
	err := j.eachAdvice(func(a Advice) error {
		maxID, count = max(maxID, a.ID), count+1
		if a.State != AdviceArmed {
			return nil
		}
		a.State, a.NextAttempt = AdviceDue, now
		return b.Set(appendAdviceKey(nil, a.ID), appendAdviceRecord(nil, &a), nil)
	})
	if err != nil {
		return err
	}
	j.adviceSeq.Store(maxID)
	j.advices.Store(count)
	if b.Empty() {
		return nil
	}
	return j.write(b)
}

// eachAdvice calls fn with every stored advice in ID order.
func (j *Journal) eachAdvice(fn func(Advice) error) error {
	it, err := j.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixAdvice}, UpperBound: []byte{prefixAdvice + 1}})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return err
		}
		a, err := decodeAdvice(it.Key(), v)
		if err == nil {
			err = fn(a)
		}
		if err != nil {
			_ = it.Close()
			return err
		}
	}
	return it.Close()
}

// DueAdvices returns up to n advices due at now, oldest ID first.
func (j *Journal) DueAdvices(now time.Time, n int) ([]Advice, error) {
	if !j.life.enter() {
		return nil, errClosed
	}
	defer j.life.leave()
	var due []Advice
	errEnough := errors.New("enough")
	err := j.eachAdvice(func(a Advice) error {
		if a.State == AdviceDue && !a.NextAttempt.After(now) {
			due = append(due, a)
		}
		if len(due) >= n {
			return errEnough
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, fmt.Errorf("journal: due advices: %w", err)
	}
	return due, nil
}

// CompleteAdvice deletes an advice the issuer acknowledged.
func (j *Journal) CompleteAdvice(id uint64) error {
	if !j.life.enter() {
		return errClosed
	}
	defer j.life.leave()
	if err := j.del(appendAdviceKey(nil, id)); err != nil {
		return fmt.Errorf("journal: complete advice %d: %w", id, err)
	}
	j.advices.Add(-1)
	return nil
}

// RescheduleAdvice records a failed attempt: a is written back with its
// Attempts, NextAttempt and State as the caller set them.
func (j *Journal) RescheduleAdvice(a Advice) error {
	if !j.life.enter() {
		return errClosed
	}
	defer j.life.leave()
	if err := j.set(appendAdviceKey(nil, a.ID), appendAdviceRecord(nil, &a)); err != nil {
		return fmt.Errorf("journal: reschedule advice %d: %w", a.ID, err)
	}
	return nil
}

// AdviceCounts counts the stored advices by state.
func (j *Journal) AdviceCounts() (map[AdviceState]int, error) {
	if !j.life.enter() {
		return nil, errClosed
	}
	defer j.life.leave()
	counts := map[AdviceState]int{}
	err := j.eachAdvice(func(a Advice) error {
		counts[a.State]++
		return nil
	})
	return counts, err
}

// ReversalOf returns the entry that reversed the transaction with key k.
func (j *Journal) ReversalOf(k Key) (Entry, bool, error) {
	if !j.life.enter() {
		return Entry{}, false, errClosed
	}
	defer j.life.leave()
	v, closer, err := j.db.Get(appendReversedKey(nil, k))
	if errors.Is(err, pebble.ErrNotFound) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, err
	}
	day, seq, err := decodePointer(v)
	_ = closer.Close()
	if err != nil {
		return Entry{}, false, fmt.Errorf("%w: reversal index of %s: %v", ErrCorrupt, indexKeyName(k), err)
	}
	ek := appendEntryKey(nil, day, seq)
	rv, closer, err := j.db.Get(ek)
	if err != nil {
		return Entry{}, false, fmt.Errorf("%w: reversal index of %s points to %s: %v", ErrCorrupt, indexKeyName(k), entryKeyName(ek), err)
	}
	defer closer.Close()
	e, err := decodeEntry(ek, rv)
	return e, err == nil, err
}

// StandInUsage returns a token's stand-in usage on a business day.
func (j *Journal) StandInUsage(day, token string) (Usage, error) {
	u := Usage{Day: day, Token: token}
	if !j.life.enter() {
		return u, errClosed
	}
	defer j.life.leave()
	v, closer, err := j.db.Get(appendUsageKey(nil, day, token))
	if errors.Is(err, pebble.ErrNotFound) {
		return u, nil
	}
	if err != nil {
		return u, err
	}
	defer closer.Close()
	if len(v) != usageBytes || crc32.Checksum(v[:16], castagnoli) != binary.BigEndian.Uint32(v[16:]) {
		return u, fmt.Errorf("%w: stand-in usage of day %s", ErrCorrupt, day)
	}
	u.Count, u.Amount = int(binary.BigEndian.Uint64(v)), int64(binary.BigEndian.Uint64(v[8:]))
	return u, nil
}

// BusinessDayOf is the business day an entry decided at t belongs to: by
// the cut-off, or the day after one closed early (CloseDay).
func (j *Journal) BusinessDayOf(t time.Time) string {
	j.sealedMu.RLock()
	defer j.sealedMu.RUnlock()
	return j.dayOfLocked(t)
}
