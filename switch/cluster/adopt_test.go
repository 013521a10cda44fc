package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/bench/issuersim"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/authorize"
	"github.com/tapswitch/tapswitch/switch/cluster"
	"github.com/tapswitch/tapswitch/switch/cluster/natstest"
	"github.com/tapswitch/tapswitch/switch/daemon"
	"github.com/tapswitch/tapswitch/switch/journal"
	"github.com/tapswitch/tapswitch/switch/node"
)

const testTTL = 2 * time.Second

// membershipNode makes c a cluster node of these tests: NATS server 0,
// the tests' buckets and stream, STAN block 1, heartbeats of testTTL.
func membershipNode(nc *natstest.Cluster, c *node.Config) {
	c.Cluster.URLs = []string{nc.URL(0)}
	c.Cluster.CountersBucket = "counters"
	c.Cluster.JournalStream = "tapswitch_journal_test"
	c.Cluster.STANBlock = 1
	c.Cluster.MembersBucket, c.Cluster.AdoptionsBucket, c.Cluster.HeartbeatTTL = "nodes", "adoptions", testTTL
}

func openMembers(t testing.TB, nc *natstest.Cluster, server int, id string) *cluster.Members {
	t.Helper()
	js, err := jetstream.New(nc.Connect(server))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := cluster.OpenMembers(ctx, js, cluster.MembersConfig{Bucket: "nodes", AdoptionsBucket: "adoptions",
		Replicas: 3, HeartbeatTTL: testTTL, OpTimeout: 2 * time.Second}, id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// reversalsSeen counts the 0420s an issuer received.
func reversalsSeen(is *issuersim.Issuer) int {
	n := 0
	for _, r := range is.Received() {
		if r.MTI == "0420" {
			n++
		}
	}
	return n
}

// TestAdoptionFinishesADeadNodesReversal: node A's tap times out at the
// issuer (which decided it: a hold), so A owes the issuer a reversal; A
// stops for good before sending it. The switchd node B takes A for dead
// when A's heartbeat expires, adopts it, rebuilds A's journal from the
// stream and sends the reversal: the issuer sees it exactly once. When A
// comes back, its journal catches up with B's completion: nothing is due.
func TestAdoptionFinishesADeadNodesReversal(t *testing.T) {
	nc := natstest.Start(t, 3)
	w := startWorldWith(t, func(c *node.Config) { membershipNode(nc, c) })
	issuer := w.d.Fleet.Issuer(w.card.Issuer)
	before := reversalsSeen(issuer)

	// Node A: its own journal, replicated, and its heartbeat.
	a := openMembers(t, nc, 1, "node-a")
	beat, stopBeat := context.WithCancel(context.Background())
	beating := make(chan struct{})
	go func() { defer close(beating); a.Run(beat) }()
	aDir := filepath.Join(t.TempDir(), "journal")
	stream := openJournalStream(t, nc, 1, 5*time.Second)
	ja := openReplicated(t, aDir, stream.Node("node-a"))
	seen := time.Now().Add(10 * time.Second) // B adopts only a node it saw alive
	for {
		_, body := readyz(t, w)
		if alive, _ := body["cluster_nodes_alive"].([]any); len(alive) == 2 {
			break
		}
		if time.Now().After(seen) {
			t.Fatal("the switchd node never saw node A alive")
		}
		time.Sleep(50 * time.Millisecond)
	}
	pa := w.clusterNode(t, nc, 1, "node-a")
	deps := pa.Deps()
	deps.Journal = ja
	if err := issuer.SetFaults(issuersim.Faults{DropRate: 1}); err != nil {
		t.Fatal(err)
	}
	rc := w.handle(t, authorize.New(deps), w.purchase())
	if err := issuer.SetFaults(issuersim.Faults{}); err != nil {
		t.Fatal(err)
	}
	// Stood in (00, a reversal and a stand-in advice due) or 91 (a
	// reversal due).
	if c := adviceCounts(t, ja); c[journal.AdviceDue] < 1 || rc == iso8583.RCApproved && c[journal.AdviceDue] != 2 {
		t.Fatalf("after the timed-out tap (rc %s) node A owes %v, want its reversal due", rc, c)
	}
	// And an entry of a day long closed, which the adopter seals for settle.
	old := testEntry("TERM0001", 1)
	old.NodeID = "node-a"
	if err := ja.Append(old); err != nil {
		t.Fatal(err)
	}
	// A stops for good: no heartbeat, no sender ever again.
	stopBeat()
	<-beating
	if err := ja.Close(); err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(testTTL + 15*time.Second)
	for reversalsSeen(issuer) == before {
		if time.Now().After(deadline) {
			t.Fatal("no survivor sent node A's reversal")
		}
		time.Sleep(50 * time.Millisecond)
	}
	adoptedBy := ""
	for time.Now().Before(deadline) {
		state, adopter, _, found, err := a.Adoption(context.Background(), "node-a")
		if err != nil {
			t.Fatal(err)
		}
		if found && (state == cluster.AdoptWaiting || state == cluster.AdoptDone) {
			adoptedBy = adopter
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if adoptedBy != w.d.Node.Pipeline.Deps().NodeID {
		t.Fatalf("node A adopted by %q, want the switchd node", adoptedBy)
	}
	time.Sleep(testTTL) // more adoption passes: nothing is sent again
	if got := reversalsSeen(issuer) - before; got != 1 {
		t.Fatalf("the issuer saw %d reversals, want exactly 1", got)
	}

	// A comes back: its journal catches up from the stream, where B's
	// completion is: nothing is left for A's own sender.
	back := openReplicated(t, aDir, stream.Node("node-a"))
	defer back.Close()
	if c := adviceCounts(t, back); c[journal.AdviceDue]+c[journal.AdviceArmed] != 0 {
		t.Fatalf("node A back owes %v: it would send the reversal again", c)
	}
	// The closed day, sealed by the adopter where settle reads node A's
	// days, is what A's own journal seals.
	day := journal.BusinessDay(journalDay, back.Cutoff())
	adopted, err := os.ReadFile(filepath.Join(node.SealedDir(node.AdoptedDir(w.d.Data, "node-a")), journal.SealedFileName("node-a", day)))
	if err != nil {
		t.Fatalf("the adopter did not seal node A's closed day: %v", err)
	}
	if !back.IsSealed(day) {
		t.Error("node A back does not know the adopter sealed its day")
	}
	path, err := back.SealDay(day, "node-a", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if own, err := os.ReadFile(path); err != nil || !bytes.Equal(own, adopted) {
		t.Fatalf("the adopter's sealed file of node A differs from A's own: %d bytes against %d", len(adopted), len(own))
	}
}

// TestOneClaimWins: survivors claiming one dead node at once: exactly one
// adopts it.
func TestOneClaimWins(t *testing.T) {
	nc := natstest.Start(t, 3)
	var won atomic.Int32
	var wg sync.WaitGroup
	for i := range 6 {
		m := openMembers(t, nc, i%3, fmt.Sprintf("node-%d", i))
		wg.Go(func() {
			_, ok, err := m.Claim(context.Background(), "node-dead")
			if err != nil {
				t.Error(err)
			}
			if ok {
				won.Add(1)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d claims won, want 1", won.Load())
	}
}

// gaugeValue reads a gauge of the dev node's metrics.
func gaugeValue(t *testing.T, w world, name string) float64 {
	t.Helper()
	families, err := w.d.Node.Metrics().Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

func readyz(t *testing.T, w world) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get("http://" + w.d.Node.AdminAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// TestQuorumLostShowsInHealth: a cluster node's /readyz and metrics show
// the nodes alive and the quorum; with two of three NATS servers down the
// node is not ready (HAProxy takes its terminals away) and its quorum
// gauge is 0; with one back, ready again.
func TestQuorumLostShowsInHealth(t *testing.T) {
	nc := natstest.Start(t, 3)
	w := startWorldWith(t, func(c *node.Config) {
		membershipNode(nc, c)
		c.Cluster.OpTimeout = time.Minute
		c.Cluster.PendingWait = 5 * time.Minute // at least 2 (request_timeout + 2 op_timeout)
	})
	other := openMembers(t, nc, 1, "node-other")
	if err := other.Beat(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(3*testTTL + 10*time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("not within the deadline: %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("two nodes alive, quorum", func() bool {
		code, body := readyz(t, w)
		return code == http.StatusOK && body["cluster_quorum"] == true &&
			gaugeValue(t, w, "tapswitch_cluster_nodes") == 2 && gaugeValue(t, w, "tapswitch_cluster_quorum") == 1
	})
	nc.Kill(1)
	nc.Kill(2)
	waitFor("not ready without the quorum", func() bool {
		code, body := readyz(t, w)
		return code == http.StatusServiceUnavailable && body["cluster_quorum"] == false &&
			gaugeValue(t, w, "tapswitch_cluster_quorum") == 0
	})
	// From health, at once: not after op_timeout (a minute here).
	began := time.Now()
	if rc := w.handle(t, w.d.Node.Pipeline, w.purchase()); rc != iso8583.RCIssuerUnavailable {
		t.Fatalf("tap without the quorum: rc %s, want 91", rc)
	}
	if took := time.Since(began); took > 20*time.Second {
		t.Fatalf("the tap without the quorum waited %v: the node did not fail from its health", took)
	}
	nc.Restart(1)
	waitFor("ready again", func() bool {
		code, _ := readyz(t, w)
		return code == http.StatusOK && gaugeValue(t, w, "tapswitch_cluster_quorum") == 1
	})
}

// TestReturningNodeWaitsForItsAdopter: a node whose adopter is still
// sending its advices refuses to start; once the adopter is done, it
// starts and ends its adoption.
func TestReturningNodeWaitsForItsAdopter(t *testing.T) {
	nc := natstest.Start(t, 3)
	adopter := openMembers(t, nc, 1, "node-b")
	rev, won, err := adopter.Claim(context.Background(), "node-x")
	if err != nil || !won {
		t.Fatalf("claim: %v %v", won, err)
	}
	data := t.TempDir()
	cfg := func(c *node.Config) {
		c.NodeID, c.Data = "node-x", data
		membershipNode(nc, c)
	}
	if err := startDevOnce(t, cfg); err == nil || !strings.Contains(err.Error(), "node-b is sending") {
		t.Fatalf("start while adopted and sending: %v", err)
	}
	if _, err := adopter.SetAdoption(context.Background(), "node-x", cluster.AdoptDone, rev); err != nil {
		t.Fatal(err)
	}
	startWorldWith(t, cfg)
	if _, _, _, found, err := adopter.Adoption(context.Background(), "node-x"); err != nil || found {
		t.Fatalf("the returned node's adoption is still there: %v %v", found, err)
	}
}

// startDevOnce starts a dev node with cfg changed by mutate, and closes it
// at once if it started.
func startDevOnce(t *testing.T, mutate func(*node.Config)) error {
	cfg, err := node.LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen, cfg.Public, cfg.Admin = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	mutate(&cfg)
	d, err := daemon.StartDev(cfg, 7, zerolog.Nop())
	if err == nil {
		d.Close()
	}
	return err
}

// TestNodeAdoptedWhileCutOffStops: a node that was cut off long enough to
// be adopted, and then reaches the quorum again, must not go on writing
// the journal its adopter writes now. Its next heartbeat finds the
// adoption: it has no quorum from then on (its journal and counters refuse
// every write) and Run ends with ErrAdopted. An adoption it took back at
// its start (returned) is no such thing.
func TestNodeAdoptedWhileCutOffStops(t *testing.T) {
	nc := natstest.Start(t, 3)
	a := openMembers(t, nc, 0, "node-a")
	b := openMembers(t, nc, 1, "node-b")
	ctx := context.Background()
	if err := a.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	if _, quorum := a.Alive(); !quorum {
		t.Fatal("no quorum after a heartbeat")
	}
	// A's silence is B's to judge; here B claims A outright.
	if _, won, err := b.Claim(ctx, "node-a"); err != nil || !won {
		t.Fatalf("claim: %v %v", won, err)
	}
	if err := a.Beat(ctx); !errors.Is(err, cluster.ErrAdopted) || !strings.Contains(err.Error(), "node-b") {
		t.Fatalf("heartbeat of an adopted node: %v, want ErrAdopted by node-b", err)
	}
	if _, quorum := a.Alive(); quorum || a.QuorumHeldFor() != 0 {
		t.Fatal("the adopted node still counts itself in the quorum")
	}
	runCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := a.Run(runCtx); !errors.Is(err, cluster.ErrAdopted) {
		t.Fatalf("Run of an adopted node: %v, want ErrAdopted", err)
	}

	c := openMembers(t, nc, 2, "node-c")
	rev, won, err := b.Claim(ctx, "node-c")
	if err != nil || !won {
		t.Fatalf("claim: %v %v", won, err)
	}
	if _, err := b.SetAdoption(ctx, "node-c", cluster.AdoptReturned, rev); err != nil {
		t.Fatal(err)
	}
	if err := c.Beat(ctx); err != nil {
		t.Fatalf("heartbeat of a node that took its adoption back: %v", err)
	}
}

// TestQuorumHeldCountsFromItsReturn: a node that lost the quorum counts
// its hold from the heartbeat that got it back, so right after the
// heartbeat bucket's quorum returns it takes nobody for dead (the others
// have had no chance to beat yet).
func TestQuorumHeldCountsFromItsReturn(t *testing.T) {
	nc := natstest.Start(t, 3)
	a := openMembers(t, nc, 0, "node-a")
	ctx := context.Background()
	if err := a.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(testTTL / 2)
	if held := a.QuorumHeldFor(); held < testTTL/2 {
		t.Fatalf("held the quorum %v after two beats half a TTL apart", held)
	}
	nc.Kill(1)
	nc.Kill(2)
	deadline := time.Now().Add(testTTL + 10*time.Second)
	for a.QuorumHeldFor() != 0 {
		_ = a.Beat(ctx)
		if time.Now().After(deadline) {
			t.Fatal("the quorum is still counted with two of three servers down")
		}
		time.Sleep(testTTL / 4)
	}
	nc.Restart(1)
	deadline = time.Now().Add(30 * time.Second)
	for a.Beat(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("no heartbeat within 30 s of the quorum's return")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if held := a.QuorumHeldFor(); held <= 0 || held >= testTTL {
		t.Fatalf("held the quorum %v right after it came back, want more than 0 and less than the TTL %v", held, testTTL)
	}
}

// TestSwitchdAdoptedWhileAliveStops: a switchd node that finds itself
// adopted stops approving at once (not ready, taps 91) and reports
// ErrAdopted on Errors(), which makes switchd exit.
func TestSwitchdAdoptedWhileAliveStops(t *testing.T) {
	nc := natstest.Start(t, 3)
	w := startWorldWith(t, func(c *node.Config) { membershipNode(nc, c) })
	if rc := w.handle(t, w.d.Node.Pipeline, w.purchase()); rc != iso8583.RCApproved {
		t.Fatalf("tap before the adoption: rc %s", rc)
	}
	other := openMembers(t, nc, 1, "node-other")
	self := w.d.Node.Pipeline.Deps().NodeID
	if _, won, err := other.Claim(context.Background(), self); err != nil || !won {
		t.Fatalf("claim: %v %v", won, err)
	}
	select {
	case err := <-w.d.Node.Errors():
		if !errors.Is(err, cluster.ErrAdopted) {
			t.Fatalf("the node stopped for %v, want ErrAdopted", err)
		}
	case <-time.After(testTTL + 10*time.Second):
		t.Fatal("the adopted node did not stop within a heartbeat")
	}
	if code, body := readyz(t, w); code != http.StatusServiceUnavailable || body["cluster_quorum"] != false {
		t.Fatalf("/readyz of the adopted node: %d %v", code, body)
	}
	if rc := w.handle(t, w.d.Node.Pipeline, w.purchase()); rc != iso8583.RCIssuerUnavailable {
		t.Fatalf("tap on the adopted node: rc %s, want 91", rc)
	}
}

// TestNodeBackFromAdoptionRebuildsItsJournal: a node that comes back from
// an adoption takes its journal from the stream, the truth its adopter
// acted on. A batch it had committed only locally (its acknowledgement
// failed as it was cut off: the terminal got an error, and the adopter
// reversed the issuer call the stream shows armed) is not in the rebuilt
// journal; the local journal is kept aside, whole.
func TestNodeBackFromAdoptionRebuildsItsJournal(t *testing.T) {
	nc := natstest.Start(t, 3)
	data := t.TempDir()
	cfg := func(c *node.Config) {
		c.NodeID, c.Data = "node-x", data
		membershipNode(nc, c)
	}
	w := startWorldWith(t, cfg)
	if rc := w.handle(t, w.d.Node.Pipeline, w.purchase()); rc != iso8583.RCApproved {
		t.Fatalf("tap: rc %s", rc)
	}
	replicated := countEntries(t, w.d.Node.Journal)
	w.d.Close()

	dir := filepath.Join(data, "journal")
	local, err := journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	localOnly := testEntry("TERM0009", 1)
	if err := local.Append(localOnly); err != nil {
		t.Fatal(err)
	}
	if err := local.Close(); err != nil {
		t.Fatal(err)
	}

	adopter := openMembers(t, nc, 1, "node-b")
	rev, won, err := adopter.Claim(context.Background(), "node-x")
	if err != nil || !won {
		t.Fatalf("claim: %v %v", won, err)
	}
	if _, err := adopter.SetAdoption(context.Background(), "node-x", cluster.AdoptDone, rev); err != nil {
		t.Fatal(err)
	}
	back := startWorldWith(t, cfg)
	if _, found, err := back.d.Node.Journal.Lookup(localOnly.Key()); err != nil || found {
		t.Fatalf("the batch committed only locally is in the rebuilt journal: %v %v", found, err)
	}
	if got := countEntries(t, back.d.Node.Journal); got != replicated {
		t.Fatalf("the rebuilt journal has %d entries, the stream %d", got, replicated)
	}
	aside, _ := filepath.Glob(dir + "-before-adoption-*")
	if len(aside) != 1 {
		t.Fatalf("local journal kept aside: %v", aside)
	}
	kept, err := journal.Open(aside[0], journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	if _, found, _ := kept.Lookup(localOnly.Key()); !found || countEntries(t, kept) != replicated+1 {
		t.Fatal("the journal kept aside lost entries")
	}
}

// countEntries counts a journal's entries over all its days.
func countEntries(t *testing.T, j *journal.Journal) int {
	t.Helper()
	days, err := j.Days()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range days {
		if err := j.ScanDay(d, func(journal.Entry) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	return n
}
