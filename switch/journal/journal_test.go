package journal

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

func openTest(t testing.TB, dir string) *Journal {
	t.Helper()
	j, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// newEntry is sampleEntry as a caller hands it to Append: no Seq or day.
func newEntry(tid, stan string) *Entry {
	e := sampleEntry(tid, stan)
	e.Seq, e.BusinessDay = 0, ""
	return e
}

func scanAll(t *testing.T, j *Journal, day string) []Entry {
	t.Helper()
	var got []Entry
	if err := j.ScanDay(day, func(e Entry) error { got = append(got, e); return nil }); err != nil {
		t.Fatalf("ScanDay(%s): %v", day, err)
	}
	return got
}

func TestAppendLookupScanRoundTrip(t *testing.T) {
	j := openTest(t, t.TempDir())
	defer j.Close()
	full := newEntry("TERM0001", "000123")
	minimal := &Entry{Time: full.Time.Add(time.Second), NodeID: "node-a", MTI: "0100",
		TerminalID: "TERM0002", STAN: "000001", TransmissionTime: "0315063001", ResponseCode: "91"}
	for _, e := range []*Entry{full, minimal} {
		if err := j.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	if full.Seq != 1 || minimal.Seq != 2 || full.BusinessDay != "20240315" || minimal.BusinessDay != "20240315" {
		t.Fatalf("assigned (Seq, day) = (%d, %s), (%d, %s)", full.Seq, full.BusinessDay, minimal.Seq, minimal.BusinessDay)
	}
	for _, e := range []*Entry{full, minimal} {
		got, ok, err := j.Lookup(e.Key())
		if err != nil || !ok || !entriesEqual(got, *e) {
			t.Errorf("Lookup(%v) = %+v, %v, %v; want %+v", e.Key(), got, ok, err, *e)
		}
	}
	got := scanAll(t, j, "20240315")
	if len(got) != 2 || !entriesEqual(got[0], *full) || !entriesEqual(got[1], *minimal) {
		t.Errorf("ScanDay = %+v", got)
	}
	if _, ok, err := j.Lookup(Key{"TERM0009", "000123", "0315063000"}); ok || err != nil {
		t.Errorf("Lookup of an absent key = %v, %v", ok, err)
	}
}

func TestSeqRecoveredAfterReopen(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, dir)
	// The later day first: the largest Seq then sits in the earlier day, so
	// recovery must not just read the last day.
	times := []time.Time{
		time.Date(2024, 3, 16, 1, 0, 0, 0, time.UTC),
		time.Date(2024, 3, 15, 1, 0, 0, 0, time.UTC),
		time.Date(2024, 3, 15, 2, 0, 0, 0, time.UTC),
	}
	for i, tm := range times {
		e := newEntry("TERM0001", fmt.Sprintf("%06d", i))
		e.Time = tm
		if err := j.Append(e); err != nil {
			t.Fatal(err)
		}
		if e.Seq != uint64(i+1) {
			t.Fatalf("Seq = %d, want %d", e.Seq, i+1)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = openTest(t, dir)
	defer j.Close()
	e := newEntry("TERM0001", "000099")
	if err := j.Append(e); err != nil {
		t.Fatal(err)
	}
	if e.Seq != 4 {
		t.Fatalf("Seq after reopen = %d, want 4", e.Seq)
	}
}

func TestDuplicate(t *testing.T) {
	j := openTest(t, t.TempDir())
	defer j.Close()
	first := newEntry("TERM0001", "000123")
	if err := j.Append(first); err != nil {
		t.Fatal(err)
	}
	second := newEntry("TERM0001", "000123")
	second.Amount, second.RequestDigest[0] = 99999, second.RequestDigest[0]+1
	if err := j.Append(second); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("second Append = %v, want ErrDuplicate", err)
	}
	if second.Seq != 0 || second.BusinessDay != "" {
		t.Errorf("a refused entry was changed: Seq %d, day %q", second.Seq, second.BusinessDay)
	}
	got, _, err := j.Lookup(second.Key())
	if err != nil || !entriesEqual(got, *first) {
		t.Errorf("Lookup = %+v, %v; want the first entry", got, err)
	}
	if n := len(scanAll(t, j, first.BusinessDay)); n != 1 {
		t.Errorf("%d entries stored, want 1", n)
	}
	third := newEntry("TERM0001", "000124")
	if err := j.Append(third); err != nil || third.Seq != 2 {
		t.Errorf("next Append: Seq %d, err %v; a duplicate must not use up a Seq", third.Seq, err)
	}
}

func TestAppendRejectsBadEntries(t *testing.T) {
	j := openTest(t, t.TempDir())
	defer j.Close()
	tests := []struct {
		field string
		edit  func(*Entry)
	}{
		{"STAN", func(e *Entry) { e.STAN = "12345" }},
		{"STAN", func(e *Entry) { e.STAN = "12345a" }},
		{"TerminalID", func(e *Entry) { e.TerminalID = "" }},
		{"TerminalID", func(e *Entry) { e.TerminalID = "T\x00" }},
		{"TerminalID", func(e *Entry) { e.TerminalID = "TERMINAL9" }},
		{"ResponseCode", func(e *Entry) { e.ResponseCode = "0" }},
		{"ResponseCode", func(e *Entry) { e.ResponseCode = "" }},
		{"TransmissionTime", func(e *Entry) { e.TransmissionTime = "031506300" }},
		{"MTI", func(e *Entry) { e.MTI = "200" }},
		{"NodeID", func(e *Entry) { e.NodeID = "" }},
		{"ProcessingCode", func(e *Entry) { e.ProcessingCode = "00000" }},
		{"Currency", func(e *Entry) { e.Currency = "CNY" }},
		{"MCC", func(e *Entry) { e.MCC = "541" }},
		{"IssuerSTAN", func(e *Entry) { e.IssuerSTAN = "42" }},
		{"Product", func(e *Entry) { e.Product = "prepaid" }},
		{"Amount", func(e *Entry) { e.Amount = -1 }},
		{"Amount", func(e *Entry) { e.Amount = amountMax + 1 }},
		{"Time", func(e *Entry) { e.Time = time.Time{} }},
		{"PANSealed", func(e *Entry) { e.PANSealed = []byte("6222021234567890128") }},
		{"PANSealed", func(e *Entry) { e.PANSealed = make([]byte, panSealedBytesMax+1) }},
	}
	for _, tc := range tests {
		e := newEntry("TERM0001", "000123")
		tc.edit(e)
		err := j.Append(e)
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("bad %s: Append = %v, want an error naming the field", tc.field, err)
		}
		if strings.Contains(fmt.Sprint(err), "6222021234567890128") {
			t.Errorf("error message echoes a clear PAN: %v", err)
		}
	}
	if days, err := j.Days(); err != nil || len(days) != 0 {
		t.Errorf("after refused appends Days = %v, %v; want none", days, err)
	}
	if _, _, err := j.Lookup(Key{"T", "1", "0315063000"}); err == nil {
		t.Error("Lookup of a malformed key succeeded")
	}
}

// TestConcurrentAppend races 50 goroutines: each appends keys of its own
// and all of them append the same shared keys; exactly one wins each.
func TestConcurrentAppend(t *testing.T) {
	const workers, own, shared = 50, 10, 20
	j := openTest(t, t.TempDir())
	defer j.Close()
	var winner [shared]atomic.Int32
	var wins, dups [shared]atomic.Int32
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			<-start
			for i := range shared {
				if i < own {
					e := newEntry(fmt.Sprintf("W%07d", w), fmt.Sprintf("%06d", i))
					if err := j.Append(e); err != nil {
						t.Errorf("worker %d own key %d: %v", w, i, err)
					}
				}
				e := newEntry("SHARED", fmt.Sprintf("%06d", i))
				e.NodeID = fmt.Sprintf("w%d", w)
				switch err := j.Append(e); {
				case err == nil:
					wins[i].Add(1)
					winner[i].Store(int32(w))
				case errors.Is(err, ErrDuplicate):
					dups[i].Add(1)
				default:
					t.Errorf("worker %d shared key %d: %v", w, i, err)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	for i := range shared {
		if wins[i].Load() != 1 || dups[i].Load() != workers-1 {
			t.Errorf("shared key %d: %d wins, %d duplicates", i, wins[i].Load(), dups[i].Load())
		}
		got, ok, err := j.Lookup(Key{"SHARED", fmt.Sprintf("%06d", i), "0315063000"})
		if want := fmt.Sprintf("w%d", winner[i].Load()); err != nil || !ok || got.NodeID != want {
			t.Errorf("shared key %d: Lookup NodeID %q, %v, %v; want the winner %s", i, got.NodeID, ok, err, want)
		}
	}
	checkSeqs(t, j, workers*own+shared)
}

// checkSeqs checks that the journal holds n entries with Seqs 1..n, in
// strictly increasing order within the day.
func checkSeqs(t *testing.T, j *Journal, n int) {
	t.Helper()
	got := scanAll(t, j, "20240315")
	seqs := make([]uint64, len(got))
	for i, e := range got {
		seqs[i] = e.Seq
	}
	if len(seqs) != n || !slices.IsSorted(seqs) || seqs[0] != 1 || seqs[n-1] != uint64(n) {
		t.Fatalf("%d entries, Seqs %v; want 1..%d", len(seqs), seqs, n)
	}
	if len(slices.Compact(seqs)) != n {
		t.Fatalf("Seqs repeat: %v", seqs)
	}
}

// corrupt flips one bit of the value under key with a raw Pebble write.
func corrupt(t *testing.T, j *Journal, key []byte, at int) {
	t.Helper()
	v, closer, err := j.db.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(v)
	_ = closer.Close()
	bad[at] ^= 0x04
	if err := j.db.Set(key, bad, pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptRecord(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, dir)
	var entries []*Entry
	for i := range 3 {
		e := newEntry("TERM0001", fmt.Sprintf("%06d", i))
		if err := j.Append(e); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, e)
	}
	corrupt(t, j, appendEntryKey(nil, "20240315", 1), 40)
	err := j.ScanDay("20240315", func(Entry) error { return nil })
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "e/20240315/1") {
		t.Errorf("ScanDay over a corrupt record = %v; want ErrCorrupt naming e/20240315/1", err)
	}
	if _, _, err := j.Lookup(entries[0].Key()); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "e/20240315/1") {
		t.Errorf("Lookup of a corrupt record = %v", err)
	}
	if _, ok, err := j.Lookup(entries[1].Key()); !ok || err != nil {
		t.Errorf("Lookup of an intact record = %v, %v", ok, err)
	}
	corrupt(t, j, appendIndexKey(nil, entries[1].Key()), 3)
	if _, _, err := j.Lookup(entries[1].Key()); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "k/TERM0001/000001/0315063000") {
		t.Errorf("Lookup through a corrupt pointer = %v", err)
	}
	// A damaged last record of a day fails Open, which reads it to recover Seq.
	corrupt(t, j, appendEntryKey(nil, "20240315", 3), 100)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "e/20240315/3") {
		t.Errorf("Open over a corrupt tail = %v", err)
	}
}

func TestRecordUnderWrongKey(t *testing.T) {
	j := openTest(t, t.TempDir())
	defer j.Close()
	e := newEntry("TERM0001", "000001")
	if err := j.Append(e); err != nil {
		t.Fatal(err)
	}
	v, closer, err := j.db.Get(appendEntryKey(nil, e.BusinessDay, e.Seq))
	if err != nil {
		t.Fatal(err)
	}
	moved := bytes.Clone(v)
	_ = closer.Close()
	if err := j.db.Set(appendEntryKey(nil, e.BusinessDay, 7), moved, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	err = j.ScanDay(e.BusinessDay, func(Entry) error { return nil })
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "e/20240315/7") {
		t.Errorf("ScanDay over a record under the wrong key = %v", err)
	}
}

func TestDays(t *testing.T) {
	j := openTest(t, t.TempDir())
	defer j.Close()
	if days, err := j.Days(); err != nil || len(days) != 0 {
		t.Fatalf("empty journal: Days = %v, %v", days, err)
	}
	sh := DefaultCutoff().Location
	times := []time.Time{
		time.Date(2025, 1, 1, 10, 0, 0, 0, sh),
		time.Date(2024, 12, 31, 23, 0, 0, 0, sh), // after cut-off: 20250101
		time.Date(2024, 12, 31, 22, 59, 59, 0, sh),
		time.Date(2024, 2, 29, 12, 0, 0, 0, sh),
		time.Date(2024, 12, 31, 8, 0, 0, 0, sh),
	}
	for i, tm := range times {
		e := newEntry("TERM0001", fmt.Sprintf("%06d", i))
		e.Time = tm.UTC()
		if err := j.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	days, err := j.Days()
	if want := []string{"20240229", "20241231", "20250101"}; err != nil || !slices.Equal(days, want) {
		t.Fatalf("Days = %v, %v; want %v", days, err, want)
	}
	if got := scanAll(t, j, "20241231"); len(got) != 2 || got[0].Seq != 3 || got[1].Seq != 5 {
		t.Errorf("ScanDay(20241231) = %d entries", len(got))
	}
	if err := j.ScanDay("2024-12-31", func(Entry) error { return nil }); err == nil {
		t.Error("ScanDay accepted a malformed day")
	}
}

func TestScanDayStopsOnCallbackError(t *testing.T) {
	j := openTest(t, t.TempDir())
	defer j.Close()
	for i := range 3 {
		if err := j.Append(newEntry("TERM0001", fmt.Sprintf("%06d", i))); err != nil {
			t.Fatal(err)
		}
	}
	stop := errors.New("stop")
	calls := 0
	err := j.ScanDay("20240315", func(Entry) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Fatalf("ScanDay = %v after %d calls; want the callback's error after 1", err, calls)
	}
}

func TestClose(t *testing.T) {
	j := openTest(t, t.TempDir())
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err == nil {
		t.Error("second Close succeeded")
	}
	if err := j.Append(newEntry("TERM0001", "000001")); err == nil {
		t.Error("Append after Close succeeded")
	}
	if _, _, err := j.Lookup(Key{"TERM0001", "000001", "0315063000"}); err == nil {
		t.Error("Lookup after Close succeeded")
	}
}

func TestCheckpoint(t *testing.T) {
	j := openTest(t, t.TempDir())
	defer j.Close()
	e := newEntry("TERM0001", "000001")
	if err := j.Append(e); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "copy")
	if err := j.Checkpoint(dir); err != nil {
		t.Fatal(err)
	}
	c := openTest(t, dir)
	defer c.Close()
	if got, ok, err := c.Lookup(e.Key()); err != nil || !ok || !entriesEqual(got, *e) {
		t.Errorf("checkpoint Lookup = %+v, %v, %v", got, ok, err)
	}
}

// TestCloseDuringAppends: Close waits for appends in flight and later ones
// get an error, never a panic from a closed store.
func TestCloseDuringAppends(t *testing.T) {
	j := openTest(t, t.TempDir())
	var wg sync.WaitGroup
	var ok atomic.Int32
	for w := range 20 {
		wg.Go(func() {
			for i := range 20 {
				err := j.Append(newEntry(fmt.Sprintf("C%07d", w), fmt.Sprintf("%06d", i)))
				if err == nil {
					ok.Add(1)
				} else if !strings.Contains(err.Error(), "closed") {
					t.Errorf("Append: %v", err)
				}
			}
		})
	}
	time.Sleep(5 * time.Millisecond)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	t.Logf("%d appends before Close", ok.Load())
}
