package load

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// fakeSwitch accepts terminals and reads their requests; answer decides
// what happens to each connection.
func fakeSwitch(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { defer c.Close(); serve(c) })
		}
	})
	return l.Addr().String()
}

// TestSilentSwitchTimesOut: a switch that reads but never answers. The run
// still ends on time, every request counts as a timeout, and each is
// recorded in the histogram at about -timeout, so the tail shows it.
func TestSilentSwitchTimesOut(t *testing.T) {
	addr := fakeSwitch(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	cfg := DefaultConfig()
	cfg.Mode, cfg.Rate, cfg.Connections = ModeOpen, 50, 2
	cfg.Duration, cfg.Warmup, cfg.Timeout = time.Second, 0, 300*time.Millisecond
	start := time.Now()
	res, err := drive(context.Background(), cfg, testPlan(t, DefaultMix), Target{Addr: addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > cfg.Duration+cfg.Timeout+500*time.Millisecond {
		t.Fatalf("run took %v: stragglers not bounded by -timeout", took)
	}
	rep := NewReport(res)
	if rep.Requests != 50 || rep.Errors != 50 || rep.ErrorsByKind[errTimeout] != 50 || rep.Answered != 0 || rep.TPS != 0 {
		t.Fatalf("requests %d errors %v answered %d", rep.Requests, rep.ErrorsByKind, rep.Answered)
	}
	if rep.LatencyN != 50 || rep.P50US < 300_000 || rep.MaxUS > 400_000 {
		t.Fatalf("timeouts recorded %d× p50 %d max %d, want all at about 300 ms", rep.LatencyN, rep.P50US, rep.MaxUS)
	}
}

// TestClosingSwitchLosesConnections: a switch that hangs up at once. The
// closed loop does not spin on the dead connections: it stops them, and
// counts what they carried as connection errors with no latency.
func TestClosingSwitchLosesConnections(t *testing.T) {
	addr := fakeSwitch(t, func(c net.Conn) { c.Read(make([]byte, 1)) })
	cfg := DefaultConfig()
	cfg.Concurrency, cfg.Connections = 4, 2
	cfg.Duration, cfg.Warmup, cfg.Timeout = time.Second, 0, time.Second
	res, err := drive(context.Background(), cfg, testPlan(t, DefaultMix), Target{Addr: addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep := NewReport(res)
	if rep.ConnectionsLost != 2 || rep.Errors == 0 || rep.Errors > 8 || rep.ErrorsByKind[errConnection] != rep.Errors {
		t.Fatalf("lost %d, errors %v", rep.ConnectionsLost, rep.ErrorsByKind)
	}
	if rep.LatencyN != 0 {
		t.Fatalf("%d latencies recorded for requests that were never answered", rep.LatencyN)
	}
}

// TestInterruptedRunReportsWhatItMeasured: a signal ends the run early.
func TestInterruptedRunReportsWhatItMeasured(t *testing.T) {
	addr := fakeSwitch(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	cfg := DefaultConfig()
	cfg.Mode, cfg.Rate, cfg.Connections = ModeOpen, 100, 1
	cfg.Duration, cfg.Warmup, cfg.Timeout = 10*time.Second, 0, 200*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	res, err := drive(ctx, cfg, testPlan(t, DefaultMix), Target{Addr: addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.Measured < 400*time.Millisecond || res.Measured > time.Second {
		t.Fatalf("interrupted %v after %v measured", res.Interrupted, res.Measured)
	}
	if rep := NewReport(res); rep.Requests < 40 || rep.Requests > 60 {
		t.Fatalf("%d requests in half a second at 100/s", rep.Requests)
	}
}
