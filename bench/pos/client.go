// Package pos is a POS terminal on the wire contract: it builds token
// requests the way a contactless terminal does and sends them over one TCP
// connection, many in flight at once, matching answers by STAN. termsim, the
// bench harness and the end-to-end tests all tap through it.
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
)

// pendingMax bounds the requests one client has in flight.
const pendingMax = 1024

// ErrClosed is returned for requests on a closed or broken connection.
var ErrClosed = errors.New("terminal connection closed")

// Client is one terminal connection to the switch.
type Client struct {
	conn    net.Conn
	writer  *iso8583.FrameWriter
	mu      sync.Mutex
	pending map[string]chan *moov.Message // by DE11
	done    chan struct{}
	err     error
}

// Dial connects to the switch's terminal listener.
func Dial(addr string, timeout time.Duration) (*Client, error) {
	nc, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	c := &Client{
		conn:    nc,
		writer:  iso8583.NewFrameWriter(nc, pendingMax, 5*time.Second),
		pending: make(map[string]chan *moov.Message),
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

// Do sends msg (its DE11 set) and waits for the answer with the same STAN.
func (c *Client) Do(ctx context.Context, msg *moov.Message) (*moov.Message, error) {
	stan := iso8583.FieldValue(msg, iso8583.FieldSTAN)
	if stan == "" {
		return nil, errors.New("request has no STAN")
	}
	ch := make(chan *moov.Message, 1)
	if err := c.register(stan, ch); err != nil {
		return nil, err
	}
	defer c.unregister(stan)
	payload, err := iso8583.Pack(msg)
	if err != nil {
		return nil, err
	}
	if err := c.writer.Send(payload); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrClosed, err)
	}
	select {
	case resp := <-ch:
		return resp, nil
	case <-c.done:
		return nil, fmt.Errorf("%w: %v", ErrClosed, c.err)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *Client) register(stan string, ch chan *moov.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, dup := c.pending[stan]; dup {
		return fmt.Errorf("STAN %s already in flight on this connection", stan)
	}
	if len(c.pending) >= pendingMax {
		return fmt.Errorf("%d requests already in flight", pendingMax)
	}
	c.pending[stan] = ch
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
	for {
		frame, err := fr.Next()
		if err != nil {
			c.err = err
			return
		}
		resp, err := iso8583.Unpack(frame)
		if err != nil {
			c.err = fmt.Errorf("unreadable answer from the switch: %w", err)
			return
		}
		stan := iso8583.FieldValue(resp, iso8583.FieldSTAN)
		c.mu.Lock()
		ch := c.pending[stan]
		c.mu.Unlock()
		if ch != nil {
			ch <- resp
		}
	}
}
