package journal

import (
	"testing"
	"time"
)

// TestArmedAdviceSurvivesACrash arms an advice, closes without an outcome
// (as a killed switch would) and finds it due after Open.
func TestArmedAdviceSurvivesACrash(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, dir)
	e := newEntry("TERM0001", "000001")
	e.IssuerSTAN, e.IssuerTransmissionTime = "000777", "0315063000"
	id, err := j.Arm(e)
	if err != nil {
		t.Fatal(err)
	}
	if due, _ := j.DueAdvices(time.Now(), 10); len(due) != 0 {
		t.Fatalf("armed advice is due before any failure: %+v", due)
	}
	j.Close()

	j = openTest(t, dir)
	defer j.Close()
	due, err := j.DueAdvices(time.Now().Add(time.Second), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].ID != id || due[0].Kind != AdviceReversal || due[0].Entry.IssuerSTAN != "000777" {
		t.Fatalf("after reopen: %+v", due)
	}
	if next, _ := j.Arm(e); next <= id {
		t.Fatalf("advice IDs restart: %d after %d", next, id)
	}
}

func TestAppendWithDisarmActivateEnqueue(t *testing.T) {
	j := openTest(t, t.TempDir())
	defer j.Close()
	answered := newEntry("TERM0001", "000001")
	a1, _ := j.Arm(answered)
	if err := j.AppendWith(answered, &Change{Disarm: a1}); err != nil {
		t.Fatal(err)
	}
	timedOut := newEntry("TERM0001", "000002")
	a2, _ := j.Arm(timedOut)
	timedOut.ResponseCode = "91"
	standIn := Advice{Kind: AdviceStandIn, Entry: *timedOut}
	standIn.Entry.StandIn, standIn.Entry.ResponseCode = true, "00"
	if err := j.AppendWith(timedOut, &Change{Activate: &Advice{ID: a2, Entry: *timedOut}, Enqueue: []Advice{standIn}}); err != nil {
		t.Fatal(err)
	}
	due, err := j.DueAdvices(time.Now(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 2 || due[0].ID != a2 || due[0].Entry.ResponseCode != "91" || due[1].Kind != AdviceStandIn {
		t.Fatalf("due %+v", due)
	}
	counts, _ := j.AdviceCounts()
	if counts[AdviceDue] != 2 || counts[AdviceArmed] != 0 {
		t.Fatalf("counts %v", counts)
	}
	later := due[0]
	later.Attempts, later.NextAttempt = 1, time.Now().Add(time.Hour)
	if err := j.RescheduleAdvice(later); err != nil {
		t.Fatal(err)
	}
	if due, _ := j.DueAdvices(time.Now(), 10); len(due) != 1 || due[0].Kind != AdviceStandIn {
		t.Fatalf("rescheduled advice still due: %+v", due)
	}
	if err := j.CompleteAdvice(due[0].ID); err != nil {
		t.Fatal(err)
	}
	if counts, _ := j.AdviceCounts(); counts[AdviceDue] != 1 {
		t.Fatalf("after complete: %v", counts)
	}
}

func TestReversalIndexAndUsage(t *testing.T) {
	j := openTest(t, t.TempDir())
	defer j.Close()
	orig := newEntry("TERM0001", "000010")
	if err := j.Append(orig); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := j.ReversalOf(orig.Key()); found {
		t.Fatal("reversal found before any")
	}
	rev := newEntry("TERM0001", "000011")
	rev.MTI, rev.OriginalSTAN, rev.OriginalTransmissionTime = "0400", orig.STAN, orig.TransmissionTime
	u := &Usage{Day: "20240315", Token: orig.Token, Count: 2, Amount: 300}
	if err := j.AppendWith(rev, &Change{MarkReversed: true, Usage: u}); err != nil {
		t.Fatal(err)
	}
	got, found, err := j.ReversalOf(orig.Key())
	if err != nil || !found || got.STAN != "000011" {
		t.Fatalf("ReversalOf = %+v %v %v", got, found, err)
	}
	if k, ok := got.OriginalKey(); !ok || k != orig.Key() {
		t.Fatalf("OriginalKey %v %v", k, ok)
	}
	back, err := j.StandInUsage("20240315", orig.Token)
	if err != nil || back.Count != 2 || back.Amount != 300 {
		t.Fatalf("usage %+v %v", back, err)
	}
	if none, _ := j.StandInUsage("20240316", orig.Token); none.Count != 0 {
		t.Fatalf("usage of another day %+v", none)
	}
	bad := newEntry("TERM0001", "000012")
	if err := j.AppendWith(bad, &Change{MarkReversed: true}); err == nil {
		t.Fatal("MarkReversed without an original accepted")
	}
}
