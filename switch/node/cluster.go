package node

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapswitch/tapswitch/switch/authorize"
	"github.com/tapswitch/tapswitch/switch/cluster"
	"github.com/tapswitch/tapswitch/switch/journal"
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
	// not answer within it is answered 91.
	OpTimeout time.Duration `yaml:"op_timeout"`
	// ConnectTimeout bounds the first connection at start-up.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// JournalStream is the stream every node's journal batches are copied
	// to before a write returns (subject JournalStream.<node_id>), one per
	// network; it has Replicas replicas and OpTimeout bounds each ack.
	JournalStream string `yaml:"journal_stream"`
}

// Enabled says whether the node runs in a cluster.
func (c ClusterConfig) Enabled() bool { return len(c.URLs) > 0 }

// clusterReconnectsMax bounds a node's reconnect attempts to NATS, one per
// clusterReconnectWait: about an hour, then the connection is closed and
// every tap is 91 until the node is restarted.
const (
	clusterReconnectsMax = 7200
	clusterReconnectWait = 500 * time.Millisecond
)

// connectCluster connects to NATS, before the journal opens (it catches
// up from its stream); nothing without a cluster.
func (n *Node) connectCluster() error {
	cc := n.cfg.Cluster
	if !cc.Enabled() {
		return nil
	}
	if cc.ConnectTimeout <= 0 {
		return fmt.Errorf("config cluster: connect_timeout must be positive")
	}
	nc, err := nats.Connect(strings.Join(cc.URLs, ","), nats.Name("tapswitch "+n.cfg.NodeID),
		nats.Timeout(cc.ConnectTimeout), nats.MaxReconnects(clusterReconnectsMax),
		nats.ReconnectWait(clusterReconnectWait))
	if err != nil {
		return fmt.Errorf("cluster: connect to NATS: %w", err)
	}
	n.nats = nc
	if n.js, err = jetstream.New(nc); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	return nil
}

// journalReplica opens the journal stream and returns this node's replica
// of it; nil without a cluster.
func (n *Node) journalReplica() (journal.Replica, error) {
	cc := n.cfg.Cluster
	if n.js == nil {
		return nil, nil
	}
	s, err := openJournalStream(n.js, cc)
	if err != nil {
		return nil, err
	}
	n.log.Info().Str("stream", cc.JournalStream).Int("replicas", cc.Replicas).
		Msg("cluster mode: every journal write is also on a quorum of the journal stream")
	return s.Node(n.cfg.NodeID), nil
}

// openJournalStream opens the stream of every node's journal batches.
func openJournalStream(js jetstream.JetStream, cc ClusterConfig) (*cluster.JournalStream, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cc.ConnectTimeout)
	defer cancel()
	return cluster.OpenJournalStream(ctx, js, cluster.JournalConfig{
		Stream: cc.JournalStream, Replicas: cc.Replicas, OpTimeout: cc.OpTimeout})
}

// openCluster opens the shared counter windows; nil counters without a
// cluster.
func (n *Node) openCluster() (authorize.Counters, error) {
	cc := n.cfg.Cluster
	if n.js == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), cc.ConnectTimeout)
	defer cancel()
	counters, err := cluster.OpenCounters(ctx, n.js, cluster.CountersConfig{
		Bucket: cc.CountersBucket, Replicas: cc.Replicas, OpTimeout: cc.OpTimeout})
	if err != nil {
		return nil, err
	}
	n.log.Info().Strs("nats", cc.URLs).Str("bucket", cc.CountersBucket).Int("replicas", cc.Replicas).
		Msg("cluster mode: counter windows shared through JetStream")
	return counters, nil
}
