package listener

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestNextDelay(t *testing.T) {
	var got []time.Duration
	d := time.Duration(0)
	for range 10 {
		d = NextDelay(d)
		got = append(got, d)
	}
	want := []time.Duration{5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("delays %v, want %v ms", got, want)
		}
	}
}

func TestThrottle(t *testing.T) {
	var th Throttle
	t0 := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	if ok, n := th.Allow(t0); !ok || n != 0 {
		t.Fatal("first line held back")
	}
	for i := range 5 {
		if ok, _ := th.Allow(t0.Add(time.Duration(i) * time.Second)); ok {
			t.Fatal("a line within logEvery let through")
		}
	}
	if ok, n := th.Allow(t0.Add(logEvery)); !ok || n != 5 {
		t.Fatalf("after logEvery: %v, %d held back, want true, 5", ok, n)
	}
}

type counter struct{ failed, refused atomic.Int64 }

func (c *counter) AcceptFailed()      { c.failed.Add(1) }
func (c *counter) ConnectionRefused() { c.refused.Add(1) }

type failing struct {
	net.Listener
	n atomic.Int64
}

func (l *failing) Accept() (net.Conn, error) {
	if l.n.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestGuard: failed accepts are retried, not returned; connections over the
// cap are closed at once while the admitted ones stay open, and a place
// freed is taken by the next connection.
func TestGuard(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	obs := &counter{}
	f := &failing{Listener: inner}
	f.n.Store(3)
	g, err := Guard(f, Config{Name: "test", ConnectionsMax: 2, Log: zerolog.New(zerolog.NewTestWriter(t)), Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := g.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := dial(), dial()
	sa, sb := <-accepted, <-accepted
	if obs.failed.Load() != 3 {
		t.Fatalf("%d failed accepts counted, want 3", obs.failed.Load())
	}
	third := dial()
	third.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := third.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("connection over the cap: %v, want it closed", err)
	}
	if obs.refused.Load() != 1 {
		t.Fatalf("%d refusals counted, want 1", obs.refused.Load())
	}
	sa.Close()
	a.Close()
	c := dial()
	defer c.Close()
	select {
	case sc := <-accepted:
		sc.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("a freed place was not taken")
	}
	sb.Close()
	b.Close()
	if _, err := Guard(inner, Config{ConnectionsMax: 0}); err == nil {
		t.Fatal("a cap of 0 accepted")
	}
}

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// TestGuardCloseEndsBackoff: closing the guard while Accept waits out a
// back-off ends Accept with net.ErrClosed.
func TestGuardCloseEndsBackoff(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &failing{Listener: inner}
	f.n.Store(1 << 30)
	g, _ := Guard(f, Config{ConnectionsMax: 1, Log: zerolog.Nop()})
	done := make(chan error, 1)
	go func() { _, err := g.Accept(); done <- err }()
	time.Sleep(100 * time.Millisecond)
	g.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Accept still waiting after Close")
	}
}
