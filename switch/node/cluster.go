package node

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapswitch/tapswitch/router/link"
	"github.com/tapswitch/tapswitch/switch/authorize"
	"github.com/tapswitch/tapswitch/switch/cluster"
	"github.com/tapswitch/tapswitch/switch/journal"
	"github.com/tapswitch/tapswitch/switch/replica"
	"github.com/tapswitch/tapswitch/switch/saf"
)

// ClusterConfig joins the node to a network of nodes sharing state through
// NATS JetStream (docs/cluster.md). Off while URLs is empty: the node keeps
// everything in its own Pebble files.
type ClusterConfig struct {
	// URLs are the NATS servers' client URLs.
	URLs []string `yaml:"urls"`
	// CountersBucket is the key-value bucket of the tokens' cryptogram
	// counter windows, one per network.
	CountersBucket string `yaml:"counters_bucket"`
	// Replicas of each bucket: 3 on three NATS servers (1 to 5).
	Replicas int `yaml:"replicas"`
	// OpTimeout bounds one read or compare-and-swap: a tap whose store does
	// not answer within it is answered 91. It bounds a replicated write of
	// the vault or token service too (then 503).
	OpTimeout time.Duration `yaml:"op_timeout"`
	// ConnectTimeout bounds the first connection at start-up.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// STANBlock is this node's own block of issuer STANs, 1 to
	// link.STANBlocksMax, different on every node of the network: its
	// requests to issuers carry STANs k00000..k99999 (docs/wire.md, DE11).
	// Required in a cluster: two nodes numbering alike would send one
	// issuer the same STAN and DE7 in the same second, and it would answer
	// the second request as a retry of the first.
	STANBlock int `yaml:"stan_block"`
	// DuplicatesBucket is the key-value bucket of the requests' duplicate
	// keys (terminal, STAN, DE7) and their first answers, one per network.
	DuplicatesBucket string `yaml:"duplicates_bucket"`
	// DuplicatesMaxAge is how long a duplicate key is kept in the bucket
	// (a retransmission on another node later than this is not recognised;
	// the first node's journal still is).
	DuplicatesMaxAge time.Duration `yaml:"duplicates_max_age"`
	// PendingWait bounds how long a retransmission waits for the node
	// working on its key; then it is answered 91, never sent. That node
	// gives its request up after half of it, so it is at least twice the
	// issuers' request_timeout plus two op_timeouts.
	PendingWait time.Duration `yaml:"pending_wait"`
	// StandInBucket is the key-value bucket of the tokens' stand-in usage
	// per business day, one per network.
	StandInBucket string `yaml:"stand_in_bucket"`
	// StateStream is the stream of the vault's and the token service's
	// writes, one per network; each node applies it to its own Pebble
	// files (docs/cluster.md, "Slice: tokens and token-service data").
	StateStream string `yaml:"state_stream"`
	// StateBytesMax bounds that stream; past it writes are refused.
	StateBytesMax int64 `yaml:"state_bytes_max"`
	// CatchUpTimeout bounds the replay of the stream into a node's stores
	// at start-up (all of it for a new node).
	CatchUpTimeout time.Duration `yaml:"catch_up_timeout"`
	// JournalStream is the stream every node's journal batches are copied
	// to before a write returns (subject JournalStream.<node_id>), one per
	// network; it has Replicas replicas and OpTimeout bounds each ack.
	JournalStream string `yaml:"journal_stream"`
	// MembersBucket holds each node's heartbeat, which expires after
	// HeartbeatTTL: a node silent that long is taken for dead, and one
	// survivor adopts it (AdoptionsBucket says which).
	MembersBucket   string        `yaml:"members_bucket"`
	AdoptionsBucket string        `yaml:"adoptions_bucket"`
	HeartbeatTTL    time.Duration `yaml:"heartbeat_ttl"`
}

// clusterState is what a cluster node holds besides the NATS connection.
type clusterState struct {
	journalStream *cluster.JournalStream
	members       *cluster.Members
	stopBeats     context.CancelFunc
	beatsDone     chan struct{}
	returnRev     uint64 // this node's adoption, taken back at start, to end once its journal caught up
	adviceIssuers map[string]saf.Issuer
	adopting      atomic.Int64 // dead nodes this node is adopting now
	adoptChecked  map[string]string
	seenAlive     map[string]bool // nodes this node saw alive; only those can die
	adoptDone     chan struct{}
}

// Enabled says whether the node runs in a cluster.
func (c ClusterConfig) Enabled() bool { return len(c.URLs) > 0 }

// linkSTANBlock is the STAN block of the node's issuer links: 0 (the
// whole range) for a node alone, the configured block in a cluster.
func (c ClusterConfig) linkSTANBlock() (int, error) {
	if !c.Enabled() {
		return 0, nil
	}
	if c.STANBlock < 1 || c.STANBlock > link.STANBlocksMax {
		return 0, fmt.Errorf("config cluster: stan_block %d outside 1..%d (each node of a network its own)",
			c.STANBlock, link.STANBlocksMax)
	}
	return c.STANBlock, nil
}

// validateCluster refuses a cluster configuration before any store is
// opened: a node joining its network's streams with a bad setting would
// already have caught up on them.
func (c Config) validateCluster() error {
	cc := c.Cluster
	if !cc.Enabled() {
		return nil
	}
	if _, err := cc.linkSTANBlock(); err != nil {
		return err
	}
	if cc.ConnectTimeout <= 0 {
		return fmt.Errorf("config cluster: connect_timeout must be positive")
	}
	if low := 2 * (c.IssuerLinks.RequestTimeout + 2*cc.OpTimeout); cc.PendingWait < low {
		return fmt.Errorf("config cluster: pending_wait %v below 2 (issuer_links.request_timeout + 2 op_timeout) = %v: "+
			"a node would give up on requests its issuer answers in time", cc.PendingWait, low)
	}
	return nil
}

// jetStream connects to NATS, once (cluster.Connect); cluster mode only.
// The first store to open connects (the vault's log, before the journal
// catches up from its stream).
func (n *Node) jetStream() (jetstream.JetStream, error) {
	if n.js != nil {
		return n.js, nil
	}
	cc := n.cfg.Cluster
	nc, err := cluster.Connect(cc.URLs, n.cfg.NodeID, cc.ConnectTimeout)
	if err != nil {
		return nil, err
	}
	n.nats = nc
	if n.js, err = jetstream.New(nc); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return n.js, nil
}

// journalReplica opens the journal stream and returns this node's replica
// of it; nil without a cluster.
func (n *Node) journalReplica() (journal.Replica, error) {
	cc := n.cfg.Cluster
	if !cc.Enabled() {
		return nil, nil
	}
	var s *cluster.JournalStream
	err := n.openShared(func(ctx context.Context, js jetstream.JetStream) (err error) {
		s, err = cluster.OpenJournalStream(ctx, js, cluster.JournalConfig{
			Stream: cc.JournalStream, Replicas: cc.Replicas, OpTimeout: cc.OpTimeout})
		return err
	})
	if err != nil {
		return nil, err
	}
	n.journalStream = s
	if err := n.openMembers(); err != nil {
		return nil, err
	}
	n.log.Info().Str("stream", cc.JournalStream).Int("replicas", cc.Replicas).
		Msg("cluster mode: every journal write is also on a quorum of the journal stream")
	return s.Node(n.cfg.NodeID), nil
}

// openShared opens a bucket or stream the nodes share with open, on this
// node's JetStream, within connect_timeout, again while JetStream has no
// responders.
func (n *Node) openShared(open func(ctx context.Context, js jetstream.JetStream) error) error {
	js, err := n.jetStream()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Cluster.ConnectTimeout)
	defer cancel()
	return whileNoResponders(ctx, func() error { return open(ctx, js) })
}

// whileNoResponders calls open again, every 100 ms until ctx ends, while
// JetStream has no responders: a NATS cluster that is starting (or
// electing its meta leader) answers its API so for a moment.
func whileNoResponders(ctx context.Context, open func() error) error {
	for {
		err := open()
		if !errors.Is(err, nats.ErrNoResponders) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// openState opens the replicated log of the vault and the token service;
// nil without a cluster (each store then commits to its own Pebble).
func (n *Node) openState() (*cluster.State, error) {
	cc := n.cfg.Cluster
	if !cc.Enabled() {
		return nil, nil
	}
	var state *cluster.State
	err := n.openShared(func(ctx context.Context, js jetstream.JetStream) (err error) {
		state, err = cluster.OpenState(ctx, js, cluster.StateConfig{
			Stream: cc.StateStream, Replicas: cc.Replicas, BytesMax: cc.StateBytesMax,
			OpTimeout: cc.OpTimeout, CatchUpTimeout: cc.CatchUpTimeout, Log: n.log})
		return err
	})
	if err != nil {
		return nil, err
	}
	n.log.Info().Str("stream", cc.StateStream).Int("replicas", cc.Replicas).
		Msg("cluster mode: vault and token service replicated through JetStream")
	return state, nil
}

// replicaOf is the attachment of one store to the replicated log; nil on
// one node.
func (n *Node) replicaOf(store string) replica.Open {
	if n.state == nil {
		return nil
	}
	return n.state.Store(store)
}

// openCluster connects to NATS and opens the shared counter windows; nil
// counters without a cluster.
func (n *Node) openCluster() (authorize.Counters, error) {
	cc := n.cfg.Cluster
	if !cc.Enabled() {
		return nil, nil
	}
	var counters *cluster.Counters
	err := n.openShared(func(ctx context.Context, js jetstream.JetStream) (err error) {
		counters, err = cluster.OpenCounters(ctx, js, cluster.CountersConfig{
			Bucket: cc.CountersBucket, Replicas: cc.Replicas, OpTimeout: cc.OpTimeout})
		return err
	})
	if err != nil {
		return nil, err
	}
	n.log.Info().Strs("nats", cc.URLs).Str("bucket", cc.CountersBucket).Int("replicas", cc.Replicas).
		Msg("cluster mode: counter windows shared through JetStream")
	return quorumCounters{Counters: counters, quorum: n.ClusterQuorum}, nil
}

// quorumCounters refuses a hold at once while the node has no quorum (its
// last heartbeat older than the TTL), so a node cut off answers 91 without
// waiting op_timeout on the counter store.
type quorumCounters struct {
	authorize.Counters
	quorum func() bool
}

func (q quorumCounters) Hold(ctx context.Context, token string) (authorize.CounterHold, error) {
	if !q.quorum() {
		return nil, fmt.Errorf("%w: this node has no quorum", authorize.ErrCountersUnavailable)
	}
	return q.Counters.Hold(ctx, token)
}

// openMembers joins the membership (a first heartbeat at once, then every
// third of the TTL) and takes the node back if it was adopted meanwhile.
func (n *Node) openMembers() error {
	cc := n.cfg.Cluster
	ctx, cancel := context.WithTimeout(context.Background(), cc.ConnectTimeout)
	defer cancel()
	var m *cluster.Members
	err := whileNoResponders(ctx, func() (err error) {
		m, err = cluster.OpenMembers(ctx, n.js, cluster.MembersConfig{Bucket: cc.MembersBucket,
			AdoptionsBucket: cc.AdoptionsBucket, Replicas: cc.Replicas, HeartbeatTTL: cc.HeartbeatTTL,
			OpTimeout: cc.OpTimeout}, n.cfg.NodeID)
		return err
	})
	if err != nil {
		return err
	}
	n.members = m
	// The buckets just made may not have their leaders yet.
	err = whileNoResponders(ctx, func() (err error) {
		n.returnRev, err = n.returnFromAdoption(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("cluster: this node's adoption: %w", err)
	}
	if err := whileNoResponders(ctx, func() error { return m.Beat(ctx) }); err != nil {
		return fmt.Errorf("cluster: first heartbeat: %w", err)
	}
	bctx, stop := context.WithCancel(context.Background())
	n.stopBeats, n.beatsDone = stop, make(chan struct{})
	go func() {
		defer close(n.beatsDone)
		if err := m.Run(bctx); err != nil {
			// Adopted while cut off: the adopter writes this node's journal
			// now. Writes already fail (no quorum); the node stops, and its
			// next start takes the journal back (returnFromAdoption).
			n.log.Error().Err(err).Msg("this node stops")
			select {
			case n.serveErrs <- err:
			default:
			}
		}
	}()
	return nil
}

// endReturn ends this node's adoption once its journal has caught up from
// the stream (with what the adopter wrote).
func (n *Node) endReturn() error {
	if n.returnRev == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Cluster.OpTimeout)
	defer cancel()
	if err := n.members.EndAdoption(ctx, n.cfg.NodeID, n.returnRev); err != nil {
		return fmt.Errorf("cluster: ending this node's adoption: %w", err)
	}
	n.returnRev = 0
	return nil
}

func (n *Node) stopMembers() {
	if n.stopBeats != nil {
		n.stopBeats()
		<-n.beatsDone
		n.stopBeats = nil
	}
}

// startAdopter adopts dead nodes in the background; nothing outside a
// cluster.
func (n *Node) startAdopter(ctx context.Context) {
	if n.members == nil {
		return
	}
	n.adoptChecked, n.seenAlive, n.adoptDone = map[string]string{}, map[string]bool{}, make(chan struct{})
	go func() {
		defer close(n.adoptDone)
		n.runAdopter(ctx)
	}()
}

func (n *Node) waitAdopter() {
	if n.adoptDone != nil {
		<-n.adoptDone
	}
}

// ClusterQuorum says whether this node is in a cluster and reached the
// quorum with its last heartbeat (true outside a cluster).
func (n *Node) ClusterQuorum() bool {
	if n.members == nil {
		return true
	}
	_, q := n.members.Alive()
	return q
}

// registerClusterMetrics adds the membership gauges to the node's
// metrics; nothing outside a cluster.
func (n *Node) registerClusterMetrics() {
	if n.members == nil {
		return
	}
	alive := func() float64 { a, _ := n.members.Alive(); return float64(len(a)) }
	quorum := func() float64 {
		if n.ClusterQuorum() {
			return 1
		}
		return 0
	}
	reg := n.metrics.Registry()
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tapswitch_cluster_nodes",
			Help: "Nodes whose heartbeat this node saw current at its last heartbeat.", ConstLabels: prometheus.Labels{"state": "alive"}}, alive),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tapswitch_cluster_quorum",
			Help: "1 while this node's heartbeats reach the NATS quorum within the heartbeat TTL."}, quorum),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tapswitch_cluster_adopting",
			Help: "Dead nodes whose advices or days this node is finishing now."}, func() float64 { return float64(n.adopting.Load()) }),
	)
}

// openClusterChecks opens the network-wide duplicate keys and stand-in
// usage; nil, nil without a cluster.
func (n *Node) openClusterChecks() (authorize.Duplicates, authorize.StandIns, error) {
	cc := n.cfg.Cluster
	if !cc.Enabled() {
		return nil, nil, nil
	}
	var dups *cluster.Duplicates
	var standIns *cluster.StandIns
	err := n.openShared(func(ctx context.Context, js jetstream.JetStream) (err error) {
		if dups == nil {
			dups, err = cluster.OpenDuplicates(ctx, js, cluster.DuplicatesConfig{Bucket: cc.DuplicatesBucket,
				Replicas: cc.Replicas, OpTimeout: cc.OpTimeout, MaxAge: cc.DuplicatesMaxAge,
				PendingWait: cc.PendingWait, NodeID: n.cfg.NodeID})
			if err != nil {
				return err
			}
		}
		standIns, err = cluster.OpenStandIns(ctx, js, cluster.StandInsConfig{Bucket: cc.StandInBucket,
			Replicas: cc.Replicas, OpTimeout: cc.OpTimeout})
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	n.log.Info().Str("duplicates", cc.DuplicatesBucket).Str("stand_in", cc.StandInBucket).
		Msg("cluster mode: duplicate keys and stand-in usage shared through JetStream")
	return dups, standIns, nil
}
