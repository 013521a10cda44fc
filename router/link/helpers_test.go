package link_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	moov "github.com/moov-io/iso8583"
	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/bench/issuersim"
	"github.com/tapswitch/tapswitch/bench/world"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/router/issuers"
	"github.com/tapswitch/tapswitch/router/link"
)

// waitMax bounds every wait in these tests; a link that needs longer on
// loopback is broken.
const waitMax = 5 * time.Second

// promptMax is how long "at once" may take on a loaded test machine: far
// below any time-out a test expects instead.
const promptMax = 500 * time.Millisecond

const (
	panDebit  = "6222020000000001"
	panCredit = "6253300000000002"
	expiry    = "2812"
)

var (
	simNow    = time.Date(2026, time.March, 15, 10, 0, 0, 0, time.UTC)
	testToken = iso8583.TokenData{Token: "6288880000000017", RequestorID: "40010030273", DeviceID: "MIPHONE-0001"}
)

// testLogger writes debug lines when TAPSWITCH_TEST_LOG is set.
func testLogger() zerolog.Logger {
	if os.Getenv("TAPSWITCH_TEST_LOG") == "" {
		return zerolog.Nop()
	}
	return zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).Level(zerolog.DebugLevel)
}

// testConfig is a one-connection link with short, loopback-sized times and
// echoes too rare to get in the way; tests change what they are about.
func testConfig(addr string) link.Config {
	return link.Config{
		IssuerID: "TST", Address: addr, Connections: 1, InflightMax: 16,
		RequestTimeout: 2 * time.Second, EchoInterval: time.Minute, DialTimeout: time.Second,
		BackoffMin: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
		FrameBytesMax: iso8583.FrameBytesMaxDefault, Logger: testLogger(),
		BreakerFailures: 1 << 30, BreakerCooldown: time.Second, // the breaker has its own test
	}
}

// startLink starts a link and closes it when the test ends (before the
// issuers the test started earlier).
func startLink(t *testing.T, cfg link.Config, configure ...func(*link.Link)) *link.Link {
	t.Helper()
	l, err := link.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range configure {
		f(l)
	}
	l.Start()
	t.Cleanup(l.Close)
	return l
}

// waitFor polls cond until it holds or waitMax passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitMax)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: still waiting for %s", waitMax, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// await receives one value from ch, or fails the test after waitMax.
func await[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitMax):
		t.Fatalf("after %v: still waiting for %s", waitMax, what)
		panic("unreachable")
	}
}

func waitUp(t *testing.T, l *link.Link, up bool) {
	t.Helper()
	waitFor(t, fmt.Sprintf("Up() == %v", up), func() bool { return l.Up() == up })
}

func listen(t testing.TB, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// simCards are the simulated issuer's accounts.
func simCards() []world.Card {
	return []world.Card{
		{PAN: panDebit, Expiry: expiry, IssuerID: "TST", Product: bintable.ProductDebit,
			Balance: 100_00, Status: world.StatusActive},
		{PAN: panCredit, Expiry: expiry, IssuerID: "TST", Product: bintable.ProductCredit,
			CreditLimit: 1_000_000_00, Status: world.StatusActive},
	}
}

// startSim serves a simulated issuer on ln until the test ends.
func startSim(t testing.TB, ln net.Listener, faults issuersim.Faults) *issuersim.Issuer {
	t.Helper()
	s, err := issuersim.New(issuersim.Config{
		Issuer: issuers.Issuer{ID: "TST", Kind: issuers.KindBank, Institution: "01020000", Address: ln.Addr().String()},
		Cards:  simCards(), Faults: faults, Seed: 1,
		Now:    func() time.Time { return simNow },
		Logger: testLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-served; err != nil {
			t.Errorf("issuersim Serve: %v", err)
		}
	})
	return s
}

// received returns the requests of one MTI the issuer saw.
func received(s *issuersim.Issuer, mti string) []issuersim.Received {
	var out []issuersim.Received
	for _, r := range s.Received() {
		if r.MTI == mti {
			out = append(out, r)
		}
	}
	return out
}

// purchase builds a 0200 purchase the way the switch sends one to an
// issuer; the link sets DE11.
func purchase(t testing.TB, pan string, amount iso8583.Amount) *moov.Message {
	t.Helper()
	m := iso8583.NewMessage()
	m.MTI(iso8583.MTIFinancialRequest)
	for _, f := range purchaseFields(pan, amount) {
		if err := m.Field(f.id, f.v); err != nil {
			t.Fatalf("DE%d: %v", f.id, err)
		}
	}
	return m
}

// builtPurchase is purchase in a Builder, for ExchangeBuilt.
func builtPurchase(t testing.TB, pan string, amount iso8583.Amount) *iso8583.Builder {
	t.Helper()
	var b iso8583.Builder
	b.Reset(iso8583.MTIFinancialRequest)
	for _, f := range purchaseFields(pan, amount) {
		b.Set(f.id, f.v)
	}
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	return &b
}

type fieldValue struct {
	id int
	v  string
}

func purchaseFields(pan string, amount iso8583.Amount) []fieldValue {
	return []fieldValue{
		{iso8583.FieldPAN, pan},
		{iso8583.FieldProcessingCode, iso8583.ProcPurchase},
		{iso8583.FieldAmount, amount.Field()},
		{iso8583.FieldTransmissionTime, "0315100000"},
		{iso8583.FieldLocalTime, "180000"},
		{iso8583.FieldLocalDate, "0315"},
		{iso8583.FieldExpiry, expiry},
		{iso8583.FieldMCC, "5411"},
		{iso8583.FieldPOSEntryMode, "071"},
		{iso8583.FieldPOSCondition, "00"},
		{iso8583.FieldAcquirer, "01020000"},
		{iso8583.FieldForwarder, "99990000"},
		{iso8583.FieldRRN, fmt.Sprintf("%012d", int64(amount))},
		{iso8583.FieldTerminalID, "TERM0001"},
		{iso8583.FieldMerchantID, "MERCHANT0000001"},
		{iso8583.FieldMerchantNameLocation, "TEST SHOP SHANGHAI"},
		{iso8583.FieldPrivateTokenData, testToken.Encode()},
		{iso8583.FieldCurrency, iso8583.CurrencyCNY},
		{iso8583.FieldReceivingInstitution, "01020000"},
	}
}

// frameBytes is the size of m on the wire, length header included.
func frameBytes(t *testing.T, m *moov.Message) int64 {
	t.Helper()
	payload, err := iso8583.Pack(m)
	if err != nil {
		t.Fatal(err)
	}
	return int64(2 + len(payload))
}

func field(m *moov.Message, id int) string { return iso8583.FieldValue(m, id) }

func mti(m *moov.Message) string {
	v, _ := m.GetMTI()
	return v
}

// stubEvent is one thing a stubIssuer saw.
type stubEvent struct {
	at   time.Time
	conn int    // connections are numbered from 0 in the order accepted
	what string // "accept", "0800/001", "0800/301", "0200", ..., "eof"
	stan string
}

// stubAnswer decides a stub's answer to one request: nil never answers.
type stubAnswer func(req *moov.Message) (resp *moov.Message, delay time.Duration)

// stubIssuer is a bare TCP issuer on the wire contract, written here so a
// test can make it misbehave in ways issuersim does not offer at run time:
// sign on and then drop every request, or stop answering echoes. It records
// what it sees; "eof" means the switch side closed the connection.
type stubIssuer struct {
	ln     net.Listener
	answer stubAnswer
	done   chan struct{}
	wg     sync.WaitGroup

	mu     sync.Mutex
	events []stubEvent
	conns  []net.Conn
}

func startStub(t *testing.T, answer stubAnswer) *stubIssuer {
	t.Helper()
	s := &stubIssuer{ln: listen(t, "127.0.0.1:0"), answer: answer, done: make(chan struct{})}
	s.wg.Go(s.acceptLoop)
	t.Cleanup(s.close)
	return s
}

func (s *stubIssuer) addr() string { return s.ln.Addr().String() }

func (s *stubIssuer) close() {
	close(s.done)
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *stubIssuer) record(conn int, what, stan string) {
	s.mu.Lock()
	s.events = append(s.events, stubEvent{at: time.Now(), conn: conn, what: what, stan: stan})
	s.mu.Unlock()
}

// find returns the first event on conn (any conn when conn < 0) of kind what.
func (s *stubIssuer) find(conn int, what string) (stubEvent, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.events {
		if (conn < 0 || e.conn == conn) && e.what == what {
			return e, true
		}
	}
	return stubEvent{}, false
}

func (s *stubIssuer) count(conn int, what string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.events {
		if (conn < 0 || e.conn == conn) && e.what == what {
			n++
		}
	}
	return n
}

func (s *stubIssuer) acceptLoop() {
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		select {
		case <-s.done:
			s.mu.Unlock()
			nc.Close()
			return
		default:
		}
		id := len(s.conns)
		s.conns = append(s.conns, nc)
		s.mu.Unlock()
		s.record(id, "accept", "")
		s.wg.Go(func() { s.serveConn(id, nc) })
	}
}

func (s *stubIssuer) serveConn(id int, nc net.Conn) {
	var writeMu sync.Mutex
	write := func(resp *moov.Message) {
		payload, err := iso8583.Pack(resp)
		if err != nil {
			panic(fmt.Sprintf("stub issuer packs its own answer: %v", err))
		}
		writeMu.Lock()
		defer writeMu.Unlock()
		nc.SetWriteDeadline(time.Now().Add(waitMax))
		iso8583.WriteFrame(nc, payload)
	}
	fr := iso8583.NewFrameReader(nc, iso8583.FrameBytesMaxDefault)
	for {
		frame, err := fr.Next()
		if err != nil {
			select {
			case <-s.done:
			default:
				if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
					s.record(id, "eof", "")
				}
			}
			return
		}
		req, err := iso8583.Unpack(frame)
		if err != nil {
			s.record(id, "garbage", "")
			continue
		}
		what := mti(req)
		if what == iso8583.MTINetworkMgmtRequest {
			what += "/" + field(req, iso8583.FieldNetworkMgmtCode)
		}
		s.record(id, what, field(req, iso8583.FieldSTAN))
		resp, delay := s.answer(req)
		if resp == nil {
			continue
		}
		if delay == 0 {
			write(resp)
			continue
		}
		s.wg.Go(func() {
			select {
			case <-time.After(delay):
				write(resp)
			case <-s.done:
			}
		})
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// reply answers req with rc, echoing what an issuer echoes.
func reply(req *moov.Message, rc string) *moov.Message {
	resp := iso8583.NewMessage()
	resp.MTI(iso8583.ResponseMTI(mti(req)))
	for _, id := range []int{iso8583.FieldPAN, iso8583.FieldProcessingCode, iso8583.FieldAmount,
		iso8583.FieldTransmissionTime, iso8583.FieldSTAN, iso8583.FieldRRN, iso8583.FieldTerminalID,
		iso8583.FieldCurrency, iso8583.FieldNetworkMgmtCode} {
		if v := field(req, id); v != "" {
			resp.Field(id, v)
		}
	}
	resp.Field(iso8583.FieldResponseCode, rc)
	return resp
}

// answerNetworkOnly signs on and answers echoes, and never answers anything
// else: an issuer that is up but drops every authorization.
func answerNetworkOnly(req *moov.Message) (*moov.Message, time.Duration) {
	if mti(req) == iso8583.MTINetworkMgmtRequest {
		return reply(req, iso8583.RCApproved), 0
	}
	return nil, 0
}

// answerSignOnOnly accepts the sign-on and then goes quiet: echoes too go
// unanswered.
func answerSignOnOnly(req *moov.Message) (*moov.Message, time.Duration) {
	if field(req, iso8583.FieldNetworkMgmtCode) == iso8583.NetSignOn {
		return reply(req, iso8583.RCApproved), 0
	}
	return nil, 0
}

// countingListener counts the bytes each accepted connection reads, so a
// test can see which connections of a pool carried traffic.
type countingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*countingConn
}

type countingConn struct {
	net.Conn
	read, written atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

func (l *countingListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &countingConn{Conn: nc}
	l.mu.Lock()
	l.conns = append(l.conns, c)
	l.mu.Unlock()
	return c, nil
}

func (l *countingListener) accepted() []*countingConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*countingConn(nil), l.conns...)
}
