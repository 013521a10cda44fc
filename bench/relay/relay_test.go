package relay

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// TestRelayCopiesBothWays relays a client to an echo server that answers
// each message with its bytes reversed: the client reads exactly those,
// through the relay, on several connections at once; closing the relay
// closes them.
func TestRelayCopiesBothWays(t *testing.T) {
	upstream := listen(t)
	go func() {
		for {
			c, err := upstream.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					out := make([]byte, n)
					for i := range n {
						out[i] = buf[n-1-i]
					}
					c.Write(out)
				}
			}()
		}
	}()
	front := listen(t)
	r := New(upstream.Addr().String())
	served := make(chan error, 1)
	go func() { served <- r.Serve(front) }()

	var clients []net.Conn
	for i := range 3 {
		c, err := net.Dial("tcp", front.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		msg := []byte{'a', 'b', byte('0' + i)}
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 3)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatal(err)
		}
		if want := []byte{byte('0' + i), 'b', 'a'}; !bytes.Equal(got, want) {
			t.Errorf("connection %d read %q, want %q", i, got, want)
		}
	}
	front.Close()
	r.Close()
	if err := <-served; err != nil {
		t.Errorf("Serve after Close: %v", err)
	}
	for i, c := range clients {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("connection %d still open after Close (read %d bytes)", i, n)
		}
	}
}

// TestRelayUpstreamDown: with nothing at the upstream address, a client is
// closed at once rather than left hanging.
func TestRelayUpstreamDown(t *testing.T) {
	gone := listen(t)
	addr := gone.Addr().String()
	gone.Close()
	front := listen(t)
	r := New(addr)
	go r.Serve(front)
	defer r.Close()
	defer front.Close()
	c, err := net.Dial("tcp", front.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("read from a relay without upstream: %v, want EOF", err)
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}
