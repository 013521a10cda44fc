package issuersim

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/bench/world"
	"github.com/tapswitch/tapswitch/configs"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/router/issuers"
)

// Fleet is a set of issuers, each serving on its own listener.
type Fleet struct {
	ids     []string
	issuers map[string]*Issuer
	addrs   map[string]string
	wg      sync.WaitGroup // Serve goroutines
}

// FleetConfig is what the issuers of a fleet share.
type FleetConfig struct {
	Cards  []world.Card // the whole world: each issuer keeps its own cards
	Faults Faults
	// Seed is mixed with each issuer's ID, so issuers do not share fault
	// patterns.
	Seed   int64
	Cutoff Cutoff // zero means DefaultCutoff
	Logger zerolog.Logger
	// OperatorKeys are the transit members' master keys by operator code
	// (issuers.Issuer.Operator, e.g. "0021"), each OperatorKeyBytes long.
	// A transit member without one answers loads and openings 91.
	OperatorKeys map[string][]byte
	// Bins is the BIN table that says which cards are each operator's;
	// nil means configs/bins.yaml.
	Bins *bintable.Table
}

// StartAll starts one issuer per entry of list, each listening on a free
// port of host, holding its cards from cards. Each issuer's seed is seed
// mixed with its ID, so issuers do not share fault patterns.
func StartAll(host string, list []issuers.Issuer, cards []world.Card, faults Faults, seed int64, log zerolog.Logger) (*Fleet, error) {
	addr := func(issuers.Issuer) string { return net.JoinHostPort(host, "0") }
	return start(list, addr, FleetConfig{Cards: cards, Faults: faults, Seed: seed, Logger: log})
}

// StartAllWith is StartAll with the whole FleetConfig: operator keys and
// the BIN table too.
func StartAllWith(host string, list []issuers.Issuer, cfg FleetConfig) (*Fleet, error) {
	addr := func(issuers.Issuer) string { return net.JoinHostPort(host, "0") }
	return start(list, addr, cfg)
}

// StartConfigured is StartAll on the addresses the issuers are configured
// with, as cmd/issuersim runs them.
func StartConfigured(list []issuers.Issuer, cfg FleetConfig) (*Fleet, error) {
	addr := func(is issuers.Issuer) string { return is.Address }
	return start(list, addr, cfg)
}

func start(list []issuers.Issuer, addrOf func(issuers.Issuer) string, cfg FleetConfig) (*Fleet, error) {
	byIssuer := make(map[string][]world.Card)
	for _, c := range cfg.Cards {
		byIssuer[c.IssuerID] = append(byIssuer[c.IssuerID], c)
	}
	f := &Fleet{issuers: make(map[string]*Issuer), addrs: make(map[string]string)}
	bins := cfg.Bins
	if bins == nil {
		var err error
		if bins, err = bintable.Parse(configs.Bins); err != nil {
			return nil, err
		}
	}
	for _, is := range list {
		var key []byte
		if is.Kind == issuers.KindTransit {
			key = cfg.OperatorKeys[is.Operator]
		}
		if _, dup := f.issuers[is.ID]; dup {
			f.Close()
			return nil, fmt.Errorf("issuersim: issuer %s listed twice", is.ID)
		}
		s, err := New(Config{
			Issuer: is, Cards: byIssuer[is.ID], Faults: cfg.Faults, Cutoff: cfg.Cutoff,
			Seed: cfg.Seed, Now: time.Now, Logger: cfg.Logger, // New mixes in the issuer ID
			OperatorKey: key, Bins: bins,
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
			// ErrClosed: the fleet closed before this goroutine ran.
			if err := s.Serve(l); err != nil && !errors.Is(err, ErrClosed) {
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

// AllIssuers names every issuer of a fleet where an ID is expected.
const AllIssuers = "*"

// pick returns the issuer with ID id, or every issuer for AllIssuers.
func (f *Fleet) pick(id string) ([]*Issuer, error) {
	if id == AllIssuers {
		out := make([]*Issuer, len(f.ids))
		for i, id := range f.ids {
			out[i] = f.issuers[id]
		}
		return out, nil
	}
	s := f.issuers[id]
	if s == nil {
		return nil, fmt.Errorf("issuersim: no issuer %q", id)
	}
	return []*Issuer{s}, nil
}

// SetFaults sets the faults of issuer id, or of every issuer for
// AllIssuers. Invalid faults change nothing.
func (f *Fleet) SetFaults(id string, faults Faults) error {
	list, err := f.pick(id)
	if err != nil {
		return err
	}
	if err := faults.Validate(); err != nil {
		return fmt.Errorf("issuersim: %w", err)
	}
	for _, s := range list {
		if err := s.SetFaults(faults); err != nil {
			return err // validated above: unreachable
		}
	}
	return nil
}

// Down takes issuer id, or every issuer for AllIssuers, down (Issuer.Down).
func (f *Fleet) Down(id string) error {
	list, err := f.pick(id)
	for _, s := range list {
		s.Down()
	}
	return err
}

// Up brings issuer id, or every issuer for AllIssuers, up again.
func (f *Fleet) Up(id string) error {
	list, err := f.pick(id)
	for _, s := range list {
		s.Up()
	}
	return err
}

// Snapshot returns the books of issuer id, or of every issuer for
// AllIssuers, in start order.
func (f *Fleet) Snapshot(id string) (FleetSnapshot, error) {
	list, err := f.pick(id)
	if err != nil {
		return FleetSnapshot{}, err
	}
	out := FleetSnapshot{Issuers: make([]Snapshot, len(list))}
	for i, s := range list {
		out.Issuers[i] = s.Snapshot()
	}
	return out, nil
}

// WriteLedgers writes every issuer's snapshot to dir with WriteLedgerFile
// and returns the paths, stopping at the first failure.
func (f *Fleet) WriteLedgers(dir string) ([]string, error) {
	var paths []string
	for _, id := range f.ids {
		path, err := WriteLedgerFile(dir, f.issuers[id].Snapshot())
		if err != nil {
			return paths, fmt.Errorf("issuersim %s: %w", id, err)
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// IssuerStatus is what the admin endpoint reports of one issuer.
type IssuerStatus struct {
	ID     string `json:"issuer"`
	Addr   string `json:"addr"`
	Down   bool   `json:"down"`
	Faults Faults `json:"faults"`
}

// Status reports issuer id, or every issuer for AllIssuers, in start order.
func (f *Fleet) Status(id string) ([]IssuerStatus, error) {
	list, err := f.pick(id)
	if err != nil {
		return nil, err
	}
	out := make([]IssuerStatus, len(list))
	for i, s := range list {
		out[i] = IssuerStatus{ID: s.id, Addr: f.addrs[s.id], Down: s.IsDown(), Faults: s.Faults()}
	}
	return out, nil
}
