package settleday

import (
	"errors"
	"testing"

	"github.com/tapswitch/tapswitch/settlement/internal/testday"
)

// TestSecondRunLockedOut: while one run holds a day's lock, another for
// the same day fails at once instead of writing alongside it.
func TestSecondRunLockedOut(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockDay(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockDay(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v, want ErrLocked", err)
	}
	unlock()
	again, err := lockDay(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again()
}

// nodesOf is the node list of a sealed sample day.
func nodesOf(s testday.Sealed) []Node {
	var out []Node
	for i, id := range s.Nodes {
		out = append(out, Node{ID: id, SealedDir: s.SealedDirs[i]})
	}
	return out
}
