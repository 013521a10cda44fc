// Command switchd is the tapswitch switch. 'switchd -dev' runs it with
// simulated issuers and demo cards on loopback; see README.md and, for the
// flags, docs/cli.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/tapswitch/tapswitch/internal/cli"
	"github.com/tapswitch/tapswitch/switch/daemon"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run is switchd: exit 0 after a clean stop (or -h), 1 when it could not
// run, 2 on bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stdout, stderr)
	if errors.Is(err, cli.ErrHelp) {
		return cli.ExitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "switchd: %v (switchd -h lists the flags)\n", err)
		return cli.ExitUsage
	}
	opts.Out = stderr
	if err := daemon.Run(ctx, opts); err != nil {
		fmt.Fprintf(stderr, "switchd: %v\n", err)
		return 1
	}
	return 0
}

func parseFlags(args []string, stdout, stderr io.Writer) (daemon.Options, error) {
	var opts daemon.Options
	fs := cli.New("switchd", "The switch: terminals, token API, issuer links, journal (README.md).", stdout, stderr)
	fs.StringVar(&opts.ConfigPath, "config", "", "configuration `FILE`: the fields it sets, over the built-in configs/switch.yaml")
	fs.BoolVar(&opts.Dev, "dev", false, "development mode: simulated issuers, demo cards and a dev wallet on loopback")
	fs.StringVar(&opts.Listen, "listen", "", "terminal listener `HOST:PORT` (overrides the config; default 127.0.0.1:8583)")
	fs.StringVar(&opts.Public, "public", "", "public HTTP listener `HOST:PORT`: token API and lost-phone page (overrides the config; default 127.0.0.1:8585)")
	fs.StringVar(&opts.Admin, "admin", "", "operator HTTP listener `HOST:PORT` (overrides the config; default 127.0.0.1:8584)")
	fs.StringVar(&opts.Data, "data", "", "data `DIR` for vault and journal (overrides the config; -dev: $TMPDIR/tapswitch-dev)")
	fs.StringVar(&opts.KeyFile, "keys", "", "the switch's key `FILE` (overrides key_file and key_env; create one with tapctl keys init FILE)")
	fs.StringVar(&opts.AcquirerKeysFile, "acquirer-keys", "",
		"the acquirers' key `FILE` (overrides acquirer_keys_file; create one with tapctl keys init-acquirers FILE)")
	fs.StringVar(&opts.LogLevel, "log-level", "", "trace, debug, info, warn or error (overrides the config; -dev: info and one line per transaction)")
	fs.StringVar(&opts.LogFormat, "log-format", "", "console (readable, the -dev default) or json (one JSON object per line, the default otherwise)")
	fs.BoolFunc("log-transactions", "log one line per authorization at info (overrides log_transactions; on with -dev, =false turns it off)",
		func(v string) error {
			on, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("want true or false")
			}
			opts.LogTransactions = &on
			return nil
		})
	fs.Int64Var(&opts.Seed, "seed", 1, "dev: seed of the simulated card base")
	fs.BoolVar(&opts.DevExternalIssuers, "dev-external-issuers", false,
		"dev: do not start issuers in-process; use the configured addresses (run issuersim with the same -seed)")
	if err := fs.Parse(args); err != nil {
		return opts, err
	}
	return opts, daemon.CheckLogFormat(opts.LogFormat)
}
