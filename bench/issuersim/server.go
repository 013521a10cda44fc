package issuersim

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/listener"
)

const (
	frameBytesMax = iso8583.FrameBytesMaxDefault
	// writeTimeout bounds one coalesced write; a peer that does not read
	// for that long loses its connection.
	writeTimeout = 5 * time.Second
	// writeBatchMax bounds how many responses one write coalesces.
	writeBatchMax = 64
)

// Serve accepts connections on l until Close and closes l. It returns nil
// after Close, ErrClosed (having closed l) when called after Close. A failed
// Accept (out of file descriptors, say) is waited out and retried
// (switch/listener.Retry); only a closed listener ends Serve.
func (s *Issuer) Serve(l net.Listener) error {
	s.connMu.Lock()
	if s.closed {
		s.connMu.Unlock()
		l.Close()
		return ErrClosed
	}
	s.listeners[l] = struct{}{}
	s.connMu.Unlock()
	retry := listener.Retry{Name: "issuersim " + s.id, Log: s.log}
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.isClosed() || !retry.Failed(err, s.done) {
				return nil
			}
			continue
		}
		retry.Accepted()
		s.startConn(nc)
	}
}

// Close stops accepting, closes every connection and waits for their
// goroutines. Requests not yet answered are dropped unanswered.
func (s *Issuer) Close() error {
	s.connMu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
		for l := range s.listeners {
			l.Close()
		}
		for c := range s.conns {
			c.close()
		}
	}
	s.connMu.Unlock()
	s.wg.Wait()
	return nil
}

// Down takes the issuer off the network until Up: every connection is
// closed, and connections accepted meanwhile are closed at once (the
// listeners stay bound, so the switch sees its connects succeed and then
// end, as with a host whose service has stopped). Down returns once the
// closed connections' goroutines are gone: no request is decided after it
// returns. Requests those connections had read and not yet decided never
// are; answers decided and not yet written are lost, their postings stand.
func (s *Issuer) Down() {
	s.connMu.Lock()
	if s.closed || s.down {
		s.connMu.Unlock()
		return
	}
	s.down = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		c.close()
		conns = append(conns, c)
	}
	s.connMu.Unlock()
	s.log.Info().Int("conns", len(conns)).Msg("down")
	for _, c := range conns {
		c.wg.Wait()
	}
}

// Up lets connections in again after Down.
func (s *Issuer) Up() {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.down && !s.closed {
		s.down = false
		s.log.Info().Msg("up")
	}
}

// IsDown reports whether the issuer is down.
func (s *Issuer) IsDown() bool {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	return s.down
}

func (s *Issuer) isClosed() bool {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	return s.closed
}

func (s *Issuer) startConn(nc net.Conn) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.closed {
		nc.Close()
		return
	}
	if s.down {
		s.log.Debug().Str("remote", nc.RemoteAddr().String()).Msg("connection refused: issuer down")
		nc.Close()
		return
	}
	if len(s.conns) >= connsMax {
		s.log.Warn().Str("remote", nc.RemoteAddr().String()).Int("conns_max", connsMax).Msg("connection refused: too many connections")
		nc.Close()
		return
	}
	c := &conn{
		s:     s,
		nc:    nc,
		log:   s.log.With().Str("remote", nc.RemoteAddr().String()).Logger(),
		out:   make(chan []byte, inflightPerConnMax),
		slots: make(chan struct{}, inflightPerConnMax),
		done:  make(chan struct{}),
	}
	s.conns[c] = struct{}{}
	// Added under connMu while not closed, so Close's Wait never races an Add
	// from zero; c.wg likewise before c is visible to Down.
	s.wg.Add(2)
	c.wg.Add(2)
	go c.readLoop()
	go c.writeLoop()
}

func (s *Issuer) forget(c *conn) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	delete(s.conns, c)
}

// conn is one connection from the switch.
type conn struct {
	s   *Issuer
	nc  net.Conn
	log zerolog.Logger
	// out holds packed responses for the writer. Its capacity equals the
	// in-flight bound and a slot is freed only after the send (two sends
	// for a duplicated answer), so a stuck writer stops the handlers and
	// then the reader.
	out       chan []byte
	slots     chan struct{} // one per request in flight
	done      chan struct{} // closed when the connection is torn down
	closeOnce sync.Once
	// wg counts this connection's goroutines (reader, writer, handlers),
	// each also counted in s.wg; Down waits on it.
	wg sync.WaitGroup
}

func (c *conn) close() {
	c.closeOnce.Do(func() {
		close(c.done)
		c.nc.Close()
	})
}

// readLoop reads frames and starts a handler per request. A frame that does
// not unpack ends the connection: its length header may be the only thing
// right about it, and the switch reconnects.
func (c *conn) readLoop() {
	defer c.s.wg.Done()
	defer c.wg.Done()
	defer c.s.forget(c)
	defer c.close()
	fr := iso8583.NewFrameReader(c.nc, frameBytesMax)
	var fields iso8583.Fields
	for {
		frame, err := fr.Next()
		if err != nil {
			c.logReadError(err)
			return
		}
		if err := fields.Parse(frame); err != nil {
			c.log.Warn().Err(err).Int("bytes", len(frame)).Msg("unparseable frame, closing connection")
			return
		}
		req := parseRequest(&fields)
		c.s.record(req)
		if iso8583.ResponseMTI(req.MTI) == "" {
			c.log.Warn().Str("mti", req.MTI).Msg("dropped: not a request")
			continue
		}
		select {
		case c.slots <- struct{}{}:
		case <-c.done:
			return
		}
		c.s.stats.requests.Add(1)
		c.s.wg.Add(1)
		c.wg.Add(1) // the reader's own count keeps c.wg above zero
		go c.handle(req, c.s.plan())
	}
}

func (c *conn) logReadError(err error) {
	select {
	case <-c.done:
		return // we closed it
	default:
	}
	if errors.Is(err, io.EOF) {
		c.log.Debug().Msg("connection closed by peer")
		return
	}
	c.log.Warn().Err(err).Msg("connection read failed, closing")
}

// handle waits out the request's latency on a timer, decides, and then
// applies the request's fault to the answer only: whatever happens to the
// answer, a posting the decision made stands.
func (c *conn) handle(req request, p plan) {
	defer c.s.wg.Done()
	defer c.wg.Done()
	defer func() { <-c.slots }()
	if !c.wait(p.delay) {
		return
	}
	resp, ok := c.s.respond(req, p)
	if !ok {
		return
	}
	c.s.stats.faults[p.fault].Add(1)
	switch p.fault {
	case faultDrop:
		return
	case faultDisconnect:
		c.log.Info().Str("stan", req.STAN).Msg("disconnected by fault injection")
		c.close()
		return
	case faultGarbage:
		resp = p.garbage
	case faultLate:
		if !c.wait(p.lateBy) {
			return
		}
	}
	// Counted before the answer leaves: a peer that has read it and then
	// takes a snapshot must find it counted. Uncounted if the connection
	// ends before the writer takes it.
	counted := p.fault != faultGarbage
	if counted {
		c.s.stats.answered.Add(1)
	}
	if !c.send(resp) {
		if counted {
			c.s.stats.answered.Add(^uint64(0))
		}
		return
	}
	if p.fault == faultDuplicate {
		c.send(resp)
	}
}

// wait sleeps d, false when the connection ends first. No latency, no
// timer: an issuer answering at once costs none.
func (c *conn) wait(d time.Duration) bool {
	if d <= 0 {
		select {
		case <-c.done:
			return false
		default:
			return true
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.done:
		return false
	}
}

// send hands a payload to the writer, false when the connection ends first.
func (c *conn) send(payload []byte) bool {
	select {
	case c.out <- payload:
		return true
	case <-c.done:
		return false
	}
}

// writeLoop writes responses, coalescing whatever is pending into one write.
func (c *conn) writeLoop() {
	defer c.s.wg.Done()
	defer c.wg.Done()
	buf := make([]byte, 0, 4096)
	for {
		var payload []byte
		select {
		case payload = <-c.out:
		case <-c.done:
			return
		}
		buf, _ = iso8583.AppendFrame(buf[:0], payload) // respond checked the size
	batch:
		for n := 1; n < writeBatchMax; n++ {
			select {
			case payload = <-c.out:
				buf, _ = iso8583.AppendFrame(buf, payload)
			default:
				break batch
			}
		}
		c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := c.nc.Write(buf); err != nil {
			c.log.Warn().Err(err).Msg("connection write failed, closing")
			c.close()
			return
		}
	}
}
