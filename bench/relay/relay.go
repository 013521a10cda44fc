// Package relay is the bench harness's reference point: a plain TCP relay
// that copies bytes between each client connection and a connection of its
// own to one upstream, reading and changing nothing. Driven with the same
// load as the switch and standing in front of the same simulated issuer, it
// measures what one hop costs on this machine (accept, two sockets, four
// copies per round trip), so that a bench report can set the switch's cost
// beside it (docs/bench.md, docs/performance.md).
//
// It is deliberately as cheap as a relay can be in Go: io.Copy between two
// TCP connections, which on Linux moves the bytes with splice(2) through
// the kernel, never into the process. Anything a real switch does costs
// more than this.
package relay

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Bounds of a relay's life.
const (
	// ConnectionsMax bounds the client connections relayed at once; a
	// connection past it is closed at once.
	ConnectionsMax = 8192
	dialTimeout    = 2 * time.Second
	// acceptBackoffMax bounds the wait after a temporary accept error
	// (too many open files), as net/http does.
	acceptBackoffMax = time.Second
)

// Relay relays every connection its listener accepts to Upstream.
type Relay struct {
	Upstream string

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// New is a relay to upstream (HOST:PORT).
func New(upstream string) *Relay {
	return &Relay{Upstream: upstream, conns: map[net.Conn]struct{}{}}
}

// Serve accepts on l until l is closed or Close is called (then it
// returns nil), or a permanent accept error.
func (r *Relay) Serve(l net.Listener) error {
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if r.isClosed() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), acceptBackoffMax)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		if !r.track(c) {
			c.Close()
			continue
		}
		r.wg.Add(1)
		go r.relay(c)
	}
}

// isTemporary is an accept error worth retrying: out of descriptors or
// buffers, or a connection reset before it was accepted.
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (r *Relay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || len(r.conns) >= ConnectionsMax {
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *Relay) untrack(cs ...net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range cs {
		delete(r.conns, c)
	}
}

func (r *Relay) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// relay dials the upstream for client and copies both ways until either
// side ends; then both connections are closed.
func (r *Relay) relay(client net.Conn) {
	defer r.wg.Done()
	up, err := net.DialTimeout("tcp", r.Upstream, dialTimeout)
	if err != nil {
		r.untrack(client)
		client.Close()
		return
	}
	if !r.track(up) {
		up.Close()
		r.untrack(client)
		client.Close()
		return
	}
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, client); done <- struct{}{} }()
	go func() { io.Copy(client, up); done <- struct{}{} }()
	<-done
	client.Close()
	up.Close()
	<-done
	r.untrack(client, up)
}

// Close stops accepting (the caller closes the listener), closes every
// relayed connection and waits for their goroutines.
func (r *Relay) Close() {
	r.mu.Lock()
	r.closed = true
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}
