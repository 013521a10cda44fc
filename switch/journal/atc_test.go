package journal

import (
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

const atcToken = "6299901234567893"

// countersKeys counts the versions stored for token.
func countersKeys(t *testing.T, j *Journal, token string) int {
	t.Helper()
	lower := appendCountersPrefix(nil, token)
	upper := append(appendCountersPrefix(nil, token)[:len(lower)-1], 1)
	it, err := j.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	return n
}

func TestATCWrittenWithTheOutcomeAndReadBack(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, dir)
	if _, found, err := j.LastATC(atcToken); err != nil || found {
		t.Fatalf("fresh journal: found %v, err %v", found, err)
	}
	updates := []ATCUpdate{
		{Token: atcToken, Version: 1, Last: 5, Seen: []byte{0}},
		{Token: atcToken, Version: 2, Last: 7, Seen: []byte{0b10}, Drop: []uint64{1}},
	}
	for i, u := range updates {
		e := newEntry("TERM0001", []string{"000001", "000002"}[i])
		if err := j.AppendWith(e, &Change{ATC: &u}); err != nil {
			t.Fatal(err)
		}
	}
	if n := countersKeys(t, j, atcToken); n != 1 {
		t.Fatalf("%d versions stored after the second dropped the first, want 1", n)
	}
	j.Close()

	j = openTest(t, dir)
	defer j.Close()
	s, found, err := j.LoadATC(atcToken)
	if err != nil || !found || s.Version != 2 || s.Last != 7 || string(s.Seen) != "\x02" {
		t.Fatalf("after reopen: %+v found %v err %v", s, found, err)
	}
	if last, _, _ := j.LastATC(atcToken); last != 7 {
		t.Fatalf("LastATC %d", last)
	}
	if _, found, _ := j.LoadATC("6299901234567000"); found {
		t.Fatal("another token's counters found")
	}
}

// TestATCOutOfOrderCommits: batches of one token committing in the reverse
// of their versions leave the highest version the token's window, and the
// next load tidies the ones left behind.
func TestATCOutOfOrderCommits(t *testing.T) {
	j := openTest(t, t.TempDir())
	defer j.Close()
	updates := []ATCUpdate{
		{Token: atcToken, Version: 3, Last: 12, Seen: []byte{3}},
		{Token: atcToken, Version: 2, Last: 12, Seen: []byte{1}},
		{Token: atcToken, Version: 1, Last: 10},
	}
	for i, u := range updates {
		e := newEntry("TERM0001", []string{"000001", "000002", "000003"}[i])
		if err := j.AppendWith(e, &Change{ATC: &u}); err != nil {
			t.Fatal(err)
		}
	}
	if n := countersKeys(t, j, atcToken); n != 3 {
		t.Fatalf("%d versions stored, want 3", n)
	}
	s, found, err := j.LoadATC(atcToken)
	if err != nil || !found || s.Version != 3 || s.Last != 12 || string(s.Seen) != "\x03" {
		t.Fatalf("LoadATC %+v found %v err %v", s, found, err)
	}
	if n := countersKeys(t, j, atcToken); n != 1 {
		t.Fatalf("%d versions stored after the load, want 1", n)
	}
}

// TestATCOnlyWithItsOutcome: when the outcome is not written (a duplicate
// key, a bad token), neither are the counters.
func TestATCOnlyWithItsOutcome(t *testing.T) {
	j := openTest(t, t.TempDir())
	defer j.Close()
	if err := j.Append(newEntry("TERM0001", "000001")); err != nil {
		t.Fatal(err)
	}
	err := j.AppendWith(newEntry("TERM0001", "000001"), &Change{ATC: &ATCUpdate{Token: atcToken, Version: 1, Last: 5}})
	if !errors.Is(err, ErrDuplicate) {
		t.Fatalf("duplicate: %v", err)
	}
	bad := []ATCUpdate{
		{Token: "62999012345x7893", Version: 1, Last: 5},
		{Token: "", Version: 1, Last: 5},
		{Token: atcToken, Version: 0, Last: 5},
		{Token: atcToken, Version: 1, Last: 5, Seen: make([]byte, countersSeenBytesMax+1)},
		{Token: atcToken, Version: 2, Last: 5, Drop: []uint64{2}},
		{Token: atcToken, Version: 2000, Last: 5, Drop: make([]uint64, countersDropMax+1)},
	}
	for _, u := range bad {
		if err := j.AppendWith(newEntry("TERM0001", "000002"), &Change{ATC: &u}); err == nil {
			t.Fatalf("update %+v written", u)
		}
	}
	if _, found, _ := j.LoadATC(atcToken); found {
		t.Fatal("counters written without their outcome")
	}
	if _, _, err := j.LoadATC("62999012345x7893"); err == nil {
		t.Fatal("load of a token that is not digits")
	}
}

func TestATCCorruptRecordReported(t *testing.T) {
	j := openTest(t, t.TempDir())
	defer j.Close()
	if err := j.AppendWith(newEntry("TERM0001", "000001"), &Change{ATC: &ATCUpdate{Token: atcToken, Version: 1, Last: 5}}); err != nil {
		t.Fatal(err)
	}
	rec := appendCountersRecord(nil, 5, []byte{1, 2})
	rec[2] ^= 0xff
	if err := j.db.Set(appendCountersKey(nil, atcToken, 1), rec, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, _, err := j.LoadATC(atcToken); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt counters: %v", err)
	}
}
