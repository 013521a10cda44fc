// Command natsd runs one NATS server with JetStream, built from the
// nats-server module the switch pins, so a cluster on one machine (and CI)
// needs no NATS package: three of them with -cluster and -routes form the
// JetStream cluster that switchd nodes share state through
// (docs/cluster.md, bench/scripts/cluster.sh). Loopback addresses only.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/tapswitch/tapswitch/internal/cli"
)

// readyWait bounds the wait for the server to accept clients.
const readyWait = 20 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run is the command: it serves until SIGTERM or SIGINT, then shuts the
// server down (exit 0); 1 when the server cannot start, 2 on bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stdout, stderr)
	if errors.Is(err, cli.ErrHelp) {
		return cli.ExitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "natsd: %v (natsd -h lists the flags)\n", err)
		return cli.ExitUsage
	}
	s, err := server.NewServer(opts)
	if err != nil {
		fmt.Fprintf(stderr, "natsd: %v\n", err)
		return 1
	}
	if !opts.NoLog {
		s.ConfigureLogger()
	}
	go s.Start()
	if !s.ReadyForConnections(readyWait) {
		s.Shutdown()
		fmt.Fprintf(stderr, "natsd: %s not ready within %v\n", opts.ServerName, readyWait)
		return 1
	}
	fmt.Fprintf(stdout, "natsd %s listening on %s\n", opts.ServerName, s.ClientURL())
	<-ctx.Done()
	s.Shutdown()
	s.WaitForShutdown()
	return 0
}

// parseFlags reads the flags into the server's options.
func parseFlags(args []string, stdout, stderr io.Writer) (*server.Options, error) {
	fs := cli.New("natsd", "Runs one NATS server with JetStream (a node of the switch's cluster, docs/cluster.md).", stdout, stderr)
	name := fs.String("name", "n1", "server `NAME`, unique in the cluster")
	listen := fs.String("listen", "127.0.0.1:4222", "client `HOST:PORT`")
	cluster := fs.String("cluster", "", "route `HOST:PORT` for the other servers (empty: no cluster)")
	routes := fs.String("routes", "", "`URLS` of every server's route, comma-separated (nats-route://127.0.0.1:6222,...)")
	clusterName := fs.String("cluster-name", "tapswitch", "`NAME` of the cluster, the same on every server")
	monitor := fs.String("monitor", "", "HTTP monitoring `HOST:PORT` (/varz, /jsz); empty: none")
	store := fs.String("store", "", "JetStream store `DIR` (required)")
	logs := fs.Bool("log", false, "log the server's lines on stderr")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *store == "" {
		return nil, errors.New("-store is required")
	}
	o := &server.Options{ServerName: *name, JetStream: true, StoreDir: *store, NoSigs: true, NoLog: !*logs}
	var err error
	if o.Host, o.Port, err = loopbackHostPort("-listen", *listen); err != nil {
		return nil, err
	}
	if *monitor != "" {
		if o.HTTPHost, o.HTTPPort, err = loopbackHostPort("-monitor", *monitor); err != nil {
			return nil, err
		}
	}
	if *cluster != "" {
		o.Cluster.Name = *clusterName
		if o.Cluster.Host, o.Cluster.Port, err = loopbackHostPort("-cluster", *cluster); err != nil {
			return nil, err
		}
		o.Routes = server.RoutesFromStr(*routes)
	}
	return o, nil
}

// loopbackHostPort splits a HOST:PORT whose host is a loopback address.
func loopbackHostPort(flagName, addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %q is not HOST:PORT", flagName, addr)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("%s: %q has no port", flagName, addr)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return "", 0, fmt.Errorf("%s: %q is not a loopback address", flagName, addr)
	}
	return host, port, nil
}
