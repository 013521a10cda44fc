// Package node assembles one switch node: vault, journal, issuer links,
// the authorization pipeline, the terminal server and the two HTTP
// listeners, public and admin (listeners.go), opened in that order and
// closed in reverse.
//
// Shutdown order matters for money: terminals drain first (every request in
// flight finishes and its answer is written), then the issuer links close,
// then the journal and vault. Nothing is journaled after the journal closes
// because nothing is being processed by then.
package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/router/issuers"
	"github.com/tapswitch/tapswitch/router/link"
	"github.com/tapswitch/tapswitch/switch/acquirer"
	"github.com/tapswitch/tapswitch/switch/authorize"
	"github.com/tapswitch/tapswitch/switch/cluster"
	"github.com/tapswitch/tapswitch/switch/journal"
	"github.com/tapswitch/tapswitch/switch/metrics"
	"github.com/tapswitch/tapswitch/switch/saf"
	"github.com/tapswitch/tapswitch/switch/sms"
	"github.com/tapswitch/tapswitch/switch/terminal"
	"github.com/tapswitch/tapswitch/switch/tokensvc"
	"github.com/tapswitch/tapswitch/switch/vault"
)

// Node is one running switch.
type Node struct {
	cfg       Config
	log       zerolog.Logger
	Vault     *vault.Vault
	Keys      *vault.Keyring
	Journal   *journal.Journal
	Table     *bintable.Table
	Issuers   []issuers.Issuer
	Pipeline  *authorize.Pipeline
	Tokens    *tokensvc.Service // the wallet's token API (/v1/) and the lost-phone page (/lost/)
	links     []*link.Link
	sender    *saf.Sender
	stopSAF   context.CancelFunc
	safDone   chan struct{}
	sealDone  chan struct{}
	metrics   *metrics.Set
	rotating  rotation // the PAN key rotation (rotate.go)
	server    *terminal.Server
	senders   *acquirer.Checker
	termLn    net.Listener
	public    *http.Server // phones: the token API and the lost-phone page
	publicLn  net.Listener
	publicTLS *tls.Config // nil: plain HTTP (loopback only)
	// adminToken is the SHA-256 of admin_token_file's token; nil: none.
	adminToken   *[32]byte
	admin        *http.Server // operators: health, metrics, profiles, rotation
	adminLn      net.Listener
	serveErrs    chan error
	closeOnce    sync.Once
	nats         *nats.Conn // cluster mode only
	js           jetstream.JetStream
	state        *cluster.State // the vault's and token service's log; cluster mode only
	clusterState                // journal stream, membership and adoption (cluster.go, adopt.go)
}

// Open reads the listeners' secrets, opens the stores, binds the three
// listeners and then starts the issuer links, so that a listener's address
// already in use fails start-up before any link chatter. It serves nothing
// until Start.
// addressOverride replaces issuer addresses by ID (switchd -dev points the
// links at its in-process simulators).
func Open(cfg Config, log zerolog.Logger, addressOverride map[string]string) (_ *Node, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: log, serveErrs: make(chan error, 4)}
	if err := n.loadListenerSecrets(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			for _, l := range n.links {
				l.Close()
			}
			n.closeStores()
		}
	}()
	if err := n.openStores(); err != nil {
		return nil, err
	}
	awaitFreshTransmissionSecond(n.Journal, time.Now)
	if err := openDayUnsealed(n.Journal, n.cfg, time.Now()); err != nil {
		return nil, err
	}
	if n.Issuers, n.Table, err = cfg.Network(); err != nil {
		return nil, err
	}
	if n.senders, err = cfg.Senders(n.Issuers); err != nil {
		return nil, err
	}
	n.metrics = newMetrics(n.Issuers)
	if n.state != nil {
		n.metrics.WatchState(n.state.Stats)
	}
	n.registerClusterMetrics()
	n.metrics.WatchAdvices(func() (int, int, int, error) {
		c, err := n.Journal.AdviceCounts()
		return c[journal.AdviceArmed], c[journal.AdviceDue], c[journal.AdviceDead], err
	})
	pipelineIssuers, err := n.startLinks(addressOverride)
	if err != nil {
		return nil, err
	}
	if err := n.openTokenService(pipelineIssuers); err != nil {
		return nil, err
	}
	if err := n.bind(pipelineIssuers); err != nil {
		return nil, err
	}
	if err := n.openTopUps(); err != nil {
		return nil, err
	}
	for _, l := range n.links {
		l.Start()
	}
	return n, nil
}

// openTokenService opens the token service over the vault and the issuer
// links (card verification goes to the issuer like any authorization).
func (n *Node) openTokenService(pipelineIssuers map[string]authorize.Issuer) error {
	tsIssuers := make(map[string]tokensvc.Issuer, len(pipelineIssuers))
	for _, l := range n.links { // the links behind pipelineIssuers, by the same IDs
		tsIssuers[l.IssuerID()] = tokensvc.Issuer{Institution: pipelineIssuers[l.IssuerID()].Institution, Link: l}
	}
	svc, err := tokensvc.New(tokensvc.Config{
		DataDir: filepath.Join(n.cfg.Data, "tokensvc"), Vault: n.Vault, Keys: n.Keys, Table: n.Table,
		Issuers: tsIssuers, TokenBIN: n.cfg.TokenBINs[0], Institution: n.cfg.Institution,
		RequestorID: n.cfg.RequestorID, SMS: sms.NewOutbox(sms.OutboxPath(n.cfg.Data)), Now: time.Now,
		Log: n.log, SecureCookies: n.cfg.PublicTLSCert != "", Replica: n.replicaOf("tokens"),
	})
	if err != nil {
		return fmt.Errorf("token service: %w", err)
	}
	n.Tokens = svc
	return nil
}

func (n *Node) openStores() error {
	if err := privateDataDir(n.cfg.Data, n.log); err != nil {
		return err
	}
	keys, err := n.loadKeys()
	if err != nil {
		return err
	}
	n.Keys = keys
	if n.state, err = n.openState(); err != nil {
		return err
	}
	if n.Vault, err = vault.OpenReplica(filepath.Join(n.cfg.Data, "vault"), keys, n.replicaOf("vault")); err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	cutoff, err := n.cfg.CutoffSpec()
	if err != nil {
		return err
	}
	replica, err := n.journalReplica()
	if err != nil {
		return err
	}
	opts := journal.Options{Cutoff: cutoff, Replica: replica}
	if replica != nil {
		opts.ReplicaHealthy = n.ClusterQuorum
	}
	dir := filepath.Join(n.cfg.Data, "journal")
	if n.returnRev != 0 {
		if err := n.rebuildJournal(dir, replica); err != nil {
			return err
		}
	}
	if n.Journal, err = journal.Open(dir, opts); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return n.endReturn()
}

// privateDataDir makes the data directory, or tightens an existing one
// (made by an earlier switch, or by hand) to 0700: what is under it (PANs
// sealed, the journal, sessions) is the switch's alone, and a directory
// others cannot enter keeps them out of files older versions left 0644.
func privateDataDir(dir string, log zerolog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("data directory %s has mode %v and cannot be made 0700: %w", dir, perm, err)
		}
		log.Warn().Str("dir", dir).Str("was", perm.String()).Msg("data directory was open to other users; made 0700")
	}
	return nil
}

func (n *Node) loadKeys() (*vault.Keyring, error) {
	if n.cfg.KeyEnv != "" && os.Getenv(n.cfg.KeyEnv) != "" {
		return vault.LoadKeyringEnv(n.cfg.KeyEnv)
	}
	if n.cfg.KeyFile == "" {
		return nil, fmt.Errorf("vault keys: environment variable %s is empty and no key_file is set", n.cfg.KeyEnv)
	}
	return vault.LoadKeyringFile(n.cfg.KeyFile)
}

// startLinks makes one link per issuer; Open starts them once bound.
func (n *Node) startLinks(addressOverride map[string]string) (map[string]authorize.Issuer, error) {
	lc := n.cfg.IssuerLinks
	stanBlock, err := n.cfg.Cluster.linkSTANBlock()
	if err != nil {
		return nil, err
	}
	out := make(map[string]authorize.Issuer, len(n.Issuers))
	for _, is := range n.Issuers {
		addr := is.Address
		if a, ok := addressOverride[is.ID]; ok {
			addr = a
		}
		l, err := link.New(link.Config{
			IssuerID: is.ID, Address: addr, Connections: lc.Connections, InflightMax: lc.InflightMax,
			RequestTimeout: lc.RequestTimeout, EchoInterval: lc.EchoInterval, DialTimeout: lc.DialTimeout,
			BackoffMin: lc.BackoffMin, BackoffMax: lc.BackoffMax,
			BreakerFailures: lc.BreakerFailures, BreakerCooldown: lc.BreakerCooldown,
			FrameBytesMax: n.cfg.Terminals.FrameBytesMax, STANBlock: stanBlock,
			Logger: n.log, Metrics: n.metrics.Link(is.ID),
		})
		if err != nil {
			return nil, err
		}
		n.links = append(n.links, l)
		out[is.ID] = authorize.Issuer{Institution: is.Institution, Link: l}
	}
	return out, nil
}

// bind builds the store-and-forward sender, the pipeline and the terminal
// server, and opens the three listeners.
func (n *Node) bind(pipelineIssuers map[string]authorize.Issuer) error {
	if err := n.newSender(pipelineIssuers); err != nil {
		return err
	}
	standIn, err := n.cfg.standInRules(n.Issuers)
	if err != nil {
		return err
	}
	cutoff, err := n.cfg.CutoffSpec()
	if err != nil {
		return err
	}
	counters, err := n.openCluster()
	if err != nil {
		return err
	}
	duplicates, standIns, err := n.openClusterChecks()
	if err != nil {
		return err
	}
	n.Pipeline = authorize.New(authorize.Deps{
		Vault: n.Vault, Table: n.Table, Issuers: pipelineIssuers,
		Journal: n.Journal, NodeID: n.cfg.NodeID, Institution: n.cfg.Institution,
		Now: time.Now, Log: n.log, Metrics: n.metrics, StandIn: standIn, AdviceQueued: n.sender.Wake,
		CVMLimit: n.cfg.CVMLimit, Zone: cutoff.Location, ReversalAgeMax: n.cfg.ReversalAgeMax,
		TransactionLevel: n.transactionLevel(), Counters: counters,
		Duplicates: duplicates, StandIns: standIns,
	})
	tc := n.cfg.Terminals
	var _ terminal.RequestHandler = n.Pipeline // the hot path's requests skip moov
	srv, err := terminal.New(terminal.Config{
		ConnectionsMax: tc.ConnectionsMax, InflightPerConnectionMax: tc.InflightPerConnectionMax,
		FrameBytesMax: tc.FrameBytesMax, IdleTimeout: tc.IdleTimeout, WriteTimeout: tc.WriteTimeout,
		Logger: n.log, Metrics: n.metrics, Senders: n.senders,
	}, n.Pipeline)
	if err != nil {
		return err
	}
	n.server = srv
	if n.termLn, err = net.Listen("tcp", n.cfg.Listen); err != nil {
		return fmt.Errorf("terminal listener: %w", err)
	}
	if err := n.bindHTTP(); err != nil {
		n.termLn.Close()
		return err
	}
	return nil
}

// transactionLevel is the level of the one line per authorization:
// info with log_transactions (switchd -dev), else debug.
func (n *Node) transactionLevel() zerolog.Level {
	if n.cfg.LogTransactions {
		return zerolog.InfoLevel
	}
	return zerolog.DebugLevel
}

// LinksDown lists the issuers without a signed-on link connection.
func (n *Node) LinksDown() []string {
	var down []string
	for _, l := range n.links {
		if !l.Up() {
			down = append(down, l.IssuerID())
		}
	}
	return down
}

// newSender builds the store-and-forward sender over the issuer links.
func (n *Node) newSender(pipelineIssuers map[string]authorize.Issuer) error {
	issuers := make(map[string]saf.Issuer, len(pipelineIssuers))
	for _, l := range n.links { // advices go by moov, off the hot path
		issuers[l.IssuerID()] = saf.Issuer{Institution: pipelineIssuers[l.IssuerID()].Institution, Link: l}
	}
	n.adviceIssuers = issuers // an adopted node's advices go the same way
	ac := n.cfg.Advices
	s, err := saf.New(saf.Config{
		Journal: n.Journal, Keys: n.Vault.Keys, Issuers: issuers, Institution: n.cfg.Institution,
		RetryMin: ac.RetryMin, RetryMax: ac.RetryMax, AttemptsMax: ac.AttemptsMax,
		InFlightMax: ac.InFlightMax, PollEvery: time.Second, Now: time.Now,
		Log: n.log.With().Str("component", "saf").Logger(),
	})
	n.sender = s
	return err
}

// newMetrics makes the node's metrics on a registry of its own, with the
// link series of every issuer resolved.
func newMetrics(list []issuers.Issuer) *metrics.Set {
	ids := make([]string, len(list))
	for i, is := range list {
		ids[i] = is.ID
	}
	return metrics.New(ids)
}

// Senders checks terminal messages' MACs against the registry and the
// acquirer keys (switch/acquirer).
func (n *Node) Senders() *acquirer.Checker { return n.senders }

// Metrics is the node's metrics, served at /metrics on the admin listener.
func (n *Node) Metrics() *metrics.Set { return n.metrics }

// TerminalAddr is the bound terminal listener address.
func (n *Node) TerminalAddr() string { return n.termLn.Addr().String() }

// Start serves terminals, the public and the admin listener in the
// background. Errors from any arrive on Errors.
func (n *Node) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	n.stopSAF, n.safDone = cancel, make(chan struct{})
	go func() {
		defer close(n.safDone)
		n.sender.Run(ctx)
	}()
	n.sealDone = make(chan struct{})
	go func() {
		defer close(n.sealDone)
		n.sealClosedDays(ctx)
	}()
	n.startAdopter(ctx)
	go func() {
		if err := n.server.Serve(n.termLn); err != nil {
			n.serveErrs <- fmt.Errorf("terminal server: %w", err)
		}
	}()
	for _, h := range []struct {
		name string
		srv  *http.Server
		ln   net.Listener
	}{{"public", n.public, n.publicLn}, {"admin", n.admin, n.adminLn}} {
		go func() {
			if err := h.srv.Serve(h.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				n.serveErrs <- fmt.Errorf("%s server: %w", h.name, err)
			}
		}()
	}
}

// Errors reports why the node must stop: a listener that failed while
// serving, or, in a cluster, the node found adopted (cluster.ErrAdopted).
func (n *Node) Errors() <-chan error { return n.serveErrs }

// Shutdown drains terminals within the configured time-out, stops the
// store-and-forward sender (what it has not delivered stays queued), then
// closes links, the public and admin listeners, journal and vault, in that
// order.
func (n *Node) Shutdown() error {
	var drainErr error
	n.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout)
		defer cancel()
		drainErr = n.server.Shutdown(ctx)
		if n.stopSAF != nil {
			n.stopSAF()
			<-n.safDone
			<-n.sealDone
			n.waitAdopter()
		}
		for _, l := range n.links {
			l.Close()
		}
		n.public.Shutdown(ctx)
		n.admin.Shutdown(ctx)
		n.closeStores()
	})
	return drainErr
}

func (n *Node) closeStores() {
	n.stopMembers()
	if n.nats != nil {
		n.nats.Close()
	}
	if n.Tokens != nil { // before the vault it writes to
		if err := n.Tokens.Close(); err != nil {
			n.log.Error().Err(err).Msg("token service close")
		}
	}
	if n.Journal != nil {
		if err := n.Journal.Close(); err != nil {
			n.log.Error().Err(err).Msg("journal close")
		}
	}
	if n.Vault != nil {
		if err := n.Vault.Close(); err != nil {
			n.log.Error().Err(err).Msg("vault close")
		}
	}
}

// awaitFreshTransmissionSecond waits, on a restart, for the wall clock to
// leave the second the process started in. An issuer knows a request by
// the switch's STAN and transmission time (DE11, DE7, whole seconds), and
// a link numbers its STANs from 1 again in each process: a switch that
// died and came back within one second would send STANs its previous life
// had sent in that same second, and an issuer would take a new top-up or
// purchase of the same card and amount for a retry of the old one,
// answering it approved without posting it (TestSIGKILLDuringTopUps found
// this). Every DE7 of the previous life is at or before this process's
// start; from the next second on, none can repeat. A journal that never
// sent anything needs no wait.
func awaitFreshTransmissionSecond(j *journal.Journal, now func() time.Time) {
	if j.Fresh() {
		return
	}
	t := now()
	time.Sleep(t.Truncate(time.Second).Add(time.Second).Sub(t))
}
