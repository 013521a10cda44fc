// Package proctest runs the network's real binaries for end-to-end tests:
// it builds switchd and issuersim, moves every simulated issuer to a free
// loopback port, and starts the processes with their output on the test's
// stderr. Only tests import it.
package proctest

import (
	"bufio"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/configs"
	"github.com/tapswitch/tapswitch/router/issuers"
	"github.com/tapswitch/tapswitch/switch/acquirer"
)

// Build compiles the main package pkg (a path relative to the test's
// package, e.g. "../switchd") into dir and returns the binary's path.
func Build(t testing.TB, dir, pkg, name string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// FreeAddr returns a loopback address nothing listens on right now. The
// port is below the kernel's ephemeral range when there is room: between
// this call and the process that binds it, a test opens many outgoing
// connections, and each takes an ephemeral port, which could be this one.
func FreeAddr(t testing.TB) string {
	t.Helper()
	if lo := ephemeralLow(); lo > 1024+freePortSpan {
		for range 64 {
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(lo-1-rand.IntN(freePortSpan)))
			if l, err := net.Listen("tcp", addr); err == nil {
				l.Close()
				return addr
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// freePortSpan is how many ports below the ephemeral range FreeAddr draws from.
const freePortSpan = 12_000

// ephemeralLow is the first port the kernel hands to outgoing connections,
// 0 when it cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	lo, _ := strconv.Atoi(f[0])
	return lo
}

// IssuersOnFreePorts writes a copy of the member list with every address
// moved to a free loopback port, so a test shares no port with anything.
func IssuersOnFreePorts(t testing.TB, dir string) string {
	t.Helper()
	list, err := issuers.Parse(configs.Issuers)
	if err != nil {
		t.Fatal(err)
	}
	for i := range list {
		list[i].Address = FreeAddr(t)
	}
	doc, err := yaml.Marshal(map[string]any{"issuers": list})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "issuers.yaml")
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Config writes the default switch configuration with each old string
// replaced by its new one; a replacement that finds nothing fails the test,
// so the test notices when configs/switch.yaml changes under it.
func Config(t testing.TB, dir string, replace map[string]string) string {
	t.Helper()
	cfg := string(configs.Switch)
	for old, repl := range replace {
		if !strings.Contains(cfg, old) {
			t.Fatalf("configs/switch.yaml has no %q", old)
		}
		cfg = strings.Replace(cfg, old, repl, 1)
	}
	path := filepath.Join(dir, "switch.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Issuersim starts the simulated issuers with args and returns their admin
// address and the process; the test's cleanup stops it with SIGTERM.
func Issuersim(t testing.TB, bin string, args ...string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-admin", "127.0.0.1:0", "-log-level", "warn"}, args...)...)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		if addr, ok := strings.CutPrefix(lines.Text(), "admin listening on "); ok {
			go io.Copy(io.Discard, stdout)
			return addr, cmd
		}
	}
	t.Fatal("issuersim printed no admin address")
	return "", nil
}

// Switchd starts switchd -dev against external issuers with cfgFile and
// data, waits for its dev wallet and returns the process and the wallet.
func Switchd(t testing.TB, bin, cfgFile, data, admin string) (*exec.Cmd, wallet.File) {
	t.Helper()
	return DevSwitchd(t, bin, data, "-dev-external-issuers", "-config", cfgFile, "-admin", admin, "-log-level", "error")
}

// DevSwitchd starts `switchd -dev -data data -listen 127.0.0.1:0 -public
// 127.0.0.1:0` with args, waits for its dev wallet (written once it serves)
// and returns the process and the wallet; the test's cleanup kills it.
func DevSwitchd(t testing.TB, bin, data string, args ...string) (*exec.Cmd, wallet.File) {
	t.Helper()
	walletPath := filepath.Join(data, wallet.DevFileName)
	os.Remove(walletPath)
	cmd := exec.Command(bin, append([]string{"-dev", "-data", data, "-listen", "127.0.0.1:0", "-public", "127.0.0.1:0"}, args...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if w, err := wallet.Load(walletPath); err == nil {
			time.Sleep(300 * time.Millisecond) // issuer links sign on
			return cmd, w
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("switchd wrote no wallet within 30s")
	return nil, wallet.File{}
}

// DevKeys reads the acquirer keys switchd -dev wrote into data, which the
// test's terminals derive their MAC keys from.
func DevKeys(t testing.TB, data string) acquirer.Keys {
	t.Helper()
	keys, err := acquirer.LoadKeysFile(filepath.Join(data, wallet.DevAcquirerKeysFileName))
	if err != nil {
		t.Fatal(err)
	}
	return keys
}
