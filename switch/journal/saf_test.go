package journal

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
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

// TestFailedAppendReleasesItsArmedReversal: an outcome's Append that fails
// (here a duplicate key) leaves its armed reversal armed; the issuer call
// is over, so ReleaseAbandoned makes it due, once. A successful Append's
// disarmed advice is not touched.
func TestFailedAppendReleasesItsArmedReversal(t *testing.T) {
	j := openTest(t, t.TempDir())
	defer j.Close()
	first := newEntry("TERM0001", "000001")
	if err := j.Append(first); err != nil {
		t.Fatal(err)
	}
	answered := newEntry("TERM0001", "000002")
	disarmed, _ := j.Arm(answered)
	if err := j.AppendWith(answered, &Change{Disarm: disarmed}); err != nil {
		t.Fatal(err)
	}
	again := newEntry("TERM0001", "000001")
	again.IssuerSTAN = "000778"
	armed, err := j.Arm(again)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.AppendWith(again, &Change{Disarm: armed}); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("append of a journaled key: %v, want ErrDuplicate", err)
	}
	if due, _ := j.DueAdvices(time.Now(), 10); len(due) != 0 {
		t.Fatalf("due before the release: %+v", due)
	}
	n, err := j.ReleaseAbandoned(time.Now())
	if err != nil || n != 1 {
		t.Fatalf("ReleaseAbandoned = %d, %v; want 1", n, err)
	}
	due, _ := j.DueAdvices(time.Now(), 10)
	if len(due) != 1 || due[0].ID != armed || due[0].Entry.IssuerSTAN != "000778" {
		t.Fatalf("due after the release: %+v", due)
	}
	if n, err := j.ReleaseAbandoned(time.Now()); n != 0 || err != nil {
		t.Fatalf("second release = %d, %v; want 0", n, err)
	}
	if counts, _ := j.AdviceCounts(); counts[AdviceDue] != 1 || counts[AdviceArmed] != 0 {
		t.Fatalf("counts %v", counts)
	}
}

// memReplica is a Replica in memory whose quorum can be taken away: before
// a batch is published (healthy false) or after the local commit, when
// its acknowledgement fails (ackFails).
type memReplica struct {
	mu       sync.Mutex
	batches  [][]byte
	numbers  []uint64
	healthy  atomic.Bool
	ackFails atomic.Bool
}

func (r *memReplica) Publish(n uint64, repr []byte) func() (uint64, error) {
	if r.ackFails.Load() {
		return func() (uint64, error) { return 0, errors.New("no acknowledgement") }
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches, r.numbers = append(r.batches, slices.Clone(repr)), append(r.numbers, n)
	seq := uint64(len(r.batches))
	return func() (uint64, error) { return seq, nil }
}

func (r *memReplica) Replay(after uint64, fn func(streamSeq, n uint64, repr []byte) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := after; i < uint64(len(r.batches)); i++ {
		if err := fn(i+1, r.numbers[i], r.batches[i]); err != nil {
			return err
		}
	}
	return nil
}

func (r *memReplica) LastBatch() (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.numbers) == 0 {
		return 0, nil
	}
	return slices.Max(r.numbers), nil
}

// TestReversalArmedWithoutQuorumMadeDueWhenQuorumReturns is the cluster
// node's case: the quorum is gone when the outcome is appended, so nothing
// is written and the reversal stays armed; releasing it fails while the
// quorum is gone and succeeds once it is back. An outcome that committed
// locally but whose acknowledgement failed has disarmed its reversal: the
// release leaves it alone. An Arm in the same case is deleted: its request
// was never sent.
func TestReversalArmedWithoutQuorumMadeDueWhenQuorumReturns(t *testing.T) {
	rep := &memReplica{}
	rep.healthy.Store(true)
	j, err := Open(t.TempDir(), Options{Replica: rep, ReplicaHealthy: rep.healthy.Load})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	cut := newEntry("TERM0001", "000001")
	cutArm, err := j.Arm(cut)
	if err != nil {
		t.Fatal(err)
	}
	committed := newEntry("TERM0001", "000002")
	committedArm, err := j.Arm(committed)
	if err != nil {
		t.Fatal(err)
	}

	// An Arm whose acknowledgement fails: written locally, its request
	// never sent, so it is deleted, not sent.
	rep.ackFails.Store(true)
	if _, err := j.Arm(newEntry("TERM0001", "000003")); !errors.Is(err, ErrReplication) {
		t.Fatalf("arm whose acknowledgement fails: %v, want ErrReplication", err)
	}
	rep.ackFails.Store(false)
	if counts, _ := j.AdviceCounts(); counts[AdviceArmed] != 3 {
		t.Fatalf("armed after the failed Arm: %v, want 3", counts)
	}
	if n, err := j.ReleaseAbandoned(time.Now()); n != 0 || err != nil {
		t.Fatalf("release of the unsent Arm = %d, %v; want 0, nil", n, err)
	}
	if counts, _ := j.AdviceCounts(); counts[AdviceArmed] != 2 || counts[AdviceDue] != 0 {
		t.Fatalf("after releasing the unsent Arm: %v, want 2 armed", counts)
	}

	rep.ackFails.Store(true)
	if err := j.AppendWith(committed, &Change{Disarm: committedArm}); !errors.Is(err, ErrReplication) {
		t.Fatalf("append whose acknowledgement fails: %v, want ErrReplication", err)
	}
	rep.ackFails.Store(false)
	rep.healthy.Store(false)
	if err := j.AppendWith(cut, &Change{Disarm: cutArm}); !errors.Is(err, ErrReplication) {
		t.Fatalf("append without the quorum: %v, want ErrReplication", err)
	}
	if n, err := j.ReleaseAbandoned(time.Now()); !errors.Is(err, ErrReplication) || n != 0 {
		t.Fatalf("release without the quorum = %d, %v; want 0, ErrReplication", n, err)
	}
	if due, _ := j.DueAdvices(time.Now(), 10); len(due) != 0 {
		t.Fatalf("due without the quorum: %+v", due)
	}

	rep.healthy.Store(true)
	n, err := j.ReleaseAbandoned(time.Now())
	if err != nil || n != 1 {
		t.Fatalf("release with the quorum back = %d, %v; want 1", n, err)
	}
	due, _ := j.DueAdvices(time.Now(), 10)
	if len(due) != 1 || due[0].ID != cutArm {
		t.Fatalf("due: %+v, want only advice %d", due, cutArm)
	}
	if counts, _ := j.AdviceCounts(); counts[AdviceArmed] != 0 || counts[AdviceDue] != 1 || j.advices.Load() != 1 {
		t.Fatalf("after the release: %v, queue counted %d; want 1 due and nothing armed", counts, j.advices.Load())
	}
	if _, found, _ := j.Lookup(committed.Key()); !found {
		t.Fatal("the locally committed outcome is not journaled")
	}
}
