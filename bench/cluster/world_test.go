package cluster

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/bench/proctest"
	"github.com/tapswitch/tapswitch/bench/wallet"
)

// nodesN is the cluster's size: three switchd nodes, three NATS servers.
const nodesN = 3

// readyMax bounds each wait for a process to be ready on loopback.
const readyMax = 60 * time.Second

// binaries are the commands the test builds once.
type binaries struct{ natsd, switchd, issuersim, tapctl, bench, settle string }

func build(t *testing.T, dir string) binaries {
	t.Helper()
	b := func(name string) string { return proctest.Build(t, dir, "../../cmd/"+name, name) }
	return binaries{natsd: b("natsd"), switchd: b("switchd"), issuersim: b("issuersim"),
		tapctl: b("tapctl"), bench: b("bench"), settle: b("settle")}
}

// node is one switchd of the cluster: its data, configuration and ports
// (fixed for its life, so HAProxy finds it again after a restart).
type node struct {
	id                    string
	data, config          string
	listen, admin, public string
	proc                  *exec.Cmd
}

// world is the running cluster.
type world struct {
	t           *testing.T
	dir         string
	bin         binaries
	nodes       []*node
	haproxy     string // HAProxy's terminal address
	issuerAdmin string
	issuerProc  *exec.Cmd
	ledgers     string   // where issuersim writes its ledgers on SIGTERM
	wallet      string   // node 1's dev wallet: the demo tokens every node knows
	nats        []string // the NATS servers' client URLs
	natsd       []*natsServer
}

// natsServer is one natsd process and how to start it again on its store.
type natsServer struct {
	args    []string
	monitor string
	proc    *exec.Cmd
}

// partitioned is the node (0-based) that reaches NATS through its own
// server only, so that stopping that server cuts it off from the others
// (the partition); the other nodes know every server and move to
// another when theirs dies.
const partitioned = 1

// startWorld builds and starts everything: NATS, issuersim, the nodes one
// after another (node 1 creates the JetStream bucket), then HAProxy.
func startWorld(t *testing.T, haproxyBin string) *world {
	dir := t.TempDir()
	w := &world{t: t, dir: dir, bin: build(t, dir), ledgers: filepath.Join(dir, "ledgers")}
	keys := w.makeKeys()
	w.natsd = startNATS(t, w.bin.natsd, dir)
	urls := w.natsURLs()
	w.nats = urls
	issuersFile := proctest.IssuersOnFreePorts(t, dir)
	if err := os.MkdirAll(w.ledgers, 0o700); err != nil {
		t.Fatal(err)
	}
	w.issuerAdmin, w.issuerProc = proctest.Issuersim(t, w.bin.issuersim, "-issuers", issuersFile, "-cards", "200",
		"-operator-keys", filepath.Join(keys, "operator.keys"), "-ledger-dir", w.ledgers)
	for i := range nodesN {
		nodeURLs := urls
		if i == partitioned {
			nodeURLs = urls[i : i+1]
		}
		n := w.newNode(i+1, keys, issuersFile, nodeURLs)
		w.nodes = append(w.nodes, n)
		w.startNode(n)
	}
	w.wallet = filepath.Join(w.nodes[0].data, wallet.DevFileName)
	w.haproxy = startHAProxy(t, haproxyBin, dir, w.nodes)
	return w
}

// makeKeys makes the one set of keys every node holds (vault keyring,
// acquirer keys, operator keys), as cluster.sh does.
func (w *world) makeKeys() string {
	keys := filepath.Join(w.dir, "keys")
	for _, args := range [][]string{{"init", "dev-vault.keys"}, {"init-acquirers", "dev-acquirer.keys"},
		{"init-operators", "operator.keys"}} {
		cmd := exec.Command(w.bin.tapctl, "keys", args[0], filepath.Join(keys, args[1]))
		if out, err := cmd.CombinedOutput(); err != nil {
			w.t.Fatalf("tapctl keys %s: %v\n%s", args[0], err, out)
		}
	}
	return keys
}

// newNode lays out node k: its data directory holding copies of the shared
// keys (switchd -dev uses the key files it finds there) and its
// configuration: cluster mode, STAN block k, short retry times.
func (w *world) newNode(k int, keys, issuersFile string, urls []string) *node {
	n := &node{id: fmt.Sprintf("node-%d", k), data: filepath.Join(w.dir, fmt.Sprintf("node-%d", k)),
		listen: proctest.FreeAddr(w.t), admin: proctest.FreeAddr(w.t), public: proctest.FreeAddr(w.t)}
	if err := os.MkdirAll(n.data, 0o700); err != nil {
		w.t.Fatal(err)
	}
	for _, f := range []string{"dev-vault.keys", "dev-acquirer.keys", "operator.keys"} {
		b, err := os.ReadFile(filepath.Join(keys, f))
		if err != nil {
			w.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(n.data, f), b, 0o600); err != nil {
			w.t.Fatal(err)
		}
	}
	confDir := filepath.Join(w.dir, "conf-"+n.id)
	if err := os.MkdirAll(confDir, 0o700); err != nil {
		w.t.Fatal(err)
	}
	n.config = proctest.Config(w.t, confDir, map[string]string{
		"node_id: node-1":       "node_id: " + n.id,
		`issuers_file: ""`:      "issuers_file: " + issuersFile,
		"urls: []":              "urls: [" + strings.Join(urls, ", ") + "]",
		"stan_block: 0":         fmt.Sprintf("stan_block: %d", k),
		"connect_timeout: 5s":   "connect_timeout: 20s",
		"request_timeout: 2s":   "request_timeout: 1s",
		"retry_min: 500ms":      "retry_min: 50ms",
		"retry_max: 1m":         "retry_max: 500ms",
		"shutdown_timeout: 30s": "shutdown_timeout: 10s",
		"backoff_max: 5s":       "backoff_max: 200ms",
		"heartbeat_ttl: 5s":     "heartbeat_ttl: " + heartbeatTTL.String(),
	})
	return n
}

// startNode starts (or restarts, on its data) a node and waits for its
// /readyz. -dev seeds the demo tokens on every node: the same records,
// written through the replicated vault.
func (w *world) startNode(n *node) {
	w.t.Helper()
	n.proc, _ = proctest.DevSwitchd(w.t, w.bin.switchd, n.data, "-dev-external-issuers", "-config", n.config,
		"-listen", n.listen, "-admin", n.admin, "-public", n.public, "-log-level", "error")
	waitHTTP(w.t, "http://"+n.admin+"/readyz", n.id)
}

// awaitExit waits for a node to stop by itself, with an error.
func (w *world) awaitExit(t *testing.T, n *node) {
	t.Helper()
	exited := make(chan error, 1)
	go func() { exited <- n.proc.Wait() }()
	select {
	case err := <-exited:
		if err == nil {
			t.Fatalf("%s stopped with exit status 0, want an error", n.id)
		}
		t.Logf("%s stopped by itself: %v", n.id, err)
	case <-time.After(readyMax):
		t.Fatalf("%s did not stop within %v", n.id, readyMax)
	}
}

// stopNode stops a node with SIGTERM and waits for it to exit.
func (w *world) stopNode(n *node) {
	n.proc.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { n.proc.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		w.t.Fatalf("%s did not exit within 30s of SIGTERM", n.id)
	}
}

// startNATS starts nodesN natsd processes clustered on free loopback
// ports and waits until each one's /healthz (JetStream current) is 200.
func startNATS(t *testing.T, bin, dir string) []*natsServer {
	t.Helper()
	var clients, routes, monitors []string
	for range nodesN {
		clients, monitors = append(clients, proctest.FreeAddr(t)), append(monitors, proctest.FreeAddr(t))
		routes = append(routes, proctest.FreeAddr(t))
	}
	var routeURLs []string
	for _, r := range routes {
		routeURLs = append(routeURLs, "nats-route://"+r)
	}
	var servers []*natsServer
	for i := range nodesN {
		store := filepath.Join(dir, fmt.Sprintf("nats-%d", i+1))
		s := &natsServer{monitor: monitors[i], args: []string{bin, "-name", fmt.Sprintf("n%d", i+1), "-listen", clients[i],
			"-cluster", routes[i], "-routes", strings.Join(routeURLs, ","), "-monitor", monitors[i], "-store", store}}
		s.start(t)
		t.Cleanup(func() { s.proc.Process.Signal(syscall.SIGTERM); s.proc.Wait() })
		servers = append(servers, s)

	}
	for _, s := range servers {
		s.awaitHealthy(t)
	}
	return servers
}

// start starts (or restarts, on its store) the server.
func (s *natsServer) start(t *testing.T) {
	s.proc = exec.Command(s.args[0], s.args[1:]...)
	s.proc.Stderr = os.Stderr
	if err := s.proc.Start(); err != nil {
		t.Fatal(err)
	}
}

func (s *natsServer) awaitHealthy(t *testing.T) {
	waitHTTP(t, "http://"+s.monitor+"/healthz", "NATS server "+s.args[2])
}

// natsURLs are the servers' client URLs.
func (w *world) natsURLs() []string {
	var urls []string
	for _, s := range w.natsd {
		i := slices.Index(s.args, "-listen")
		urls = append(urls, "nats://"+s.args[i+1])
	}
	return urls
}

// startHAProxy writes configs/haproxy.cfg with the test's ports (the same
// shape: TCP, leastconn, /readyz checks on the admin ports) and starts
// HAProxy in the foreground; it returns the terminals' address.
func startHAProxy(t *testing.T, bin, dir string, nodes []*node) string {
	t.Helper()
	b, err := os.ReadFile("../../configs/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	cfg, front := string(b), proctest.FreeAddr(t)
	replace := map[string]string{"bind 127.0.0.1:8583": "bind " + front}
	for i, n := range nodes {
		k := i + 1
		old := fmt.Sprintf("127.0.0.1:%d8583 check port %d8584", k, k)
		_, adminPort, _ := net.SplitHostPort(n.admin)
		replace[old] = n.listen + " check port " + adminPort
	}
	for old, repl := range replace {
		if !strings.Contains(cfg, old) {
			t.Fatalf("configs/haproxy.cfg has no %q: the test's copy no longer follows it", old)
		}
		cfg = strings.Replace(cfg, old, repl, 1)
	}
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// -n: a maxconn the test's descriptor limit allows (the file's 20,000
	// needs about 40,000 descriptors).
	cmd := exec.Command(bin, "-db", "-n", "1000", "-f", path)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	waitFor(t, "HAProxy to listen", func() bool {
		c, err := net.Dial("tcp", front)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return front
}

// waitHTTP waits until url answers 200.
func waitHTTP(t *testing.T, url, what string) {
	t.Helper()
	waitFor(t, what+" ready ("+url+")", func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(readyMax)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s", readyMax, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
