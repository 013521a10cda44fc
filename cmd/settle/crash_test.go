package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/tapswitch/tapswitch/bench/proctest"
	"github.com/tapswitch/tapswitch/configs"
	"github.com/tapswitch/tapswitch/settlement/settleday"
)

// TestKillDuringSettleLeavesOneDayWhole (defect 3): the real settle binary,
// killed with SIGKILL at each point of a run over a day already published
// (reading, files written, synced, manifest written, the new link made,
// the link swapped, the old run half removed, done), leaves OUT/<day>
// showing either the old day or the new one, whole: exactly the files its
// manifest lists, each matching its SHA-256, byte for byte the files of a
// clean run with the same inputs. The old day was settled with another fee
// schedule, so a mix would show. Before the swap the old day is visible,
// from it the new one; the next run clears what the killed one left.
func TestKillDuringSettleLeavesOneDayWhole(t *testing.T) {
	bin := proctest.Build(t, t.TempDir(), ".", "settle")
	w := newSealedWorld(t)
	a := w.node(t, "node-1", 40, sampleNoon, []string{sampleDay})
	b := w.node(t, "node-2", 25, sampleNoon, []string{sampleDay})
	otherFees := filepath.Join(w.dir, "fees.yaml")
	os.WriteFile(otherFees, bytes.Replace(configs.Fees, []byte("debit:   {bps: 35, cap_fen: 1300}"), []byte("debit:   {bps: 60, cap_fen: 1300}"), 1), 0o600)
	base := []string{"-date", sampleDate, "-journals", a + "," + b, "-keys", w.settleKeys, "-quiet"}
	oldArgs := func(out string) []string { return append(slices.Clone(base), "-out", out) }
	newArgs := func(out string) []string { return append(slices.Clone(base), "-out", out, "-fees", otherFees) }

	want := map[string]map[string][]byte{}
	for name, args := range map[string]func(string) []string{"old": oldArgs, "new": newArgs} {
		clean := t.TempDir()
		if code, _, stderr := runBin(t, bin, args(clean)...); code != 0 {
			t.Fatalf("clean %s run: exit %d, %s", name, code, stderr)
		}
		_, want[name] = published(t, clean, sampleDay)
	}
	if bytes.Equal(want["old"]["net-"+sampleDay+".txt"], want["new"]["net-"+sampleDay+".txt"]) {
		t.Fatal("the two fee schedules settle to the same bytes: a mix could not show")
	}

	out := t.TempDir()
	for _, point := range []string{"reading", "written", "synced", "manifest", "linked", "swapped", "pruning", "done"} {
		if code, _, stderr := runBin(t, bin, oldArgs(out)...); code != 0 {
			t.Fatalf("before %s: the old day: exit %d, %s", point, code, stderr)
		}
		cmd := exec.Command(bin, newArgs(out)...)
		cmd.Env = append(os.Environ(), settleday.CrashEnv+"="+point)
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("at %s: %v, want killed by SIGKILL (is the point reached?)", point, err)
		}
		_, got := published(t, out, sampleDay)
		visible := "old"
		if point == "swapped" || point == "pruning" || point == "done" {
			visible = "new"
		}
		if !sameFiles(got, want[visible]) {
			t.Fatalf("killed at %s: OUT/%s is not the %s day whole (%d files)", point, sampleDay, visible, len(got))
		}
	}
	if code, _, stderr := runBin(t, bin, newArgs(out)...); code != 0 {
		t.Fatalf("after the kills: exit %d, %s", code, stderr)
	}
	if _, got := published(t, out, sampleDay); !sameFiles(got, want["new"]) {
		t.Fatal("the run after the kills did not publish the new day whole")
	}
	var left []string
	ents, _ := os.ReadDir(filepath.Join(out, ".settle", sampleDay))
	for _, e := range ents {
		if e.Name() != ".lock" {
			left = append(left, e.Name())
		}
	}
	if len(left) != 1 || !strings.HasPrefix(left[0], "run-") {
		t.Fatalf("beside the lock, want the published run alone: %v", left)
	}
}

func sameFiles(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for name, data := range a {
		if !bytes.Equal(b[name], data) {
			return false
		}
	}
	return true
}
