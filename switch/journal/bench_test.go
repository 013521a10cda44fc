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

// BenchmarkAuthorizationWrites is the journal traffic of one forwarded
// authorization, as the pipeline makes it, with 64 in flight per CPU: the
// duplicate check (a miss), the reversal armed before the issuer is asked
// (synced), then the outcome appended with the disarm and the token's new
// counters (synced). Each goroutine taps its own token, so its counter
// versions chain as one token's do; it reads the token's window once, as
// the pipeline, which keeps windows in memory, does. Besides time
// it reports what reaches the disk per authorization: WAL bytes, and table
// bytes flushed and compacted (after a final flush).
func BenchmarkAuthorizationWrites(b *testing.B) {
	j := openTest(b, b.TempDir())
	defer j.Close()
	tmpl := newEntry("", "")
	benchKeys()
	var next, tokens atomic.Uint64
	b.ReportAllocs()
	b.SetParallelism(64)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		token := fmt.Sprintf("62888800%011d", tokens.Add(1))
		var version uint64
		var e Entry
		seen := make([]byte, 128)
		if _, _, err := j.LoadATC(token); err != nil {
			b.Fatal(err)
		}
		for pb.Next() {
			benchEntry(&e, tmpl, next.Add(1))
			e.Token = token
			_, found, absent, err := j.Find(e.Key())
			if err != nil || found {
				b.Fatal(found, err)
			}
			armed := e
			armed.ResponseCode = "91"
			id, err := j.Arm(&armed)
			if err != nil {
				b.Fatal(err)
			}
			u := &ATCUpdate{Token: token, Version: version + 1, Last: uint32(version + 1), Seen: seen}
			if version > 0 {
				u.Drop = []uint64{version}
			}
			version++
			if err := j.AppendAbsent(&e, &Change{Disarm: id, ATC: u}, absent); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.StopTimer()
	if err := j.db.Flush(); err != nil {
		b.Fatal(err)
	}
	m := j.db.Metrics()
	var tables uint64
	for _, l := range m.Levels {
		tables += l.TableBytesFlushed + l.TableBytesCompacted + l.BlobBytesFlushed + l.BlobBytesCompacted
	}
	b.ReportMetric(float64(m.WAL.BytesWritten)/float64(b.N), "wal-B/op")
	b.ReportMetric(float64(tables)/float64(b.N), "table-B/op")
}
