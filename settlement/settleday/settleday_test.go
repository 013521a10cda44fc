package settleday

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
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

// TestOldLayoutAdopted: a day an older settle wrote as a plain directory
// OUT/<day> is replaced whole by the first run of this one: OUT/<day>
// becomes the link to the new run, and nothing of the old directory (a
// member's file the new run does not write) survives in it.
func TestOldLayoutAdopted(t *testing.T) {
	_, cfg := runDay(t, testday.Entries())
	old := filepath.Join(cfg.Out, cfg.Day)
	os.MkdirAll(old, 0o750)
	stale := cfg.Day + "-09990000-ISS.clr"
	os.WriteFile(filepath.Join(old, stale), []byte("an old run's file\n"), 0o640)
	os.WriteFile(filepath.Join(old, ".lock"), nil, 0o600)
	if _, err := Run(cfg); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(old)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("OUT/<day> after the run: %v %v; want the link", fi, err)
	}
	if _, err := os.Stat(filepath.Join(old, stale)); err == nil {
		t.Fatalf("%s of the old layout survived", stale)
	}
	if _, _, err := ReadManifest(cfg.Out, cfg.Day); err != nil {
		t.Fatal(err)
	}
	runs, _ := filepath.Glob(filepath.Join(cfg.Out, ".settle", cfg.Day, "run-*"))
	if len(runs) != 1 {
		t.Fatalf("run directories %v, want the published one alone", runs)
	}
}
