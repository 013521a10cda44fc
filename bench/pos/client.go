// Package pos is a POS terminal on the wire contract: it builds token
// requests the way a contactless terminal does and sends them over one TCP
// connection, many in flight at once, matching answers by STAN. termsim, the
// bench harness and the end-to-end tests all tap through it.
//
// Like an acquirer's host, a client holds its acquirers' keys and MACs
// every request with the key of the terminal in its DE41, derived from the
// key of the acquirer in its DE32 (docs/wire.md section 11). It checks the
// MAC of every answer with the same key and refuses an approval that does
// not carry a valid one: a forged 00 never reaches the caller.
package pos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	moov "github.com/moov-io/iso8583"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/iso8583/mac"
	"github.com/tapswitch/tapswitch/switch/acquirer"
)

// pendingMax bounds the requests one client has in flight.
const pendingMax = 1024

// ErrClosed is returned for requests on a closed or broken connection.
var ErrClosed = errors.New("terminal connection closed")

// ErrForged is returned for an answer whose MAC does not verify, or an
// approval without one.
var ErrForged = errors.New("answer not authenticated by the switch")

// Client is one terminal connection to the switch.
type Client struct {
	conn    net.Conn
	writer  *iso8583.FrameWriter
	keys    acquirer.Keys
	mu      sync.Mutex
	pending map[string]waiter // by DE11
	done    chan struct{}
	err     error
}

// waiter is a request waiting for its answer, and the key to check it with.
// A waiter of Exchange wants only the response code; the others get the
// answer as a moov message.
type waiter struct {
	ch       chan result
	key      []byte
	codeOnly bool
}

type result struct {
	resp *moov.Message
	rc   string // DE39
	err  error
}

// Dial connects to the switch's terminal listener. keys are the acquirer
// keys the client derives its terminals' keys from (acquirer.LoadKeysFile
// of the key file switchd -dev writes; nil: every request goes unsigned).
func Dial(addr string, timeout time.Duration, keys acquirer.Keys) (*Client, error) {
	nc, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	c := &Client{
		conn:    nc,
		writer:  iso8583.NewFrameWriter(nc, pendingMax, 5*time.Second),
		keys:    keys,
		pending: make(map[string]waiter),
		done:    make(chan struct{}),
	}
	go c.readLoop()
	return c, nil
}

// Close closes the connection.
func (c *Client) Close() error {
	err := c.conn.Close()
	c.writer.Close()
	<-c.done
	return err
}

// Do sends msg (its DE11 set), MACed with the key of its DE41 under its
// DE32's acquirer (unsigned when the client holds no key for that
// acquirer), and waits for the answer with the same STAN.
func (c *Client) Do(ctx context.Context, msg *moov.Message) (*moov.Message, error) {
	key, _ := c.keys.TerminalKey(iso8583.FieldValue(msg, iso8583.FieldAcquirer),
		iso8583.FieldValue(msg, iso8583.FieldTerminalID))
	return c.DoWithKey(ctx, msg, key)
}

// DoWithKey is Do with the MAC under key (nil: no MAC), for a terminal
// that holds a key other than the one its fields call for.
func (c *Client) DoWithKey(ctx context.Context, msg *moov.Message, key []byte) (*moov.Message, error) {
	stan := iso8583.FieldValue(msg, iso8583.FieldSTAN)
	if stan == "" {
		return nil, errors.New("request has no STAN")
	}
	payload, err := pack(msg, key)
	if err != nil {
		return nil, err
	}
	return c.Send(ctx, stan, payload, key)
}

// Send sends a packed request with STAN stan, as it is, and waits for its
// answer, checked with key (nil: not checked).
func (c *Client) Send(ctx context.Context, stan string, payload, key []byte) (*moov.Message, error) {
	w := waiter{ch: make(chan result, 1), key: key}
	if err := c.register(stan, w); err != nil {
		return nil, err
	}
	defer c.unregister(stan)
	if err := c.writer.Send(payload); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrClosed, err)
	}
	select {
	case r := <-w.ch:
		return r.resp, r.err
	case <-c.done:
		return nil, fmt.Errorf("%w: %v", ErrClosed, c.err)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Exchange is Send for a caller that needs only the answer's response
// code (DE39), checked with key as Send checks it: the bench harness's
// fast path, which never builds a moov message for the answer.
func (c *Client) Exchange(ctx context.Context, stan string, payload, key []byte) (rc string, err error) {
	w := waiter{ch: make(chan result, 1), key: key, codeOnly: true}
	if err := c.register(stan, w); err != nil {
		return "", err
	}
	defer c.unregister(stan)
	if err := c.writer.Send(payload); err != nil {
		return "", fmt.Errorf("%w: %v", ErrClosed, err)
	}
	select {
	case r := <-w.ch:
		return r.rc, r.err
	case <-c.done:
		return "", fmt.Errorf("%w: %v", ErrClosed, c.err)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func pack(msg *moov.Message, key []byte) ([]byte, error) {
	if key == nil {
		return iso8583.Pack(msg)
	}
	return iso8583.PackSigned(msg, key)
}

func (c *Client) register(stan string, w waiter) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, dup := c.pending[stan]; dup {
		return fmt.Errorf("STAN %s already in flight on this connection", stan)
	}
	if len(c.pending) >= pendingMax {
		return fmt.Errorf("%d requests already in flight", pendingMax)
	}
	c.pending[stan] = w
	return nil
}

func (c *Client) unregister(stan string) {
	c.mu.Lock()
	delete(c.pending, stan)
	c.mu.Unlock()
}

func (c *Client) readLoop() {
	defer close(c.done)
	fr := iso8583.NewFrameReader(c.conn, iso8583.FrameBytesMaxDefault)
	var f iso8583.Fields
	for {
		frame, err := fr.Next()
		if err != nil {
			c.err = err
			return
		}
		if err := f.Parse(frame); err != nil {
			c.err = fmt.Errorf("unreadable answer from the switch: %w", err)
			return
		}
		c.mu.Lock()
		w, ok := c.pending[string(f.Bytes(iso8583.FieldSTAN))]
		c.mu.Unlock()
		if !ok {
			continue
		}
		r := result{rc: string(f.Bytes(iso8583.FieldResponseCode))}
		r.err = checkAnswer(frame, r.rc, w.key)
		if !w.codeOnly {
			// Fields accepted it, so moov does too (FuzzFastAgreesWithMoov).
			if r.resp, err = iso8583.Unpack(frame); err != nil {
				c.err = fmt.Errorf("unreadable answer from the switch: %w", err)
				return
			}
		}
		w.ch <- r
	}
}

// checkAnswer checks an answer's MAC: one that carries a MAC must verify;
// one without may only refuse (the switch does not MAC its answers to
// requests it could not authenticate: 30, 58, 63).
func checkAnswer(frame []byte, rc string, key []byte) error {
	if key == nil {
		return nil
	}
	_, present, err := mac.Field(frame)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %v", ErrForged, err)
	case present:
		if err := mac.Verify(key, frame); err != nil {
			return fmt.Errorf("%w: %v", ErrForged, err)
		}
	case rc == iso8583.RCApproved:
		return fmt.Errorf("%w: approval without a MAC", ErrForged)
	}
	return nil
}
