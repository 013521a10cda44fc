package terminal

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	moov "github.com/moov-io/iso8583"
	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/acquirer"
	"github.com/tapswitch/tapswitch/switch/authorize"
	"github.com/tapswitch/tapswitch/switch/metrics"
)

// session is one terminal connection.
type session struct {
	srv      *Server
	conn     net.Conn
	writer   *answerWriter
	slots    chan struct{} // one token per request in flight
	requests sync.WaitGroup
	stopping atomic.Bool
	log      zerolog.Logger
	// The reader's own: the frame parsed in place, and when the read
	// deadline was last moved.
	fields     iso8583.Fields
	deadlineAt time.Time
}

func newSession(s *Server, nc net.Conn) *session {
	return &session{
		srv:    s,
		conn:   nc,
		writer: newAnswerWriter(nc, s.cfg.WriteTimeout),
		slots:  make(chan struct{}, s.cfg.InflightPerConnectionMax),
		log:    s.cfg.Logger.With().Str("remote", nc.RemoteAddr().String()).Logger(),
	}
}

// abort makes the coming Close reset the connection instead of closing it
// gracefully. A terminal cut off for not reading would otherwise keep the
// socket in FIN-WAIT behind answers it will never read (a half-written
// batch among them), and, if the reader had drained its side, never learn
// that it was cut off: its writes would block instead of failing.
func abort(nc net.Conn) {
	if l, ok := nc.(interface{ SetLinger(sec int) error }); ok {
		l.SetLinger(0)
	}
}

// stopReading makes the reader return at its next read, for a drain.
func (c *session) stopReading() {
	c.stopping.Store(true)
	c.conn.SetReadDeadline(time.Now())
}

// run reads until the terminal leaves, the connection fails or the server
// drains; then it waits for the requests in flight, flushes their answers
// and closes.
func (c *session) run() {
	defer c.conn.Close()
	go func() {
		// A failed write (a terminal that stopped reading) ends the
		// connection; after a normal flush this closes it as well.
		<-c.writer.Done()
		if c.writer.failed() {
			abort(c.conn)
		}
		c.conn.Close()
	}()
	c.readLoop()
	c.requests.Wait()
	if err := c.writer.Close(); err != nil {
		c.log.Debug().Err(err).Msg("answers not written")
	}
}

func (c *session) readLoop() {
	fr := iso8583.NewFrameReader(c.conn, c.srv.cfg.FrameBytesMax)
	for {
		// Deadline first, then the flag: a drain that lands between the two
		// still finds the reader, since it sets the flag before its deadline.
		c.moveReadDeadline()
		if c.stopping.Load() {
			return
		}
		frame, err := fr.Next()
		if err != nil {
			c.logReadEnd(err)
			return
		}
		if c.srv.fast != nil {
			handled, ok := c.readRequest(frame)
			if !ok {
				return
			}
			if handled {
				continue
			}
		}
		msg, err := iso8583.Unpack(frame)
		if err != nil {
			if !c.answerFormatError(msg, err) {
				return
			}
			continue
		}
		// Checked now, on the frame as it came: the reader reuses its buffer.
		from := c.srv.cfg.Senders.Check(frame, iso8583.FieldValue(msg, iso8583.FieldTerminalID))
		select {
		case c.slots <- struct{}{}:
		case <-c.writer.Done():
			return
		}
		c.requests.Add(1)
		c.srv.workers.run(func() { c.process(msg, from) })
	}
}

// idleSlackDivisor sets how lazily the idle deadline follows the frames:
// it is moved only when it would move by more than IdleTimeout/16, and
// then to IdleTimeout + IdleTimeout/16 ahead. Setting it on every frame
// cost a timer update per request; this way a busy connection moves it a
// few times per idle period, and a silent one is still closed after
// between IdleTimeout and 17/16 of it.
const idleSlackDivisor = 16

func (c *session) moveReadDeadline() {
	idle := c.srv.cfg.IdleTimeout
	now := time.Now()
	if now.Sub(c.deadlineAt) < idle/idleSlackDivisor {
		return
	}
	c.deadlineAt = now
	c.conn.SetReadDeadline(now.Add(idle + idle/idleSlackDivisor))
}

// readRequest takes frame down the hot path when it is a well-formed 0100
// or 0200: parsed in place, read into the pipeline's Request, its MAC
// checked, and handed to a request goroutine. handled is false for any
// other frame, which the caller reads with moov as before: a malformed
// one (so its FormatError, log line and echoed answer are moov's, word for
// word), another MTI, or a request ParseFields refuses (the pipeline then
// refuses it in its own order, the sender's check first). ok is false when
// the connection is ending.
func (c *session) readRequest(frame []byte) (handled, ok bool) {
	if c.fields.Parse(frame) != nil {
		return false, true
	}
	if mti := c.fields.MTI(); mti != iso8583.MTIAuthRequest && mti != iso8583.MTIFinancialRequest {
		return false, true
	}
	req, err := authorize.ParseFields(&c.fields)
	if err != nil {
		return false, true
	}
	from := c.srv.cfg.Senders.Check(frame, req.TerminalID)
	select {
	case c.slots <- struct{}{}:
	case <-c.writer.Done():
		return true, false
	}
	c.requests.Add(1)
	c.srv.workers.run(func() { c.processRequest(req, from) })
	return true, true
}

// processRequest is process for a request read by readRequest: the
// pipeline answers it as typed values, and the answer is packed by a
// Builder.
func (c *session) processRequest(req authorize.Request, from acquirer.Identity) {
	c.srv.cfg.Metrics.RequestStarted()
	defer func() {
		if r := recover(); r != nil {
			c.log.Error().Interface("panic", r).Msg("request panicked: answered 96")
			a := authorize.EchoRequest(req, iso8583.RCSystemError)
			c.sendAnswer(&a, from.AnswerKey())
		}
		<-c.slots
		c.srv.cfg.Metrics.RequestFinished()
		c.requests.Done()
	}()
	a := c.srv.fast.HandleRequest(context.Background(), req, from)
	c.sendAnswer(&a, from.AnswerKey())
}

// packer is a Builder and its output buffer, reused across answers.
type packer struct {
	b   iso8583.Builder
	buf []byte
}

var packers = sync.Pool{New: func() any { return &packer{buf: make([]byte, 0, 512)} }}

// sendAnswer packs a, MACed under key unless key is nil, and queues it.
// An answer that does not pack (a bug) is replaced by a bare one, as send
// does.
func (c *session) sendAnswer(a *authorize.Answer, key []byte) {
	p := packers.Get().(*packer)
	defer packers.Put(p)
	a.Build(&p.b)
	payload, err := packWith(&p.b, p.buf[:0], key)
	if err != nil {
		c.log.Error().Err(err).Msg("answer does not pack")
		p.b.Reset(iso8583.ResponseMTI(a.Request.MTI))
		if len(a.Request.STAN) <= 6 {
			p.b.Set(iso8583.FieldSTAN, a.Request.STAN)
		}
		p.b.Set(iso8583.FieldResponseCode, iso8583.RCSystemError)
		if payload, err = packWith(&p.b, p.buf[:0], key); err != nil {
			return
		}
	}
	p.buf = payload
	if err := c.writer.Send(payload); err != nil {
		c.log.Debug().Err(err).Msg("answer not sent: connection gone")
	}
}

func packWith(b *iso8583.Builder, dst, key []byte) ([]byte, error) {
	if key == nil {
		return b.Append(dst)
	}
	return b.AppendSigned(dst, key)
}

// logReadEnd says why a connection stopped being read.
func (c *session) logReadEnd(err error) {
	switch {
	case c.stopping.Load():
		c.log.Debug().Msg("connection drained")
	case errors.Is(err, io.EOF):
		c.log.Debug().Msg("terminal closed the connection")
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.log.Info().Dur("idle", c.srv.cfg.IdleTimeout).Msg("idle connection closed")
	case errors.Is(err, iso8583.ErrFrameTooLarge), errors.Is(err, iso8583.ErrEmptyFrame):
		c.srv.cfg.Metrics.FormatError(metrics.StageFrame)
		c.log.Warn().Err(err).Msg("bad frame header: connection closed")
	default:
		c.log.Info().Err(err).Msg("connection closed")
	}
}

// answerFormatError answers 30 to a malformed request whose MTI could be
// read. It returns false when the connection should close instead.
func (c *session) answerFormatError(msg *moov.Message, err error) bool {
	var fe *iso8583.FormatError
	if !errors.As(err, &fe) || iso8583.ResponseMTI(fe.MTI) == "" {
		c.srv.cfg.Metrics.FormatError(metrics.StageFrame)
		c.log.Warn().Err(err).Msg("unreadable message: connection closed")
		return false
	}
	c.srv.cfg.Metrics.FormatError(metrics.StageMessage)
	c.log.Info().Err(err).Str("mti", fe.MTI).Msg("malformed request answered 30")
	if resp := authorize.EchoAnswer(msg, iso8583.RCFormatError); resp != nil {
		c.send(resp, msg, nil)
	}
	return true
}

// process handles one request in its own goroutine. A panic becomes a 96
// for this request only.
func (c *session) process(msg *moov.Message, from acquirer.Identity) {
	c.srv.cfg.Metrics.RequestStarted()
	defer func() {
		if r := recover(); r != nil {
			c.log.Error().Interface("panic", r).Msg("request panicked: answered 96")
			if resp := authorize.EchoAnswer(msg, iso8583.RCSystemError); resp != nil {
				c.send(resp, msg, from.AnswerKey())
			}
		}
		<-c.slots
		c.srv.cfg.Metrics.RequestFinished()
		c.requests.Done()
	}()
	if resp := c.srv.handler.Handle(context.Background(), msg, from); resp != nil {
		c.send(resp, msg, from.AnswerKey())
	}
}

// send packs and queues an answer, with its MAC under key unless key is
// nil. An answer that does not pack (a bug or an echo of bad content) is
// replaced by a bare one.
func (c *session) send(resp, req *moov.Message, key []byte) {
	payload, err := pack(resp, key)
	if err != nil {
		c.log.Error().Err(err).Msg("answer does not pack")
		if payload, err = pack(bareAnswer(req), key); err != nil {
			return
		}
	}
	if err := c.writer.Send(payload); err != nil {
		c.log.Debug().Err(err).Msg("answer not sent: connection gone")
	}
}

func pack(resp *moov.Message, key []byte) ([]byte, error) {
	if key == nil {
		return iso8583.Pack(resp)
	}
	return iso8583.PackSigned(resp, key)
}

// bareAnswer is the smallest answer a terminal can match: MTI, STAN, 96.
func bareAnswer(req *moov.Message) *moov.Message {
	mti, _ := req.GetMTI()
	m := iso8583.NewMessage()
	m.MTI(iso8583.ResponseMTI(mti))
	if stan, err := req.GetString(iso8583.FieldSTAN); err == nil && len(stan) <= 6 {
		m.Field(iso8583.FieldSTAN, stan)
	}
	m.Field(iso8583.FieldResponseCode, iso8583.RCSystemError)
	return m
}
