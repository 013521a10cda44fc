package syncbuf

import (
	"strings"
	"sync"
	"testing"
)

// TestConcurrentWritesAllKept: writers and a reader at once lose nothing
// (run under -race).
func TestConcurrentWritesAllKept(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("x"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got := b.String(); got != strings.Repeat("x", 800) {
		t.Fatalf("%d bytes kept, want 800", len(got))
	}
}
