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

// requestBytesTypical sizes a packed request's buffer so that it is packed
// in one allocation. The buffer is handed to the connection's writer, which
// may still hold it after the request gave up (a time-out), so it is never
// reused: it is the one allocation of a fast exchange.
const requestBytesTypical = 320

// stanMax: a STAN is 6 digits (DE11).
const stanMax = 999999

// Answer is an issuer's answer as ExchangeBuilt returns it: the payload
// copied into a buffer the Answer owns, with the reader's parse of it (read
// once, never parsed again), so its fields stay valid until the Answer is
// used again. An Answer is reused from one exchange to the next (its buffer
// grows to the largest answer once) and is not safe for concurrent use.
type Answer struct {
	Fields iso8583.Fields
	buf    []byte
}

// Payload is the answer's frame payload, without the length header.
func (a *Answer) Payload() []byte { return a.buf }

// waiter is one request waiting for its answer: deliver copies the answer,
// parsed, into ans and sends nil on ch; fail sends the connection's error. Only the
// one that took the waiter out of pending (deliver, fail, or the request
// itself giving up) touches it, so a waiter is reused once its request has
// its result.
type waiter struct {
	ch    chan error
	ans   *Answer
	timer *time.Timer
}

var waiters = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &waiter{ch: make(chan error, 1), timer: t}
}}

// request is a request as the connection sends it: the STAN the caller
// set, if any, and its packing once the STAN is known.
type request interface {
	// callerSTAN is the DE11 the caller set (ok) or false when unset.
	callerSTAN() (stan uint32, ok bool, err error)
	// pack sets DE11 to stan when the caller did not, and packs.
	pack(stan uint32, dst []byte) ([]byte, error)
}

// builtRequest is a request in an iso8583.Builder: ExchangeBuilt's.
type builtRequest struct{ b *iso8583.Builder }

func (r builtRequest) callerSTAN() (uint32, bool, error) {
	v := r.b.Value(iso8583.FieldSTAN)
	if v == nil {
		return 0, false, nil
	}
	n, ok := parseSTAN(v)
	if !ok {
		return 0, false, fmt.Errorf("pack request to issuer: DE11 %q is not a STAN", v)
	}
	return n, true, nil
}

func (r builtRequest) pack(stan uint32, dst []byte) ([]byte, error) {
	if !r.b.Has(iso8583.FieldSTAN) {
		r.b.SetUint(iso8583.FieldSTAN, uint64(stan))
	}
	return r.b.Append(dst)
}

// moovRequest is a moov message: Exchange's.
type moovRequest struct{ m *moov.Message }

func (r moovRequest) callerSTAN() (uint32, bool, error) {
	v := iso8583.FieldValue(r.m, iso8583.FieldSTAN)
	if v == "" {
		return 0, false, nil
	}
	n, ok := parseSTAN([]byte(v))
	if !ok {
		return 0, false, fmt.Errorf("pack request to issuer: DE11 %q is not a STAN", v)
	}
	return n, true, nil
}

func (r moovRequest) pack(stan uint32, dst []byte) ([]byte, error) {
	if err := r.m.Field(iso8583.FieldSTAN, formatSTAN(stan)); err != nil {
		return nil, err
	}
	return iso8583.Pack(r.m) // off the hot path: moov's own buffer
}

// conn is one live, signed-on connection.
type conn struct {
	link    *Link
	netConn net.Conn
	writer  *iso8583.FrameWriter
	mu      sync.Mutex
	pending map[uint32]*waiter // by DE11
	broken  chan struct{}
	once    sync.Once
	cause   error
}

func newConn(l *Link, nc net.Conn) *conn {
	return &conn{
		link:    l,
		netConn: nc,
		writer:  iso8583.NewFrameWriter(nc, l.cfg.InflightMax, writeTimeout),
		pending: make(map[uint32]*waiter),
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
		c.pending = map[uint32]*waiter{}
		c.mu.Unlock()
		for _, w := range pending {
			w.ch <- lostError(cause)
		}
	})
}

// exchangeMoov is exchange for a moov message: the answer is unpacked by
// moov, for the callers off the hot path (network management, advices,
// tests).
func (c *conn) exchangeMoov(ctx context.Context, req *moov.Message, timeout time.Duration) (*moov.Message, error) {
	var ans Answer
	if err := c.exchange(ctx, moovRequest{req}, &ans, timeout); err != nil {
		return nil, err
	}
	// Fields accepted it, so moov does too (iso8583's FuzzFastAgreesWithMoov).
	resp, err := iso8583.Unpack(ans.Payload())
	if err != nil {
		return nil, fmt.Errorf("unpack response from issuer: %w", err)
	}
	return resp, nil
}

// exchange sends req and waits for its answer, read into ans.
func (c *conn) exchange(ctx context.Context, req request, ans *Answer, timeout time.Duration) error {
	w := waiters.Get().(*waiter)
	w.ans = ans
	err := c.send(ctx, req, w, timeout)
	w.ans = nil
	waiters.Put(w)
	return err
}

// send registers w, sends req and waits for its result. It returns only once
// nobody else holds w.
func (c *conn) send(ctx context.Context, req request, w *waiter, timeout time.Duration) error {
	want, set, err := req.callerSTAN()
	if err != nil {
		return err
	}
	stan, err := c.register(w, want, set)
	if err != nil {
		return err
	}
	payload, err := req.pack(stan, make([]byte, 0, requestBytesTypical))
	if err != nil {
		c.abandon(stan, w)
		return fmt.Errorf("pack request to issuer: %w", err)
	}
	if err := c.writer.Send(payload); err != nil {
		c.abandon(stan, w)
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	w.timer.Reset(timeout)
	defer w.timer.Stop()
	select {
	case err := <-w.ch:
		return err
	case <-w.timer.C:
		if !c.unregister(stan) {
			return claimed(w)
		}
		return ErrTimeout
	case <-ctx.Done():
		if !c.unregister(stan) {
			return claimed(w)
		}
		return fmt.Errorf("%w: %w", ErrLost, ctx.Err())
	}
}

// claimed waits for the result that deliver or fail took from pending just as
// the request gave up: they send it right after, and dropping it would lose
// an answer that is neither returned nor reported late.
func claimed(w *waiter) error {
	return <-w.ch
}

// abandon takes back a request that was never sent. When the connection
// failed meanwhile, fail has claimed w and sends it its error: that is
// received here, so w goes back to the pool empty.
func (c *conn) abandon(stan uint32, w *waiter) {
	if !c.unregister(stan) {
		<-w.ch
	}
}

// register reserves want as the request's STAN when set, or else a STAN
// from the link's sequence that is not pending on this connection.
func (c *conn) register(w *waiter, want uint32, set bool) (uint32, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.broken:
		return 0, ErrUnavailable
	default:
	}
	if set {
		if _, busy := c.pending[want]; busy {
			return 0, ErrBusy
		}
		c.pending[want] = w
		return want, nil
	}
	for range len(c.pending) + 1 {
		stan := c.link.nextSTAN()
		if _, busy := c.pending[stan]; !busy {
			c.pending[stan] = w
			return stan, nil
		}
	}
	return 0, ErrBusy
}

// unregister removes a request from pending and reports whether it was
// still there.
func (c *conn) unregister(stan uint32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.pending[stan]
	delete(c.pending, stan)
	return ok
}

// readLoop delivers responses to their waiting requests until the
// connection breaks. Each answer is parsed in place (iso8583.Fields) in the
// reader's buffer, matched by its DE11, and copied into its request's
// Answer; only an answer nobody waits for is unpacked by moov, for
// OnLateResponse.
func (c *conn) readLoop() {
	fr := iso8583.NewFrameReader(c.netConn, c.link.cfg.FrameBytesMax)
	var f iso8583.Fields
	for {
		frame, err := fr.Next()
		if err != nil {
			c.fail(fmt.Errorf("read: %w", err))
			return
		}
		if err := f.Parse(frame); err != nil {
			// Logged in moov's words, as before the fast codec: it refuses
			// what Fields refuses (FuzzFastAgreesWithMoov); refusals are
			// rare and may cost.
			if _, merr := iso8583.Unpack(frame); merr != nil {
				err = merr
			}
			c.link.cfg.Logger.Warn().Str("issuer", c.link.cfg.IssuerID).Err(err).Msg("unparseable response from issuer dropped")
			continue
		}
		c.deliver(&f, frame)
	}
}

func (c *conn) deliver(f *iso8583.Fields, frame []byte) {
	stan, ok := parseSTAN(f.Bytes(iso8583.FieldSTAN))
	var w *waiter
	if ok {
		c.mu.Lock()
		w, ok = c.pending[stan]
		delete(c.pending, stan)
		c.mu.Unlock()
	}
	if ok {
		w.ans.buf = f.CopyTo(&w.ans.Fields, w.ans.buf)
		w.ch <- nil
		return
	}
	c.late(f, frame)
}

// late reports an answer with no waiting request: it came after its
// request timed out, or the issuer answered something never asked.
func (c *conn) late(f *iso8583.Fields, frame []byte) {
	c.link.cfg.Logger.Warn().Str("issuer", c.link.cfg.IssuerID).Str("mti", f.MTI()).Bytes("stan", f.Bytes(iso8583.FieldSTAN)).
		Msg("issuer response with no waiting request (late or unknown)")
	c.link.cfg.Metrics.LateResponse()
	if c.link.OnLateResponse == nil {
		return
	}
	resp, err := iso8583.Unpack(frame)
	if err != nil {
		// Fields accepted it, and moov accepts what Fields accepts.
		c.link.cfg.Logger.Error().Str("issuer", c.link.cfg.IssuerID).Err(err).Msg("late response refused by moov, not reported")
		return
	}
	c.link.OnLateResponse(resp)
}

// parseSTAN reads a DE11 value (1 to 6 digits) as a number.
func parseSTAN(v []byte) (uint32, bool) {
	if len(v) == 0 || len(v) > 6 {
		return 0, false
	}
	var n uint32
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint32(c-'0')
	}
	return n, true
}

// formatSTAN writes a STAN as DE11 carries it: 6 digits.
func formatSTAN(n uint32) string {
	var b [6]byte
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[:])
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
