package load

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/router/issuers"
	"github.com/tapswitch/tapswitch/settlement/transit"
	"github.com/tapswitch/tapswitch/switch/acquirer"
)

// Bounds of the children's lives.
const (
	buildTimeout    = 5 * time.Minute
	upWaitMax       = 60 * time.Second // from start to listening
	upPoll          = 50 * time.Millisecond
	stopWaitMax     = 45 * time.Second // switchd drains for up to 30 s by default
	logTailLinesMax = 5
	modulePath      = "github.com/tapswitch/tapswitch"
)

// child is one process bench started, its output in a log file.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	log     *os.File
	exited  chan struct{}
	waitErr error
}

func startChild(name, logPath, binary string, args ...string) (*child, error) {
	c := &child{name: name, logPath: logPath, exited: make(chan struct{})}
	var err error
	if c.log, err = os.Create(logPath); err != nil {
		return nil, err
	}
	c.cmd = exec.Command(binary, args...)
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	c.cmd.Env = append(os.Environ(), "NO_COLOR=1")
	c.cmd.SysProcAttr = childProcAttr()
	if err := c.cmd.Start(); err != nil {
		c.log.Close()
		return nil, fmt.Errorf("starting %s: %w", binary, err)
	}
	go func() {
		c.waitErr = c.cmd.Wait()
		c.log.Close()
		close(c.exited)
	}()
	return c, nil
}

// PID is the child's process ID.
func (c *child) PID() int { return c.cmd.Process.Pid }

// CPU is the child's CPU time so far.
func (c *child) CPU() (time.Duration, error) { return ProcessCPU(c.PID()) }

// waitFor polls until ready says yes, the child exits, ctx ends or
// upWaitMax passes.
func (c *child) waitFor(ctx context.Context, what string, ready func() bool) error {
	deadline := time.Now().Add(upWaitMax)
	tick := time.NewTicker(upPoll)
	defer tick.Stop()
	for !ready() {
		select {
		case <-c.exited:
			return fmt.Errorf("%s exited before %s (%v)%s", c.name, what, c.waitErr, c.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not up within %v (waiting until %s)%s", c.name, upWaitMax, what, c.logTail())
		}
	}
	return nil
}

// stop sends SIGTERM, waits (killing after stopWaitMax) and returns the
// CPU the child used over its whole life.
func (c *child) stop() (time.Duration, error) {
	select {
	case <-c.exited:
	default:
		c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.exited:
		case <-time.After(stopWaitMax):
			c.cmd.Process.Kill()
			<-c.exited
			return 0, fmt.Errorf("%s did not stop within %v of SIGTERM: killed", c.name, stopWaitMax)
		}
	}
	var cpu time.Duration
	if ru, ok := c.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		cpu = rusageCPU(ru)
	}
	if !c.cmd.ProcessState.Success() {
		return cpu, fmt.Errorf("%s exited with %v%s", c.name, c.cmd.ProcessState, c.logTail())
	}
	return cpu, nil
}

// logTail is the child's last warnings and errors, as text to append to a
// message; "" when it logged none.
func (c *child) logTail() string {
	lines, n := notableLines(c.logPath)
	if n == 0 {
		return ""
	}
	out := fmt.Sprintf("\n%s logged %d warning or error lines (all of its log is kept with -keep); the last:", c.name, n)
	for _, l := range lines {
		out += "\n  " + l
	}
	return out
}

var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// notableLines counts a log's warnings, errors and crash lines and returns
// the last few.
func notableLines(path string) (tail []string, n int) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := ansiEscape.ReplaceAllString(sc.Text(), "")
		if !notableLogLine(line) {
			continue
		}
		n++
		tail = append(tail, line)
		if len(tail) > logTailLinesMax {
			tail = tail[1:]
		}
	}
	return tail, n
}

// notableLogLine picks warnings, errors and crashes out of a child's
// output: zerolog console lines ("15:04:05.000 WRN ..."), JSON lines
// ("level":"warn"), panics and the commands' own one-line errors; the dev
// banner and the issuers' listening lines are left out.
func notableLogLine(line string) bool {
	if f := strings.Fields(line); len(f) >= 2 {
		switch f[1] {
		case "WRN", "ERR", "FTL", "PNC":
			return true
		}
	}
	for _, lvl := range []string{`"level":"warn"`, `"level":"error"`, `"level":"fatal"`, `"level":"panic"`} {
		if strings.Contains(line, lvl) {
			return true
		}
	}
	for _, p := range []string{"panic:", "fatal error:", "switchd:", "issuersim:"} {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}

// The commands bench starts, built unless -bin names a directory that
// holds them; cmd/relay only for -baseline relay.
var worldCommands = []string{"cmd/switchd", "cmd/issuersim", "cmd/relay"}

// World is what bench starts by default: switchd -dev, and unless the
// issuers run inside it, cmd/issuersim beside it, each a child process so
// each one's CPU is its own.
type World struct {
	Dir     string // temporary: binaries, data/, logs
	Wallet  wallet.File
	Keys    acquirer.Keys // switchd's dev acquirer keys, beside its wallet
	Switchd *child
	Issuers *child // nil when the issuers run inside switchd
}

// StartWorld builds switchd and issuersim (unless binDir holds them),
// starts
//
//	issuersim -log-level warn -cards 200 -seed 1 -operator-keys DIR/data/operator.keys
//	          (with separateIssuers; on the addresses of configs/issuers.yaml)
//	switchd -dev [-dev-external-issuers] -seed 1 -data DIR/data -listen 127.0.0.1:0 -public 127.0.0.1:0 -admin 127.0.0.1:0 \
//	        -log-level info -log-format json -log-transactions=false
//
// The transit operators' master key file is bench's to make when issuersim
// runs apart: issuersim starts first and grants purse loads with it, and
// switchd -dev finds it in its data directory and uses it as its own (it
// makes one only when there is none).
// The switch logs as in production: JSON lines at info, no line per
// transaction (the -dev console's readable line per tap is for people
// trying it, and costs CPU a production switch does not spend).
// and waits for switchd's dev wallet, which names its terminal listener
// and the demo tokens. status gets one line per step.
func StartWorld(ctx context.Context, binDir string, separateIssuers bool, status io.Writer) (*World, error) {
	dir, err := os.MkdirTemp("", "tapswitch-bench-")
	if err != nil {
		return nil, err
	}
	w := &World{Dir: dir}
	if err := w.start(ctx, binDir, separateIssuers, status); err != nil {
		w.Stop()
		w.Close(false)
		return nil, err
	}
	return w, nil
}

func (w *World) start(ctx context.Context, binDir string, separateIssuers bool, status io.Writer) error {
	if binDir == "" {
		fmt.Fprintln(status, "bench: building switchd and issuersim")
		binDir = w.Dir
		if err := goBuild(ctx, w.Dir, worldCommands...); err != nil {
			return err
		}
	}
	switchdBin, issuersimBin := filepath.Join(binDir, "switchd"), filepath.Join(binDir, "issuersim")
	var err error
	data := filepath.Join(w.Dir, "data")
	args := []string{"-dev", "-seed", strconv.FormatInt(devSeed, 10), "-data", data, "-listen", "127.0.0.1:0",
		"-public", "127.0.0.1:0", "-admin", "127.0.0.1:0",
		"-log-level", "info", "-log-format", "json", "-log-transactions=false"}
	if separateIssuers {
		keys, err := createOperatorKeys(data)
		if err != nil {
			return err
		}
		if err := w.startIssuers(ctx, issuersimBin, keys); err != nil {
			return err
		}
		args = append(args, "-dev-external-issuers")
	}
	if w.Switchd, err = startChild("switchd", filepath.Join(w.Dir, "switchd.log"), switchdBin, args...); err != nil {
		return err
	}
	walletPath := filepath.Join(data, wallet.DevFileName)
	err = w.Switchd.waitFor(ctx, "it wrote its dev wallet", func() bool { _, err := os.Stat(walletPath); return err == nil })
	if err != nil {
		return err
	}
	if w.Wallet, err = wallet.Load(walletPath); err != nil {
		return err
	}
	if w.Keys, err = acquirer.LoadKeysFile(wallet.DevAcquirerKeysPath(walletPath)); err != nil {
		return err
	}
	if err := CheckLoopback(w.Wallet.Switch); err != nil {
		return fmt.Errorf("switchd's wallet: %v", err)
	}
	return nil
}

// The dev world's card base, the same in switchd -dev and issuersim: the
// card a phone binds for purse loads is drawn from it (loadCard).
const (
	devSeed        = 1
	devCardsPerBIN = 200 // switchd -dev's, given to issuersim as -cards
	// operatorKeysFileName is where switchd -dev looks for the operators'
	// master keys in its data directory (switch/daemon's
	// DevOperatorKeysFileName; bench cannot import switch/daemon, whose
	// tests import bench). A name that drifted would have switchd make
	// keys of its own, and cmd/bench's TestBenchPurseLoads fail.
	operatorKeysFileName = "operator.keys"
)

// startIssuers starts issuersim for the world, its operators granting
// loads with the master keys in operatorKeys.
func (w *World) startIssuers(ctx context.Context, binary, operatorKeys string) error {
	var err error
	w.Issuers, err = startIssuersim(ctx, binary, filepath.Join(w.Dir, "issuersim.log"), "-operator-keys", operatorKeys)
	return err
}

// createOperatorKeys writes a new operators' master key file, for every
// transit operator of configs/issuers.yaml, into the switch's data
// directory dir (made), where switchd -dev looks for it, and returns its
// path.
func createOperatorKeys(dir string) (string, error) {
	_, members, err := transitNetwork()
	if err != nil {
		return "", err
	}
	var ops []string
	for _, is := range members {
		if is.Kind == issuers.KindTransit {
			ops = append(ops, is.Operator)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dir, operatorKeysFileName)
	if err := transit.CreateMasterKeysFile(path, ops); err != nil {
		return "", fmt.Errorf("the operators' master keys for issuersim: %w", err)
	}
	return path, nil
}

// startIssuersim starts issuersim on the addresses of configs/issuers.yaml
// with the dev world's cards and extra flags, and waits for its "listening
// on" lines, which it prints once every issuer listens. On an error the
// child, if started, is returned too, to be stopped.
func startIssuersim(ctx context.Context, binary, logPath string, extra ...string) (*child, error) {
	args := append([]string{"-log-level", "warn", "-cards", strconv.Itoa(devCardsPerBIN), "-seed", strconv.FormatInt(devSeed, 10)}, extra...)
	c, err := startChild("issuersim", logPath, binary, args...)
	if err != nil {
		return nil, err
	}
	err = c.waitFor(ctx, "its issuers listened", func() bool {
		data, _ := os.ReadFile(logPath)
		return bytes.Contains(data, []byte(" listening on "))
	})
	if err != nil && strings.Contains(err.Error(), "address already in use") {
		err = fmt.Errorf("%v\n(another issuersim holds the addresses of configs/issuers.yaml: stop it, or run bench -sim-issuers inprocess)", err)
	}
	return c, err
}

func goBuild(ctx context.Context, dir string, pkgs ...string) error {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return errors.New("no go command to build switchd and issuersim: put go on PATH or give -bin DIR")
	}
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, p := range pkgs {
		args = append(args, modulePath+"/"+p)
	}
	if msg, err := exec.CommandContext(ctx, goTool, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("go %s (run bench inside the tapswitch module, or give -bin DIR): %v\n%s",
			strings.Join(args, " "), err, msg)
	}
	return nil
}

// Stop stops switchd first (it drains its terminals), then the issuers,
// and returns each one's CPU over its whole life. It is safe on a world
// that did not fully start.
func (w *World) Stop() (switchdCPU, issuersCPU time.Duration, err error) {
	var errs []error
	if w.Switchd != nil {
		switchdCPU, err = w.Switchd.stop()
		errs = append(errs, err)
	}
	if w.Issuers != nil {
		issuersCPU, err = w.Issuers.stop()
		errs = append(errs, err)
	}
	return switchdCPU, issuersCPU, errors.Join(errs...)
}

// LogTail is the children's last warnings and errors ("" for none).
func (w *World) LogTail() string {
	var s string
	for _, c := range []*child{w.Switchd, w.Issuers} {
		if c != nil {
			s += c.logTail()
		}
	}
	return s
}

// Close removes the temporary directory (binaries, journal, logs) unless
// keep. Stop must have returned.
func (w *World) Close(keep bool) {
	if !keep {
		os.RemoveAll(w.Dir)
	}
}
