package node

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapswitch/tapswitch/router/link"
	"github.com/tapswitch/tapswitch/switch/authorize"
	"github.com/tapswitch/tapswitch/switch/cluster"
	"github.com/tapswitch/tapswitch/switch/replica"
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

// clusterReconnectsMax bounds a node's reconnect attempts to NATS, one per
// clusterReconnectWait: about an hour, then the connection is closed and
// every tap is 91 until the node is restarted.
const (
	clusterReconnectsMax = 7200
	clusterReconnectWait = 500 * time.Millisecond
)

// jetStream connects to NATS, once; cluster mode only.
func (n *Node) jetStream() (jetstream.JetStream, error) {
	if n.js != nil {
		return n.js, nil
	}
	cc := n.cfg.Cluster
	if cc.ConnectTimeout <= 0 {
		return nil, fmt.Errorf("config cluster: connect_timeout must be positive")
	}
	nc, err := nats.Connect(strings.Join(cc.URLs, ","), nats.Name("tapswitch "+n.cfg.NodeID),
		nats.Timeout(cc.ConnectTimeout), nats.MaxReconnects(clusterReconnectsMax),
		nats.ReconnectWait(clusterReconnectWait))
	if err != nil {
		return nil, fmt.Errorf("cluster: connect to NATS: %w", err)
	}
	n.nats = nc
	if n.js, err = jetstream.New(nc); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return n.js, nil
}

// openState opens the replicated log of the vault and the token service;
// nil without a cluster (each store then commits to its own Pebble).
func (n *Node) openState() (*cluster.State, error) {
	cc := n.cfg.Cluster
	if !cc.Enabled() {
		return nil, nil
	}
	js, err := n.jetStream()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), cc.ConnectTimeout)
	defer cancel()
	state, err := cluster.OpenState(ctx, js, cluster.StateConfig{
		Stream: cc.StateStream, Replicas: cc.Replicas, BytesMax: cc.StateBytesMax,
		OpTimeout: cc.OpTimeout, CatchUpTimeout: cc.CatchUpTimeout, Log: n.log})
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
	js, err := n.jetStream()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), cc.ConnectTimeout)
	defer cancel()
	counters, err := cluster.OpenCounters(ctx, js, cluster.CountersConfig{
		Bucket: cc.CountersBucket, Replicas: cc.Replicas, OpTimeout: cc.OpTimeout})
	if err != nil {
		return nil, err
	}
	n.log.Info().Strs("nats", cc.URLs).Str("bucket", cc.CountersBucket).Int("replicas", cc.Replicas).
		Msg("cluster mode: counter windows shared through JetStream")
	return counters, nil
}

// openClusterChecks opens the network-wide duplicate keys and stand-in
// usage on the connection openCluster made; nil, nil without a cluster.
func (n *Node) openClusterChecks() (authorize.Duplicates, authorize.StandIns, error) {
	cc := n.cfg.Cluster
	if !cc.Enabled() {
		return nil, nil, nil
	}
	js, err := jetstream.New(n.nats)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cc.ConnectTimeout)
	defer cancel()
	dups, err := cluster.OpenDuplicates(ctx, js, cluster.DuplicatesConfig{Bucket: cc.DuplicatesBucket,
		Replicas: cc.Replicas, OpTimeout: cc.OpTimeout, MaxAge: cc.DuplicatesMaxAge, PendingWait: cc.PendingWait,
		NodeID: n.cfg.NodeID})
	if err != nil {
		return nil, nil, err
	}
	standIns, err := cluster.OpenStandIns(ctx, js, cluster.StandInsConfig{Bucket: cc.StandInBucket,
		Replicas: cc.Replicas, OpTimeout: cc.OpTimeout})
	if err != nil {
		return nil, nil, err
	}
	n.log.Info().Str("duplicates", cc.DuplicatesBucket).Str("stand_in", cc.StandInBucket).
		Msg("cluster mode: duplicate keys and stand-in usage shared through JetStream")
	return dups, standIns, nil
}
