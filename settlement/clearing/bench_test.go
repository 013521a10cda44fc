package clearing

import (
	"bufio"
	"bytes"
	"io"
	"testing"

	"github.com/tapswitch/tapswitch/settlement/internal/testday"
)

// BenchmarkWrite writes one detail record per operation, through a
// bufio.Writer as cmd/settle will, from a transaction and its fees.
func BenchmarkWrite(b *testing.B) {
	txns := testday.Txns()
	sched := testday.Schedule()
	tx := txns[0]
	f, _ := sched.For(&tx)
	bw := bufio.NewWriterSize(io.Discard, 64<<10)
	w, err := NewWriter(bw, NewHeader(testday.Day, tx.IssuerInstitution, Issuer, testday.Switch))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		tx.Seq = uint64(i + 1)
		if err := w.Write(&tx, f); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRead reads and validates a file of 10,000 records per
// operation and reports the time per record.
func BenchmarkRead(b *testing.B) {
	tx := testday.Txns()[0]
	f, _ := testday.Schedule().For(&tx)
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, NewHeader(testday.Day, tx.IssuerInstitution, Issuer, testday.Switch))
	const n = 10_000
	for i := range n {
		tx.Seq = uint64(i + 1)
		if err := w.Write(&tx, f); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := w.Close(); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := r.Next(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
}
