package link

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
)

// slot is one position in the pool: it owns at most one conn at a time and
// replaces it when it breaks.
type slot struct {
	link  *Link
	index int
	mu    sync.Mutex
	live  *conn // signed on and serving, or nil
}

func (s *slot) current() *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live
}

func (s *slot) setLive(c *conn) {
	s.mu.Lock()
	s.live = c
	s.mu.Unlock()
}

func (s *slot) closeConn() {
	s.mu.Lock()
	c := s.live
	s.mu.Unlock()
	if c != nil {
		c.fail(ErrClosed)
	}
}

// supervise dials, signs on, serves and redials with backoff until the link
// closes.
func (s *slot) supervise() {
	log := s.link.cfg.Logger.With().Str("issuer", s.link.cfg.IssuerID).Int("conn", s.index).Logger()
	backoff := s.link.cfg.BackoffMin
	wasUp := false
	for {
		c, err := s.connect()
		if err == nil {
			backoff = s.link.cfg.BackoffMin
			// Coming back after a loss is news; the first sign-on of every
			// connection is start-up chatter (switchd logs one line for all).
			ev := log.Debug()
			if wasUp {
				ev = log.Info()
			}
			ev.Str("addr", s.link.cfg.Address).Msg("issuer link up")
			wasUp = true
			s.serve(c)
			if s.link.isClosing() {
				log.Debug().Msg("issuer link closed")
				return
			}
			log.Warn().Err(c.cause).Msg("issuer link down")
		} else {
			log.Debug().Err(err).Dur("retry_in", backoff).Msg("issuer link connect failed")
		}
		select {
		case <-s.link.closing:
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, s.link.cfg.BackoffMax)
	}
}

// connect dials and signs on; the conn is live only once the issuer has
// answered the sign-on with 00.
func (s *slot) connect() (*conn, error) {
	cfg := s.link.cfg
	nc, err := net.DialTimeout("tcp", cfg.Address, cfg.DialTimeout)
	if err != nil {
		return nil, err
	}
	c := newConn(s.link, nc)
	go c.readLoop()
	if err := s.networkManagement(c, iso8583.NetSignOn); err != nil {
		c.fail(err)
		c.writer.Close()
		return nil, fmt.Errorf("sign-on: %w", err)
	}
	return c, nil
}

// serve keeps c live, echo-testing it every EchoInterval, until it breaks or
// the link closes.
func (s *slot) serve(c *conn) {
	s.setLive(c)
	s.link.publishState()
	defer func() {
		s.setLive(nil)
		s.link.publishState()
		c.writer.Close()
	}()
	ticker := time.NewTicker(s.link.cfg.EchoInterval)
	defer ticker.Stop()
	for {
		select {
		case <-c.broken:
			return
		case <-c.writer.Done():
			c.fail(fmt.Errorf("write failed"))
			return
		case <-s.link.closing:
			c.fail(ErrClosed)
			return
		case <-ticker.C:
			if err := s.networkManagement(c, iso8583.NetEcho); err != nil {
				c.fail(fmt.Errorf("%w: %v", errEchoFailed, err))
				return
			}
		}
	}
}

// networkManagement sends an 0800 with the given DE70 and wants 00 back.
func (s *slot) networkManagement(c *conn, code string) error {
	req := iso8583.NewMessage()
	req.MTI(iso8583.MTINetworkMgmtRequest)
	req.Field(iso8583.FieldTransmissionTime, time.Now().UTC().Format("0102150405"))
	req.Field(iso8583.FieldNetworkMgmtCode, code)
	resp, err := c.exchangeMoov(context.Background(), req, s.link.cfg.RequestTimeout)
	if err != nil {
		return err
	}
	if rc, _ := resp.GetString(iso8583.FieldResponseCode); rc != iso8583.RCApproved {
		return fmt.Errorf("network management %s answered %q", code, rc)
	}
	return nil
}
