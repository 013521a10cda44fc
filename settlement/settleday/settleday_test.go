package settleday

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
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

// TestUnsealedDayRefused: a node directory without the day's sealed file
// (and no later one) is an error naming the cause, not an empty day.
func TestUnsealedDayRefused(t *testing.T) {
	dir := t.TempDir()
	if _, err := sealedFiles([]string{dir}, "20261125"); err == nil {
		t.Fatal("an unsealed day was accepted")
	}
	os.WriteFile(filepath.Join(dir, "node-1-20261126.sealed"), nil, 0o600)
	paths, err := sealedFiles([]string{dir}, "20261125")
	if err != nil || len(paths) != 0 {
		t.Fatalf("a node with a later sealed day but none on this one: %v %v, want an empty day", paths, err)
	}
}
