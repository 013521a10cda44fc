package load

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/bench/world"
	"github.com/tapswitch/tapswitch/switch/acquirer"
)

// Main is cmd/bench: it parses args, starts switchd -dev as a child (or
// takes the switch -switch names), runs, stops the child, prints the
// summary (or with -json the JSON report) on stdout and writes the JSON and
// HTML reports into -out. It returns the exit code:
// 0 for a run without errors, 1 for a run with errors or one that could
// not run, 2 for bad flags.
func Main(args []string, stdout, stderr io.Writer) int {
	cfg, err := ParseFlags(args, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v (bench -h lists the flags)\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			fmt.Fprintf(stderr, "bench: -cpuprofile: %v\n", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "bench: -cpuprofile: %v\n", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := run(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	if n := cfg.Mix.GateTaps(rep.Requests); n > 0 && !rep.Interrupted {
		if rep.Gate, err = gateRun(cfg, n, time.Now()); err != nil {
			fmt.Fprintf(stderr, "bench: gate taps: %v\n", err)
			return 1
		}
	}
	summary := stdout
	if cfg.JSON {
		if err := printJSON(rep, stdout); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
		summary = stderr // where the report files are named
	} else {
		fmt.Fprint(stdout, rep.Summary())
	}
	if err := writeReports(rep, cfg, time.Now(), summary); err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	if rep.Errors > 0 || rep.Interrupted || rep.Baseline != nil && rep.Baseline.Errors > 0 || rep.Gate != nil && len(rep.Gate.Errors) > 0 ||
		rep.Loads != nil && rep.Loads.ErrorsN > 0 {
		return 1
	}
	return 0
}

// gateRun plays n gate taps once the switch's run is over, so they take
// none of its CPU: in a new directory gates-<UTC time>-* under cfg.OutDir,
// kept, or in a temporary one removed after when there is no -out.
func gateRun(cfg Config, n int, now time.Time) (*GateReport, error) {
	parent, keep := cfg.OutDir, cfg.OutDir != ""
	if keep {
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp(parent, "gates-"+now.UTC().Format(reportTimeLayout)+"-")
	if err != nil {
		return nil, err
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	rep, err := runGateTaps(n, dir, now)
	if err == nil && keep {
		rep.Dir = dir
	}
	return rep, err
}

// run sets up the target, runs and tears down, returning the report.
func run(ctx context.Context, cfg Config, stderr io.Writer) (Report, error) {
	if cfg.Addr != "" || cfg.WalletPath != "" || cfg.AcquirerKeys != "" {
		target, path, err := existingTarget(cfg)
		if err != nil {
			return Report{}, err
		}
		res, err := Run(ctx, cfg, target, progressOut(cfg, stderr))
		// The switch has spent the counters the run's taps carried: the
		// wallet must hand out higher ones to the next run or termsim.
		if serr := wallet.Save(path, target.Wallet); serr != nil {
			fmt.Fprintf(stderr, "bench: the wallet's advanced ATCs not saved (taps from %s may now get 59): %v\n", path, serr)
		}
		if err != nil {
			return Report{}, err
		}
		return NewReport(res), nil
	}
	var baseline *Report
	if cfg.Baseline != "" {
		binDir, cleanup, err := binaries(ctx, cfg, stderr)
		if err != nil {
			return Report{}, err
		}
		defer cleanup()
		cfg.BinDir = binDir
		rep, err := runBaseline(ctx, cfg, binDir, stderr)
		if err != nil {
			return Report{}, err
		}
		baseline = &rep
	}
	world, err := StartWorld(ctx, cfg.BinDir, cfg.Issuers == IssuersChild, stderr)
	if err != nil {
		return Report{}, err
	}
	defer world.Close(cfg.Keep)
	target := worldTarget(world)
	fmt.Fprintf(stderr, "bench: %s; issuers %s\n", target.Description, target.Issuers)
	res, runErr := Run(ctx, cfg, target, progressOut(cfg, stderr))
	var loads *LoadReport
	var loadsErr error
	if runErr == nil && !res.Interrupted {
		if n := cfg.Mix.Loads(NewReport(res).Requests); n > 0 {
			fmt.Fprintf(stderr, "bench: %d purse loads through the token API\n", n)
			loads, loadsErr = runLoads(ctx, worldLoads(world), filepath.Join(world.Dir, "phone-wallet.json"), n, int64(cfg.Amount))
		}
	}
	switchdTotal, issuersTotal, stopErr := world.Stop()
	if runErr != nil {
		return Report{}, fmt.Errorf("%v%s", runErr, world.LogTail())
	}
	if loadsErr != nil {
		return Report{}, fmt.Errorf("%v%s", loadsErr, world.LogTail())
	}
	rep := NewReport(res)
	rep.Baseline = baseline
	rep.Loads = loads
	if switchdTotal > 0 {
		rep.CPUSwitchTotalS = seconds(switchdTotal)
	}
	if issuersTotal > 0 {
		rep.CPUIssuersTotalS = seconds(issuersTotal)
	}
	if stopErr != nil {
		fmt.Fprintf(stderr, "bench: %v\n", stopErr)
	} else if tail := world.LogTail(); tail != "" {
		fmt.Fprintf(stderr, "bench: %s\n", tail[1:])
	}
	if cfg.Keep {
		fmt.Fprintf(stderr, "bench: binaries, data and logs kept in %s\n", world.Dir)
	}
	return rep, nil
}

// worldLoads is the world's token API, SMS outbox and the card its phone
// binds, for the purse loads.
func worldLoads(w *World) LoadWorld {
	lw := LoadWorld{API: w.Wallet.API, Data: filepath.Join(w.Dir, "data")}
	if table, _, err := transitNetwork(); err == nil { // runLoads says when there is no card
		now := time.Now()
		lw.Card = loadCard(world.Generate(table, devSeed, devCardsPerBIN, now), now)
	}
	return lw
}

// binaries is cfg.BinDir, or a temporary directory with switchd,
// issuersim and relay built into it, removed by cleanup.
func binaries(ctx context.Context, cfg Config, status io.Writer) (dir string, cleanup func(), err error) {
	if cfg.BinDir != "" {
		return cfg.BinDir, func() {}, nil
	}
	if dir, err = os.MkdirTemp("", "tapswitch-bench-bin-"); err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	fmt.Fprintln(status, "bench: building switchd, issuersim and relay")
	if err := goBuild(ctx, dir, worldCommands...); err != nil {
		cleanup()
		return "", nil, err
	}
	return dir, cleanup, nil
}

func worldTarget(w *World) Target {
	t := Target{
		Addr: w.Wallet.Switch, Wallet: w.Wallet, Keys: w.Keys, SwitchCPU: w.Switchd.CPU,
		Description: fmt.Sprintf("switchd -dev, child process %d, terminals at %s", w.Switchd.PID(), w.Wallet.Switch),
		Issuers:     "inside switchd (switchd -dev runs them in its own process)",
	}
	if w.Issuers != nil {
		t.IssuersCPU = w.Issuers.CPU
		t.Issuers = fmt.Sprintf("issuersim, child process %d (switchd -dev -dev-external-issuers)", w.Issuers.PID())
	}
	return t
}

// existingTarget is the switch -switch names (or the wallet's) with the
// wallet's cards, and the wallet's path.
func existingTarget(cfg Config) (Target, string, error) {
	path := cfg.WalletPath
	if path == "" {
		path = wallet.DevFilePath()
	}
	w, err := wallet.Load(path)
	if err != nil {
		return Target{}, "", fmt.Errorf("%v (give -wallet FILE: the dev wallet of the switch at -switch)", err)
	}
	addr := cfg.Addr
	if addr == "" {
		addr = w.Switch
	}
	if err := CheckLoopback(addr); err != nil {
		return Target{}, "", fmt.Errorf("switch address from %s: %v", path, err)
	}
	keysPath := cfg.AcquirerKeys
	if keysPath == "" {
		keysPath = wallet.DevAcquirerKeysPath(path)
	}
	keys, err := acquirer.LoadKeysFile(keysPath)
	if err != nil {
		return Target{}, "", fmt.Errorf("%v (the fleet's terminals MAC their requests with keys derived from the switch's acquirer keys: -acquirer-keys, default beside the wallet)", err)
	}
	t := Target{Addr: addr, Wallet: w, Keys: keys,
		Description: fmt.Sprintf("existing switch at %s, CPU not measured (give -switch-pid)", addr),
		Issuers:     "not known to bench (an existing switch; give -issuers-pid for issuersim's CPU)"}
	if cfg.SwitchPID > 0 {
		if t.SwitchCPU, err = pidCPU("-switch-pid", cfg.SwitchPID); err != nil {
			return Target{}, "", err
		}
		t.Description = fmt.Sprintf("existing switch at %s, process %d", addr, cfg.SwitchPID)
	}
	if cfg.IssuersPID > 0 {
		if t.IssuersCPU, err = pidCPU("-issuers-pid", cfg.IssuersPID); err != nil {
			return Target{}, "", err
		}
		t.Issuers = fmt.Sprintf("process %d", cfg.IssuersPID)
	}
	return t, path, nil
}

// pidCPU checks that pid's CPU can be read and returns the reader.
func pidCPU(flagName string, pid int) (func() (time.Duration, error), error) {
	if _, err := ProcessCPU(pid); err != nil {
		return nil, fmt.Errorf("%s: %v", flagName, err)
	}
	return func() (time.Duration, error) { return ProcessCPU(pid) }, nil
}

// progressOut is stderr when it is a terminal and -quiet is not given.
func progressOut(cfg Config, stderr io.Writer) io.Writer {
	if cfg.Quiet {
		return nil
	}
	f, ok := stderr.(*os.File)
	if !ok {
		return nil
	}
	info, err := f.Stat()
	if err != nil || info.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return stderr
}
