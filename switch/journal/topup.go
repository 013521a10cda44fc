package journal

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Top-ups: the record of each transit top-up pair (switch/topup), kept in
// the journal's store so that the pair's state and the entry of the leg
// that decides it are written in one batch.
//
//	top-up 't' | ID -> the top-up's record, opaque here (switch/topup encodes it)

const (
	prefixTopUp = 't'
	// topUpIDBytesMax and topUpRecordBytesMax bound what a caller may store.
	topUpIDBytesMax     = 64
	topUpRecordBytesMax = 4096
)

// TopUpRecord is one top-up's record, written by PutTopUp or in an Append's
// batch (Change.TopUp).
type TopUpRecord struct {
	ID    string
	Value []byte
}

func (r *TopUpRecord) validate() error {
	if r.ID == "" || len(r.ID) > topUpIDBytesMax {
		return fmt.Errorf("journal: top-up ID of %d bytes: want 1 to %d", len(r.ID), topUpIDBytesMax)
	}
	if len(r.Value) == 0 || len(r.Value) > topUpRecordBytesMax {
		return fmt.Errorf("journal: top-up %s record of %d bytes: want 1 to %d", r.ID, len(r.Value), topUpRecordBytesMax)
	}
	return nil
}

func appendTopUpKey(dst []byte, id string) []byte {
	return append(append(dst, prefixTopUp), id...)
}

// PutTopUp writes a top-up's record durably.
func (j *Journal) PutTopUp(r TopUpRecord) error {
	if err := r.validate(); err != nil {
		return err
	}
	if !j.life.enter() {
		return errClosed
	}
	defer j.life.leave()
	if err := j.set(appendTopUpKey(nil, r.ID), r.Value); err != nil {
		return fmt.Errorf("journal: top-up %s: %w", r.ID, err)
	}
	return nil
}

// TopUp reads a top-up's record.
func (j *Journal) TopUp(id string) ([]byte, bool, error) {
	if !j.life.enter() {
		return nil, false, errClosed
	}
	defer j.life.leave()
	v, closer, err := j.db.Get(appendTopUpKey(nil, id))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("journal: top-up %s: %w", id, err)
	}
	defer closer.Close()
	return append([]byte(nil), v...), true, nil
}

// EachTopUp calls fn with every top-up's record, in ID order, and stops at
// its first error.
func (j *Journal) EachTopUp(fn func(TopUpRecord) error) error {
	if !j.life.enter() {
		return errClosed
	}
	defer j.life.leave()
	it, err := j.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixTopUp}, UpperBound: []byte{prefixTopUp + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		r := TopUpRecord{ID: string(it.Key()[1:]), Value: append([]byte(nil), it.Value()...)}
		if err := fn(r); err != nil {
			return err
		}
	}
	return it.Error()
}
