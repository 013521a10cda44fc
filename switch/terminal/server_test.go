package terminal

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	moov "github.com/moov-io/iso8583"
	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/bench/pos"
	"github.com/tapswitch/tapswitch/configs"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/issuers"
	"github.com/tapswitch/tapswitch/switch/acquirer"
	"github.com/tapswitch/tapswitch/switch/authorize"
)

// handlerFunc lets each test decide how requests are answered; the server's
// own behaviour (framing, concurrency, limits, drain) is what is tested.
type handlerFunc func(ctx context.Context, msg *moov.Message) *moov.Message

func (f handlerFunc) Handle(ctx context.Context, msg *moov.Message, _ acquirer.Identity) *moov.Message {
	return f(ctx, msg)
}

// testKeys are acquirer keys for every acquirer of configs/acquirers.yaml,
// made for this test run; testSenders checks MACs under them.
var testKeys, testSenders = func() (acquirer.Keys, *acquirer.Checker) {
	list, err := issuers.Parse(configs.Issuers)
	if err != nil {
		panic(err)
	}
	members := map[string]bool{}
	for _, is := range list {
		members[is.Institution] = true
	}
	reg, err := acquirer.Parse(configs.Acquirers, members, "00010000")
	if err != nil {
		panic(err)
	}
	keys := acquirer.Keys{}
	for i, id := range reg.Acquirers() {
		keys[id] = bytes.Repeat([]byte{byte(i + 1)}, 32)
	}
	c, err := acquirer.NewChecker(reg, keys)
	if err != nil {
		panic(err)
	}
	return keys, c
}()

// approveAfterAmountMillis answers 00 after as many milliseconds as the
// amount in fen, so answers come back out of order.
var approveAfterAmountMillis = handlerFunc(func(_ context.Context, msg *moov.Message) *moov.Message {
	amt, _ := iso8583.ParseAmountField(iso8583.FieldValue(msg, iso8583.FieldAmount))
	time.Sleep(time.Duration(amt) * time.Millisecond)
	return authorize.EchoAnswer(msg, iso8583.RCApproved)
})

func startServer(t *testing.T, h Handler, mutate func(*Config)) (*Server, string) {
	t.Helper()
	cfg := Config{ConnectionsMax: 16, InflightPerConnectionMax: 64, FrameBytesMax: 4096,
		IdleTimeout: 5 * time.Second, WriteTimeout: time.Second, Logger: zerolog.New(zerolog.NewTestWriter(t)),
		Senders: testSenders}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s, l.Addr().String()
}

func request(stan string, amount iso8583.Amount) *moov.Message {
	return pos.Tap{Terminal: pos.DemoTerminal, ProcessingCode: "000000", Token: "6299901234567893",
		TokenExpiry: "2912", Amount: amount, STAN: stan, Time: time.Now()}.Message()
}

func do(t *testing.T, c *pos.Client, msg *moov.Message) *moov.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Do(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestAnswersOutOfOrderMatchedBySTAN(t *testing.T) {
	_, addr := startServer(t, approveAfterAmountMillis, nil)
	c, _ := pos.Dial(addr, time.Second, testKeys)
	defer c.Close()
	var wg sync.WaitGroup
	order := make(chan string, 3)
	for i, amount := range []iso8583.Amount{300, 150, 1} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stan := []string{"000001", "000002", "000003"}[i]
			resp := do(t, c, request(stan, amount))
			if got := iso8583.FieldValue(resp, iso8583.FieldSTAN); got != stan {
				t.Errorf("answer for %s carries STAN %s", stan, got)
			}
			order <- stan
		}()
	}
	wg.Wait()
	close(order)
	var got []string
	for s := range order {
		got = append(got, s)
	}
	if len(got) != 3 || got[0] != "000003" || got[2] != "000001" {
		t.Fatalf("answers came back in order %v; want the fastest first", got)
	}
}

func TestMalformedRequestAnswered30(t *testing.T) {
	_, addr := startServer(t, approveAfterAmountMillis, nil)
	nc, _ := net.Dial("tcp", addr)
	defer nc.Close()
	packed, _ := iso8583.Pack(request("000007", 1))
	// Corrupt DE3 (right after MTI and bitmap, DE2's LL and 16 digits).
	packed[4+8+2+16] = 'X'
	iso8583.WriteFrame(nc, packed)
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	frame, err := iso8583.NewFrameReader(nc, 4096).Next()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := iso8583.Unpack(frame)
	if err != nil {
		t.Fatal(err)
	}
	if rc := iso8583.FieldValue(resp, iso8583.FieldResponseCode); rc != "30" {
		t.Fatalf("rc %s, want 30", rc)
	}
	if mti, _ := resp.GetMTI(); mti != "0210" {
		t.Fatalf("MTI %s", mti)
	}
	// The connection still serves.
	iso8583.WriteFrame(nc, mustPack(t, request("000008", 1)))
	if _, err := iso8583.NewFrameReader(nc, 4096).Next(); err != nil {
		t.Fatalf("connection unusable after a format error: %v", err)
	}
}

func mustPack(t *testing.T, m *moov.Message) []byte {
	p, err := iso8583.Pack(m)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBadFramesCloseOnlyThatConnection(t *testing.T) {
	_, addr := startServer(t, approveAfterAmountMillis, func(c *Config) { c.FrameBytesMax = 512 })
	good, _ := pos.Dial(addr, time.Second, testKeys)
	defer good.Close()
	for name, raw := range map[string][]byte{
		"over the bound":  {0x02, 0x01},
		"zero length":     {0x00, 0x00},
		"no MTI":          append([]byte{0x00, 0x05}, "\x00\x01\x02\x03\x04"...),
		"truncated frame": {0x00, 0x40, '0', '2'},
	} {
		nc, _ := net.Dial("tcp", addr)
		nc.Write(raw)
		if name == "truncated frame" {
			nc.(*net.TCPConn).CloseWrite()
		}
		expectClosed(t, name, nc)
	}
	if rc := iso8583.FieldValue(do(t, good, request("000009", 1)), iso8583.FieldResponseCode); rc != "00" {
		t.Fatalf("good terminal got %s", rc)
	}
}

func expectClosed(t *testing.T, name string, nc net.Conn) {
	t.Helper()
	defer nc.Close()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 256)
	for {
		if _, err := nc.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("%s: connection left open", name)
			}
			return
		}
	}
}

func TestIdleConnectionClosed(t *testing.T) {
	_, addr := startServer(t, approveAfterAmountMillis, func(c *Config) { c.IdleTimeout = 100 * time.Millisecond })
	nc, _ := net.Dial("tcp", addr)
	start := time.Now()
	expectClosed(t, "idle", nc)
	if time.Since(start) > 4*time.Second {
		t.Fatal("idle connection closed late")
	}
}

func TestConnectionLimit(t *testing.T) {
	s, addr := startServer(t, approveAfterAmountMillis, func(c *Config) { c.ConnectionsMax = 2 })
	a, _ := pos.Dial(addr, time.Second, testKeys)
	defer a.Close()
	b, _ := pos.Dial(addr, time.Second, testKeys)
	defer b.Close()
	do(t, a, request("000010", 1))
	do(t, b, request("000011", 1))
	third, _ := net.Dial("tcp", addr)
	expectClosed(t, "third connection", third)
	if n := s.Connections(); n != 2 {
		t.Fatalf("%d connections open, want 2", n)
	}
}

func TestPanicAnswered96(t *testing.T) {
	h := handlerFunc(func(_ context.Context, msg *moov.Message) *moov.Message {
		if iso8583.FieldValue(msg, iso8583.FieldSTAN) == "000066" {
			panic("boom")
		}
		return authorize.EchoAnswer(msg, iso8583.RCApproved)
	})
	_, addr := startServer(t, h, nil)
	c, _ := pos.Dial(addr, time.Second, testKeys)
	defer c.Close()
	if rc := iso8583.FieldValue(do(t, c, request("000066", 1)), iso8583.FieldResponseCode); rc != "96" {
		t.Fatalf("panicking request got %s, want 96", rc)
	}
	if rc := iso8583.FieldValue(do(t, c, request("000067", 1)), iso8583.FieldResponseCode); rc != "00" {
		t.Fatalf("next request got %s", rc)
	}
}

// TestShutdownDrains starts a slow request, shuts down, and checks the
// answer still arrives before the connection closes.
func TestShutdownDrains(t *testing.T) {
	s, addr := startServer(t, approveAfterAmountMillis, nil)
	c, _ := pos.Dial(addr, time.Second, testKeys)
	defer c.Close()
	answered := make(chan string, 1)
	go func() {
		resp, err := c.Do(context.Background(), request("000070", 300))
		if err != nil {
			answered <- "error: " + err.Error()
			return
		}
		answered <- iso8583.FieldValue(resp, iso8583.FieldResponseCode)
	}()
	time.Sleep(50 * time.Millisecond) // the request is in flight
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := <-answered; got != "00" {
		t.Fatalf("in-flight request during shutdown: %s", got)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("listener still accepts after shutdown")
	}
}

func TestInflightBoundPerConnection(t *testing.T) {
	var mu sync.Mutex
	running, peak := 0, 0
	h := handlerFunc(func(_ context.Context, msg *moov.Message) *moov.Message {
		mu.Lock()
		running++
		peak = max(peak, running)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		running--
		mu.Unlock()
		return authorize.EchoAnswer(msg, iso8583.RCApproved)
	})
	_, addr := startServer(t, h, func(c *Config) { c.InflightPerConnectionMax = 3 })
	c, _ := pos.Dial(addr, time.Second, testKeys)
	defer c.Close()
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			do(t, c, request([]string{"000101", "000102", "000103", "000104", "000105", "000106",
				"000107", "000108", "000109", "000110", "000111", "000112"}[i], 1))
		}()
	}
	wg.Wait()
	if peak > 3 || peak < 2 {
		t.Fatalf("peak in flight %d, want at most 3 (and concurrency to happen)", peak)
	}
}

// TestSlowTerminalCutOff: a terminal that sends but never reads its
// answers fills the switch's send buffer; the write deadline then cuts it
// off instead of letting it hold goroutines and memory. The listener's send
// buffer is made small so the test does not depend on the kernel's
// buffer autotuning.
func TestSlowTerminalCutOff(t *testing.T) {
	cfg := Config{ConnectionsMax: 16, InflightPerConnectionMax: 64, FrameBytesMax: 4096,
		IdleTimeout: 30 * time.Second, WriteTimeout: 200 * time.Millisecond, Logger: zerolog.New(zerolog.NewTestWriter(t)),
		Senders: testSenders}
	s, err := New(cfg, approveAfterAmountMillis)
	if err != nil {
		t.Fatal(err)
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096) })
	}}
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	defer s.Shutdown(context.Background())
	nc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.(*net.TCPConn).SetReadBuffer(4096)
	framed, _ := iso8583.AppendFrame(nil, mustPack(t, request("000001", 0)))
	batch := make([]byte, 0, len(framed)*100)
	for range 100 {
		batch = append(batch, framed...)
	}
	written := make(chan error, 1)
	go func() {
		nc.SetWriteDeadline(time.Now().Add(20 * time.Second))
		for range 2000 { // at most 200,000 requests
			if _, err := nc.Write(batch); err != nil {
				written <- err
				return
			}
		}
		written <- nil
	}()
	select {
	case err := <-written:
		if err == nil {
			t.Fatal("the switch read 200,000 requests without ever cutting off a terminal that reads nothing")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no cut-off within 20s")
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Connections() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := s.Connections(); n != 0 {
		t.Fatalf("%d connections still open", n)
	}
}

// TestSenderEstablishedFromTheFrame: the handler gets the Identity the MAC
// check established, and the answer carries a MAC under the terminal's key
// only when the request proved it holds that key.
func TestSenderEstablishedFromTheFrame(t *testing.T) {
	seen := make(chan acquirer.Status, 4)
	h := identityHandler(func(_ context.Context, msg *moov.Message, from acquirer.Identity) *moov.Message {
		seen <- from.Status
		return authorize.EchoAnswer(msg, iso8583.RCApproved)
	})
	_, addr := startServer(t, h, nil)
	c, err := pos.Dial(addr, time.Second, testKeys)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Do(ctx, request("000001", 1)); err != nil { // an approval without a valid MAC is an error
		t.Fatalf("signed request: %v", err)
	}
	if s := <-seen; s != acquirer.Authenticated {
		t.Fatalf("signed request seen as %v", s)
	}
	key, _ := testKeys.TerminalKey(pos.DemoTerminal.Acquirer, pos.DemoTerminal.TerminalID)
	unsigned := mustPack(t, request("000002", 1))
	if _, err := c.Send(ctx, "000002", unsigned, key); !errors.Is(err, pos.ErrForged) {
		t.Fatalf("answer to an unsigned request: %v, want one without a MAC (ErrForged to a terminal expecting one)", err)
	}
	if s := <-seen; s != acquirer.MACMissing {
		t.Fatalf("unsigned request seen as %v", s)
	}
}

type identityHandler func(ctx context.Context, msg *moov.Message, from acquirer.Identity) *moov.Message

func (f identityHandler) Handle(ctx context.Context, msg *moov.Message, from acquirer.Identity) *moov.Message {
	return f(ctx, msg, from)
}
