// Command switchd is the tapswitch switch. 'switchd -dev' runs it with
// simulated issuers and demo cards on loopback; see README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/tapswitch/tapswitch/switch/daemon"
)

func main() {
	var opts daemon.Options
	flag.StringVar(&opts.ConfigPath, "config", "", "configuration `FILE`: the fields it sets, over the built-in configs/switch.yaml")
	flag.BoolVar(&opts.Dev, "dev", false, "development mode: simulated issuers, demo cards and a dev wallet on loopback")
	flag.StringVar(&opts.Listen, "listen", "", "terminal listener `HOST:PORT` (overrides the config)")
	flag.StringVar(&opts.Public, "public", "", "public HTTP listener `HOST:PORT`: token API and lost-phone page (overrides the config)")
	flag.StringVar(&opts.Admin, "admin", "", "operator HTTP listener `HOST:PORT` (overrides the config)")
	flag.StringVar(&opts.Data, "data", "", "data `DIR` for vault and journal (overrides the config)")
	flag.StringVar(&opts.KeyFile, "keys", "", "the switch's key `FILE` (overrides key_file and key_env; create one with tapctl keys init FILE)")
	flag.StringVar(&opts.AcquirerKeysFile, "acquirer-keys", "",
		"the acquirers' key `FILE` (overrides acquirer_keys_file; create one with tapctl keys init-acquirers FILE)")
	flag.StringVar(&opts.LogLevel, "log-level", "", "trace, debug, info, warn or error (overrides the config; -dev: info and one line per transaction)")
	flag.Int64Var(&opts.Seed, "seed", 1, "dev: seed of the simulated card base")
	flag.BoolVar(&opts.DevExternalIssuers, "dev-external-issuers", false,
		"dev: do not start issuers in-process; use the configured addresses (run issuersim with the same -seed)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "switchd: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	opts.Out = os.Stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := daemon.Run(ctx, opts); err != nil {
		fmt.Fprintf(os.Stderr, "switchd: %v\n", err)
		os.Exit(1)
	}
}
