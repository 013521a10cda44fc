// Package natstest starts a real NATS cluster with JetStream inside the
// test process: N servers on loopback, routed to each other, each with its
// own store directory, so a test can kill one (or a quorum) and restart it
// with its data. Tests of every cluster slice share it.
package natstest

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// readyWait bounds each wait for a server or for the cluster's JetStream.
const readyWait = 20 * time.Second

// reconnectsMax bounds a test connection's reconnect attempts (50 ms apart).
const reconnectsMax = 600

// Cluster is N embedded NATS servers forming one JetStream cluster.
type Cluster struct {
	t       testing.TB
	name    string
	opts    []*server.Options
	servers []*server.Server // nil while stopped
}

// Start starts n servers (n ≥ 1) clustered on loopback with JetStream, and
// waits until JetStream has a meta leader. They are shut down at the end
// of the test.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t, name: "tapswitch-test", servers: make([]*server.Server, n)}
	clientPorts, clusterPorts := freePorts(t, n), freePorts(t, n)
	var routes []string
	for _, p := range clusterPorts {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	for i := range n {
		o := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       clientPorts[i],
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoLog:      true,
			NoSigs:     true,
		}
		if n > 1 {
			o.Cluster = server.ClusterOpts{Name: c.name, Host: "127.0.0.1", Port: clusterPorts[i]}
			o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		}
		c.opts = append(c.opts, o)
	}
	t.Cleanup(c.Shutdown)
	for i := range n {
		c.Restart(i)
	}
	c.WaitJetStream()
	return c
}

// freePorts returns n loopback TCP ports free a moment ago: fixed ports,
// so a restarted server comes back where its peers route to it.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// Restart starts server i (again, on its store directory and ports).
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	if c.servers[i] != nil {
		c.t.Fatalf("natstest: server %d is running", i)
	}
	s, err := server.NewServer(c.opts[i])
	if err != nil {
		c.t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(readyWait) {
		s.Shutdown()
		c.t.Fatalf("natstest: server %d not ready", i)
	}
	c.servers[i] = s
}

// Kill shuts server i down (its store directory stays for Restart).
func (c *Cluster) Kill(i int) {
	if s := c.servers[i]; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		c.servers[i] = nil
	}
}

// Shutdown stops every server.
func (c *Cluster) Shutdown() {
	for i := range c.servers {
		c.Kill(i)
	}
}

// WaitJetStream waits until a running server is JetStream's meta leader
// and sees every running server as an online peer with JetStream, so that
// a stream with as many replicas as running servers can be placed.
func (c *Cluster) WaitJetStream() {
	c.t.Helper()
	running := 0
	for _, s := range c.servers {
		if s != nil {
			running++
		}
	}
	deadline := time.Now().Add(readyWait)
	for time.Now().Before(deadline) {
		for _, s := range c.servers {
			switch {
			case s == nil:
			case len(c.servers) == 1 && s.JetStreamEnabled(): // no meta group
				return
			case s.JetStreamIsLeader() && len(s.JetStreamClusterPeers()) == running:
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("natstest: JetStream has no meta leader seeing the %d running servers", running)
}

// URL is server i's client URL.
func (c *Cluster) URL(i int) string {
	return (&url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", c.opts[i].Port)}).String()
}

// URLs is every server's client URL, comma-separated, as nats.Connect
// takes them.
func (c *Cluster) URLs() string {
	var us []string
	for i := range c.opts {
		us = append(us, c.URL(i))
	}
	return strings.Join(us, ",")
}

// Connect connects to the cluster, server first (then the others on
// reconnect); the connection is closed at the end of the test.
func (c *Cluster) Connect(first int) *nats.Conn {
	c.t.Helper()
	urls := []string{c.URL(first)}
	for i := range c.opts {
		if i != first {
			urls = append(urls, c.URL(i))
		}
	}
	nc, err := nats.Connect(strings.Join(urls, ","), nats.DontRandomize(),
		nats.MaxReconnects(reconnectsMax), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	return nc
}
