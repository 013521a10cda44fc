// Package terminal is the switch's TCP server for POS terminals.
//
// Each connection has one reader goroutine (frames read into a reused
// buffer, the length checked before the payload is read), one goroutine per
// request in flight (at most InflightPerConnectionMax; when all are busy the
// reader stops reading, and TCP pushes back on the terminal), and one writer
// that coalesces answers into one write per wakeup (writer.go). Answers go
// out as they complete, in any order: terminals match them by STAN.
//
// The hot path (see the iso8583 package doc): when the handler is a
// RequestHandler, the reader parses each frame in place (iso8583.Fields)
// and a well-formed 0100 or 0200 is read straight into an
// authorize.Request and answered as typed values, packed and MACed by an
// iso8583.Builder into a reused buffer. Every other frame is read with
// moov as before, so a refusal's log line and echoed answer are word for
// word what they were; TestHotPathAnswersAsMoovPath holds the two paths
// to the same bytes.
//
// Bad input never takes the server down: a frame whose MTI can be read but
// that breaks the contract is answered 30; a frame over the size bound, a
// zero length or unreadable bytes close that one connection with a log line;
// a panic inside a request is answered 96.
//
// Every request is authenticated here, on the frame's raw bytes, before
// the pipeline sees it: the session checks its MAC (switch/acquirer) and
// hands the pipeline the resulting Identity with the message, so no path
// reaches the pipeline without one. Answers to an authenticated request
// carry a MAC under the same terminal's key.
package terminal

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	moov "github.com/moov-io/iso8583"
	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/switch/acquirer"
	"github.com/tapswitch/tapswitch/switch/authorize"
	"github.com/tapswitch/tapswitch/switch/listener"
	"github.com/tapswitch/tapswitch/switch/metrics"
)

// Handler answers one message from the sender the session established;
// nil means no answer.
type Handler interface {
	Handle(ctx context.Context, msg *moov.Message, from acquirer.Identity) *moov.Message
}

// RequestHandler is a Handler that also answers the hot path's requests
// (0100, 0200) read straight from the frame into an authorize.Request;
// the session packs its typed answer with an iso8583.Builder. For the same
// request it must answer as Handle would (authorize.Pipeline does). A
// server whose handler is a plain Handler reads every frame with moov.
type RequestHandler interface {
	Handler
	HandleRequest(ctx context.Context, req authorize.Request, from acquirer.Identity) authorize.Answer
}

// Config bounds the server.
type Config struct {
	ConnectionsMax           int           // connections at once; more are closed on accept
	InflightPerConnectionMax int           // requests being processed per connection
	FrameBytesMax            int           // one message, header excluded
	IdleTimeout              time.Duration // a connection silent this long (and at most 1/16 longer) is closed
	WriteTimeout             time.Duration // one coalesced write
	Logger                   zerolog.Logger
	Metrics                  *metrics.Set // nil: none
	// Senders checks each request's MAC against the registry and the
	// acquirers' keys (docs/wire.md section 11). Required: there is no
	// unauthenticated mode.
	Senders *acquirer.Checker
}

func (c Config) validate() error {
	switch {
	case c.ConnectionsMax < 1:
		return errors.New("terminal server: connections maximum must be positive")
	case c.InflightPerConnectionMax < 1:
		return errors.New("terminal server: in-flight maximum must be positive")
	case c.FrameBytesMax < 20 || c.FrameBytesMax > 65535:
		return fmt.Errorf("terminal server: frame bound %d outside 20..65535", c.FrameBytesMax)
	case c.IdleTimeout <= 0 || c.WriteTimeout <= 0:
		return errors.New("terminal server: time-outs must be positive")
	case c.Senders == nil:
		return errors.New("terminal server: no sender checker (acquirer registry and keys)")
	}
	return nil
}

// Server serves terminals on one listener.
type Server struct {
	cfg      Config
	handler  Handler
	fast     RequestHandler // handler, when it takes the hot path's requests
	listener net.Listener
	mu       sync.Mutex
	conns    map[*session]struct{}
	draining bool
	stop     chan struct{} // closed by Shutdown: ends an accept back-off and the idle workers
	workers  *workers      // run the requests
	wg       sync.WaitGroup
	open     atomic.Int64
}

// New returns a server that passes every message to h.
func New(cfg Config, h Handler) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	fast, _ := h.(RequestHandler)
	stop := make(chan struct{})
	return &Server{cfg: cfg, handler: h, fast: fast, conns: make(map[*session]struct{}), stop: stop,
		workers: newWorkers(stop)}, nil
}

// Connections is the number of terminal connections open now.
func (s *Server) Connections() int64 { return s.open.Load() }

// Serve accepts connections until Shutdown. It returns nil after Shutdown,
// and net.ErrClosed if l is closed by someone else. Any other Accept error
// (out of file descriptors, a connection aborted before it was taken) is
// passing: Serve backs off and accepts again (switch/listener.Retry), so a
// flood of connections never ends the server.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	s.listener = l
	s.mu.Unlock()
	retry := listener.Retry{Name: "terminal", Log: s.cfg.Logger, Observer: s.cfg.Metrics.Listener(metrics.ListenerTerminal)}
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.isDraining() {
				return nil
			}
			if retry.Failed(err, s.stop) {
				continue
			}
			if s.isDraining() {
				return nil
			}
			return err
		}
		retry.Accepted()
		s.admit(nc)
	}
}

// admit starts a session for nc, or closes it when the server is full or
// draining.
func (s *Server) admit(nc net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		nc.Close()
		return
	}
	if len(s.conns) >= s.cfg.ConnectionsMax {
		s.cfg.Logger.Warn().Str("remote", nc.RemoteAddr().String()).Int("max", s.cfg.ConnectionsMax).
			Msg("connection refused: at the connection maximum")
		s.cfg.Metrics.ConnectionRefused()
		nc.Close()
		return
	}
	sess := newSession(s, nc)
	s.conns[sess] = struct{}{}
	s.open.Add(1)
	s.cfg.Metrics.ConnectionOpened()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		sess.run()
		s.mu.Lock()
		delete(s.conns, sess)
		s.mu.Unlock()
		s.open.Add(-1)
		s.cfg.Metrics.ConnectionClosed()
	}()
}

func (s *Server) isDraining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

// Shutdown stops accepting, stops reading new requests, lets every request
// in flight finish and its answer reach the terminal, then closes the
// connections. Requests a terminal sent but the switch had not yet read get
// no answer and were never processed. If ctx ends first, the remaining
// connections are closed at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.draining {
		close(s.stop)
	}
	s.draining = true
	if s.listener != nil {
		s.listener.Close()
	}
	for sess := range s.conns {
		sess.stopReading()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for sess := range s.conns {
			sess.conn.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}
