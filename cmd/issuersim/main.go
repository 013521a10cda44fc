// Command issuersim runs the simulated issuing banks and transit operators,
// each on the address issuers.yaml gives it, holding the card base that
// bench/world generates from -seed plus the demo cards.
//
//	issuersim -only ICBC,CMB -cards 1000 -latency 20ms -jitter 30ms -drop-rate 0.01
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/bench/issuersim"
	"github.com/tapswitch/tapswitch/bench/world"
	"github.com/tapswitch/tapswitch/configs"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/router/issuers"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// options are the parsed flags.
type options struct {
	issuersFile, binsFile, only string
	seed                        int64
	cards                       int
	faults                      issuersim.Faults
	logLevel                    string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("issuersim", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported in one line by run
	fs.StringVar(&o.issuersFile, "issuers", "", "issuers.yaml `file` (default: the embedded configs/issuers.yaml)")
	fs.StringVar(&o.binsFile, "bins", "", "bins.yaml `file` (default: the embedded configs/bins.yaml)")
	fs.StringVar(&o.only, "only", "", "comma-separated issuer `IDs` to run (default: all)")
	fs.Int64Var(&o.seed, "seed", 1, "seed of the card base, latency and faults")
	fs.IntVar(&o.cards, "cards", 1000, fmt.Sprintf("cards per BIN, 0 to %d", world.CardsPerBINMax))
	fs.DurationVar(&o.faults.Latency, "latency", 0, "added to every answer")
	fs.DurationVar(&o.faults.Jitter, "jitter", 0, "plus a uniform random share of this")
	fs.Float64Var(&o.faults.DropRate, "drop-rate", 0, "share of requests never answered, 0 to 1")
	fs.Float64Var(&o.faults.ErrorRate, "error-rate", 0, "share of requests answered 96, 0 to 1")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fs.Usage()
		}
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.cards < 0 || o.cards > world.CardsPerBINMax {
		return o, fmt.Errorf("-cards %d is outside 0..%d", o.cards, world.CardsPerBINMax)
	}
	return o, o.faults.Validate()
}

// run is the whole command; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "issuersim: %v\n", err)
		return 2
	}
	level, err := zerolog.ParseLevel(o.logLevel)
	if err != nil || level == zerolog.NoLevel {
		fmt.Fprintf(stderr, "issuersim: -log-level %q is not debug, info, warn or error\n", o.logLevel)
		return 2
	}
	log := zerolog.New(stderr).Level(level).With().Timestamp().Logger()
	fleet, err := start(o, log)
	if err != nil {
		fmt.Fprintf(stderr, "issuersim: %v\n", err)
		return 1
	}
	for _, id := range fleet.IDs() {
		fmt.Fprintf(stdout, "%s listening on %s (%d cards)\n", id, fleet.Addr(id), fleet.Issuer(id).Cards())
	}
	<-ctx.Done()
	fleet.Close()
	log.Info().Msg("stopped")
	return 0
}

// start loads the configuration, generates the cards and starts the fleet.
func start(o options, log zerolog.Logger) (*issuersim.Fleet, error) {
	issuersDoc, err := readOr(o.issuersFile, configs.Issuers)
	if err != nil {
		return nil, err
	}
	binsDoc, err := readOr(o.binsFile, configs.Bins)
	if err != nil {
		return nil, err
	}
	list, err := issuers.Parse(issuersDoc)
	if err != nil {
		return nil, err
	}
	table, err := bintable.Parse(binsDoc)
	if err != nil {
		return nil, err
	}
	list, err = selectIssuers(list, o.only)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	cards := append(world.Generate(table, o.seed, o.cards, now), world.DemoCards(world.Demo(table, now))...)
	return issuersim.StartConfigured(list, cards, o.faults, o.seed, log)
}

func readOr(path string, embedded []byte) ([]byte, error) {
	if path == "" {
		return embedded, nil
	}
	return os.ReadFile(path)
}

// selectIssuers keeps the issuers named in only, in file order.
func selectIssuers(list []issuers.Issuer, only string) ([]issuers.Issuer, error) {
	if only == "" {
		return list, nil
	}
	ids := strings.Split(only, ",")
	for i := range ids {
		ids[i] = strings.TrimSpace(ids[i])
	}
	var out []issuers.Issuer
	for _, id := range ids {
		if !slices.ContainsFunc(list, func(is issuers.Issuer) bool { return is.ID == id }) {
			return nil, fmt.Errorf("-only: no issuer %q in the issuers file", id)
		}
	}
	for _, is := range list {
		if slices.Contains(ids, is.ID) {
			out = append(out, is)
		}
	}
	return out, nil
}
