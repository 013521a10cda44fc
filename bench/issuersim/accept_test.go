package issuersim

import (
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/internal/syncbuf"
	"github.com/tapswitch/tapswitch/router/issuers"
)

// emfileListener fails its first n Accepts as a process out of file
// descriptors does, then accepts for real.
type emfileListener struct {
	net.Listener
	n atomic.Int64
}

func (l *emfileListener) Accept() (net.Conn, error) {
	if l.n.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestAcceptErrorsRetriedQuietly: a run of failed accepts leaves the issuer
// serving, and logs one line for the run, not one per failure.
func TestAcceptErrorsRetriedQuietly(t *testing.T) {
	var logs syncbuf.Buffer
	s, err := New(Config{
		Issuer: issuers.Issuer{ID: "TST", Kind: issuers.KindBank, Institution: "01020000"},
		Cards:  testCards(), Seed: 7, Now: func() time.Time { return testNow }, Logger: zerolog.New(&logs),
	})
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &emfileListener{Listener: inner}
	l.n.Store(6)
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	defer func() {
		s.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	c := dial(t, inner.Addr().String())
	resp := c.call(msgSpec{mti: "0200", pc: "000000", pan: panDebit, expiry: "2812", amount: 1_00, stan: 1})
	if rc := get(t, resp, 39); rc != "00" {
		t.Fatalf("purchase after the failed accepts: rc %s", rc)
	}
	if n := strings.Count(logs.String(), "too many open files"); n != 1 {
		t.Fatalf("%d log lines for one run of 6 failed accepts, want 1:\n%s", n, logs.String())
	}
}
