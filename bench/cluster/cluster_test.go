package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/bench/pos"
	"github.com/tapswitch/tapswitch/bench/proctest"
	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/acquirer"
)

// TestThreeNodesBehindHAProxy starts the whole cluster as real processes
// on loopback and checks issue 14's guarantees end to end, one subtest
// each, through its faults: a node SIGKILLed under load, a NATS server
// SIGKILLed (the other nodes move to another server; node 2, which knows
// only that one, is cut off: adopted, and stopped when it is back) and
// HAProxy moving terminals off both nodes mid-stream.
func TestThreeNodesBehindHAProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a whole cluster of real processes")
	}
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("haproxy is not installed: .ci/run installs it (apt-get install haproxy); CI must run this test")
		}
		t.Skip("haproxy is not installed (apt-get install haproxy): the three-node test needs it")
	}
	w := startWorld(t, haproxy)
	keys := proctest.DevKeys(t, w.nodes[0].data)
	phone := newPhone(t, w.wallet, keys)

	t.Run("replay on another node is 59", func(t *testing.T) {
		tap := phone.tap()
		if rc := phone.send(t, w.nodes[0].listen, tap); rc != iso8583.RCApproved {
			t.Fatalf("tap on node-1: rc %s, want 00", rc)
		}
		for _, n := range w.nodes[1:] {
			if rc := phone.send(t, n.listen, phone.replay(tap)); rc != iso8583.RCSuspectedFraud {
				t.Fatalf("the same cryptogram on %s: rc %s, want 59", n.id, rc)
			}
		}
	})

	t.Run("retransmission across nodes answered once", func(t *testing.T) {
		// The terminal lost node-1's answer and sends the very same
		// message (terminal, STAN, DE7, cryptogram) again after a
		// reconnect that lands on another node: it gets node-1's answer,
		// auth code included, and the issuer is asked once (the issuer
		// hold check after the bench counts this tap's postings too).
		tap := phone.tap()
		first, auth := phone.exchange(t, w.nodes[0].listen, tap)
		if first != iso8583.RCApproved {
			t.Fatalf("tap on node-1: rc %s, want 00", first)
		}
		for _, n := range w.nodes[1:] {
			if rc, again := phone.exchange(t, n.listen, tap); rc != first || again != auth {
				t.Fatalf("retransmission on %s: rc %s auth %q, want node-1's %s %q", n.id, rc, again, first, auth)
			}
		}
		other := tap
		other.Amount++
		if rc, _ := phone.exchange(t, w.nodes[1].listen, other); rc != iso8583.RCDuplicate {
			t.Fatalf("the same key with another amount on node-2: rc %s, want 94", rc)
		}
	})

	t.Run("bound on one node taps everywhere, turned off on one node is 62 everywhere within 1s", func(t *testing.T) {
		bound := w.bindOnNode(t, w.nodes[0], keys)
		for _, n := range w.nodes[1:] {
			within(t, time.Second, n.id+" approves the card bound on node-1", func() bool {
				return bound.send(t, n.listen, bound.tap()) == iso8583.RCApproved
			})
		}
		w.turnOff(t, w.nodes[0], bound.wallet)
		for _, n := range w.nodes[1:] {
			within(t, time.Second, n.id+" declines 62 the card of the phone turned off on node-1", func() bool {
				return bound.send(t, n.listen, bound.tap()) == iso8583.RCRestrictedCard
			})
		}
	})

	var run loadRun
	var lostNATS *natsServer
	t.Run("bench through HAProxy with a node SIGKILLed", func(t *testing.T) {
		run, lostNATS = w.benchWithKill(t, phone, w.nodes[2])
		t.Logf("bench: %d requests, %d answered, codes %v; probes: %d approved, %d replays (%v)",
			run.report.Requests, run.report.Answered, run.report.Codes, run.probes.approved.Load(),
			run.probes.replays.Load(), run.probes.replayCodes())
		if run.report.Codes[iso8583.RCApproved] == 0 {
			t.Fatal("bench got no approval: the run proves nothing")
		}
	})

	t.Run("the node cut off is adopted, and stops when it is back", func(t *testing.T) {
		// Its NATS server down, the partitioned node has no quorum: it
		// answers 91 and /readyz 503, so HAProxy moved its terminals.
		// Its heartbeat expires and a survivor adopts it: the reversals
		// of the taps it had at the issuers are sent.
		cut := w.nodes[partitioned]
		adopter, sent := w.awaitAdoption(t, cut)
		t.Logf("%s adopted %s, alive but cut off: its journal rebuilt from the stream owes nothing (%s)", adopter.id, cut.id, sent)
		// Its server back, the node sees the adoption at its next
		// heartbeat and stops rather than write its journal beside the
		// adopter; started again, it takes the journal back.
		lostNATS.start(t)
		lostNATS.awaitHealthy(t)
		w.awaitExit(t, cut)
		w.startNode(cut)
	})

	t.Run("the killed node's reversals finished by a survivor", func(t *testing.T) {
		// Node 3 stays down: its heartbeat expires, one survivor adopts it,
		// rebuilds its journal from the journal stream and sends every
		// reversal and advice it had armed or due (docs/cluster.md).
		adopter, sent := w.awaitAdoption(t, w.nodes[2])
		t.Logf("%s adopted %s: its journal rebuilt from the stream owes nothing (%s)", adopter.id, w.nodes[2].id, sent)
		// Back on its data, node 3 applies from its stream what its
		// adopter wrote (the advices' completions) and seals its own day
		// for settle; it sends nothing again (the issuer holds below).
		w.startNode(w.nodes[2])
		for _, n := range w.nodes {
			waitAdvicesDrained(t, n)
		}
	})

	var day string
	t.Run("settle across the three journals reconciles with the issuers", func(t *testing.T) {
		day = w.settleAndReconcile(t)
	})

	t.Run("every approval journaled once, every issuer hold matched", func(t *testing.T) {
		for _, n := range w.nodes {
			w.stopNode(n)
		}
		approvals := readJournals(t, w.nodes)
		if got, answered := int64(approvals.purchases), run.report.Codes[iso8583.RCApproved]; got < answered {
			t.Fatalf("the journals hold %d approved purchases, bench alone was answered 00 %d times", got, answered)
		}
		for _, issuer := range approvals.issuers() {
			compareWithIssuer(t, approvals, w.stopIssuers(), issuer)
		}
		t.Logf("day %s: %d approved purchases journaled, by node %v", day, approvals.purchases, approvals.byNode)
		for _, n := range w.nodes {
			if approvals.byNode[n.id] == 0 {
				t.Errorf("%s journaled no approval: HAProxy did not spread the load, the run proves less", n.id)
			}
		}
	})

	t.Run("no cryptogram accepted twice", func(t *testing.T) {
		if n := run.probes.replaysApproved.Load(); n > 0 {
			t.Fatalf("%d replayed cryptograms approved during the run", n)
		}
		if run.probes.replays.Load() < 5 {
			t.Fatalf("only %d replays were tried: the check proves little", run.probes.replays.Load())
		}
	})

}

// phone taps the demo "transit" card, which bench does not use, so its
// counters are the phone's alone.
type phone struct {
	card   wallet.Card
	key    []byte
	keys   acquirer.Keys
	atc    atomic.Uint32
	stan   atomic.Uint32
	prefix string
	wallet string // the wallet file the card is in
}

func newPhone(t *testing.T, walletPath string, keys acquirer.Keys) *phone {
	return phoneOf(t, walletPath, "transit", keys)
}

// phoneOf taps the card of the wallet's label.
func phoneOf(t *testing.T, walletPath, label string, keys acquirer.Keys) *phone {
	w, err := wallet.Load(walletPath)
	if err != nil {
		t.Fatal(err)
	}
	card, err := w.Card(label)
	if err != nil {
		t.Fatal(err)
	}
	key, err := card.TokenKey()
	if err != nil || key == nil {
		t.Fatalf("%s card's key: %v", label, err)
	}
	p := &phone{card: card, key: key, keys: keys, wallet: walletPath}
	p.atc.Store(card.ATC)
	return p
}

// tap is the phone's next purchase of 1.00 at the demo terminal.
func (p *phone) tap() pos.Tap {
	stan := p.stan.Add(1)
	return pos.Tap{Terminal: pos.DemoTerminal, ProcessingCode: iso8583.ProcPurchase, Token: p.card.Token,
		TokenExpiry: p.card.TokenExpiry, Amount: 1_00, STAN: fmt.Sprintf("%06d", stan), Time: time.Now(),
		Key: p.key, ATC: p.atc.Add(1), Unpredictable: [4]byte{byte(stan >> 16), byte(stan >> 8), byte(stan), 0x5a}}
}

// replay is the same cryptogram (key, counter, unpredictable number,
// amount, terminal) under a new STAN: what a replay attacker sends.
func (p *phone) replay(tap pos.Tap) pos.Tap {
	tap.STAN = fmt.Sprintf("%06d", p.stan.Add(1))
	return tap
}

// send taps on a new connection to addr and returns DE39 ("" with t.Fatal
// on a connection error).
func (p *phone) send(t *testing.T, addr string, tap pos.Tap) string {
	t.Helper()
	rc, err := p.try(addr, tap)
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

func (p *phone) try(addr string, tap pos.Tap) (string, error) {
	rc, _, err := p.do(addr, tap)
	return rc, err
}

// exchange is send that also returns the approval code (DE38).
func (p *phone) exchange(t *testing.T, addr string, tap pos.Tap) (rc, authCode string) {
	t.Helper()
	rc, authCode, err := p.do(addr, tap)
	if err != nil {
		t.Fatal(err)
	}
	return rc, authCode
}

func (p *phone) do(addr string, tap pos.Tap) (rc, authCode string, err error) {
	c, err := pos.Dial(addr, 2*time.Second, p.keys)
	if err != nil {
		return "", "", err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Do(ctx, tap.Message())
	if err != nil {
		return "", "", err
	}
	return iso8583.FieldValue(resp, iso8583.FieldResponseCode), iso8583.FieldValue(resp, iso8583.FieldAuthCode), nil
}

// probes counts the phone's taps and replays through HAProxy during the
// bench run.
type probes struct {
	approved, replays, replaysApproved atomic.Int64
	mu                                 sync.Mutex
	codes                              map[string]int
}

func (pr *probes) replayCodes() map[string]int {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.codes
}

// probe taps through HAProxy and replays every approved tap on a new
// connection (HAProxy may send it to any node) until stop is closed.
func (p *phone) probe(addr string, stop <-chan struct{}) *probes {
	pr := &probes{codes: map[string]int{}}
	for {
		select {
		case <-stop:
			return pr
		case <-time.After(20 * time.Millisecond):
		}
		tap := p.tap()
		if rc, err := p.try(addr, tap); err != nil || rc != iso8583.RCApproved {
			continue
		}
		pr.approved.Add(1)
		rc, err := p.try(addr, p.replay(tap))
		if err != nil {
			rc = "connection lost"
		}
		pr.replays.Add(1)
		if rc == iso8583.RCApproved {
			pr.replaysApproved.Add(1)
		}
		pr.mu.Lock()
		pr.codes[rc]++
		pr.mu.Unlock()
	}
}

// benchReport is the part of bench's JSON report the test reads.
type benchReport struct {
	Requests int64            `json:"requests"`
	Answered int64            `json:"answered"`
	Errors   int64            `json:"errors"`
	Codes    map[string]int64 `json:"codes"`
}

type loadRun struct {
	report benchReport
	probes *probes
}

// benchDuration bounds the run: a few seconds of closed-loop load.
const benchDuration = 6 * time.Second

// benchWithKill runs bench through HAProxy (purchases and declines, no
// warm-up, so its report counts every answer) with the phone probing
// replays beside it, SIGKILLs victim a third of the way in and, two thirds
// of the way in, the NATS server the partitioned node reaches the cluster
// through: the other nodes lose a server, that node the quorum. The
// server stays down: it returns the lost NATS server.
func (w *world) benchWithKill(t *testing.T, p *phone, victim *node) (loadRun, *natsServer) {
	cmd := exec.Command(w.bin.bench, "-switch", w.haproxy, "-wallet", w.wallet, "-duration", benchDuration.String(),
		"-warmup", "0s", "-connections", "12", "-concurrency", "24", "-mix", "purchase=90,decline=10",
		"-json", "-quiet", "-out", "")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	probed := make(chan *probes, 1)
	go func() { probed <- p.probe(w.haproxy, stop) }()
	time.Sleep(benchDuration / 3)
	victim.proc.Process.Signal(syscall.SIGKILL)
	victim.proc.Wait()
	// A NATS server dies too: the streams and buckets it led elect new
	// leaders on the two left, which are still a quorum, and the node
	// that knows only this server is cut off.
	time.Sleep(benchDuration / 3)
	lost := w.natsd[partitioned]
	lost.proc.Process.Signal(syscall.SIGKILL)
	lost.proc.Wait()
	err := cmd.Wait() // exit 1 expected: the killed node's connections end in errors
	close(stop)
	run := loadRun{probes: <-probed}
	if jerr := json.Unmarshal([]byte(out.String()), &run.report); jerr != nil {
		t.Fatalf("bench (%v) printed no JSON report: %v\n%s", err, jerr, out.String())
	}
	return run, lost
}
