package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/bench/issuersim"
	"github.com/tapswitch/tapswitch/configs"
	"github.com/tapswitch/tapswitch/router/issuers"
)

// TestAdminListenerBounded: the admin listener cuts an idle keep-alive
// connection at its idle time-out, and closes a connection over its cap
// while the admitted ones keep being answered.
func TestAdminListenerBounded(t *testing.T) {
	list, err := issuers.Parse(configs.Issuers)
	if err != nil {
		t.Fatal(err)
	}
	fleet, err := issuersim.StartAll("127.0.0.1", list[:1], nil, issuersim.Faults{}, 1, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()
	lim := adminLimitsDefault
	lim.idleTimeout, lim.connectionsMax = time.Second, 2
	a, err := startAdmin("127.0.0.1:0", fleet, zerolog.New(zerolog.NewTestWriter(t)), lim)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close(zerolog.Nop())
	dial := func() (net.Conn, *bufio.Reader) {
		nc, err := net.Dial("tcp", a.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		return nc, bufio.NewReader(nc)
	}
	healthz := func(nc net.Conn, rd *bufio.Reader) {
		io.WriteString(nc, "GET /healthz HTTP/1.1\r\nHost: issuersim\r\n\r\n")
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(rd, nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("healthz: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
	}
	closed := func(nc net.Conn, rd *bufio.Reader) bool {
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := rd.ReadByte()
		var ne net.Error
		return err != nil && !(errors.As(err, &ne) && ne.Timeout())
	}
	first, r1 := dial()
	second, r2 := dial()
	healthz(first, r1)
	healthz(second, r2)
	third, r3 := dial()
	if !closed(third, r3) {
		t.Fatal("a connection over the cap was left open")
	}
	healthz(first, r1)
	if !closed(second, r2) {
		t.Fatal("an idle keep-alive connection was still open after 5s")
	}
}
