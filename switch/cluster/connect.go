package cluster

import (
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// A node's connection to NATS gives up after about an hour of reconnect
// attempts (ReconnectsMax, one per ReconnectWait); then every tap is 91
// until the node is restarted.
const (
	ReconnectsMax = 7200
	ReconnectWait = 500 * time.Millisecond
)

// Connect opens a node's connection to NATS:
//
//   - to the servers of urls and no others the servers advertise, so which
//     servers a node reaches through is the operator's choice (its own
//     machine's, say), and a node given one server is cut off when that
//     server is;
//   - keeping nothing to send across a reconnect. A write the node gave up
//     on (it answered its terminal with an error) must never land later: by
//     then a survivor may have adopted the node and acted on the stream
//     without it. nats.go would otherwise buffer what is published while it
//     reconnects and send it once connected again.
func Connect(urls []string, node string, timeout time.Duration) (*nats.Conn, error) {
	nc, err := nats.Connect(strings.Join(urls, ","), nats.Name("tapswitch "+node),
		nats.Timeout(timeout), nats.MaxReconnects(ReconnectsMax), nats.ReconnectWait(ReconnectWait),
		nats.IgnoreDiscoveredServers(), nats.ReconnectBufSize(-1))
	if err != nil {
		return nil, fmt.Errorf("cluster: connect to NATS: %w", err)
	}
	return nc, nil
}
