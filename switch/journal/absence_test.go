package journal

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// TestAbsenceDoesNotOutliveAnAppendOfItsKey: an append of the key after
// Find makes the proof stale, and AppendAbsent reads again and refuses.
func TestAbsenceDoesNotOutliveAnAppendOfItsKey(t *testing.T) {
	j := openTest(t, t.TempDir())
	defer j.Close()
	e := newEntry("TERM0001", "000001")
	_, found, absent, err := j.Find(e.Key())
	if err != nil || found {
		t.Fatal(found, err)
	}
	first := *e
	if err := j.Append(&first); err != nil {
		t.Fatal(err)
	}
	second := *e
	if err := j.AppendAbsent(&second, nil, absent); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("append under a stale proof: %v, want ErrDuplicate", err)
	}
}

// TestAbsenceOfOneKeyProvesNothingOfAnother: a proof taken for one key is
// not used for an entry of another.
func TestAbsenceOfOneKeyProvesNothingOfAnother(t *testing.T) {
	j := openTest(t, t.TempDir())
	defer j.Close()
	stored := newEntry("TERM0001", "000002")
	if err := j.Append(stored); err != nil {
		t.Fatal(err)
	}
	_, _, absent, err := j.Find(newEntry("TERM0001", "000003").Key())
	if err != nil {
		t.Fatal(err)
	}
	again := newEntry("TERM0001", "000002")
	if err := j.AppendAbsent(again, nil, absent); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("append of a stored key under another key's proof: %v, want ErrDuplicate", err)
	}
}

// TestAbsenceUnderConcurrency: many goroutines Find and AppendAbsent the
// same keys at once; each key is written exactly once and Find then
// returns it.
func TestAbsenceUnderConcurrency(t *testing.T) {
	j := openTest(t, t.TempDir())
	defer j.Close()
	const keys, racers = 50, 8
	var written [keys]atomic.Int32
	var wg sync.WaitGroup
	for n := range keys * racers {
		wg.Go(func() {
			e := newEntry("TERM0009", fmt.Sprintf("%06d", n%keys))
			_, found, absent, err := j.Find(e.Key())
			if err != nil {
				t.Error(err)
				return
			}
			if found {
				return
			}
			switch err := j.AppendAbsent(e, nil, absent); {
			case err == nil:
				written[n%keys].Add(1)
			case !errors.Is(err, ErrDuplicate):
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for n := range keys {
		if got := written[n].Load(); got != 1 {
			t.Errorf("key %d written %d times", n, got)
		}
		if _, found, err := j.Lookup(newEntry("TERM0009", fmt.Sprintf("%06d", n)).Key()); err != nil || !found {
			t.Errorf("key %d: found %v, %v", n, found, err)
		}
	}
}

// TestAbsenceOfAnotherJournalProvesNothing: a proof taken before the
// journal was closed and opened again is not trusted by the new one, whose
// counts start again from zero.
func TestAbsenceOfAnotherJournalProvesNothing(t *testing.T) {
	dir := t.TempDir()
	first := openTest(t, dir)
	e := newEntry("TERM0001", "000004")
	_, _, absent, err := first.Find(e.Key())
	if err != nil {
		t.Fatal(err)
	}
	stored := *e
	if err := first.Append(&stored); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second := openTest(t, dir)
	defer second.Close()
	// Each journal hashes keys to slots under its own seed: make the old
	// proof name the new journal's slot, as it would by chance once in
	// absenceSlots, so that only the journal's identity tells them apart.
	absent.slot = second.absenceSlot(appendIndexKey(nil, e.Key()))
	again := *e
	if err := second.AppendAbsent(&again, nil, absent); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("append under a proof from the closed journal: %v, want ErrDuplicate", err)
	}
}
