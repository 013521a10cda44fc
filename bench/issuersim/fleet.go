package issuersim

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/bench/world"
	"github.com/tapswitch/tapswitch/router/issuers"
)

// Fleet is a set of issuers, each serving on its own listener.
type Fleet struct {
	ids     []string
	issuers map[string]*Issuer
	addrs   map[string]string
	wg      sync.WaitGroup // Serve goroutines
}

// StartAll starts one issuer per entry of list, each listening on a free
// port of host, holding its cards from cards. Each issuer's seed is seed
// mixed with its ID, so issuers do not share fault patterns.
func StartAll(host string, list []issuers.Issuer, cards []world.Card, faults Faults, seed int64, log zerolog.Logger) (*Fleet, error) {
	addr := func(issuers.Issuer) string { return net.JoinHostPort(host, "0") }
	return start(list, addr, cards, faults, seed, log)
}

// StartConfigured is StartAll on the addresses the issuers are configured
// with, as cmd/issuersim runs them.
func StartConfigured(list []issuers.Issuer, cards []world.Card, faults Faults, seed int64, log zerolog.Logger) (*Fleet, error) {
	addr := func(is issuers.Issuer) string { return is.Address }
	return start(list, addr, cards, faults, seed, log)
}

func start(list []issuers.Issuer, addrOf func(issuers.Issuer) string, cards []world.Card, faults Faults, seed int64, log zerolog.Logger) (*Fleet, error) {
	byIssuer := make(map[string][]world.Card)
	for _, c := range cards {
		byIssuer[c.IssuerID] = append(byIssuer[c.IssuerID], c)
	}
	f := &Fleet{issuers: make(map[string]*Issuer), addrs: make(map[string]string)}
	for _, is := range list {
		if _, dup := f.issuers[is.ID]; dup {
			f.Close()
			return nil, fmt.Errorf("issuersim: issuer %s listed twice", is.ID)
		}
		s, err := New(Config{
			Issuer: is, Cards: byIssuer[is.ID], Faults: faults,
			Seed: seed, Now: time.Now, Logger: log, // New mixes in the issuer ID
		})
		if err != nil {
			f.Close()
			return nil, err
		}
		l, err := net.Listen("tcp", addrOf(is))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("issuersim %s: %w", is.ID, err)
		}
		f.ids = append(f.ids, is.ID)
		f.issuers[is.ID] = s
		f.addrs[is.ID] = l.Addr().String()
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			if err := s.Serve(l); err != nil {
				s.log.Error().Err(err).Msg("serve stopped")
			}
		}()
	}
	return f, nil
}

// IDs returns the issuers' IDs in start order.
func (f *Fleet) IDs() []string { return append([]string(nil), f.ids...) }

// Addr returns the address an issuer listens on, "" for an unknown ID.
func (f *Fleet) Addr(id string) string { return f.addrs[id] }

// Issuer returns an issuer by ID, nil for an unknown ID.
func (f *Fleet) Issuer(id string) *Issuer { return f.issuers[id] }

// Close closes every issuer and waits for them to stop.
func (f *Fleet) Close() error {
	for _, id := range f.ids {
		f.issuers[id].Close()
	}
	f.wg.Wait()
	return nil
}
