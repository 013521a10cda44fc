package cluster_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	moov "github.com/moov-io/iso8583"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/bench/pos"
	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/authorize"
	"github.com/tapswitch/tapswitch/switch/cluster"
	"github.com/tapswitch/tapswitch/switch/cluster/natstest"
	"github.com/tapswitch/tapswitch/switch/daemon"
	"github.com/tapswitch/tapswitch/switch/journal"
	"github.com/tapswitch/tapswitch/switch/node"
)

// opTimeout bounds each store operation in these tests: long enough for a
// JetStream leader election on a loaded machine, short enough that a lost
// quorum answers 91 quickly.
const opTimeout = 2 * time.Second

// world is the dev world (vault, BIN table, in-process issuers behind real
// TCP links) and a wallet card of it, shared by the test's nodes.
type world struct {
	d    *daemon.DevWorld
	card wallet.Card
}

func startWorld(t testing.TB) world {
	return startWorldWith(t, nil)
}

// startWorldWith starts the dev world with its configuration changed by
// mutate first (nil: as built in).
func startWorldWith(t testing.TB, mutate func(*node.Config)) world {
	t.Helper()
	cfg, err := node.LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Data = t.TempDir()
	cfg.Listen, cfg.Public, cfg.Admin = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	if mutate != nil {
		mutate(&cfg)
	}
	d, err := daemon.StartDev(cfg, 7, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for d.Node.LinksUp() < len(d.Node.Issuers) {
		if time.Now().After(deadline) {
			t.Fatal("issuer links not up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	w, err := wallet.Load(d.WalletPath)
	if err != nil {
		t.Fatal(err)
	}
	card, err := w.Card("approve")
	if err != nil {
		t.Fatal(err)
	}
	return world{d: d, card: card}
}

// clusterNode is a second switch node's pipeline on the world's vault and
// issuer links, with its own journal and its counter windows in the
// cluster's bucket, reached through NATS server `server`.
func (w world) clusterNode(t testing.TB, nc *natstest.Cluster, server int, id string) *authorize.Pipeline {
	t.Helper()
	return authorize.New(w.clusterDeps(t, nc, server, id))
}

// clusterDeps are clusterNode's dependencies, for a test to add to.
func (w world) clusterDeps(t testing.TB, nc *natstest.Cluster, server int, id string) authorize.Deps {
	t.Helper()
	js, err := jetstream.New(nc.Connect(server))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	counters, err := cluster.OpenCounters(ctx, js, cluster.CountersConfig{
		Bucket: "counters", Replicas: 3, OpTimeout: opTimeout})
	if err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(t.TempDir(), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	deps := w.d.Node.Pipeline.Deps()
	deps.Journal, deps.NodeID, deps.Counters = j, id, counters
	deps.AdviceQueued = nil // this node has no store-and-forward sender
	return deps
}

var stans atomic.Uint64

// purchase is a fresh tap of the card (its next counter), 1 fen.
func (w world) purchase() *moov.Message {
	return pos.Tap{Terminal: pos.DemoTerminal, ProcessingCode: iso8583.ProcPurchase, Amount: 1,
		STAN: fmt.Sprintf("%06d", stans.Add(1)%999999+1), Time: time.Now()}.WithCard(w.card).Message()
}

// replay is a new request (new STAN) carrying msg's cryptogram: the same
// ARQC over the same counter.
func (w world) replay(t *testing.T, msg *moov.Message) *moov.Message {
	t.Helper()
	de55, err := msg.GetBytes(iso8583.FieldICC)
	if err != nil || len(de55) == 0 {
		t.Fatalf("tap without DE55: %v", err)
	}
	r := pos.Tap{Terminal: pos.DemoTerminal, ProcessingCode: iso8583.ProcPurchase, Token: w.card.Token,
		TokenExpiry: w.card.TokenExpiry, Amount: 1, STAN: fmt.Sprintf("%06d", stans.Add(1)%999999+1),
		Time: time.Now()}.Message()
	r.Field(iso8583.FieldICC, string(de55))
	return r
}

// handle runs msg through p as the terminal server would (signed by the
// demo terminal, parsed on the hot path) and returns DE39.
func (w world) handle(t testing.TB, p *authorize.Pipeline, msg *moov.Message) string {
	t.Helper()
	return w.answer(t, p, msg).RC
}

// answer is handle's whole answer.
func (w world) answer(t testing.TB, p *authorize.Pipeline, msg *moov.Message) authorize.Answer {
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
	from := w.d.Node.Senders().Check(frame, req.TerminalID)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return p.HandleRequest(ctx, req, from)
}

// TestReplayOnAnotherNodeIs59: a tap approved on node A, its cryptogram
// replayed on node B (same ARQC, same counter, new STAN) is refused 59;
// B approves the phone's next tap, and A refuses a replay of that one.
func TestReplayOnAnotherNodeIs59(t *testing.T) {
	w := startWorld(t)
	nc := natstest.Start(t, 3)
	a, b := w.clusterNode(t, nc, 0, "node-a"), w.clusterNode(t, nc, 1, "node-b")

	first := w.purchase()
	if rc := w.handle(t, a, first); rc != iso8583.RCApproved {
		t.Fatalf("first tap on A: rc %s", rc)
	}
	if rc := w.handle(t, b, w.replay(t, first)); rc != iso8583.RCSuspectedFraud {
		t.Fatalf("replay on B: rc %s, want 59", rc)
	}
	next := w.purchase()
	if rc := w.handle(t, b, next); rc != iso8583.RCApproved {
		t.Fatalf("next tap on B: rc %s", rc)
	}
	if rc := w.handle(t, a, w.replay(t, next)); rc != iso8583.RCSuspectedFraud {
		t.Fatalf("replay of B's tap on A: rc %s, want 59", rc)
	}
	if rc := w.handle(t, a, w.replay(t, first)); rc != iso8583.RCSuspectedFraud {
		t.Fatalf("replay of A's first tap on A: rc %s, want 59", rc)
	}
}

// TestSwitchdClusterConfig: the built-in configuration is a single node;
// with cluster.urls set, the node's own pipeline keeps its windows in the
// cluster's bucket, so a tap it approved is refused 59 on another node.
func TestSwitchdClusterConfig(t *testing.T) {
	cfg, err := node.LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cluster.Enabled() {
		t.Fatalf("built-in config runs in a cluster: %+v", cfg.Cluster)
	}
	nc := natstest.Start(t, 3)
	w := startWorldWith(t, func(c *node.Config) {
		c.Cluster.URLs = []string{nc.URL(2)}
		c.Cluster.CountersBucket = "counters"
		c.Cluster.STANBlock = 1
	})
	if w.d.Node.Pipeline.Deps().Counters == nil {
		t.Fatal("cluster.urls set, the pipeline uses the journal's windows")
	}
	b := w.clusterNode(t, nc, 1, "node-b")
	first := w.purchase()
	if rc := w.handle(t, w.d.Node.Pipeline, first); rc != iso8583.RCApproved {
		t.Fatalf("tap on the switchd node: rc %s", rc)
	}
	if rc := w.handle(t, b, w.replay(t, first)); rc != iso8583.RCSuspectedFraud {
		t.Fatalf("replay on node B: rc %s, want 59", rc)
	}
}

// TestConcurrentTapsSpendEachCounterOnce: taps of one token, each of its
// counters offered at once on both nodes (and twice on each): every
// counter is approved exactly once network-wide, the other offers are 59.
func TestConcurrentTapsSpendEachCounterOnce(t *testing.T) {
	w := startWorld(t)
	nc := natstest.Start(t, 3)
	nodes := []*authorize.Pipeline{w.clusterNode(t, nc, 0, "node-a"), w.clusterNode(t, nc, 1, "node-b")}
	const counters, offers = 24, 4 // offers per counter, alternating nodes
	var mu sync.Mutex
	rcs := map[int][]string{}
	var wg sync.WaitGroup
	for c := range counters {
		first := w.purchase()
		msgs := []*moov.Message{first}
		for range offers - 1 {
			msgs = append(msgs, w.replay(t, first))
		}
		for i, m := range msgs {
			p := nodes[i%2]
			wg.Go(func() {
				rc := w.handle(t, p, m)
				mu.Lock()
				rcs[c] = append(rcs[c], rc)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	for c, got := range rcs {
		approved := 0
		for _, rc := range got {
			switch rc {
			case iso8583.RCApproved:
				approved++
			case iso8583.RCSuspectedFraud:
			default:
				t.Errorf("counter #%d: rc %s among %v", c, rc, got)
			}
		}
		if approved != 1 {
			t.Errorf("counter #%d approved %d times: %v", c, approved, got)
		}
	}
}

// approveWithin taps fresh counters on p until one is approved, within
// wait: while the bucket's stream elects a leader the answer may be 91,
// never anything else.
func (w world) approveWithin(t *testing.T, p *authorize.Pipeline, wait time.Duration) *moov.Message {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		m := w.purchase()
		switch rc := w.handle(t, p, m); rc {
		case iso8583.RCApproved:
			return m
		case iso8583.RCIssuerUnavailable:
			if time.Now().After(deadline) {
				t.Fatalf("still 91 after %v", wait)
			}
		default:
			t.Fatalf("rc %s, want 00 (or 91 during an election)", rc)
		}
	}
}

// TestQuorum: with one NATS server of three killed the nodes still accept
// counters and refuse replays; with two killed (no quorum) both nodes
// answer 91 to fresh taps, never an approval on the window they hold; with
// one back, approvals resume and the earlier counters are still spent.
func TestQuorum(t *testing.T) {
	w := startWorld(t)
	nc := natstest.Start(t, 3)
	a, b := w.clusterNode(t, nc, 0, "node-a"), w.clusterNode(t, nc, 1, "node-b")
	before := w.approveWithin(t, a, 0)

	nc.Kill(2)
	onA := w.approveWithin(t, a, 15*time.Second)
	if rc := w.handle(t, b, w.replay(t, onA)); rc != iso8583.RCSuspectedFraud {
		t.Fatalf("one server down: replay on B rc %s, want 59", rc)
	}
	w.approveWithin(t, b, 15*time.Second)

	nc.Kill(1) // B's server: B reconnects to server 0, which has no quorum
	unavailable := counterValue(t, w, "tapswitch_counters_unavailable_total")
	for _, p := range []*authorize.Pipeline{a, b, a, b} {
		if rc := w.handle(t, p, w.purchase()); rc != iso8583.RCIssuerUnavailable {
			t.Fatalf("no quorum: rc %s, want 91", rc)
		}
	}
	// The nodes say why in their metrics (both share the dev node's set).
	if got := counterValue(t, w, "tapswitch_counters_unavailable_total") - unavailable; got != 4 {
		t.Errorf("no quorum: tapswitch_counters_unavailable_total rose by %v, want 4", got)
	}

	nc.Restart(1)
	w.approveWithin(t, b, 30*time.Second)
	for _, m := range []*moov.Message{before, onA} {
		if rc := w.handle(t, a, w.replay(t, m)); rc != iso8583.RCSuspectedFraud {
			t.Fatalf("quorum back: replay rc %s, want 59", rc)
		}
	}
}

// BenchmarkCAS is one compare-and-swap of a token's window (KV Update with
// the revision last written) on a three-server embedded cluster, bucket
// replicas 3, over loopback: the cost a cluster node adds to a tap whose
// window it has cached.
func BenchmarkCAS(b *testing.B) {
	nc := natstest.Start(b, 3)
	js, err := jetstream.New(nc.Connect(0))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "bench", History: 1,
		Replicas: 3, Storage: jetstream.FileStorage})
	if err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 5+128)
	rev, err := kv.Create(ctx, "6299901234567893", value)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if rev, err = kv.Update(ctx, "6299901234567893", value, rev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthorizeCluster is daemon's BenchmarkAuthorize (the hot path,
// issuer round trip over loopback TCP, synchronous journal append) on a
// node whose counter windows are the journal's ("journal", the single
// node) and on a cluster node ("cluster": the window in a bucket of
// replicas 3 on three embedded NATS servers, one swap per tap), and on a
// cluster node that also claims each request's duplicate key and records
// its answer ("cluster+duplicates": two writes more), side by side on one
// world. Every tap is of the one demo card, so a cluster
// node's taps of it take turns across the swap: its ns/op is bounded below
// by one swap per tap.
func BenchmarkAuthorizeCluster(b *testing.B) {
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
				term.TerminalID = fmt.Sprintf("B%07d", n/999999) // as daemon's uniqueTap
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
	b.Run("journal", func(b *testing.B) {
		j, err := journal.Open(b.TempDir(), journal.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer j.Close()
		deps := w.d.Node.Pipeline.Deps()
		deps.Journal, deps.NodeID, deps.AdviceQueued = j, "node-single", nil
		run(b, authorize.New(deps))
	})
	b.Run("cluster", func(b *testing.B) { run(b, w.clusterNode(b, nc, 0, "node-a")) })
	b.Run("cluster+duplicates", func(b *testing.B) {
		run(b, w.sharedNode(b, nc, 0, "node-s").p)
		b.StopTimer()
		reportBytesPerKey(b, nc, "KV_duplicates")
	})
}

// reportBytesPerKey reports the bytes a bucket's stream stores per key
// (history 1: one message per key), replicas counted once.
func reportBytesPerKey(b *testing.B, nc *natstest.Cluster, stream string) {
	js, err := jetstream.New(nc.Connect(0))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		b.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if info.State.Msgs > 0 {
		b.ReportMetric(float64(info.State.Bytes)/float64(info.State.Msgs), "B/key")
	}
}

// counterValue reads a counter of the dev node's metrics.
func counterValue(t *testing.T, w world, name string) float64 {
	t.Helper()
	families, err := w.d.Node.Metrics().Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no counter %s", name)
	return 0
}
