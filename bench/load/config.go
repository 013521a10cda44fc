package load

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/internal/cli"
	"github.com/tapswitch/tapswitch/iso8583"
)

// Bounds of one run. Each flag is checked against its bound before anything
// starts.
const (
	connectionsMax = 4096 // the switch's default connections_max
	concurrencyMax = 65536
	rateMax        = 1_000_000 // requests per second
	durationMax    = time.Hour
	warmupMax      = 10 * time.Minute
	timeoutMin     = 100 * time.Millisecond
	timeoutMax     = 60 * time.Second
	// inflightPerConnectionMax bounds an open-loop connection's requests in
	// flight; below pos's own bound of 1024 so the client never refuses.
	// When it is reached the schedule waits and the wait counts as latency.
	inflightPerConnectionMax = 1000
)

// Mode is closed loop (as fast as answers come) or open loop (fixed rate).
type Mode string

// The two modes.
const (
	ModeClosed Mode = "closed"
	ModeOpen   Mode = "open"
)

// Config is one run's settings, as cmd/bench's flags give them.
type Config struct {
	Mode        Mode
	Rate        int // open loop: requests per second
	Concurrency int // closed loop: requests in flight in total
	Connections int // TCP connections, one terminal each
	Duration    time.Duration
	Warmup      time.Duration
	Timeout     time.Duration // per request, from its intended send
	Mix         Mix
	Amount      iso8583.Amount // purchases, refunds and top-ups

	Addr       string // -switch: an existing switch; empty starts switchd -dev
	WalletPath string
	// AcquirerKeys is the existing switch's acquirer key file (empty: the
	// dev one beside WalletPath).
	AcquirerKeys string
	SwitchPID    int // existing switch: its process, for CPU figures
	IssuersPID   int // existing issuersim: its process, for CPU figures
	// Issuers is where the simulated issuers run when bench starts the
	// switch: IssuersChild (issuersim, its own process) or IssuersInProcess
	// (inside switchd -dev).
	Issuers string
	BinDir  string // prebuilt switchd and issuersim instead of go build
	// Baseline, when BaselineRelay, first runs the same load through a
	// plain relay to the issuer, for the report to compare against.
	Baseline string

	// OutDir is where each run writes bench-<UTC time>.json and .html and
	// points latest.json and latest.html at them; empty: no files.
	OutDir string
	JSON   bool // the JSON report on stdout instead of the summary
	Quiet  bool // no progress bar
	Keep   bool // keep the child's temporary directory
	// CPUProfile, when set, is where the harness writes its own CPU
	// profile (pprof) over the run.
	CPUProfile string
}

// Where the simulated issuers run when bench starts the world.
const (
	IssuersChild     = "child"
	IssuersInProcess = "inprocess"
)

// DefaultOutDir is where the reports go unless -out says otherwise.
const DefaultOutDir = "bench-reports"

// DefaultConfig is a closed-loop run of 10 s at 64 in flight over 32
// connections with the default mix.
func DefaultConfig() Config {
	mix, _ := ParseMix(DefaultMix)
	return Config{
		Mode: ModeClosed, Concurrency: 64, Connections: 32,
		Duration: 10 * time.Second, Warmup: 2 * time.Second, Timeout: 3 * time.Second,
		Mix: mix, Amount: 100, Issuers: IssuersChild,
		OutDir: DefaultOutDir,
	}
}

// UsageError is a bad flag or argument: the caller prints it on one line
// and exits 2.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }

// ParseFlags reads cmd/bench's flags. -h prints the usage on stdout and
// returns flag.ErrHelp.
func ParseFlags(args []string, stdout, stderr io.Writer) (Config, error) {
	c := DefaultConfig()
	fs := cli.New("bench", "Loads a switch and reports throughput, latency and CPU (docs/bench.md).", stdout, stderr)
	var mix, amount string
	var max bool
	fs.IntVar(&c.Rate, "rate", 0, "open loop: requests per `SECOND`, latency from each request's intended send time")
	fs.BoolVar(&max, "max", false, "closed loop at maximum throughput (the default when -rate is not given)")
	fs.IntVar(&c.Concurrency, "concurrency", c.Concurrency, "closed loop: requests in flight in total")
	fs.IntVar(&c.Connections, "connections", c.Connections, "TCP connections, each its own terminal")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "measured time")
	fs.DurationVar(&c.Warmup, "warmup", c.Warmup, "load before the measured time, not recorded")
	fs.DurationVar(&c.Timeout, "timeout", c.Timeout, "give a request up this long after its intended send (a timeout error)")
	fs.StringVar(&mix, "mix", DefaultMix, "`KIND=WEIGHT,...` of purchase, refund, topup, decline, reversal, and after the run gate (offline metro taps) and load (a phone's transit top-ups through the token API)")
	fs.StringVar(&amount, "amount", "1.00", "amount of purchases, refunds, top-ups and purse loads, in yuan")
	fs.StringVar(&c.Addr, "switch", "", "drive the switch whose terminal listener is at `HOST:PORT` (loopback) instead of starting switchd -dev")
	fs.StringVar(&c.WalletPath, "wallet", "", "wallet `FILE` with the demo cards (with -switch; default "+wallet.DevFilePath()+")")
	fs.StringVar(&c.AcquirerKeys, "acquirer-keys", "", "with -switch: acquirer key `FILE` the terminals' MAC keys derive from (default: dev-acquirer.keys beside -wallet)")
	fs.IntVar(&c.SwitchPID, "switch-pid", 0, "with -switch: the switch's `PID`, to report its CPU")
	fs.IntVar(&c.IssuersPID, "issuers-pid", 0, "with -switch: the issuer simulator's `PID`, to report its CPU")
	fs.StringVar(&c.Issuers, "sim-issuers", c.Issuers, "where the simulated issuers run: child (issuersim, its own process) or inprocess (inside switchd -dev)")
	fs.StringVar(&c.BinDir, "bin", "", "`DIR` holding prebuilt switchd, issuersim and relay (default: go build them)")
	fs.StringVar(&c.Baseline, "baseline", "", "relay: first run the same load, purchases only, through a plain TCP relay to the issuer, and report the switch against it")
	fs.StringVar(&c.OutDir, "out", c.OutDir, "report `DIR`: each run writes bench-<UTC time>.json and .html there and points latest.json, latest.html at them (\"\": no files)")
	fs.BoolVar(&c.JSON, "json", false, "print the JSON report on stdout instead of the summary")
	fs.BoolVar(&c.Quiet, "quiet", false, "no progress bar")
	fs.BoolVar(&c.Keep, "keep", false, "keep the temporary directory: binaries, switchd data, logs")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write the harness's own CPU profile to `FILE` (pprof)")
	fs.Alias("addr", "switch")
	fs.Alias("issuers", "sim-issuers")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, cli.ErrHelp) {
			return c, err
		}
		return c, UsageError{err}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if err := c.applyModeFlags(set, max); err != nil {
		return c, UsageError{err}
	}
	var err error
	if c.Mix, err = ParseMix(mix); err != nil {
		return c, UsageError{err}
	}
	if c.Mix.Load > 0 && (set["switch"] || set["wallet"] || set["acquirer-keys"]) {
		return c, UsageError{errors.New("-mix load is for the switch bench starts: the phone reads the SMS code from its data directory")}
	}
	if c.Amount, err = iso8583.ParseDecimalAmount(amount); err != nil {
		return c, UsageError{fmt.Errorf("-amount: %v", err)}
	}
	if err := c.Validate(); err != nil {
		return c, UsageError{err}
	}
	return c, nil
}

func (c *Config) applyModeFlags(set map[string]bool, max bool) error {
	switch {
	case set["rate"] && max:
		return errors.New("-rate (open loop) and -max (closed loop) exclude each other")
	case set["rate"] && set["concurrency"]:
		return errors.New("-concurrency is for the closed loop; with -rate the schedule sets the load")
	case set["rate"]:
		c.Mode = ModeOpen
	default:
		c.Mode = ModeClosed
	}
	existing := set["switch"] || set["wallet"] || set["acquirer-keys"]
	if (set["switch-pid"] || set["issuers-pid"]) && !existing {
		return errors.New("-switch-pid and -issuers-pid go with -switch (without it bench measures the processes it starts)")
	}
	if (set["bin"] || set["sim-issuers"] || set["keep"] || set["baseline"]) && existing {
		return errors.New("-bin, -sim-issuers, -keep and -baseline are for the switch bench starts; -switch, -wallet and -acquirer-keys drive an existing one")
	}
	return nil
}

// Validate checks every setting against its bound.
func (c Config) Validate() error {
	switch {
	case c.Mode != ModeOpen && c.Mode != ModeClosed:
		return fmt.Errorf("mode %q: want open or closed", c.Mode)
	case c.Mode == ModeOpen && (c.Rate < 1 || c.Rate > rateMax):
		return fmt.Errorf("-rate %d outside 1..%d", c.Rate, rateMax)
	case c.Mode == ModeClosed && (c.Concurrency < 1 || c.Concurrency > concurrencyMax):
		return fmt.Errorf("-concurrency %d outside 1..%d", c.Concurrency, concurrencyMax)
	case c.Connections < 1 || c.Connections > connectionsMax:
		return fmt.Errorf("-connections %d outside 1..%d", c.Connections, connectionsMax)
	case c.Duration < time.Second || c.Duration > durationMax:
		return fmt.Errorf("-duration %v outside 1s..%v", c.Duration, durationMax)
	case c.Warmup < 0 || c.Warmup > warmupMax:
		return fmt.Errorf("-warmup %v outside 0..%v", c.Warmup, warmupMax)
	case c.Timeout < timeoutMin || c.Timeout > timeoutMax:
		return fmt.Errorf("-timeout %v outside %v..%v", c.Timeout, timeoutMin, timeoutMax)
	case c.Amount < 1:
		return errors.New("-amount must be at least 0.01")
	case c.SwitchPID < 0 || c.IssuersPID < 0:
		return errors.New("-switch-pid and -issuers-pid take a process ID")
	case c.Issuers != IssuersChild && c.Issuers != IssuersInProcess:
		return fmt.Errorf("-sim-issuers %q: want %s or %s", c.Issuers, IssuersChild, IssuersInProcess)
	case len(c.Mix.Entries) == 0:
		return errors.New("-mix has no kind sent to the switch (gate taps and purse loads go with a switch run)")
	case c.Baseline != "" && c.Baseline != BaselineRelay:
		return fmt.Errorf("-baseline %q: want %s", c.Baseline, BaselineRelay)
	case c.Baseline != "" && c.Issuers != IssuersChild:
		return fmt.Errorf("-baseline %s needs the issuers in their own process (-sim-issuers %s): the relay stands in front of them", c.Baseline, IssuersChild)
	}
	if c.Addr != "" {
		if err := CheckLoopback(c.Addr); err != nil {
			return fmt.Errorf("-switch: %v", err)
		}
	}
	return nil
}

// ConnectionsUsed is how many connections the run opens: a closed loop with
// fewer requests in flight than connections leaves the rest idle, so it
// opens only as many as it can keep busy.
func (c Config) ConnectionsUsed() int {
	if c.Mode == ModeClosed && c.Concurrency < c.Connections {
		return c.Concurrency
	}
	return c.Connections
}

// CheckLoopback accepts HOST:PORT only when HOST is a loopback address or
// localhost: the harness never loads a machine other than its own.
func CheckLoopback(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not HOST:PORT", addr)
	}
	if port == "" || port == "0" {
		return fmt.Errorf("%q has no port", addr)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address: bench drives switches on this machine only", addr)
	}
	return nil
}
