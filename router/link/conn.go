package link

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

// writeTimeout bounds one coalesced write to the issuer.
const writeTimeout = 2 * time.Second

// result is what a waiting request receives.
type result struct {
	resp *moov.Message
	err  error
}

// conn is one live, signed-on connection.
type conn struct {
	link    *Link
	netConn net.Conn
	writer  *iso8583.FrameWriter
	mu      sync.Mutex
	pending map[string]chan result // by DE11
	broken  chan struct{}
	once    sync.Once
	cause   error
}

func newConn(l *Link, nc net.Conn) *conn {
	return &conn{
		link:    l,
		netConn: nc,
		writer:  iso8583.NewFrameWriter(nc, l.cfg.InflightMax, writeTimeout),
		pending: make(map[string]chan result),
		broken:  make(chan struct{}),
	}
}

// fail marks the connection broken, closes it and fails every pending request.
func (c *conn) fail(cause error) {
	c.once.Do(func() {
		c.cause = cause
		close(c.broken)
		c.netConn.Close()
		c.mu.Lock()
		pending := c.pending
		c.pending = map[string]chan result{}
		c.mu.Unlock()
		for _, ch := range pending {
			ch <- result{err: lostError(cause)}
		}
	})
}

func (c *conn) exchange(ctx context.Context, req *moov.Message, timeout time.Duration) (*moov.Message, error) {
	ch := make(chan result, 1)
	stan, err := c.register(ch, iso8583.FieldValue(req, iso8583.FieldSTAN))
	if err != nil {
		return nil, err
	}
	if err := req.Field(iso8583.FieldSTAN, stan); err != nil {
		c.unregister(stan)
		return nil, err
	}
	payload, err := iso8583.Pack(req)
	if err != nil {
		c.unregister(stan)
		return nil, fmt.Errorf("pack request to issuer: %w", err)
	}
	if err := c.writer.Send(payload); err != nil {
		c.unregister(stan)
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		return r.resp, r.err
	case <-timer.C:
		if !c.unregister(stan) {
			return claimed(ch)
		}
		return nil, ErrTimeout
	case <-ctx.Done():
		if !c.unregister(stan) {
			return claimed(ch)
		}
		return nil, fmt.Errorf("%w: %w", ErrLost, ctx.Err())
	}
}

// claimed waits for the result that deliver or fail took from pending just as
// the request gave up: they send it right after, and dropping it would lose
// an answer that is neither returned nor reported late.
func claimed(ch chan result) (*moov.Message, error) {
	r := <-ch
	return r.resp, r.err
}

// register reserves want as the request's STAN, or when want is "" a STAN
// from the link's sequence that is not pending on this connection.
func (c *conn) register(ch chan result, want string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.broken:
		return "", ErrUnavailable
	default:
	}
	if want != "" {
		if _, busy := c.pending[want]; busy {
			return "", ErrBusy
		}
		c.pending[want] = ch
		return want, nil
	}
	for range len(c.pending) + 1 {
		stan := c.link.nextSTAN()
		if _, busy := c.pending[stan]; !busy {
			c.pending[stan] = ch
			return stan, nil
		}
	}
	return "", ErrBusy
}

// unregister removes a request from pending and reports whether it was
// still there.
func (c *conn) unregister(stan string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.pending[stan]
	delete(c.pending, stan)
	return ok
}

// readLoop delivers responses to their waiting requests until the
// connection breaks.
func (c *conn) readLoop() {
	fr := iso8583.NewFrameReader(c.netConn, c.link.cfg.FrameBytesMax)
	for {
		frame, err := fr.Next()
		if err != nil {
			c.fail(fmt.Errorf("read: %w", err))
			return
		}
		resp, err := iso8583.Unpack(frame)
		if err != nil {
			c.link.cfg.Logger.Warn().Str("issuer", c.link.cfg.IssuerID).Err(err).Msg("unparseable response from issuer dropped")
			continue
		}
		c.deliver(resp)
	}
}

func (c *conn) deliver(resp *moov.Message) {
	stan := iso8583.FieldValue(resp, iso8583.FieldSTAN)
	c.mu.Lock()
	ch, ok := c.pending[stan]
	delete(c.pending, stan)
	c.mu.Unlock()
	if ok {
		ch <- result{resp: resp}
		return
	}
	mti, _ := resp.GetMTI()
	c.link.cfg.Logger.Warn().Str("issuer", c.link.cfg.IssuerID).Str("mti", mti).Str("stan", stan).
		Msg("issuer response with no waiting request (late or unknown)")
	c.link.cfg.Metrics.LateResponse()
	if c.link.OnLateResponse != nil {
		c.link.OnLateResponse(resp)
	}
}

// lostError is what requests pending on a broken connection get: ErrLost,
// wrapping the cause (ErrClosed when the link is closing).
func lostError(cause error) error {
	return fmt.Errorf("%w: %w", ErrLost, cause)
}

func (c *conn) isBroken() bool {
	select {
	case <-c.broken:
		return true
	default:
		return false
	}
}

// errEchoFailed closes a connection whose health check went unanswered.
var errEchoFailed = errors.New("echo test failed")
