package journal

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// benchKeyTable is how many distinct TerminalIDs and STANs the benchmarks
// combine: 10^8 distinct keys, built once so that formatting keys does not
// count in the benchmark's allocations.
const benchKeyTable = 10_000

var benchKeys = sync.OnceValues(func() (tids, stans []string) {
	tids, stans = make([]string, benchKeyTable), make([]string, benchKeyTable)
	for i := range benchKeyTable {
		tids[i], stans[i] = fmt.Sprintf("B%07d", i), fmt.Sprintf("%06d", i)
	}
	return tids, stans
})

// benchEntry fills e with the n-th distinct benchmark key.
func benchEntry(e *Entry, tmpl *Entry, n uint64) {
	tids, stans := benchKeys()
	*e = *tmpl
	e.TerminalID, e.STAN = tids[n%benchKeyTable], stans[n/benchKeyTable%benchKeyTable]
}

// BenchmarkAppendSerial is one committer: every Append waits for its own
// fsync, so ns/op is about one fsync.
func BenchmarkAppendSerial(b *testing.B) {
	j := openTest(b, b.TempDir())
	defer j.Close()
	tmpl := newEntry("", "")
	benchKeys()
	b.ReportAllocs()
	var e Entry
	var n uint64
	for b.Loop() {
		benchEntry(&e, tmpl, n)
		n++
		if err := j.Append(&e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendParallel has many committers in flight (64 per CPU), as a
// busy switch has; Pebble syncs their batches together, so ns/op (wall time
// per append) falls well below one fsync.
func BenchmarkAppendParallel(b *testing.B) {
	j := openTest(b, b.TempDir())
	defer j.Close()
	tmpl := newEntry("", "")
	benchKeys()
	var next atomic.Uint64
	b.ReportAllocs()
	b.SetParallelism(64)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var e Entry
		for pb.Next() {
			benchEntry(&e, tmpl, next.Add(1))
			if err := j.Append(&e); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLookup reads an entry back by its key, as a duplicate does.
func BenchmarkLookup(b *testing.B) {
	j := openTest(b, b.TempDir())
	defer j.Close()
	e := newEntry("TERM0001", "000001")
	if err := j.Append(e); err != nil {
		b.Fatal(err)
	}
	k := e.Key()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, err := j.Lookup(k); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
