package link_test

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	moov "github.com/moov-io/iso8583"

	"github.com/tapswitch/tapswitch/bench/issuersim"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/link"
)

// A link signs on to a real issuer and carries a token purchase to it: the
// issuer approves, and the answer is matched by the STAN the link chose.
func TestExchangePurchaseApproved(t *testing.T) {
	ln := listen(t, "127.0.0.1:0")
	sim := startSim(t, ln, issuersim.Faults{})
	l := startLink(t, testConfig(ln.Addr().String()))
	waitUp(t, l, true)

	req := purchase(t, panDebit, 30_00)
	resp, err := l.Exchange(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	stan := field(req, iso8583.FieldSTAN)
	if len(stan) != 6 || stan == "000000" {
		t.Fatalf("the link set DE11 %q on the request", stan)
	}
	if mti(resp) != iso8583.MTIFinancialResponse || field(resp, iso8583.FieldResponseCode) != iso8583.RCApproved ||
		field(resp, iso8583.FieldSTAN) != stan || field(resp, iso8583.FieldAmount) != "000000003000" {
		t.Fatalf("response %s rc %s DE11 %s DE4 %s, want 0210 rc 00 DE11 %s DE4 000000003000", mti(resp),
			field(resp, iso8583.FieldResponseCode), field(resp, iso8583.FieldSTAN), field(resp, iso8583.FieldAmount), stan)
	}
	// The issuer got the sign-on first, then the purchase with the clear PAN,
	// the token data and the link's STAN, and held the amount.
	got := sim.Received()
	if len(got) != 2 || got[0].MTI != iso8583.MTINetworkMgmtRequest || got[1].MTI != iso8583.MTIFinancialRequest {
		t.Fatalf("issuer received %+v, want a sign-on then one purchase", got)
	}
	if p := got[1]; p.PAN.Clear() != panDebit || p.TokenData != testToken || p.STAN != stan {
		t.Fatalf("issuer received %+v", p)
	}
	if a, _ := sim.Account(panDebit); a.Held != 30_00 {
		t.Fatalf("issuer holds %v on the card, want 30.00", a.Held)
	}
}

// Many requests share two connections and come back out of order; each gets
// its own answer.
func TestExchangeConcurrentMatchedBySTAN(t *testing.T) {
	const n = 100
	ln := &countingListener{Listener: listen(t, "127.0.0.1:0")}
	sim := startSim(t, ln, issuersim.Faults{Latency: time.Millisecond, Jitter: 20 * time.Millisecond})
	cfg := testConfig(ln.Addr().String())
	cfg.Connections, cfg.InflightMax = 2, n
	l := startLink(t, cfg)
	waitBothConnectionsCarry(t, l, ln)

	before := readBytes(ln.accepted())
	type outcome struct {
		req, resp *moov.Message
		err       error
	}
	var (
		mu       sync.Mutex
		outcomes []outcome // in order of completion
		wg       sync.WaitGroup
	)
	for i := range n {
		req := purchase(t, panCredit, iso8583.Amount(10_000+i))
		wg.Go(func() {
			resp, err := l.Exchange(t.Context(), req)
			mu.Lock()
			outcomes = append(outcomes, outcome{req: req, resp: resp, err: err})
			mu.Unlock()
		})
	}
	wg.Wait()

	stans := make(map[string]bool)
	for _, o := range outcomes {
		if o.err != nil {
			t.Fatalf("amount %s: %v", field(o.req, iso8583.FieldAmount), o.err)
		}
		stan := field(o.req, iso8583.FieldSTAN)
		for _, id := range []int{iso8583.FieldSTAN, iso8583.FieldAmount, iso8583.FieldRRN} {
			if field(o.resp, id) != field(o.req, id) {
				t.Fatalf("STAN %s: response DE%d %q, request had %q", stan, id, field(o.resp, id), field(o.req, id))
			}
		}
		if rc := field(o.resp, iso8583.FieldResponseCode); rc != iso8583.RCApproved {
			t.Fatalf("STAN %s: rc %s", stan, rc)
		}
		stans[stan] = true
	}
	if len(stans) != n {
		t.Fatalf("%d distinct STANs for %d requests", len(stans), n)
	}
	// Preconditions: the answers really came back out of STAN order, and
	// both connections carried a fair share of the requests.
	order := make([]string, 0, n)
	for _, o := range outcomes {
		order = append(order, field(o.req, iso8583.FieldSTAN))
	}
	if slices.IsSorted(order) {
		t.Fatal("answers completed in STAN order despite jitter: the test proved nothing")
	}
	perRequest := frameBytes(t, outcomes[0].req)
	for i, c := range ln.accepted() {
		if carried := c.read.Load() - before[i]; carried < n/4*perRequest {
			t.Fatalf("connection %d carried %d bytes, less than a quarter of %d requests of %d bytes", i, carried, n, perRequest)
		}
	}
	if a, _ := sim.Account(panCredit); a.Held < n*10_000 {
		t.Fatalf("issuer holds %v, want at least %v", a.Held, iso8583.Amount(n*10_000))
	}
}

// waitBothConnectionsCarry waits until the issuer has answered both sign-ons,
// then sends purchases one at a time until each connection has carried one,
// so both are live before a test loads them.
func waitBothConnectionsCarry(t *testing.T, l *link.Link, ln *countingListener) {
	t.Helper()
	waitFor(t, "two answered sign-ons", func() bool {
		conns := ln.accepted()
		return len(conns) == 2 && conns[0].written.Load() > 0 && conns[1].written.Load() > 0
	})
	signedOn := readBytes(ln.accepted())
	amount := iso8583.Amount(0)
	waitFor(t, "both connections to carry a purchase", func() bool {
		amount++
		if _, err := l.Exchange(t.Context(), purchase(t, panCredit, amount)); err != nil && !errors.Is(err, link.ErrUnavailable) {
			t.Fatalf("warm-up purchase: %v", err)
		}
		now := readBytes(ln.accepted())
		return now[0] > signedOn[0] && now[1] > signedOn[1]
	})
}

func readBytes(conns []*countingConn) []int64 {
	out := make([]int64, len(conns))
	for i, c := range conns {
		out[i] = c.read.Load()
	}
	return out
}

// An issuer that is signed on but drops the request: the caller hears
// ErrTimeout after the request time-out, and the connection stays up.
func TestExchangeTimeout(t *testing.T) {
	stub := startStub(t, answerNetworkOnly)
	cfg := testConfig(stub.addr())
	cfg.RequestTimeout = 300 * time.Millisecond
	l := startLink(t, cfg)
	waitUp(t, l, true)

	req := purchase(t, panDebit, 1_00)
	start := time.Now()
	_, err := l.Exchange(t.Context(), req)
	took := time.Since(start)
	if !errors.Is(err, link.ErrTimeout) {
		t.Fatalf("Exchange: %v, want ErrTimeout", err)
	}
	if took < cfg.RequestTimeout || took > cfg.RequestTimeout+promptMax {
		t.Fatalf("timed out after %v, want about %v", took, cfg.RequestTimeout)
	}
	if e, ok := stub.find(0, iso8583.MTIFinancialRequest); !ok || e.stan != field(req, iso8583.FieldSTAN) {
		t.Fatalf("issuer saw 0200 %v with STAN %q, link set %q", ok, e.stan, field(req, iso8583.FieldSTAN))
	}
	if !l.Up() || stub.count(-1, "accept") != 1 || stub.count(-1, "eof") != 0 {
		t.Fatalf("after a time-out: up %v, %d accepts, %d closes; want the connection kept",
			l.Up(), stub.count(-1, "accept"), stub.count(-1, "eof"))
	}
}

// With no issuer to connect to, Exchange fails at once instead of queueing.
func TestExchangeUnavailableWithoutIssuer(t *testing.T) {
	ln := listen(t, "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	cfg := testConfig(addr)
	l := startLink(t, cfg)
	for range 3 {
		start := time.Now()
		_, err := l.Exchange(t.Context(), purchase(t, panDebit, 1_00))
		if took := time.Since(start); !errors.Is(err, link.ErrUnavailable) || took > cfg.RequestTimeout/10 {
			t.Fatalf("Exchange with nothing listening: %v after %v, want ErrUnavailable well under %v",
				err, took, cfg.RequestTimeout)
		}
	}
	if l.Up() {
		t.Fatal("Up() with nothing listening")
	}
}

// At its in-flight maximum the link refuses a request at once; the refused
// request never reaches the issuer.
func TestExchangeBusyAtInflightMax(t *testing.T) {
	ln := listen(t, "127.0.0.1:0")
	sim := startSim(t, ln, issuersim.Faults{Latency: 300 * time.Millisecond})
	cfg := testConfig(ln.Addr().String())
	cfg.InflightMax = 1
	l := startLink(t, cfg)
	waitUp(t, l, true)

	type outcome struct {
		resp *moov.Message
		err  error
	}
	first := make(chan outcome, 1)
	req := purchase(t, panCredit, 1_00)
	go func() {
		resp, err := l.Exchange(t.Context(), req)
		first <- outcome{resp, err}
	}()
	waitFor(t, "the issuer to hold the first purchase", func() bool { return len(received(sim, iso8583.MTIFinancialRequest)) == 1 })

	start := time.Now()
	_, err := l.Exchange(t.Context(), purchase(t, panCredit, 2_00))
	if took := time.Since(start); !errors.Is(err, link.ErrBusy) || took > promptMax {
		t.Fatalf("second Exchange: %v after %v, want ErrBusy at once", err, took)
	}
	o := await(t, "the first purchase", first)
	if o.err != nil || field(o.resp, iso8583.FieldResponseCode) != iso8583.RCApproved {
		t.Fatalf("first purchase: %v", o.err)
	}
	// Its slot is free again.
	resp, err := l.Exchange(t.Context(), purchase(t, panCredit, 3_00))
	if err != nil || field(resp, iso8583.FieldAmount) != iso8583.Amount(3_00).Field() {
		t.Fatalf("third purchase: %v", err)
	}
	if n := len(received(sim, iso8583.MTIFinancialRequest)); n != 2 {
		t.Fatalf("issuer received %d purchases, want 2 (the busy one never sent)", n)
	}
}

// answerAfterAmount signs on at once and answers a request after 10 µs for
// each minor unit of its amount, so a test picks each request's latency.
func answerAfterAmount(req *moov.Message) (*moov.Message, time.Duration) {
	if mti(req) == iso8583.MTINetworkMgmtRequest {
		return reply(req, iso8583.RCApproved), 0
	}
	amount, err := iso8583.ParseAmountField(field(req, iso8583.FieldAmount))
	if err != nil {
		return reply(req, iso8583.RCFormatError), 0
	}
	return reply(req, iso8583.RCApproved), time.Duration(amount) * 10 * time.Microsecond
}

// lateLog collects what OnLateResponse is given, by STAN.
type lateLog struct {
	mu     sync.Mutex
	byStan map[string]*moov.Message
	calls  int
}

func newLateLog() *lateLog { return &lateLog{byStan: make(map[string]*moov.Message)} }

func (g *lateLog) record(resp *moov.Message) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls++
	g.byStan[field(resp, iso8583.FieldSTAN)] = resp
}

func (g *lateLog) get(stan string) (*moov.Message, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	m, ok := g.byStan[stan]
	return m, ok
}

func (g *lateLog) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls
}

// An answer after the time-out goes to OnLateResponse, not to a later
// request, and the connection carries on.
func TestLateResponse(t *testing.T) {
	stub := startStub(t, answerAfterAmount)
	late := newLateLog()
	cfg := testConfig(stub.addr())
	cfg.RequestTimeout = 200 * time.Millisecond
	l := startLink(t, cfg, func(l *link.Link) { l.OnLateResponse = late.record })
	waitUp(t, l, true)

	slow := purchase(t, panDebit, 40_000) // answered after 400 ms
	if _, err := l.Exchange(t.Context(), slow); !errors.Is(err, link.ErrTimeout) {
		t.Fatalf("slow purchase: %v, want ErrTimeout", err)
	}
	stan := field(slow, iso8583.FieldSTAN)
	waitFor(t, "the late answer", func() bool { _, ok := late.get(stan); return ok })
	if resp, _ := late.get(stan); mti(resp) != iso8583.MTIFinancialResponse || field(resp, iso8583.FieldAmount) != field(slow, iso8583.FieldAmount) {
		t.Fatalf("late answer %s DE4 %s", mti(resp), field(resp, iso8583.FieldAmount))
	}
	fast := purchase(t, panDebit, 1)
	resp, err := l.Exchange(t.Context(), fast)
	if err != nil || field(resp, iso8583.FieldAmount) != field(fast, iso8583.FieldAmount) {
		t.Fatalf("purchase after a late answer: %v", err)
	}
	if late.count() != 1 || stub.count(-1, "accept") != 1 {
		t.Fatalf("%d late answers, %d connections; want 1 and the first connection kept", late.count(), stub.count(-1, "accept"))
	}
}

// Answers arriving right at the time-out each go to exactly one place: their
// request, or OnLateResponse. An answer claimed for its request just as the
// request gave up was once dropped: neither returned nor reported late.
func TestAnswerAtTimeoutNeverLost(t *testing.T) {
	const rounds, perRound = 5, 400
	stub := startStub(t, answerAfterAmount)
	late := newLateLog()
	cfg := testConfig(stub.addr())
	cfg.RequestTimeout, cfg.InflightMax = 20*time.Millisecond, perRound
	l := startLink(t, cfg, func(l *link.Link) { l.OnLateResponse = late.record })
	waitUp(t, l, true)

	timedOut := 0
	for range rounds {
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			returned = make(map[string]bool) // STAN → answered to its request
		)
		for i := range perRound {
			req := purchase(t, panDebit, iso8583.Amount(1_900+i%300)) // answered after 19 to 22 ms
			wg.Go(func() {
				resp, err := l.Exchange(t.Context(), req)
				switch {
				case err == nil && field(resp, iso8583.FieldAmount) != field(req, iso8583.FieldAmount):
					t.Errorf("DE4 %s answered with %s", field(req, iso8583.FieldAmount), field(resp, iso8583.FieldAmount))
				case err != nil && !errors.Is(err, link.ErrTimeout):
					t.Errorf("DE4 %s: %v", field(req, iso8583.FieldAmount), err)
				}
				mu.Lock()
				returned[field(req, iso8583.FieldSTAN)] = err == nil
				mu.Unlock()
			})
		}
		wg.Wait()
		for stan, ok := range returned {
			if !ok {
				timedOut++
				waitFor(t, "late answer to STAN "+stan, func() bool { _, ok := late.get(stan); return ok })
			} else if _, isLate := late.get(stan); isLate {
				t.Fatalf("STAN %s answered to its request and reported late", stan)
			}
		}
	}
	if n := late.count(); n != timedOut {
		t.Fatalf("OnLateResponse called %d times for %d timed-out requests", n, timedOut)
	}
	t.Logf("of %d answers around the time-out, %d came late", rounds*perRound, timedOut)
}

// New refuses a config without a bound, a time or an address.
func TestNewRefusesBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*link.Config)
	}{
		{"no issuer id", func(c *link.Config) { c.IssuerID = "" }},
		{"no address", func(c *link.Config) { c.Address = "" }},
		{"no connections", func(c *link.Config) { c.Connections = 0 }},
		{"too many connections", func(c *link.Config) { c.Connections = 65 }},
		{"no in-flight maximum", func(c *link.Config) { c.InflightMax = 0 }},
		{"negative in-flight maximum", func(c *link.Config) { c.InflightMax = -1 }},
		{"no request time-out", func(c *link.Config) { c.RequestTimeout = 0 }},
		{"negative request time-out", func(c *link.Config) { c.RequestTimeout = -time.Second }},
		{"no echo interval", func(c *link.Config) { c.EchoInterval = 0 }},
		{"no dial time-out", func(c *link.Config) { c.DialTimeout = 0 }},
		{"no backoff", func(c *link.Config) { c.BackoffMin = 0 }},
		{"backoff max below min", func(c *link.Config) { c.BackoffMax = c.BackoffMin / 2 }},
		{"no frame bound", func(c *link.Config) { c.FrameBytesMax = 0 }},
		{"frame bound beyond the 2-byte header", func(c *link.Config) { c.FrameBytesMax = 65536 }},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			cfg := testConfig("127.0.0.1:1")
			tc.change(&cfg)
			if l, err := link.New(cfg); err == nil || l != nil {
				t.Fatalf("New accepted %+v", cfg)
			}
		})
	}
	cfg := testConfig("127.0.0.1:1")
	cfg.Connections, cfg.FrameBytesMax = 64, 65535
	l, err := link.New(cfg)
	if err != nil {
		t.Fatalf("New refused a good config: %v", err)
	}
	if l.Up() || l.IssuerID() != "TST" {
		t.Fatalf("new link: up %v, issuer %q", l.Up(), l.IssuerID())
	}
}

// After BreakerFailures time-outs in a row the link refuses at once with
// ErrCircuitOpen, sending nothing, until the cool-down ends.
func TestCircuitBreaker(t *testing.T) {
	stub := startStub(t, answerNetworkOnly)
	cfg := testConfig(stub.addr())
	cfg.RequestTimeout = 50 * time.Millisecond
	cfg.BreakerFailures, cfg.BreakerCooldown = 2, 300*time.Millisecond
	l := startLink(t, cfg)
	waitUp(t, l, true)
	for range 2 {
		if _, err := l.Exchange(t.Context(), purchase(t, panDebit, 1_00)); !errors.Is(err, link.ErrTimeout) {
			t.Fatalf("Exchange: %v, want ErrTimeout", err)
		}
	}
	sent := stub.count(0, iso8583.MTIFinancialRequest)
	start := time.Now()
	_, err := l.Exchange(t.Context(), purchase(t, panDebit, 1_00))
	if !errors.Is(err, link.ErrCircuitOpen) || link.Sent(err) || time.Since(start) > promptMax || !l.CircuitOpen() {
		t.Fatalf("third Exchange: %v after %v, want ErrCircuitOpen at once", err, time.Since(start))
	}
	if stub.count(0, iso8583.MTIFinancialRequest) != sent {
		t.Fatal("a request was sent while the circuit was open")
	}
	waitFor(t, "the cool-down to end", func() bool { return !l.CircuitOpen() })
	if _, err := l.Exchange(t.Context(), purchase(t, panDebit, 1_00)); !errors.Is(err, link.ErrTimeout) {
		t.Fatalf("after the cool-down: %v, want the request sent (and timing out)", err)
	}
	if !l.CircuitOpen() {
		t.Fatal("one more failure after the cool-down did not reopen the circuit")
	}
}

// A DE11 set by the caller is used as is, so an advice resent after a
// restart carries the same STAN.
func TestCallerSTANKept(t *testing.T) {
	stub := startStub(t, answerNetworkOnly)
	cfg := testConfig(stub.addr())
	cfg.RequestTimeout = 50 * time.Millisecond
	l := startLink(t, cfg)
	waitUp(t, l, true)
	req := purchase(t, panDebit, 1_00)
	req.Field(iso8583.FieldSTAN, "424242")
	l.Exchange(t.Context(), req)
	if e, ok := stub.find(0, iso8583.MTIFinancialRequest); !ok || e.stan != "424242" {
		t.Fatalf("issuer saw STAN %q, want the caller's 424242", e.stan)
	}
}
