package cluster_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	moov "github.com/moov-io/iso8583"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/bench/issuersim"
	"github.com/tapswitch/tapswitch/bench/pos"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/authorize"
	"github.com/tapswitch/tapswitch/switch/cluster"
	"github.com/tapswitch/tapswitch/switch/cluster/natstest"
	"github.com/tapswitch/tapswitch/switch/daemon"
	"github.com/tapswitch/tapswitch/switch/journal"
	"github.com/tapswitch/tapswitch/switch/node"
)

// pendingWait is how long a retransmission waits for another node's
// answer in these tests: above a tap's time on the dev world, and at
// least two opTimeouts.
const pendingWait = 2 * opTimeout

// sharedNode is a cluster node whose duplicate keys and stand-in usage
// are shared too. Its deps are returned so a test can start it again on
// the same journal ("restart"), and its duplicate store so a test can
// claim a key as a node that then dies.
type sharedNode struct {
	p    *authorize.Pipeline
	deps authorize.Deps
	dups *cluster.Duplicates
	sins *cluster.StandIns
}

func (w world) sharedNode(t testing.TB, nc *natstest.Cluster, server int, id string) sharedNode {
	t.Helper()
	deps := w.clusterDeps(t, nc, server, id)
	js, err := jetstream.New(nc.Connect(server))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dups, err := cluster.OpenDuplicates(ctx, js, cluster.DuplicatesConfig{Bucket: "duplicates", Replicas: 3,
		OpTimeout: opTimeout, MaxAge: time.Hour, PendingWait: pendingWait, NodeID: id})
	if err != nil {
		t.Fatal(err)
	}
	sins, err := cluster.OpenStandIns(ctx, js, cluster.StandInsConfig{Bucket: "stand_in", Replicas: 3, OpTimeout: opTimeout})
	if err != nil {
		t.Fatal(err)
	}
	deps.Duplicates, deps.StandIns = dups, sins
	return sharedNode{p: authorize.New(deps), deps: deps, dups: dups, sins: sins}
}

// request parses msg as the terminal server would, signed by the demo
// terminal: each call gives a request of its own, safe to hand to
// another goroutine.
func (w world) request(t testing.TB, msg *moov.Message) authorize.Request {
	t.Helper()
	key, _ := w.d.AcquirerKeys.TerminalKey(pos.DemoTerminal.Acquirer, pos.DemoTerminal.TerminalID)
	frame, err := iso8583.PackSigned(msg, key)
	if err != nil {
		t.Fatal(err)
	}
	var fields iso8583.Fields
	if err := fields.Parse(frame); err != nil {
		t.Fatal(err)
	}
	req, err := authorize.ParseFields(&fields)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// charges counts the card issuer's standing postings of the terminal
// request with retrieval reference rrn.
func (w world) charges(t testing.TB, msg *moov.Message) int {
	t.Helper()
	rrn := iso8583.FieldValue(msg, iso8583.FieldRRN)
	n := 0
	for _, e := range w.d.Fleet.Issuer(w.card.Issuer).Ledger() {
		if e.RRN == rrn && !e.Reversed {
			n++
		}
	}
	return n
}

// sameKey is a new tap of the card (next counter, valid cryptogram) under
// msg's key (terminal, STAN, DE7) but for another amount.
func (w world) sameKey(t testing.TB, msg *moov.Message) *moov.Message {
	t.Helper()
	stan := iso8583.FieldValue(msg, iso8583.FieldSTAN)
	de7 := iso8583.FieldValue(msg, iso8583.FieldTransmissionTime)
	when, err := time.Parse("0102150405", de7)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	when = time.Date(now.Year(), when.Month(), when.Day(), when.Hour(), when.Minute(), when.Second(), 0, time.UTC)
	m := pos.Tap{Terminal: pos.DemoTerminal, ProcessingCode: iso8583.ProcPurchase, Amount: 2,
		STAN: stan, Time: when}.WithCard(w.card).Message()
	if got := iso8583.FieldValue(m, iso8583.FieldTransmissionTime); got != de7 {
		t.Fatalf("same-key tap has DE7 %s, want %s", got, de7)
	}
	return m
}

// TestRetransmissionOnAnotherNode: a tap approved on node A, retransmitted
// on node B (as after a reconnect through the load balancer), gets A's
// answer, auth code included; the issuer holds it once, and only A
// journaled it. The same key with another amount is 94 on either node.
func TestRetransmissionOnAnotherNode(t *testing.T) {
	w := startWorld(t)
	nc := natstest.Start(t, 3)
	a, b := w.sharedNode(t, nc, 0, "node-a"), w.sharedNode(t, nc, 1, "node-b")

	m := w.purchase()
	first := w.answer(t, a.p, m)
	if first.RC != iso8583.RCApproved || first.AuthCode == "" {
		t.Fatalf("tap on A: rc %s, auth code %q", first.RC, first.AuthCode)
	}
	again := w.answer(t, b.p, m)
	if again.RC != first.RC || again.AuthCode != first.AuthCode {
		t.Fatalf("retransmission on B: rc %s auth %q, want A's rc %s auth %q", again.RC, again.AuthCode, first.RC, first.AuthCode)
	}
	if n := w.charges(t, m); n != 1 {
		t.Fatalf("issuer holds the tap %d times, want 1", n)
	}
	key := w.request(t, m).Key()
	if _, found, err := b.deps.Journal.Lookup(key); err != nil || found {
		t.Fatalf("B journaled the retransmission (found %v, err %v): the approval is A's", found, err)
	}
	if _, found, err := a.deps.Journal.Lookup(key); err != nil || !found {
		t.Fatalf("A's journal has no entry (err %v)", err)
	}
	other := w.sameKey(t, m)
	for name, n := range map[string]sharedNode{"A": a, "B": b} {
		if rc := w.handle(t, n.p, other); rc != iso8583.RCDuplicate {
			t.Errorf("same key, other amount, on %s: rc %s, want 94", name, rc)
		}
	}
	if n := w.charges(t, m); n != 1 {
		t.Fatalf("issuer holds the tap %d times after the 94s, want 1", n)
	}
}

// TestConcurrentSameKeyOnTwoNodes: the same request arriving on both nodes
// at once (a terminal retransmitting through the load balancer while the
// first is in flight) goes to the issuer once; both get the one answer.
func TestConcurrentSameKeyOnTwoNodes(t *testing.T) {
	w := startWorld(t)
	nc := natstest.Start(t, 3)
	nodes := []sharedNode{w.sharedNode(t, nc, 0, "node-a"), w.sharedNode(t, nc, 1, "node-b")}
	from := w.d.Node.Senders()
	const taps = 12
	for i := range taps {
		m := w.purchase()
		var wg sync.WaitGroup
		answers := make([]authorize.Answer, len(nodes))
		for j, n := range nodes {
			req := w.request(t, m)
			key, _ := w.d.AcquirerKeys.TerminalKey(pos.DemoTerminal.Acquirer, pos.DemoTerminal.TerminalID)
			frame, err := iso8583.PackSigned(m, key)
			if err != nil {
				t.Fatal(err)
			}
			id := from.Check(frame, req.TerminalID)
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				defer cancel()
				answers[j] = n.p.HandleRequest(ctx, req, id)
			})
		}
		wg.Wait()
		if answers[0].RC != iso8583.RCApproved || answers[1].RC != answers[0].RC || answers[1].AuthCode != answers[0].AuthCode {
			t.Errorf("tap %d: A rc %s auth %q, B rc %s auth %q: want one approval answered twice", i,
				answers[0].RC, answers[0].AuthCode, answers[1].RC, answers[1].AuthCode)
		}
		if n := w.charges(t, m); n != 1 {
			t.Errorf("tap %d: the issuer holds it %d times, want 1", i, n)
		}
	}
}

// TestKeyOfADeadNode: node A claims a request's key and dies before
// answering. The retransmission on node B waits PendingWait for A's answer,
// then is answered 91 and never reaches the issuer (whatever A had sent is
// undone by A's armed reversal). A restarted on its journal takes its own
// claim over and processes the retransmission as one node would; B then
// answers A's answer.
func TestKeyOfADeadNode(t *testing.T) {
	w := startWorld(t)
	nc := natstest.Start(t, 3)
	a, b := w.sharedNode(t, nc, 0, "node-a"), w.sharedNode(t, nc, 1, "node-b")

	m := w.purchase()
	req := w.request(t, m)
	hold, _, err := a.dups.Claim(context.Background(), req.Key(), req.Digest())
	if err != nil || hold == nil {
		t.Fatalf("A's claim: hold %v, err %v", hold, err)
	}
	// A dies here: its claim is never answered.
	start := time.Now()
	if rc := w.handle(t, b.p, m); rc != iso8583.RCIssuerUnavailable {
		t.Fatalf("retransmission on B of a dead node's key: rc %s, want 91", rc)
	}
	if waited := time.Since(start); waited < pendingWait-100*time.Millisecond {
		t.Errorf("B answered after %v, before its pending wait of %v", waited, pendingWait)
	}
	if n := w.charges(t, m); n != 0 {
		t.Fatalf("the issuer holds the tap %d times, want 0 (B must not send it)", n)
	}

	restarted := authorize.New(a.deps)
	first := w.answer(t, restarted, m)
	if first.RC != iso8583.RCApproved {
		t.Fatalf("retransmission on A restarted: rc %s, want 00", first.RC)
	}
	again := w.answer(t, b.p, m)
	if again.RC != first.RC || again.AuthCode != first.AuthCode {
		t.Fatalf("retransmission on B after A answered: rc %s auth %q, want %s %q", again.RC, again.AuthCode, first.RC, first.AuthCode)
	}
	if n := w.charges(t, m); n != 1 {
		t.Fatalf("the issuer holds the tap %d times, want 1", n)
	}
}

// TestStandInCapAcrossNodes: with the card's issuer down, taps of one
// token on two nodes at once are stood in for at most the day's cap (5 in
// the built-in rules) together, not per node.
func TestStandInCapAcrossNodes(t *testing.T) {
	w := startWorld(t)
	nc := natstest.Start(t, 3)
	nodes := []sharedNode{w.sharedNode(t, nc, 0, "node-a"), w.sharedNode(t, nc, 1, "node-b")}
	rules := w.d.Node.Pipeline.Deps().StandIn[w.card.Issuer]
	if !rules.Enabled || rules.DailyCountMax != 5 {
		t.Fatalf("stand-in rules of the card's issuer: %+v, want enabled with a daily count of 5", rules)
	}
	if err := w.d.Fleet.Down(w.card.Issuer); err != nil {
		t.Fatal(err)
	}
	defer w.d.Fleet.Up(w.card.Issuer)
	deadline := time.Now().Add(10 * time.Second)
	for w.d.Node.LinksUp() == len(w.d.Node.Issuers) {
		if time.Now().After(deadline) {
			t.Fatal("link to the card's issuer still up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	const taps = 14
	msgs := make([]*moov.Message, taps)
	for i := range msgs {
		msgs[i] = w.purchase()
	}
	var mu sync.Mutex
	rcs := map[string]int{}
	var wg sync.WaitGroup
	for i, m := range msgs {
		n := nodes[i%2]
		wg.Go(func() {
			rc := w.handle(t, n.p, m)
			mu.Lock()
			rcs[rc]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if rcs[iso8583.RCApproved] != rules.DailyCountMax || rcs[iso8583.RCIssuerUnavailable] != taps-rules.DailyCountMax {
		t.Fatalf("answers %v: want %d stood in (the day's cap, network-wide), the rest 91", rcs, rules.DailyCountMax)
	}
	h, err := nodes[0].sins.Hold(context.Background(), nodes[0].deps.Journal.BusinessDayOf(time.Now()), w.card.Token)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release(true)
	if u := h.Used(); u.Count != rules.DailyCountMax || u.Amount != int64(rules.DailyCountMax) {
		t.Fatalf("stored usage %+v, want %d approvals of 1 fen", u, rules.DailyCountMax)
	}
}

// TestNoQuorumIs91: without the quorum a node cannot check a key across
// the cluster: a fresh tap is 91 and counted as such (never approved on
// its own journal's say), a retransmission of another node's approval is
// 91 or that approval (never a new decision), and one of its own is still
// answered from its journal. The stand-in store takes no approval and
// says it is unavailable. With the quorum back, approvals resume and the
// retransmission gets its first answer.
func TestNoQuorumIs91(t *testing.T) {
	w := startWorld(t)
	nc := natstest.Start(t, 3)
	a, b := w.sharedNode(t, nc, 0, "node-a"), w.sharedNode(t, nc, 1, "node-b")
	onA := w.approveWithin(t, a.p, 0)
	firstA := w.answer(t, a.p, onA)

	nc.Kill(2)
	nc.Kill(1)
	unavailable := storeUnavailable(t, w, "duplicates")
	for _, p := range []*authorize.Pipeline{a.p, b.p} {
		if rc := w.handle(t, p, w.purchase()); rc != iso8583.RCIssuerUnavailable {
			t.Fatalf("no quorum: fresh tap rc %s, want 91", rc)
		}
	}
	if got := storeUnavailable(t, w, "duplicates") - unavailable; got != 2 {
		t.Errorf("no quorum: tapswitch_cluster_store_unavailable_total{store=duplicates} rose by %v, want 2", got)
	}
	// An answered key is final: when the stream's leader (or a replica
	// for the read) is on B's surviving server, B may still answer it.
	if again := w.answer(t, b.p, onA); again.RC != iso8583.RCIssuerUnavailable &&
		(again.RC != firstA.RC || again.AuthCode != firstA.AuthCode) {
		t.Fatalf("no quorum: retransmission on B of A's approval: rc %s auth %q, want 91 or A's %s %q",
			again.RC, again.AuthCode, firstA.RC, firstA.AuthCode)
	}
	if again := w.answer(t, a.p, onA); again.RC != firstA.RC || again.AuthCode != firstA.AuthCode {
		t.Fatalf("no quorum: retransmission on A of its own approval: rc %s, want %s from its journal", again.RC, firstA.RC)
	}
	// A replica may still serve the read; the take needs the quorum.
	h, err := a.sins.Hold(context.Background(), a.deps.Journal.BusinessDayOf(time.Now()), w.card.Token)
	if err == nil {
		var taken bool
		_, taken, err = h.Take(context.Background(), 1)
		h.Release(false)
		if taken {
			t.Fatal("no quorum: a stand-in approval was taken")
		}
	}
	if !errors.Is(err, authorize.ErrClusterUnavailable) {
		t.Fatalf("no quorum: stand-in usage: err %v, want ErrClusterUnavailable", err)
	}

	nc.Restart(1)
	w.approveWithin(t, b.p, 30*time.Second)
	if again := w.answer(t, b.p, onA); again.RC != firstA.RC || again.AuthCode != firstA.AuthCode {
		t.Fatalf("quorum back: retransmission on B: rc %s auth %q, want %s %q", again.RC, again.AuthCode, firstA.RC, firstA.AuthCode)
	}
}

// storeUnavailable reads tapswitch_cluster_store_unavailable_total of
// store from the dev node's metrics (every test node shares the set).
func storeUnavailable(t *testing.T, w world, store string) float64 {
	t.Helper()
	families, err := w.d.Node.Metrics().Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "tapswitch_cluster_store_unavailable_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "store" && l.GetValue() == store {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestSlowNodeGivesUp: node A's issuer answers later than B's wait for a
// retransmission. A gives the exchange up at its claim's DecideBy (half
// the wait): 91, the request's reversal due in A's journal; B answers the
// retransmission A's 91. Without the deadline A would approve after B
// answered 91.
func TestSlowNodeGivesUp(t *testing.T) {
	w := startWorldWith(t, func(c *node.Config) { c.IssuerLinks.RequestTimeout = 3 * pendingWait })
	nc := natstest.Start(t, 3)
	a, b := w.sharedNode(t, nc, 0, "node-a"), w.sharedNode(t, nc, 1, "node-b")
	if err := w.d.Fleet.SetFaults(w.card.Issuer, issuersim.Faults{Latency: pendingWait + pendingWait/2}); err != nil {
		t.Fatal(err)
	}
	m := w.purchase()
	var onA authorize.Answer
	var wg sync.WaitGroup
	wg.Go(func() { onA = w.answer(t, a.p, m) })
	time.Sleep(pendingWait / 8) // A's claim first
	onB := w.answer(t, b.p, m)
	wg.Wait()
	if onA.RC != iso8583.RCIssuerUnavailable || onB.RC != onA.RC {
		t.Fatalf("A rc %s, B rc %s: want A's 91 on both", onA.RC, onB.RC)
	}
	counts, err := a.deps.Journal.AdviceCounts()
	if err != nil {
		t.Fatal(err)
	}
	if counts[journal.AdviceDue] != 1 {
		t.Fatalf("A's advices %v: want the request's reversal due", counts)
	}
}

// TestRetransmissionWaitsForTheFirst: a retransmission that arrives on B
// while A is still at the issuer waits for A's answer and gets it; the
// issuer sees the request once.
func TestRetransmissionWaitsForTheFirst(t *testing.T) {
	w := startWorld(t)
	nc := natstest.Start(t, 3)
	a, b := w.sharedNode(t, nc, 0, "node-a"), w.sharedNode(t, nc, 1, "node-b")
	const latency = 500 * time.Millisecond
	if err := w.d.Fleet.SetFaults(w.card.Issuer, issuersim.Faults{Latency: latency}); err != nil {
		t.Fatal(err)
	}
	m := w.purchase()
	var onA authorize.Answer
	var wg sync.WaitGroup
	wg.Go(func() { onA = w.answer(t, a.p, m) })
	time.Sleep(latency / 5) // A's claim first
	start := time.Now()
	onB := w.answer(t, b.p, m)
	waited := time.Since(start)
	wg.Wait()
	if onA.RC != iso8583.RCApproved || onB.RC != onA.RC || onB.AuthCode != onA.AuthCode {
		t.Fatalf("A rc %s auth %q, B rc %s auth %q: want A's approval on both", onA.RC, onA.AuthCode, onB.RC, onB.AuthCode)
	}
	if waited < latency/2 {
		t.Errorf("B answered after %v: it did not wait for A at the issuer", waited)
	}
	if n := w.charges(t, m); n != 1 {
		t.Fatalf("the issuer holds the tap %d times, want 1", n)
	}
}

// TestSwitchdClusterDuplicates: a switchd node with cluster.urls set
// shares its duplicate keys and stand-in usage (the built-in bucket
// names): its approval retransmitted on another node gets its answer.
// A pending_wait too short for the issuers' time-out refuses to start.
func TestSwitchdClusterDuplicates(t *testing.T) {
	nc := natstest.Start(t, 3)
	w := startWorldWith(t, func(c *node.Config) {
		c.Cluster.URLs = []string{nc.URL(2)}
		c.Cluster.CountersBucket = "counters"
		c.Cluster.DuplicatesBucket = "duplicates"
		c.Cluster.STANBlock = 1
	})
	deps := w.d.Node.Pipeline.Deps()
	if deps.Duplicates == nil || deps.StandIns == nil {
		t.Fatalf("cluster.urls set, duplicates %v, stand-ins %v: want both shared", deps.Duplicates, deps.StandIns)
	}
	b := w.sharedNode(t, nc, 1, "node-b")
	m := w.purchase()
	first := w.answer(t, w.d.Node.Pipeline, m)
	if first.RC != iso8583.RCApproved {
		t.Fatalf("tap on the switchd node: rc %s", first.RC)
	}
	if again := w.answer(t, b.p, m); again.RC != first.RC || again.AuthCode != first.AuthCode {
		t.Fatalf("retransmission on node B: rc %s auth %q, want %s %q", again.RC, again.AuthCode, first.RC, first.AuthCode)
	}

	cfg, err := node.LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Data = t.TempDir()
	cfg.Listen, cfg.Public, cfg.Admin = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Cluster.URLs = []string{nc.URL(0)}
	cfg.Cluster.STANBlock = 2 // valid, so only pending_wait can refuse the start
	cfg.Cluster.PendingWait = cfg.IssuerLinks.RequestTimeout
	if d, err := daemon.StartDev(cfg, 7, zerolog.Nop()); err == nil {
		d.Close()
		t.Fatalf("switchd started with pending_wait %v, request_timeout %v", cfg.Cluster.PendingWait, cfg.IssuerLinks.RequestTimeout)
	} else if !strings.Contains(err.Error(), "pending_wait") {
		t.Fatalf("start refused for another reason: %v", err)
	}
}

// TestStoresGiveBack: a claim dropped (its outcome not journaled) leaves
// the key free for another node's claim, as one node's failed append
// leaves no entry; a stand-in approval taken and not journaled is given
// back, and one journaled stays.
func TestStoresGiveBack(t *testing.T) {
	nc := natstest.Start(t, 3)
	ctx := context.Background()
	open := func(server int, id string) (*cluster.Duplicates, *cluster.StandIns) {
		js, err := jetstream.New(nc.Connect(server))
		if err != nil {
			t.Fatal(err)
		}
		dups, err := cluster.OpenDuplicates(ctx, js, cluster.DuplicatesConfig{Bucket: "duplicates", Replicas: 3,
			OpTimeout: opTimeout, MaxAge: time.Hour, PendingWait: pendingWait, NodeID: id})
		if err != nil {
			t.Fatal(err)
		}
		sins, err := cluster.OpenStandIns(ctx, js, cluster.StandInsConfig{Bucket: "stand_in", Replicas: 3, OpTimeout: opTimeout})
		if err != nil {
			t.Fatal(err)
		}
		return dups, sins
	}
	dupsA, sinsA := open(0, "node-a")
	dupsB, _ := open(1, "node-b")

	key := journal.Key{TerminalID: "TERM0001", STAN: "000042", TransmissionTime: "1204093000"}
	hold, _, err := dupsA.Claim(ctx, key, [32]byte{1})
	if err != nil || hold == nil {
		t.Fatalf("A's claim: %v, %v", hold, err)
	}
	hold.Drop(ctx)
	holdB, first, err := dupsB.Claim(ctx, key, [32]byte{2})
	if err != nil || holdB == nil {
		t.Fatalf("B's claim of a dropped key: hold %v, first %+v, err %v", holdB, first, err)
	}

	take := func(journaled bool) {
		h, err := sinsA.Hold(ctx, "20261204", "6299900000000001")
		if err != nil {
			t.Fatal(err)
		}
		if _, taken, err := h.Take(ctx, 250); err != nil || !taken {
			t.Fatalf("take: %v, %v", taken, err)
		}
		h.Release(journaled)
	}
	used := func() (int, int64) {
		h, err := sinsA.Hold(ctx, "20261204", "6299900000000001")
		if err != nil {
			t.Fatal(err)
		}
		defer h.Release(false)
		return h.Used().Count, h.Used().Amount
	}
	take(true)
	take(false)
	if c, a := used(); c != 1 || a != 250 {
		t.Fatalf("usage %d approvals of %d fen, want the journaled one: 1 of 250", c, a)
	}
}
