package netting

import (
	"testing"

	"github.com/tapswitch/tapswitch/settlement/internal/testday"
)

// BenchmarkAdd nets one transaction per operation.
func BenchmarkAdd(b *testing.B) {
	n, err := New(testday.Day, testday.Switch, members())
	if err != nil {
		b.Fatal(err)
	}
	tx := testday.Txns()[0]
	f, _ := testday.Schedule().For(&tx)
	b.ReportAllocs()
	for b.Loop() {
		if err := n.Add(&tx, f); err != nil {
			b.Fatal(err)
		}
	}
}
