// Package link keeps the switch's connections to one issuer: a small pool of
// persistent TCP connections, each with one reader and one coalescing writer.
// The link assigns every request its own STAN (DE11) and matches responses
// by it, so many requests share a connection and are answered in any order.
//
// Each connection slot is a supervisor loop: dial (with backoff), sign on
// (0800/001), serve until the connection breaks or an echo (0800/301) fails,
// fail every request still pending on it, then dial again. Exchange only uses
// connections that are signed on; with none, it fails at once with
// ErrUnavailable instead of queueing, so the terminal gets 91 fast.
//
// Authorizations take ExchangeBuilt, which never touches moov: the request
// is packed from an iso8583.Builder, and the reader parses each answer in
// place (iso8583.Fields), matches it by DE11 and copies it into the
// waiting request's reused Answer. Exchange, for the messages off the hot
// path (network management, advices, token verification), packs and
// unpacks with moov over the same framing and matching. Only a refused
// answer (logged in moov's words) and a late one (handed to
// OnLateResponse as a moov message) are unpacked by moov on the reader.
package link

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	moov "github.com/moov-io/iso8583"
	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/metrics"
)

var (
	// ErrUnavailable: no connection to the issuer is up.
	ErrUnavailable = errors.New("issuer link unavailable")
	// ErrTimeout: the issuer did not answer within the request time-out.
	ErrTimeout = errors.New("issuer did not answer in time")
	// ErrBusy: the link already carries its maximum of requests in flight.
	ErrBusy = errors.New("issuer link at its in-flight maximum")
	// ErrClosed: the link was closed.
	ErrClosed = errors.New("issuer link closed")
	// ErrLost: the request was handed to a connection that then broke (or
	// the link closed, or the caller gave up) before the answer came: the
	// issuer may have acted on it.
	ErrLost = errors.New("issuer connection lost with the request sent")
	// ErrCircuitOpen: the link failed too often lately; requests are not
	// sent until the cool-down ends.
	ErrCircuitOpen = errors.New("issuer link circuit open")
)

// inflightMaxLimit bounds InflightMax: it also sizes each connection's
// write queue.
const inflightMaxLimit = 65536

// Sent reports whether an Exchange error leaves the issuer possibly acting
// on the request (time-out, lost connection): the caller owes it a
// reversal. Every other error means the request never left the switch.
func Sent(err error) bool {
	return errors.Is(err, ErrTimeout) || errors.Is(err, ErrLost)
}

// Config bounds and times one issuer link.
type Config struct {
	IssuerID       string
	Address        string
	Connections    int           // pool size
	InflightMax    int           // requests in flight over the whole link
	RequestTimeout time.Duration // per request; the terminal gets 91 after it
	EchoInterval   time.Duration // health check on each idle connection
	DialTimeout    time.Duration
	BackoffMin     time.Duration // first reconnect delay, doubled up to BackoffMax
	BackoffMax     time.Duration
	FrameBytesMax  int
	// The circuit breaker: after BreakerFailures time-outs or lost
	// connections in a row, Exchange refuses with ErrCircuitOpen for
	// BreakerCooldown; then requests flow again, and one more failure
	// opens it again at once.
	BreakerFailures int
	BreakerCooldown time.Duration
	// STANBlock partitions the STAN range between the nodes of a cluster
	// that talk to the same issuer: block k (1..STANBlocksMax) numbers its
	// requests k00000..k99999, so the first digit of DE11 names the node.
	// An issuer knows a request by STAN and DE7 (whole seconds); two nodes
	// numbering from 1 would send the same pair within one second and the
	// issuer would answer the second node's request as a retry of the
	// first's. 0: a node alone, 000001..999999.
	STANBlock int
	Logger    zerolog.Logger
	Metrics   *metrics.Link // nil: none
}

func (c Config) validate() error {
	switch {
	case c.IssuerID == "" || c.Address == "":
		return errors.New("link: issuer id and address are required")
	case c.Connections < 1 || c.Connections > 64:
		return fmt.Errorf("link %s: connections %d outside 1..64", c.IssuerID, c.Connections)
	case c.InflightMax < 1 || c.InflightMax > inflightMaxLimit:
		return fmt.Errorf("link %s: inflight maximum %d outside 1..%d", c.IssuerID, c.InflightMax, inflightMaxLimit)
	case c.RequestTimeout <= 0 || c.EchoInterval <= 0 || c.DialTimeout <= 0:
		return fmt.Errorf("link %s: time-outs must be positive", c.IssuerID)
	case c.BackoffMin <= 0 || c.BackoffMax < c.BackoffMin:
		return fmt.Errorf("link %s: backoff must be positive with max >= min", c.IssuerID)
	case c.BreakerFailures < 1 || c.BreakerCooldown <= 0:
		return fmt.Errorf("link %s: breaker needs failures >= 1 and a positive cool-down", c.IssuerID)
	case c.FrameBytesMax <= 0 || c.FrameBytesMax > 65535: // the frame header is 2 bytes
		return fmt.Errorf("link %s: frame bound %d outside 1..65535", c.IssuerID, c.FrameBytesMax)
	case c.STANBlock < 0 || c.STANBlock > STANBlocksMax:
		return fmt.Errorf("link %s: STAN block %d outside 0..%d", c.IssuerID, c.STANBlock, STANBlocksMax)
	}
	return nil
}

// Link is the pool of connections to one issuer.
type Link struct {
	cfg      Config
	slots    []*slot
	next     atomic.Uint32
	stan     atomic.Uint32
	inflight atomic.Int64
	// failures counts time-outs and lost connections in a row; openUntil
	// is when the open breaker lets requests through again (Unix ns).
	failures  atomic.Int64
	openUntil atomic.Int64
	closing   chan struct{}
	closeMu   sync.Once
	wg        sync.WaitGroup
	stateMu   sync.Mutex // orders publications of the link state
	// OnLateResponse, when set before Start, is called for a response that
	// arrives after its request timed out.
	OnLateResponse func(resp *moov.Message)
}

// New checks cfg and returns a link that is not yet connected.
func New(cfg Config) (*Link, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	l := &Link{cfg: cfg, closing: make(chan struct{})}
	for i := range cfg.Connections {
		l.slots = append(l.slots, &slot{link: l, index: i})
	}
	return l, nil
}

// Start launches the connection supervisors. It does not wait for them.
func (l *Link) Start() {
	for _, s := range l.slots {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			s.supervise()
		}()
	}
}

// Close stops every connection; pending requests fail with ErrClosed.
func (l *Link) Close() {
	l.closeMu.Do(func() { close(l.closing) })
	for _, s := range l.slots {
		s.closeConn()
	}
	l.wg.Wait()
}

func (l *Link) isClosing() bool {
	select {
	case <-l.closing:
		return true
	default:
		return false
	}
}

// IssuerID names the issuer this link reaches.
func (l *Link) IssuerID() string { return l.cfg.IssuerID }

// Up reports whether at least one connection is signed on.
func (l *Link) Up() bool {
	for _, s := range l.slots {
		if s.current() != nil {
			return true
		}
	}
	return false
}

// Exchange sends req to the issuer and waits for its response. It sets DE11
// to a switch-assigned STAN unless the caller set one; the caller sets every
// other field. It packs and unpacks with moov: for the messages off the hot
// path (advices, token verification, tests); authorizations take
// ExchangeBuilt.
func (l *Link) Exchange(ctx context.Context, req *moov.Message) (*moov.Message, error) {
	var resp *moov.Message
	err := l.do(func(c *conn) (err error) {
		resp, err = c.exchangeMoov(ctx, req, l.cfg.RequestTimeout)
		return err
	})
	return resp, err
}

// ExchangeBuilt sends the request built in req and reads the issuer's
// answer into ans, parsed in place, without moov: the hot path. DE11 is
// set as Exchange sets it (the caller's, or a STAN from the link's
// sequence written into req). The packed request is the exchange's one
// allocation: the connection's writer may still hold it after a time-out.
// Errors are Exchange's.
func (l *Link) ExchangeBuilt(ctx context.Context, req *iso8583.Builder, ans *Answer) error {
	return l.do(func(c *conn) error {
		return c.exchange(ctx, builtRequest{req}, ans, l.cfg.RequestTimeout)
	})
}

// do runs one exchange on a signed-on connection, within the link's bounds
// (closed, breaker, in-flight maximum), and counts its outcome.
func (l *Link) do(exchange func(*conn) error) error {
	if l.isClosing() {
		return ErrClosed
	}
	if l.circuitOpen(time.Now()) {
		return ErrCircuitOpen
	}
	c := l.pick()
	if c == nil {
		return ErrUnavailable
	}
	if l.inflight.Add(1) > int64(l.cfg.InflightMax) {
		l.inflight.Add(-1)
		return ErrBusy
	}
	defer l.inflight.Add(-1)
	l.cfg.Metrics.ExchangeStarted()
	defer l.cfg.Metrics.ExchangeFinished()
	err := exchange(c)
	l.recordOutcome(err, time.Now())
	return err
}

// circuitOpen reports whether the breaker refuses requests at now.
func (l *Link) circuitOpen(now time.Time) bool {
	return now.UnixNano() < l.openUntil.Load()
}

// recordOutcome counts consecutive failures and opens the breaker.
func (l *Link) recordOutcome(err error, now time.Time) {
	if !Sent(err) {
		if err == nil {
			l.failures.Store(0)
		}
		return
	}
	if l.failures.Add(1) >= int64(l.cfg.BreakerFailures) {
		l.openUntil.Store(now.Add(l.cfg.BreakerCooldown).UnixNano())
	}
}

// CircuitOpen reports whether the breaker refuses requests now.
func (l *Link) CircuitOpen() bool { return l.circuitOpen(time.Now()) }

// NextSTAN reserves a STAN from the link's sequence, for a request whose
// DE11 must be known before it is sent (an advice resent with the same
// STAN). Exchange uses a DE11 already set on the request.
func (l *Link) NextSTAN() string { return formatSTAN(l.nextSTAN()) }

// publishState sets the link-up gauge from the slots as they are now. Each
// slot publishes after its own change, under stateMu, so the last
// publication reads the last change and the gauge never sticks stale.
func (l *Link) publishState() {
	l.stateMu.Lock()
	defer l.stateMu.Unlock()
	l.cfg.Metrics.SetUp(l.Up())
}

// pick returns the next signed-on connection, round robin, or nil.
func (l *Link) pick() *conn {
	n := uint32(len(l.slots))
	start := l.next.Add(1)
	for i := range n {
		if c := l.slots[(start+i)%n].current(); c != nil && !c.isBroken() {
			return c
		}
	}
	return nil
}

// STANBlocksMax is the number of disjoint STAN blocks, so of cluster
// nodes that may share an issuer: 9 blocks of 100,000 (block 0, 000000 to
// 099999, is left out because 000000 is not a STAN).
const STANBlocksMax = 9

// stanBlockSize is the size of one block.
const stanBlockSize = 100000

// stanRange is the first STAN of the link's range and how many it holds.
func (c Config) stanRange() (first, size uint32) {
	if c.STANBlock == 0 {
		return 1, stanMax
	}
	return uint32(c.STANBlock) * stanBlockSize, stanBlockSize
}

// nextSTAN returns the next STAN of the link's range (1..999999 alone,
// its block in a cluster), wrapping within it. A STAN still pending on
// the connection (after a full wrap) is skipped by the connection itself.
func (l *Link) nextSTAN() uint32 {
	first, size := l.cfg.stanRange()
	return first + (l.stan.Add(1)-1)%size
}
