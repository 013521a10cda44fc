// Command relay is a plain TCP relay: every connection it accepts on
// -listen is copied byte for byte to a connection of its own to -to. bench
// -baseline relay runs it in front of a simulated issuer to measure what
// one hop costs on this machine (docs/bench.md). It relays loopback
// addresses only.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/tapswitch/tapswitch/bench/load"
	"github.com/tapswitch/tapswitch/bench/relay"
	"github.com/tapswitch/tapswitch/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run is the command: exit 0 after SIGTERM or SIGINT, 1 when it cannot
// listen, 2 on bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.New("relay", "Copies every connection on -listen byte for byte to -to (bench -baseline relay).", stdout, stderr)
	listen := fs.String("listen", "127.0.0.1:0", "`HOST:PORT` to accept on (port 0: any free one, printed)")
	to := fs.String("to", "", "upstream `HOST:PORT` each connection is relayed to")
	err := fs.Parse(args)
	if errors.Is(err, cli.ErrHelp) {
		return cli.ExitOK
	}
	if err == nil && *to == "" {
		err = errors.New("-to is required")
	}
	if err == nil {
		err = load.CheckLoopback(*to)
	}
	if err != nil {
		fmt.Fprintf(stderr, "relay: %v (relay -h lists the flags)\n", err)
		return cli.ExitUsage
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "relay: %v\n", err)
		return 1
	}
	r := relay.New(*to)
	served := make(chan error, 1)
	go func() { served <- r.Serve(l) }()
	fmt.Fprintf(stdout, "relay listening on %s, relaying to %s\n", l.Addr(), *to)
	select {
	case <-ctx.Done():
		l.Close()
		<-served
		err = nil
	case err = <-served:
		l.Close()
	}
	r.Close()
	if err != nil {
		fmt.Fprintf(stderr, "relay: %v\n", err)
		return 1
	}
	return 0
}
