package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapswitch/tapswitch/bench/pos"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/authorize"
	"github.com/tapswitch/tapswitch/switch/cluster"
	"github.com/tapswitch/tapswitch/switch/cluster/natstest"
	"github.com/tapswitch/tapswitch/switch/journal"
	"github.com/tapswitch/tapswitch/switch/node"
)

// journalDay is the business day of every test entry.
var journalDay = time.Date(2026, 3, 15, 6, 30, 0, 0, time.UTC)

// openJournalStream connects to NATS server i and opens the journal stream.
func openJournalStream(t testing.TB, nc *natstest.Cluster, i int, timeout time.Duration) *cluster.JournalStream {
	t.Helper()
	conn, err := nats.Connect(nc.URL(i), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	js, err := jetstream.New(conn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := cluster.OpenJournalStream(ctx, js, cluster.JournalConfig{Stream: "tapswitch_journal_test", Replicas: 3, OpTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openReplicated(t testing.TB, dir string, r journal.Replica) *journal.Journal {
	t.Helper()
	j, err := journal.Open(dir, journal.Options{Replica: r})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// testEntry is the outcome of tap i at terminal tid.
func testEntry(tid string, i int) *journal.Entry {
	return &journal.Entry{Time: journalDay.Add(time.Duration(i) * time.Millisecond), NodeID: "node-x", MTI: "0100",
		TerminalID: tid, STAN: fmt.Sprintf("%06d", i), TransmissionTime: "0315063001", ResponseCode: "00",
		Amount: iso8583.Amount(100 + i), Token: "6200000000000001"}
}

// writeTraffic appends taps from workers goroutines at once: each tap
// arms a reversal, then appends its outcome disarming it (every third
// leaves it due, as a timed-out tap does), with a top-up record now and
// then: the kinds of batch a node commits.
func writeTraffic(t testing.TB, j *journal.Journal, workers, from, to int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			tid := fmt.Sprintf("TERM%04d", w)
			for i := from; i < to; i++ {
				e := testEntry(tid, i+1)
				armed := *e
				armed.ResponseCode = "91"
				id, err := j.Arm(&armed)
				if err != nil {
					errs <- err
					return
				}
				change := &journal.Change{Disarm: id}
				if i%3 == 2 {
					change = &journal.Change{Activate: &journal.Advice{ID: id, Entry: armed}}
				}
				if err := j.AppendWith(e, change); err != nil {
					errs <- err
					return
				}
				if i%5 == 0 {
					if err := j.PutTopUp(journal.TopUpRecord{ID: fmt.Sprintf("%s-%d", tid, i), Value: []byte("loaded")}); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func sealBytes(t testing.TB, j *journal.Journal, dir string) []byte {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path, err := j.SealDay(journal.BusinessDay(journalDay, j.Cutoff()), "node-x", dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func adviceCounts(t testing.TB, j *journal.Journal) map[journal.AdviceState]int {
	t.Helper()
	c, err := j.AdviceCounts()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestJournalRestoreIsByteIdentical: a journal written with replication by
// concurrent taps, sealed; the same journal rebuilt from the stream alone,
// sealed: the two sealed files are the same bytes, and the advices owed
// are the same.
func TestJournalRestoreIsByteIdentical(t *testing.T) {
	nc := natstest.Start(t, 3)
	s := openJournalStream(t, nc, 0, 5*time.Second)
	dir := t.TempDir()
	j := openReplicated(t, filepath.Join(dir, "journal"), s.Node("node-x"))
	writeTraffic(t, j, 8, 0, 30)
	want := sealBytes(t, j, filepath.Join(dir, "own"))
	wantAdvices := adviceCounts(t, j)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if len(want) < 240*40 || wantAdvices[journal.AdviceDue] != 8*10 {
		t.Fatalf("sealed %d bytes, advices %v: the traffic did not happen", len(want), wantAdvices)
	}

	restored := filepath.Join(dir, "restored")
	began := time.Now()
	if err := journal.Restore(restored, openJournalStream(t, nc, 2, 5*time.Second).Node("node-x")); err != nil {
		t.Fatal(err)
	}
	t.Logf("restored 529 batches (240 taps, 48 top-ups, a seal) in %v", time.Since(began))
	r, err := journal.Open(restored, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.IsSealed(journal.BusinessDay(journalDay, r.Cutoff())) {
		t.Error("the restored journal does not know its day was sealed")
	}
	got := sealBytes(t, r, filepath.Join(dir, "again"))
	if !bytes.Equal(got, want) {
		t.Fatalf("restored sealed file differs: %d bytes against %d", len(got), len(want))
	}
	if g := adviceCounts(t, r); g[journal.AdviceDue] != wantAdvices[journal.AdviceDue] || g[journal.AdviceArmed] != 0 {
		t.Fatalf("restored advices %v, want %v", g, wantAdvices)
	}
	if err := journal.Restore(restored, s.Node("node-x")); err == nil {
		t.Error("Restore into an existing journal succeeded")
	}
}

// TestJournalCatchesUpFromStream: a node whose disk lost the tail of its
// journal (the batches the quorum acknowledged but the node never
// committed, as after a crash between the two) gets them back from the
// stream when it opens, reading from its floor, and numbers its next
// batches after them.
func TestJournalCatchesUpFromStream(t *testing.T) {
	nc := natstest.Start(t, 3)
	s := openJournalStream(t, nc, 1, 5*time.Second)
	dir := t.TempDir()
	live := filepath.Join(dir, "journal")
	j := openReplicated(t, live, s.Node("node-x"))
	writeTraffic(t, j, 4, 0, 600) // over 4,096 batches: the floor moves, old marks are deleted
	lost := filepath.Join(dir, "lost")
	if err := j.Checkpoint(lost); err != nil { // the disk as it was here
		t.Fatal(err)
	}
	writeTraffic(t, j, 4, 600, 610)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	old := openReplicated(t, lost, s.Node("node-x"))
	defer old.Close()
	e := testEntry("TERM0003", 610)
	got, found, err := old.Lookup(e.Key())
	if err != nil || !found || got.Amount != e.Amount {
		t.Fatalf("tap 610 of TERM0003 after catching up: found %v, %v", found, err)
	}
	if err := old.Append(testEntry("TERM0009", 1)); err != nil {
		t.Fatalf("a new append after catching up: %v", err)
	}
	restored := filepath.Join(dir, "restored")
	if err := journal.Restore(restored, s.Node("node-x")); err != nil {
		t.Fatal(err)
	}
	r, err := journal.Open(restored, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !bytes.Equal(sealBytes(t, old, filepath.Join(dir, "a")), sealBytes(t, r, filepath.Join(dir, "b"))) {
		t.Fatal("the caught-up journal and the stream disagree")
	}
}

// TestJournalWithoutQuorumRefuses: with two of three NATS servers down, a
// write fails (ErrReplication) instead of returning on the local fsync
// alone; with the quorum back, writes succeed again, and every write that
// returned success is in the stream.
func TestJournalWithoutQuorumRefuses(t *testing.T) {
	nc := natstest.Start(t, 3)
	s := openJournalStream(t, nc, 0, time.Second)
	dir := t.TempDir()
	j := openReplicated(t, filepath.Join(dir, "journal"), s.Node("node-x"))
	defer j.Close()
	var acked []*journal.Entry
	appendOne := func(i int) error {
		e := testEntry("TERM0001", i)
		err := j.Append(e)
		if err == nil {
			acked = append(acked, e)
		}
		return err
	}
	for i := 1; i <= 5; i++ {
		if err := appendOne(i); err != nil {
			t.Fatal(err)
		}
	}
	nc.Kill(1)
	nc.Kill(2)
	for i := 6; i <= 8; i++ {
		if err := appendOne(i); !errors.Is(err, journal.ErrReplication) {
			t.Fatalf("append %d without the quorum: %v, want ErrReplication", i, err)
		}
	}
	if _, err := j.Arm(testEntry("TERM0002", 1)); !errors.Is(err, journal.ErrReplication) {
		t.Fatalf("Arm without the quorum: %v, want ErrReplication", err)
	}
	nc.Restart(1)
	deadline := time.Now().Add(20 * time.Second)
	i := 9
	for ; appendOne(i) != nil; i++ {
		if time.Now().After(deadline) {
			t.Fatal("no write succeeded within 20 s of the quorum's return")
		}
		time.Sleep(100 * time.Millisecond)
	}
	restored := filepath.Join(dir, "restored")
	if err := journal.Restore(restored, s.Node("node-x")); err != nil {
		t.Fatal(err)
	}
	r, err := journal.Open(restored, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, e := range acked {
		got, found, err := r.Lookup(e.Key())
		if err != nil || !found || got.Seq != e.Seq {
			t.Errorf("acknowledged entry STAN %s not in the stream: found %v, %v", e.STAN, found, err)
		}
	}
	// The failed writes committed locally were sent again before the
	// first success: the stream holds all that the local journal does.
	for n := 6; n <= 8; n++ {
		k := testEntry("TERM0001", n).Key()
		_, local, _ := j.Lookup(k)
		_, remote, _ := r.Lookup(k)
		if local != remote {
			t.Errorf("STAN %06d: local journal has it %v, stream %v", n, local, remote)
		}
	}
}

// TestSwitchdJournalReplicated: a switchd node in cluster mode copies its
// journal to the stream: the tap it approved is in a journal rebuilt from
// the stream alone, approved, with the same Seq.
func TestSwitchdJournalReplicated(t *testing.T) {
	nc := natstest.Start(t, 3)
	w := startWorldWith(t, func(c *node.Config) {
		c.Cluster.URLs = []string{nc.URL(0)}
		c.Cluster.CountersBucket = "counters"
		c.Cluster.JournalStream = "tapswitch_journal_test"
		c.Cluster.STANBlock = 1
	})
	tap := w.purchase()
	if rc := w.handle(t, w.d.Node.Pipeline, tap); rc != iso8583.RCApproved {
		t.Fatalf("tap: rc %s", rc)
	}
	stan, err := tap.GetString(11)
	if err != nil {
		t.Fatal(err)
	}
	var own []journal.Entry
	days, err := w.d.Node.Journal.Days()
	if err != nil || len(days) == 0 {
		t.Fatalf("node journal days %v, %v", days, err)
	}
	if err := w.d.Node.Journal.ScanDay(days[len(days)-1], func(e journal.Entry) error { own = append(own, e); return nil }); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "restored")
	s := openJournalStream(t, nc, 1, 5*time.Second)
	if err := journal.Restore(dir, s.Node(w.d.Node.Pipeline.Deps().NodeID)); err != nil {
		t.Fatal(err)
	}
	r, err := journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	found := false
	for _, e := range own {
		got, ok, err := r.Lookup(e.Key())
		if err != nil || !ok || got.Seq != e.Seq || got.ResponseCode != e.ResponseCode {
			t.Errorf("entry STAN %s (%s) not in the stream as journaled: %v %v", e.STAN, e.ResponseCode, ok, err)
		}
		found = found || (e.STAN == stan && e.ResponseCode == iso8583.RCApproved)
	}
	if !found {
		t.Fatalf("the approved tap STAN %s is not in the node's journal: %d entries", stan, len(own))
	}
}

// BenchmarkAuthorizeJournalReplicated: a tap on a cluster node without
// and with its journal replicated (sub-benchmarks cluster and replicated),
// same world, 16 goroutines of taps of one card, as
// BenchmarkAuthorizeCluster. docs/cluster.md runs it interleaved.
func BenchmarkAuthorizeJournalReplicated(b *testing.B) {
	w := startWorld(b)
	nc := natstest.Start(b, 3)
	var seq atomic.Uint64
	now := time.Now()
	run := func(b *testing.B, p *authorize.Pipeline) {
		b.ReportAllocs()
		b.SetParallelism(16)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			var fields iso8583.Fields
			for pb.Next() {
				n := seq.Add(1)
				term := pos.DemoTerminal
				term.TerminalID = fmt.Sprintf("B%07d", n/999999)
				tap := pos.Tap{Terminal: term, ProcessingCode: iso8583.ProcPurchase, Amount: 1,
					STAN: fmt.Sprintf("%06d", n%999999+1), Time: now}.WithCard(w.card)
				k, _ := w.d.AcquirerKeys.TerminalKey(term.Acquirer, term.TerminalID)
				frame, err := iso8583.PackSigned(tap.Message(), k)
				if err != nil {
					b.Fatal(err)
				}
				if err := fields.Parse(frame); err != nil {
					b.Fatal(err)
				}
				req, err := authorize.ParseFields(&fields)
				if err != nil {
					b.Fatal(err)
				}
				from := w.d.Node.Senders().Check(frame, req.TerminalID)
				if a := p.HandleRequest(context.Background(), req, from); a.RC != iso8583.RCApproved {
					b.Fatalf("rc %s", a.RC)
				}
			}
		})
	}
	b.Run("cluster", func(b *testing.B) { run(b, w.clusterNode(b, nc, 0, "node-a")) })
	b.Run("replicated", func(b *testing.B) {
		p := w.clusterNode(b, nc, 0, "node-r")
		deps := p.Deps()
		deps.Journal = openReplicated(b, b.TempDir(), openJournalStream(b, nc, 0, 5*time.Second).Node("node-r"))
		b.Cleanup(func() { deps.Journal.Close() })
		run(b, authorize.New(deps))
	})
}

// TestFailedWriteNeverLandsAfterReconnect: a journal write that failed
// while the node's only NATS server was down (the terminal got an error)
// is not sent when the connection comes back. By then a survivor may have
// adopted the node and acted on the stream without it; the write landing
// behind its back is how the three-process test once found an approval
// journaled whose hold the adopter had reversed (nats.go keeps what is
// published while it reconnects, unless cluster.Connect tells it not to).
func TestFailedWriteNeverLandsAfterReconnect(t *testing.T) {
	nc := natstest.Start(t, 3)
	conn, err := cluster.Connect([]string{nc.URL(0)}, "node-x", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	js, err := jetstream.New(conn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := cluster.OpenJournalStream(ctx, js, cluster.JournalConfig{Stream: "tapswitch_journal_test", Replicas: 3, OpTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	j := openReplicated(t, filepath.Join(dir, "journal"), s.Node("node-x"))
	defer j.Close()
	if err := j.Append(testEntry("TERM0001", 1)); err != nil {
		t.Fatal(err)
	}

	nc.Kill(0)
	for conn.IsConnected() {
		time.Sleep(10 * time.Millisecond)
	}
	var failed []journal.Key
	for i := 2; i <= 4; i++ {
		e := testEntry("TERM0001", i)
		if err := j.Append(e); err == nil {
			t.Fatalf("append %d succeeded without the node's server", i)
		}
		failed = append(failed, e.Key())
	}
	nc.Restart(0)
	deadline := time.Now().Add(30 * time.Second)
	for !conn.IsConnected() {
		if time.Now().After(deadline) {
			t.Fatal("no reconnect within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // what a reconnect would flush has reached the stream by now

	other := openJournalStream(t, nc, 1, 5*time.Second)
	restored := filepath.Join(dir, "restored")
	if err := journal.Restore(restored, other.Node("node-x")); err != nil {
		t.Fatal(err)
	}
	r, err := journal.Open(restored, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, found, _ := r.Lookup(testEntry("TERM0001", 1).Key()); !found {
		t.Fatal("the acknowledged append is not in the stream")
	}
	for _, k := range failed {
		if _, found, _ := r.Lookup(k); found {
			t.Errorf("STAN %s failed while disconnected, and is in the stream after the reconnect", k.STAN)
		}
	}
}
