package issuersim

import (
	"math"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/bench/world"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/issuers"
)

func TestServerPurchaseRefundBalanceReversalEcho(t *testing.T) {
	s, addr := startIssuer(t, Faults{})
	c := dial(t, addr)
	check := func(m msgSpec, mti, rc string) map[int]string {
		t.Helper()
		resp := c.call(m)
		got := map[int]string{}
		for _, id := range []int{2, 3, 4, 7, 11, 37, 38, 39, 41, 49, 54, 70, 90} {
			if resp.GetField(id) != nil {
				got[id] = get(t, resp, id)
			}
		}
		gotMTI, _ := resp.GetMTI()
		if gotMTI != mti || got[39] != rc {
			t.Fatalf("%s STAN %d: got %s rc %s, want %s rc %s", m.mti, m.stan, gotMTI, got[39], mti, rc)
		}
		return got
	}

	purchase := msgSpec{mti: "0200", pc: "000000", pan: panDebit, expiry: "2812", amount: 30_00, stan: 1}
	got := check(purchase, "0210", "00")
	want := map[int]string{2: panDebit, 3: "000000", 4: "000000003000", 7: "0315100000", 11: "000001",
		37: "000000000001", 39: "00", 41: "TERM0001", 49: "156"}
	for id, v := range want {
		if got[id] != v {
			t.Fatalf("DE%d = %q, want %q", id, got[id], v)
		}
	}
	if len(got[38]) != 6 {
		t.Fatalf("DE38 %q", got[38])
	}
	wantAcct(t, s, panDebit, 70_00, 30_00)

	// The issuer saw the real PAN, its expiry and the token data.
	rec := s.Received()
	if len(rec) != 1 || rec[0].PAN.Clear() != panDebit || rec[0].Expiry != "2812" || rec[0].TokenData != testToken || rec[0].STAN != "000001" {
		t.Fatalf("received %+v", rec)
	}

	if got := check(msgSpec{mti: "0200", pc: "000000", pan: panDebit, expiry: "2812", amount: 70_01, stan: 2}, "0210", "51"); got[38] != "" {
		t.Fatalf("decline carries DE38 %q", got[38])
	}
	check(msgSpec{mti: "0100", pc: "000000", pan: panCredit, expiry: "2812", amount: 100_00, stan: 3}, "0110", "00")
	check(msgSpec{mti: "0200", pc: "200000", pan: panDebit, expiry: "2812", amount: 5_00, stan: 4}, "0210", "00")
	wantAcct(t, s, panDebit, 75_00, 30_00)
	if got := check(msgSpec{mti: "0200", pc: "310000", pan: panDebit, expiry: "2812", stan: 5}, "0210", "00"); got[54] != "1002156C000000007500" {
		t.Fatalf("DE54 %q", got[54])
	}
	check(msgSpec{mti: "0200", pc: "000000", pan: panUnknown, expiry: "2812", amount: 1, stan: 6}, "0210", "14")

	// Reverse the purchase, twice; then a reversal of nothing.
	rev := msgSpec{mti: "0400", pc: "000000", pan: panDebit, amount: 30_00, stan: 7, txTime: "0315100500", original: dataOf(purchase)}
	if got := check(rev, "0410", "00"); got[90] != dataOf(purchase) {
		t.Fatalf("DE90 echo %q", got[90])
	}
	wantAcct(t, s, panDebit, 105_00, 0)
	rev.mti, rev.stan = "0420", 8
	check(rev, "0430", "00")
	wantAcct(t, s, panDebit, 105_00, 0)
	check(msgSpec{mti: "0400", pc: "000000", pan: panDebit, amount: 1, stan: 9,
		original: dataOf(msgSpec{mti: "0200", stan: 999})}, "0410", "25")

	if got := check(msgSpec{mti: "0800", stan: 10, netCode: "301"}, "0810", "00"); got[70] != "301" || got[11] != "000010" || got[7] != "0315100000" {
		t.Fatalf("0810 %v", got)
	}

	ledger := s.Ledger()
	if len(ledger) != 3 {
		t.Fatalf("ledger has %d entries: %+v", len(ledger), ledger)
	}
	if e := ledger[0]; e.PAN.Clear() != panDebit || e.MTI != "0200" || e.STAN != "000001" || e.Amount != 30_00 ||
		!e.Reversed || e.ResponseCode != "00" || e.RRN != "000000000001" || e.TerminalID != "TERM0001" || !e.Time.Equal(testNow) {
		t.Fatalf("purchase entry %+v", e)
	}
	if ledger[1].Reversed || ledger[2].ProcessingCode != "200000" {
		t.Fatalf("ledger %+v", ledger)
	}
}

func wantAcct(t *testing.T, s *Issuer, pan string, available, held iso8583.Amount) {
	t.Helper()
	a, ok := s.Account(pan)
	if !ok || a.Available != available || a.Held != held {
		t.Fatalf("account %s: %+v, want available %v held %v", pan, a, available, held)
	}
}

func TestServerFormatError(t *testing.T) {
	_, addr := startIssuer(t, Faults{})
	c := dial(t, addr)
	msg := build(t, msgSpec{mti: "0200", pc: "000000", pan: panDebit, expiry: "2812", amount: 1, stan: 1})
	msg.UnsetField(iso8583.FieldExpiry)
	c.send(msg)
	resp, err := c.recv(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if mti, _ := resp.GetMTI(); mti != "0210" || get(t, resp, 39) != "30" || get(t, resp, 11) != "000001" || resp.GetField(38) != nil {
		t.Fatalf("%s rc %s", mti, get(t, resp, 39))
	}
	// Not a request: dropped, the connection lives on.
	resp0110 := build(t, msgSpec{mti: "0110", pc: "000000", pan: panDebit, expiry: "2812", amount: 1, stan: 2})
	c.send(resp0110)
	c.call(msgSpec{mti: "0800", stan: 3, netCode: "301"})
}

// Many requests in flight on one connection come back in timer order, each
// matched by its STAN.
func TestServerPipelinedOutOfOrder(t *testing.T) {
	s, addr := startIssuer(t, Faults{Latency: 5 * time.Millisecond, Jitter: 50 * time.Millisecond})
	c := dial(t, addr)
	const n = 100
	for i := 1; i <= n; i++ {
		c.send(build(t, msgSpec{mti: "0200", pc: "000000", pan: panCredit, expiry: "2812", amount: 1_00, stan: i}))
	}
	var order []string
	for range n {
		resp, err := c.recv(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if get(t, resp, 39) != "00" || get(t, resp, 4) != "000000000100" {
			t.Fatalf("STAN %s: rc %s", get(t, resp, 11), get(t, resp, 39))
		}
		order = append(order, get(t, resp, 11))
	}
	sorted := slices.Clone(order)
	slices.Sort(sorted)
	if slices.Equal(order, sorted) {
		t.Fatal("responses came back in request order despite jitter")
	}
	if len(slices.Compact(sorted)) != n {
		t.Fatalf("not every STAN answered once: %v", order)
	}
	wantAcct(t, s, panCredit, 400_00, 100_00)
}

// A dropped approval was still decided and posted: the issuer approved and
// the switch never heard.
func TestServerDropRate(t *testing.T) {
	s, addr := startIssuer(t, Faults{DropRate: 1})
	c := dial(t, addr)
	c.send(build(t, msgSpec{mti: "0200", pc: "000000", pan: panDebit, expiry: "2812", amount: 1_00, stan: 1}))
	c.send(build(t, msgSpec{mti: "0800", stan: 2, netCode: "301"}))
	if resp, err := c.recv(300 * time.Millisecond); err == nil {
		t.Fatalf("got an answer: %s", get(t, resp, 39))
	}
	if l := s.Ledger(); len(l) != 1 || l[0].STAN != "000001" || l[0].Reversed || len(s.Received()) != 2 {
		t.Fatalf("ledger %v received %v", l, s.Received())
	}
	wantAcct(t, s, panDebit, 99_00, 1_00)
	if tr := s.Snapshot().Traffic; tr.Dropped != 2 || tr.Answered != 0 || tr.Requests != 2 {
		t.Fatalf("traffic %+v", tr)
	}
}

func TestServerErrorRate(t *testing.T) {
	s, addr := startIssuer(t, Faults{ErrorRate: 1})
	c := dial(t, addr)
	if rc := get(t, c.call(msgSpec{mti: "0200", pc: "000000", pan: panDebit, expiry: "2812", amount: 1_00, stan: 1}), 39); rc != "96" {
		t.Fatalf("rc %s", rc)
	}
	if len(s.Ledger()) != 0 {
		t.Fatal("an errored request was posted")
	}
}

func TestServerGarbageFrameClosesOnlyItsConnection(t *testing.T) {
	_, addr := startIssuer(t, Faults{})
	bad, good := dial(t, addr), dial(t, addr)
	good.call(msgSpec{mti: "0800", stan: 1, netCode: "301"})
	if err := iso8583.WriteFrame(bad.nc, []byte("this is not an ISO 8583 message")); err != nil {
		t.Fatal(err)
	}
	if _, err := bad.recv(5 * time.Second); !isClosed(err) {
		t.Fatalf("garbage frame: read %v, want the connection closed", err)
	}
	good.call(msgSpec{mti: "0200", pc: "000000", pan: panDebit, expiry: "2812", amount: 1, stan: 2})
	// An oversized length header also ends the connection.
	other := dial(t, addr)
	other.nc.Write([]byte{0xff, 0xff})
	if _, err := other.recv(5 * time.Second); !isClosed(err) {
		t.Fatalf("oversized frame: read %v", err)
	}
	good.call(msgSpec{mti: "0800", stan: 3, netCode: "301"})
}

func TestServerConnectionBound(t *testing.T) {
	_, addr := startIssuer(t, Faults{})
	clients := make([]*client, connsMax)
	for i := range clients {
		clients[i] = dial(t, addr)
		clients[i].call(msgSpec{mti: "0800", stan: i, netCode: "301"})
	}
	extra := dial(t, addr)
	if _, err := extra.recv(5 * time.Second); !isClosed(err) {
		t.Fatalf("connection over the bound: read %v", err)
	}
	clients[0].nc.Close()
	// The freed slot is taken again once the server has seen the close.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := dial(t, addr)
		c.send(build(t, msgSpec{mti: "0800", stan: 1, netCode: "301"}))
		if _, err := c.recv(time.Second); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("freed connection slot never reused")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Close returns promptly with requests still waiting out a long latency.
func TestCloseWithRequestsInFlight(t *testing.T) {
	s, addr := startIssuer(t, Faults{Latency: 30 * time.Second})
	c := dial(t, addr)
	for i := range 10 {
		c.send(build(t, msgSpec{mti: "0800", stan: i, netCode: "301"}))
	}
	for len(s.Received()) < 10 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	s.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if _, err := c.recv(5 * time.Second); !isClosed(err) {
		t.Fatalf("after Close: read %v", err)
	}
	if err := s.Serve(mustListen(t)); err != ErrClosed {
		t.Fatalf("Serve after Close: %v", err)
	}
}

func mustListen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestConcurrentConnections(t *testing.T) {
	s, addr := startIssuer(t, Faults{Jitter: 2 * time.Millisecond})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			c := dial(t, addr)
			for i := range 25 {
				stan := w*100 + i
				if rc := get(t, c.call(msgSpec{mti: "0100", pc: "000000", pan: panCredit, expiry: "2812", amount: 1_00, stan: stan}), 39); rc != "00" {
					t.Errorf("STAN %d: rc %s", stan, rc)
				}
			}
		})
	}
	wg.Wait()
	wantAcct(t, s, panCredit, 300_00, 200_00)
	if len(s.Ledger()) != 200 {
		t.Fatalf("ledger has %d entries", len(s.Ledger()))
	}
}

func TestFaultsValidate(t *testing.T) {
	for _, f := range []Faults{{DropRate: -0.1}, {ErrorRate: 1.5}, {DropRate: 0.6, ErrorRate: 0.6},
		{Latency: -1}, {Jitter: 2 * time.Minute}, {GarbageRate: math.NaN()},
		{DisconnectRate: 0.5, DuplicateRate: 0.3, LateRate: 0.3, LateBy: time.Second},
		{LateRate: 0.1}, {LateBy: -time.Second}, {LateRate: 0.1, LateBy: 2 * time.Minute}} {
		if _, err := New(Config{Issuer: issuers.Issuer{ID: "X"}, Faults: f}); err == nil {
			t.Errorf("%+v accepted", f)
		}
	}
	ok := Faults{DropRate: 0.1, ErrorRate: 0.2, DisconnectRate: 0.1, DuplicateRate: 0.2, GarbageRate: 0.1,
		LateRate: 0.3, LateBy: 3 * time.Second, Latency: time.Second, Jitter: time.Second}
	if err := ok.Validate(); err != nil {
		t.Errorf("%+v refused: %v", ok, err)
	}
}

func TestFleet(t *testing.T) {
	f, byLabel := startICBCAndSPTC(t)
	if f.Addr("ICBC") == "" || f.Addr("ICBC") == f.Addr("SPTC") || f.Issuer("CMB") != nil || f.Addr("CMB") != "" {
		t.Fatalf("addresses %v", f.addrs)
	}
	approve, transit := byLabel[world.DemoApprove], byLabel[world.DemoTransit]
	c := dial(t, f.Addr("ICBC"))
	if rc := get(t, c.call(msgSpec{mti: "0200", pc: "000000", pan: approve.PAN.Clear(), expiry: approve.Expiry, amount: 88_00, stan: 1}), 39); rc != "00" {
		t.Fatalf("demo approve at ICBC: rc %s", rc)
	}
	if rc := get(t, c.call(msgSpec{mti: "0200", pc: "000000", pan: transit.PAN.Clear(), expiry: transit.Expiry, amount: 1_00, stan: 2}), 39); rc != "14" {
		t.Fatalf("transit card at ICBC: rc %s", rc)
	}
	c = dial(t, f.Addr("SPTC"))
	if rc := get(t, c.call(msgSpec{mti: "0200", pc: "000000", pan: transit.PAN.Clear(), expiry: transit.Expiry, amount: 200_01, stan: 3}), 39); rc != "51" {
		t.Fatalf("demo transit above stored value: rc %s", rc)
	}
	if n := f.Issuer("ICBC").Cards(); n != 21 {
		t.Fatalf("ICBC holds %d cards, want 2 BINs x 10 + 1 demo", n)
	}
}
