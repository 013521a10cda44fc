package issuersim

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/iso8583"
)

const (
	frameBytesMax = iso8583.FrameBytesMaxDefault
	// writeTimeout bounds one coalesced write; a peer that does not read
	// for that long loses its connection.
	writeTimeout = 5 * time.Second
	// writeBatchMax bounds how many responses one write coalesces.
	writeBatchMax = 64
	// acceptBackoffMax bounds the pause after a failed Accept (out of file
	// descriptors, say) before trying again.
	acceptBackoffMax = time.Second
)

// Serve accepts connections on l until Close and closes l. It returns nil
// after Close, ErrClosed (having closed l) when called after Close.
func (s *Issuer) Serve(l net.Listener) error {
	s.connMu.Lock()
	if s.closed {
		s.connMu.Unlock()
		l.Close()
		return ErrClosed
	}
	s.listeners[l] = struct{}{}
	s.connMu.Unlock()
	backoff := 5 * time.Millisecond
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.isClosed() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			s.log.Warn().Err(err).Dur("backoff", backoff).Msg("accept failed")
			select {
			case <-time.After(backoff):
			case <-s.done:
				return nil
			}
			backoff = min(2*backoff, acceptBackoffMax)
			continue
		}
		backoff = 5 * time.Millisecond
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
	// from zero.
	s.wg.Add(2)
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
	// in-flight bound and a slot is freed only after the send, so a stuck
	// writer stops the handlers and then the reader.
	out       chan []byte
	slots     chan struct{} // one per request in flight
	done      chan struct{} // closed when the connection is torn down
	closeOnce sync.Once
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
	defer c.s.forget(c)
	defer c.close()
	fr := iso8583.NewFrameReader(c.nc, frameBytesMax)
	for {
		frame, err := fr.Next()
		if err != nil {
			c.logReadError(err)
			return
		}
		msg, err := iso8583.Unpack(frame)
		if err != nil {
			c.log.Warn().Err(err).Int("bytes", len(frame)).Msg("unparseable frame, closing connection")
			return
		}
		req := parseRequest(msg)
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
		c.s.wg.Add(1)
		go c.handle(req, c.s.delay())
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

// handle waits out the request's latency on a timer, decides and hands the
// response to the writer.
func (c *conn) handle(req request, delay time.Duration) {
	defer c.s.wg.Done()
	defer func() { <-c.slots }()
	t := time.NewTimer(delay)
	select {
	case <-t.C:
	case <-c.done:
		t.Stop()
		return
	}
	resp, ok := c.s.respond(req, delay)
	if !ok {
		return
	}
	select {
	case c.out <- resp:
	case <-c.done:
	}
}

// writeLoop writes responses, coalescing whatever is pending into one write.
func (c *conn) writeLoop() {
	defer c.s.wg.Done()
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
