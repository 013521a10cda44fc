package link_test

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/bench/issuersim"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/link"
)

// The issuer goes away with requests in flight and comes back on the same
// address: the requests fail at once as unavailable (not after the time-out),
// the link goes down, redials by itself and carries purchases again.
func TestReconnectAfterIssuerRestart(t *testing.T) {
	const inflight = 4
	ln := listen(t, "127.0.0.1:0")
	addr := ln.Addr().String()
	first := startSim(t, ln, issuersim.Faults{Latency: 300 * time.Millisecond})
	cfg := testConfig(addr)
	cfg.Connections = 2
	l := startLink(t, cfg)
	waitUp(t, l, true)

	type outcome struct {
		err  error
		took time.Duration
	}
	results := make(chan outcome, inflight)
	for i := range inflight {
		req := purchase(t, panCredit, iso8583.Amount(1_00+i))
		go func() {
			start := time.Now()
			_, err := l.Exchange(t.Context(), req)
			results <- outcome{err, time.Since(start)}
		}()
	}
	waitFor(t, "the issuer to hold every purchase", func() bool {
		return len(received(first, iso8583.MTIFinancialRequest)) == inflight
	})
	first.Close() // its listener and connections; the purchases wait out their latency unanswered
	for range inflight {
		o := await(t, "an in-flight purchase", results)
		if !errors.Is(o.err, link.ErrLost) || !link.Sent(o.err) || o.took > cfg.RequestTimeout/2 {
			t.Fatalf("in flight when the issuer closed: %v after %v, want ErrLost well before %v",
				o.err, o.took, cfg.RequestTimeout)
		}
	}
	waitUp(t, l, false)
	if _, err := l.Exchange(t.Context(), purchase(t, panCredit, 2_00)); !errors.Is(err, link.ErrUnavailable) {
		t.Fatalf("Exchange while down: %v, want ErrUnavailable", err)
	}

	second := startSim(t, listenAgain(t, addr), issuersim.Faults{})
	waitUp(t, l, true)
	resp, err := l.Exchange(t.Context(), purchase(t, panCredit, 3_00))
	if err != nil || field(resp, iso8583.FieldResponseCode) != iso8583.RCApproved {
		t.Fatalf("purchase after reconnect: %v", err)
	}
	if got := received(second, iso8583.MTIFinancialRequest); len(got) != 1 || got[0].STAN != field(resp, iso8583.FieldSTAN) {
		t.Fatalf("new issuer received %+v", got)
	}
}

// listenAgain listens on an address a closed listener just freed, retrying
// while the port is still taken.
func listenAgain(t *testing.T, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	waitFor(t, "to listen on "+addr+" again", func() bool {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err == nil
	})
	return ln
}

// A connection whose echo goes unanswered is dropped after the request
// time-out and replaced; one whose echoes are answered is kept.
func TestEchoFailureRedials(t *testing.T) {
	echoConfig := func(addr string) link.Config {
		cfg := testConfig(addr)
		cfg.EchoInterval, cfg.RequestTimeout = 50*time.Millisecond, 200*time.Millisecond
		return cfg
	}
	const echo = iso8583.MTINetworkMgmtRequest + "/" + iso8583.NetEcho
	const signOn = iso8583.MTINetworkMgmtRequest + "/" + iso8583.NetSignOn

	t.Run("answered", func(t *testing.T) {
		stub := startStub(t, answerNetworkOnly)
		startLink(t, echoConfig(stub.addr()))
		waitFor(t, "three echoes", func() bool { return stub.count(0, echo) >= 3 })
		if n := stub.count(-1, "accept"); n != 1 || stub.count(-1, "eof") != 0 {
			t.Fatalf("%d connections, %d closed: answered echoes must keep the connection", n, stub.count(-1, "eof"))
		}
	})

	t.Run("unanswered", func(t *testing.T) {
		stub := startStub(t, answerSignOnOnly)
		cfg := echoConfig(stub.addr())
		l := startLink(t, cfg)
		waitFor(t, "a second connection to sign on", func() bool { return stub.count(1, signOn) == 1 })
		echoed, ok := stub.find(0, echo)
		if !ok {
			t.Fatal("first connection replaced without an echo")
		}
		closed, ok := stub.find(0, "eof")
		if !ok {
			t.Fatal("first connection not closed by the link before it redialed")
		}
		if waited := closed.at.Sub(echoed.at); waited < cfg.RequestTimeout/2 {
			t.Fatalf("link closed the connection %v after its echo, want about the request time-out %v", waited, cfg.RequestTimeout)
		}
		if n := stub.count(0, echo); n != 1 {
			t.Fatalf("%d echoes on the first connection, want the one that failed", n)
		}
		waitUp(t, l, true)
	})
}
