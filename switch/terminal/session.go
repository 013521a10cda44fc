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
	writer   *iso8583.FrameWriter
	slots    chan struct{} // one token per request in flight
	requests sync.WaitGroup
	stopping atomic.Bool
	log      zerolog.Logger
}

func newSession(s *Server, nc net.Conn) *session {
	return &session{
		srv:    s,
		conn:   nc,
		writer: iso8583.NewFrameWriter(nc, s.cfg.InflightPerConnectionMax+1, s.cfg.WriteTimeout),
		slots:  make(chan struct{}, s.cfg.InflightPerConnectionMax),
		log:    s.cfg.Logger.With().Str("remote", nc.RemoteAddr().String()).Logger(),
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
		c.conn.SetReadDeadline(time.Now().Add(c.srv.cfg.IdleTimeout))
		if c.stopping.Load() {
			return
		}
		frame, err := fr.Next()
		if err != nil {
			c.logReadEnd(err)
			return
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
		go c.process(msg, from)
	}
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
