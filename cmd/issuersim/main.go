// Command issuersim runs the simulated issuing banks and transit operators,
// each on the address issuers.yaml gives it, holding the card base that
// bench/world generates from -seed plus the demo cards.
//
//	issuersim -only ICBC,CMB -cards 1000 -latency 20ms -jitter 30ms -drop-rate 0.01
//
// An admin listener (-admin, default 127.0.0.1:9690) serves /healthz, the
// ledgers as JSON and the fault drills (bench/issuersim AdminHandler):
//
//	curl -s 127.0.0.1:9690/ledger?issuer=ICBC
//	curl -s -XPOST '127.0.0.1:9690/faults?issuer=ICBC' -d '{"late_rate":0.1,"late_by":"3s"}'
//	curl -s -XPOST '127.0.0.1:9690/down?issuer=*'
//
// With -ledger-dir, SIGTERM or SIGINT writes each issuer's ledger to
// DIR/ledger-ISSUER.json (atomically) before the process exits, for
// settlement reconciliation.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
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
	"github.com/tapswitch/tapswitch/internal/cli"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/router/issuers"
	"github.com/tapswitch/tapswitch/settlement/transit"
	"github.com/tapswitch/tapswitch/switch/listener"
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
	cutoff, timezone            string
	admin, ledgerDir            string
	logLevel                    string
	operatorKeys                string
}

func parseFlags(args []string, stdout, stderr io.Writer) (options, error) {
	var o options
	fs := cli.New("issuersim", "The simulated issuing banks and transit operators, each on its address in -issuers.", stdout, stderr)
	fs.StringVar(&o.issuersFile, "issuers", "", "issuer directory `FILE`, issuers.yaml (default: the built-in configs/issuers.yaml)")
	fs.StringVar(&o.binsFile, "bins", "", "BIN table `FILE`, bins.yaml (default: the built-in configs/bins.yaml)")
	fs.StringVar(&o.only, "only", "", "comma-separated issuer `IDs` to run (default: all)")
	fs.Int64Var(&o.seed, "seed", 1, "seed of the card base, latency and faults")
	fs.IntVar(&o.cards, "cards", 1000, fmt.Sprintf("cards per BIN, 0 to %d", world.CardsPerBINMax))
	fs.DurationVar(&o.faults.Latency, "latency", 0, "added to every answer")
	fs.DurationVar(&o.faults.Jitter, "jitter", 0, "plus a uniform random share of this")
	fs.Float64Var(&o.faults.DropRate, "drop-rate", 0, "share of requests decided (approvals posted) but never answered, 0 to 1")
	fs.Float64Var(&o.faults.ErrorRate, "error-rate", 0, "share of requests answered 96 without a decision, 0 to 1")
	fs.Float64Var(&o.faults.DisconnectRate, "disconnect-rate", 0, "share of requests decided, then the connection closed unanswered")
	fs.Float64Var(&o.faults.DuplicateRate, "duplicate-rate", 0, "share of requests answered twice")
	fs.Float64Var(&o.faults.GarbageRate, "garbage-rate", 0, "share of requests decided and answered with a framed non-message")
	fs.Float64Var(&o.faults.LateRate, "late-rate", 0, "share of requests decided on time and answered -late-by later")
	fs.DurationVar(&o.faults.LateBy, "late-by", 0, "how late a late answer is, e.g. 3s")
	fs.StringVar(&o.cutoff, "cutoff", "23:00", "`HH:MM` at which the issuers' business day closes")
	fs.StringVar(&o.timezone, "timezone", "Asia/Shanghai", "time `zone` of -cutoff")
	fs.StringVar(&o.admin, "admin", "127.0.0.1:9690", "operator HTTP listener `HOST:PORT` (ledgers, fault drills), \"\" for none")
	fs.StringVar(&o.ledgerDir, "ledger-dir", "", "`DIR` to write ledger-ISSUER.json files to on SIGTERM/SIGINT")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.operatorKeys, "operator-keys", "", "the transit operators' master key `FILE` (tapctl keys init-operators; switchd -dev's DATA/operator.keys); without it the operators answer loads 91")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.cards < 0 || o.cards > world.CardsPerBINMax {
		return o, fmt.Errorf("-cards %d is outside 0..%d", o.cards, world.CardsPerBINMax)
	}
	if _, err := issuersim.ParseCutoff(o.cutoff, o.timezone); err != nil {
		return o, fmt.Errorf("-cutoff, -timezone: %w", err)
	}
	return o, o.faults.Validate()
}

// run is the whole command; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stdout, stderr)
	if errors.Is(err, cli.ErrHelp) {
		return cli.ExitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "issuersim: %v (issuersim -h lists the flags)\n", err)
		return cli.ExitUsage
	}
	level, err := zerolog.ParseLevel(o.logLevel)
	if err != nil || level == zerolog.NoLevel {
		fmt.Fprintf(stderr, "issuersim: -log-level %q is not debug, info, warn or error\n", o.logLevel)
		return 2
	}
	log := zerolog.New(stderr).Level(level).With().Timestamp().Logger()
	if o.ledgerDir != "" {
		if err := checkWritableDir(o.ledgerDir); err != nil {
			fmt.Fprintf(stderr, "issuersim: -ledger-dir: %v\n", err)
			return 1
		}
	}
	fleet, err := start(o, log)
	if err != nil {
		fmt.Fprintf(stderr, "issuersim: %v\n", err)
		return 1
	}
	admin, err := startAdmin(o.admin, fleet, log, adminLimitsDefault)
	if err != nil {
		fleet.Close()
		fmt.Fprintf(stderr, "issuersim: -admin: %v\n", err)
		return 1
	}
	for _, id := range fleet.IDs() {
		fmt.Fprintf(stdout, "%s listening on %s (%d cards)\n", id, fleet.Addr(id), fleet.Issuer(id).Cards())
	}
	if admin != nil {
		fmt.Fprintf(stdout, "admin listening on %s\n", admin.addr)
	}
	<-ctx.Done()
	admin.close(log)
	fleet.Close()
	if o.ledgerDir != "" {
		paths, err := fleet.WriteLedgers(o.ledgerDir)
		if err != nil {
			fmt.Fprintf(stderr, "issuersim: -ledger-dir: %v\n", err)
			return 1
		}
		log.Info().Strs("files", paths).Msg("ledgers written")
	}
	log.Info().Msg("stopped")
	return 0
}

// checkWritableDir fails now, not at shutdown, for a ledger directory the
// ledgers could not be written to.
func checkWritableDir(dir string) error {
	f, err := os.CreateTemp(dir, ".issuersim-probe-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// adminLimits bound the admin listener, so that a slow, idle or numerous
// client cannot hold it.
type adminLimits struct {
	headerTimeout, readTimeout, writeTimeout time.Duration
	// idleTimeout closes a keep-alive connection that sends nothing.
	idleTimeout time.Duration
	headerBytes int
	// connectionsMax caps the connections open at once; more are closed
	// at accept (switch/listener.Guard).
	connectionsMax int
}

// adminLimitsDefault: the write time-out covers sending a full ledger of a
// million entries.
var adminLimitsDefault = adminLimits{headerTimeout: 5 * time.Second, readTimeout: 10 * time.Second,
	writeTimeout: time.Minute, idleTimeout: time.Minute, headerBytes: 16 << 10, connectionsMax: 64}

// adminCloseTimeout bounds how long requests in flight may finish at exit.
const adminCloseTimeout = 5 * time.Second

type adminServer struct {
	addr string
	srv  *http.Server
	done chan struct{}
}

// startAdmin serves fleet.AdminHandler on addr within lim; nil for addr "".
func startAdmin(addr string, fleet *issuersim.Fleet, log zerolog.Logger, lim adminLimits) (*adminServer, error) {
	if addr == "" {
		return nil, nil
	}
	tcp, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	l, err := listener.Guard(tcp, listener.Config{Name: "issuersim admin", ConnectionsMax: lim.connectionsMax, Log: log})
	if err != nil {
		tcp.Close()
		return nil, err
	}
	a := &adminServer{addr: l.Addr().String(), done: make(chan struct{}), srv: &http.Server{
		Handler: fleet.AdminHandler(), ReadHeaderTimeout: lim.headerTimeout, ReadTimeout: lim.readTimeout,
		WriteTimeout: lim.writeTimeout, IdleTimeout: lim.idleTimeout, MaxHeaderBytes: lim.headerBytes,
		ErrorLog: stdlog.New(log.With().Str("listener", "issuersim admin").Logger(), "", 0),
	}}
	go func() {
		defer close(a.done)
		if err := a.srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("admin listener stopped")
		}
	}()
	return a, nil
}

// close stops the admin listener, letting requests in flight finish for a
// while. Safe on nil.
func (a *adminServer) close(log zerolog.Logger) {
	if a == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminCloseTimeout)
	defer cancel()
	if err := a.srv.Shutdown(ctx); err != nil {
		log.Warn().Err(err).Msg("admin listener did not stop in time")
		a.srv.Close()
	}
	<-a.done
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
	cutoff, err := issuersim.ParseCutoff(o.cutoff, o.timezone) // checked by parseFlags
	if err != nil {
		return nil, err
	}
	var masters map[string][]byte
	if o.operatorKeys != "" {
		if masters, err = transit.LoadMasterKeys(o.operatorKeys); err != nil {
			return nil, fmt.Errorf("-operator-keys: %w", err)
		}
	}
	return issuersim.StartConfigured(list, issuersim.FleetConfig{
		Cards: cards, Faults: o.faults, Seed: o.seed, Cutoff: cutoff, Logger: log, Bins: table, OperatorKeys: masters,
	})
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
