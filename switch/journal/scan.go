package journal

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// ScanDay calls fn with every entry of business day (YYYYMMDD) in Seq
// order, stopping at and returning the first error from fn or the store.
// fn may call the Journal, but not Close (Close waits for the scan). The scan reads one point-in-time view, so entries
// appended during it may or may not be seen.
func (j *Journal) ScanDay(day string, fn func(Entry) error) error {
	if err := ruleDay.check("day", day); err != nil {
		return err
	}
	if !j.life.enter() {
		return errClosed
	}
	defer j.life.leave()
	lower, upper := dayBounds(day)
	it, err := j.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("journal: scan %s: %w", day, err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		if err := scanOne(it, fn); err != nil {
			_ = it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("journal: scan %s: %w", day, err)
	}
	return nil
}

// scanOne decodes the entry under the iterator and hands it to fn.
func scanOne(it *pebble.Iterator, fn func(Entry) error) error {
	v, err := it.ValueAndErr()
	if err != nil {
		return fmt.Errorf("journal: read %s: %w", entryKeyName(it.Key()), err)
	}
	e, err := decodeEntry(it.Key(), v)
	if err != nil {
		return err
	}
	return fn(e)
}

// Days returns the business days that hold entries, ascending.
func (j *Journal) Days() ([]string, error) {
	if !j.life.enter() {
		return nil, errClosed
	}
	defer j.life.leave()
	var days []string
	err := j.eachDay(func(it *pebble.Iterator, day string) error {
		days = append(days, day)
		return nil
	})
	return days, err
}

// eachDay calls fn once per business day present, with the iterator
// positioned on that day's first entry. It skips from one day's key range to
// the next, so it costs one seek per day, not one step per entry.
func (j *Journal) eachDay(fn func(it *pebble.Iterator, day string) error) error {
	it, err := j.db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{prefixEntry},
		UpperBound: []byte{prefixEntry + 1},
	})
	if err != nil {
		return fmt.Errorf("journal: list days: %w", err)
	}
	for ok := it.First(); ok; {
		k := it.Key()
		if len(k) != entryKeyBytes {
			_ = it.Close()
			return fmt.Errorf("%w: %s", ErrCorrupt, entryKeyName(k))
		}
		day := string(k[1 : 1+dayBytes])
		if err := fn(it, day); err != nil {
			_ = it.Close()
			return err
		}
		_, upper := dayBounds(day)
		ok = it.SeekGE(upper)
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("journal: list days: %w", err)
	}
	return nil
}

// lastSeq returns the largest Seq stored, 0 for an empty journal. Seq order
// is not day order (an entry decided just before a cut-off can be appended
// just after one decided past it), so it takes the last entry of every day,
// not just of the last day.
func (j *Journal) lastSeq() (uint64, error) {
	var last uint64
	err := j.eachDay(func(it *pebble.Iterator, day string) error {
		_, upper := dayBounds(day)
		if !it.SeekLT(upper) {
			return fmt.Errorf("journal: day %s vanished while reading it: %w", day, it.Error())
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("journal: read %s: %w", entryKeyName(it.Key()), err)
		}
		e, err := decodeEntry(it.Key(), v)
		if err != nil {
			return err
		}
		last = max(last, e.Seq)
		return nil
	})
	return last, err
}
