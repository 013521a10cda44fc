package link_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	moov "github.com/moov-io/iso8583"
	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/bench/issuersim"
	"github.com/tapswitch/tapswitch/internal/syncbuf"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/link"
)

// ExchangeBuilt carries a purchase packed by a Builder to a real issuer
// and reads the answer parsed in place: the link wrote its STAN into the
// Builder, the answer echoes it, and the issuer read the request as moov
// reads it.
func TestExchangeBuiltPurchaseApproved(t *testing.T) {
	ln := listen(t, "127.0.0.1:0")
	sim := startSim(t, ln, issuersim.Faults{})
	l := startLink(t, testConfig(ln.Addr().String()))
	waitUp(t, l, true)

	req := builtPurchase(t, panDebit, 30_00)
	var ans link.Answer
	if err := l.ExchangeBuilt(t.Context(), req, &ans); err != nil {
		t.Fatal(err)
	}
	stan := string(req.Value(iso8583.FieldSTAN))
	f := &ans.Fields
	if len(stan) != 6 || stan == "000000" {
		t.Fatalf("the link set DE11 %q on the request", stan)
	}
	if f.MTI() != iso8583.MTIFinancialResponse || string(f.Bytes(iso8583.FieldResponseCode)) != iso8583.RCApproved ||
		string(f.Bytes(iso8583.FieldSTAN)) != stan || string(f.Bytes(iso8583.FieldAmount)) != "000000003000" ||
		len(f.Bytes(iso8583.FieldAuthCode)) != 6 {
		t.Fatalf("answer %s rc %s DE11 %s DE4 %s DE38 %q, want 0210 rc 00 DE11 %s DE4 000000003000 and an auth code",
			f.MTI(), f.Bytes(iso8583.FieldResponseCode), f.Bytes(iso8583.FieldSTAN), f.Bytes(iso8583.FieldAmount),
			f.Bytes(iso8583.FieldAuthCode), stan)
	}
	got := received(sim, iso8583.MTIFinancialRequest)
	if len(got) != 1 || got[0].PAN.Clear() != panDebit || got[0].TokenData != testToken || got[0].STAN != stan {
		t.Fatalf("issuer received %+v", got)
	}
	if a, _ := sim.Account(panDebit); a.Held != 30_00 {
		t.Fatalf("issuer holds %v on the card, want 30.00", a.Held)
	}
}

// The answer is the request's own even when many share a connection and
// the reader's buffer has long moved on: each caller's Answer holds its
// copy. One Answer per caller is reused across its requests.
func TestExchangeBuiltConcurrentAnswersOwned(t *testing.T) {
	const callers, each = 16, 20
	ln := listen(t, "127.0.0.1:0")
	startSim(t, ln, issuersim.Faults{Latency: time.Millisecond, Jitter: 5 * time.Millisecond})
	cfg := testConfig(ln.Addr().String())
	cfg.InflightMax = callers
	l := startLink(t, cfg)
	waitUp(t, l, true)

	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			var ans link.Answer
			for i := range each {
				amount := iso8583.Amount(1 + c*each + i)
				if err := l.ExchangeBuilt(t.Context(), builtPurchase(t, panCredit, amount), &ans); err != nil {
					t.Error(err)
					return
				}
				// Read after the exchange returned: other answers have
				// passed through the reader since.
				time.Sleep(time.Millisecond)
				if got := string(ans.Fields.Bytes(iso8583.FieldAmount)); got != amount.Field() {
					t.Errorf("DE4 %s answered with %s", amount.Field(), got)
				}
			}
		})
	}
	wg.Wait()
}

// An answer to an ExchangeBuilt request after its time-out goes to
// OnLateResponse as a moov message, and the next request on the same
// connection gets its own answer.
func TestExchangeBuiltLateResponse(t *testing.T) {
	stub := startStub(t, answerAfterAmount)
	late := newLateLog()
	cfg := testConfig(stub.addr())
	cfg.RequestTimeout = 200 * time.Millisecond
	l := startLink(t, cfg, func(l *link.Link) { l.OnLateResponse = late.record })
	waitUp(t, l, true)

	var ans link.Answer
	slow := builtPurchase(t, panDebit, 40_000) // answered after 400 ms
	if err := l.ExchangeBuilt(t.Context(), slow, &ans); !errors.Is(err, link.ErrTimeout) {
		t.Fatalf("slow purchase: %v, want ErrTimeout", err)
	}
	stan := string(slow.Value(iso8583.FieldSTAN))
	waitFor(t, "the late answer", func() bool { _, ok := late.get(stan); return ok })
	if resp, _ := late.get(stan); mti(resp) != iso8583.MTIFinancialResponse || field(resp, iso8583.FieldAmount) != "000000040000" {
		t.Fatalf("late answer %s DE4 %s", mti(resp), field(resp, iso8583.FieldAmount))
	}
	if err := l.ExchangeBuilt(t.Context(), builtPurchase(t, panDebit, 1), &ans); err != nil ||
		string(ans.Fields.Bytes(iso8583.FieldAmount)) != "000000000001" {
		t.Fatalf("purchase after a late answer: %v, DE4 %s", err, ans.Fields.Bytes(iso8583.FieldAmount))
	}
	if late.count() != 1 || stub.count(-1, "accept") != 1 {
		t.Fatalf("%d late answers, %d connections; want 1 and the first connection kept", late.count(), stub.count(-1, "accept"))
	}
}

// An answer that breaks the contract (letters in DE4) is dropped with the
// same log line and moov's own reason, as before the fast codec; its
// request times out and the connection stays up.
func TestMalformedAnswerDropped(t *testing.T) {
	stub := startStub(t, func(req *moov.Message) (*moov.Message, time.Duration) {
		resp := reply(req, iso8583.RCApproved)
		if mti(req) != iso8583.MTINetworkMgmtRequest {
			resp.Field(iso8583.FieldAmount, "0000000000AB")
		}
		return resp, 0
	})
	var logs syncbuf.Buffer
	cfg := testConfig(stub.addr())
	cfg.RequestTimeout = 100 * time.Millisecond
	cfg.Logger = zerolog.New(&logs)
	l := startLink(t, cfg)
	waitUp(t, l, true)

	var ans link.Answer
	if err := l.ExchangeBuilt(t.Context(), builtPurchase(t, panDebit, 1), &ans); !errors.Is(err, link.ErrTimeout) {
		t.Fatalf("ExchangeBuilt: %v, want ErrTimeout", err)
	}
	if _, err := l.Exchange(t.Context(), purchase(t, panDebit, 1)); !errors.Is(err, link.ErrTimeout) {
		t.Fatalf("Exchange: %v, want ErrTimeout", err)
	}
	lines := linesContaining(&logs, "unparseable response from issuer dropped")
	if len(lines) != 2 {
		t.Fatalf("%d drop lines, want 2; log:\n%s", len(lines), logs.String())
	}
	want := `format error in DE4: numeric field holds 'A'`
	for _, line := range lines {
		if !strings.Contains(line, want) {
			t.Fatalf("drop line %s does not give moov's reason %q", line, want)
		}
	}
	if !l.Up() || stub.count(-1, "accept") != 1 {
		t.Fatal("a malformed answer cost the connection")
	}
}

// A DE11 the caller set in the Builder is sent as is.
func TestExchangeBuiltCallerSTANKept(t *testing.T) {
	stub := startStub(t, answerNetworkOnly)
	cfg := testConfig(stub.addr())
	cfg.RequestTimeout = 50 * time.Millisecond
	l := startLink(t, cfg)
	waitUp(t, l, true)
	req := builtPurchase(t, panDebit, 1_00)
	req.Set(iso8583.FieldSTAN, "424242")
	var ans link.Answer
	l.ExchangeBuilt(t.Context(), req, &ans)
	if e, ok := stub.find(0, iso8583.MTIFinancialRequest); !ok || e.stan != "424242" {
		t.Fatalf("issuer saw STAN %q, want the caller's 424242", e.stan)
	}
}

func linesContaining(b *syncbuf.Buffer, containing string) []string {
	var out []string
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.Contains(line, containing) {
			out = append(out, line)
		}
	}
	return out
}

// A request the Builder refused is never sent: ExchangeBuilt says why, the
// issuer sees nothing, and the next request goes through.
func TestExchangeBuiltRefusedRequestNotSent(t *testing.T) {
	ln := listen(t, "127.0.0.1:0")
	sim := startSim(t, ln, issuersim.Faults{})
	l := startLink(t, testConfig(ln.Addr().String()))
	waitUp(t, l, true)

	bad := builtPurchase(t, panDebit, 1)
	bad.Set(iso8583.FieldAmount, "12AB") // a letter in a numeric field
	var ans link.Answer
	err := l.ExchangeBuilt(t.Context(), bad, &ans)
	if err == nil || link.Sent(err) || !strings.Contains(err.Error(), "pack request to issuer") {
		t.Fatalf("ExchangeBuilt of a refused request: %v", err)
	}
	good := builtPurchase(t, panDebit, 2)
	if err := l.ExchangeBuilt(t.Context(), good, &ans); err != nil {
		t.Fatal(err)
	}
	got := received(sim, iso8583.MTIFinancialRequest)
	if len(got) != 1 || got[0].STAN != string(good.Value(iso8583.FieldSTAN)) {
		t.Fatalf("issuer received %+v, want the second purchase only", got)
	}
}

// Requests pending on a connection that breaks get ErrLost, and the
// waiters they leave behind (reused from a pool) carry nothing over: every
// request after the reconnect gets its own answer.
func TestExchangeBuiltAfterConnectionLoss(t *testing.T) {
	const pending = 32
	ln := listen(t, "127.0.0.1:0")
	sim := startSim(t, ln, issuersim.Faults{})
	cfg := testConfig(ln.Addr().String())
	cfg.InflightMax = pending * 2
	l := startLink(t, cfg)
	waitUp(t, l, true)
	if err := sim.SetFaults(issuersim.Faults{Latency: time.Minute}); err != nil { // signed on: now hold every answer
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	errs := make(chan error, pending)
	for i := range pending {
		wg.Go(func() {
			var ans link.Answer
			errs <- l.ExchangeBuilt(t.Context(), builtPurchase(t, panDebit, iso8583.Amount(1+i)), &ans)
		})
	}
	waitFor(t, "every request at the issuer", func() bool { return len(received(sim, iso8583.MTIFinancialRequest)) == pending })
	sim.Down()
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, link.ErrLost) {
			t.Fatalf("pending request on a lost connection: %v, want ErrLost", err)
		}
	}
	if err := sim.SetFaults(issuersim.Faults{}); err != nil {
		t.Fatal(err)
	}
	sim.Up()
	waitFor(t, "the link back up", func() bool { return l.Up() })
	var wg2 sync.WaitGroup
	for c := range 4 {
		wg2.Go(func() {
			var ans link.Answer
			for i := range pending {
				amount := iso8583.Amount(1_000 + c*pending + i)
				if err := l.ExchangeBuilt(t.Context(), builtPurchase(t, panCredit, amount), &ans); err != nil {
					t.Errorf("after the reconnect: %v", err)
					return
				}
				if got := string(ans.Fields.Bytes(iso8583.FieldAmount)); got != amount.Field() {
					t.Errorf("DE4 %s answered with %s", amount.Field(), got)
				}
			}
		})
	}
	wg2.Wait()
}
