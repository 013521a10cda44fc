package main

import (
	"bufio"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tapswitch/tapswitch/bench/issuersim"
	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/configs"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/issuers"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// TestSIGKILLUnderLoad kills the real switchd with SIGKILL five times while
// 20 terminals tap, with the issuers in their own process (issuersim) so
// their books outlive the switch. After each kill the switch restarts on
// the same data and drains its advices; then every approval a terminal
// received is in the journal once, and the issuer holds exactly what the
// journal approves, to the fen.
func TestSIGKILLUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills real processes")
	}
	dir := t.TempDir()
	switchd, issuersimBin := buildBinary(t, dir, ".", "switchd"), buildBinary(t, dir, "../issuersim", "issuersim")
	issuersFile := writeIssuersOnFreePorts(t, dir)
	cfgFile := writeCrashConfig(t, dir, issuersFile)
	issuerAdmin := startIssuersim(t, issuersimBin, issuersFile)
	data := filepath.Join(dir, "data")
	rng := rand.New(rand.NewPCG(1, 2))

	seen := map[journal.Key]int{}
	for round := range 5 {
		proc, w := startExternal(t, switchd, cfgFile, data, "127.0.0.1:0")
		got := driveUntilStopped(t, w, func() {
			time.Sleep(time.Duration(300+rng.IntN(600)) * time.Millisecond)
			proc.Process.Signal(syscall.SIGKILL)
		})
		proc.Wait()
		for k := range got {
			seen[k]++
		}
		t.Logf("round %d: %d approvals seen before SIGKILL", round, len(got))
		checkAfterRestart(t, switchd, cfgFile, data, issuerAdmin, seen)
	}
	if len(seen) == 0 {
		t.Fatal("no approvals at all: the test proves nothing")
	}
}

// checkAfterRestart restarts the switch on the killed one's data, lets the
// advices drain, stops it, and checks the invariants.
func checkAfterRestart(t *testing.T, switchd, cfgFile, data, issuerAdmin string, seen map[journal.Key]int) {
	t.Helper()
	admin := freeAddr(t)
	proc, _ := startExternal(t, switchd, cfgFile, data, admin)
	waitAdvicesDrained(t, admin)
	proc.Process.Signal(syscall.SIGTERM)
	waitExit(t, proc)

	j, err := journal.Open(filepath.Join(data, "journal"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	for k, n := range seen {
		e, found, err := j.Lookup(k)
		if n != 1 || err != nil || !found || e.ResponseCode != iso8583.RCApproved {
			t.Errorf("approval %v seen %d times by terminals; journal: found %v rc %q err %v", k, n, found, e.ResponseCode, err)
		}
	}
	compareWithIssuer(t, j, issuerAdmin, "ICBC")
}

func buildBinary(t *testing.T, dir, pkg, name string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// writeIssuersOnFreePorts copies the member list with every address moved
// to a free loopback port, so the test shares no port with anything else.
func writeIssuersOnFreePorts(t *testing.T, dir string) string {
	list, err := issuers.Parse(configs.Issuers)
	if err != nil {
		t.Fatal(err)
	}
	for i := range list {
		list[i].Address = freeAddr(t)
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

// writeCrashConfig is the default configuration with the test's issuers
// and short time-outs and retries.
func writeCrashConfig(t *testing.T, dir, issuersFile string) string {
	cfg := string(configs.Switch)
	for old, repl := range map[string]string{
		`issuers_file: ""`:      "issuers_file: " + issuersFile,
		"request_timeout: 2s":   "request_timeout: 500ms",
		"retry_min: 500ms":      "retry_min: 50ms",
		"retry_max: 1m":         "retry_max: 500ms",
		"shutdown_timeout: 30s": "shutdown_timeout: 10s",
		"backoff_max: 5s":       "backoff_max: 200ms",
	} {
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

// startIssuersim runs the issuers and returns their admin address.
func startIssuersim(t *testing.T, bin, issuersFile string) string {
	cmd := exec.Command(bin, "-issuers", issuersFile, "-admin", "127.0.0.1:0", "-log-level", "warn", "-cards", "100")
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
			return addr
		}
	}
	t.Fatal("issuersim printed no admin address")
	return ""
}

// startExternal runs switchd -dev against the external issuers.
func startExternal(t *testing.T, bin, cfgFile, data, admin string) (*exec.Cmd, wallet.File) {
	t.Helper()
	walletPath := filepath.Join(data, wallet.DevFileName)
	os.Remove(walletPath)
	cmd := exec.Command(bin, "-dev", "-dev-external-issuers", "-config", cfgFile, "-data", data,
		"-listen", "127.0.0.1:0", "-admin", admin, "-log-level", "error")
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

// waitAdvicesDrained polls the switch's metrics until no advice is armed
// or due.
func waitAdvicesDrained(t *testing.T, admin string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + admin + "/metrics")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			s := string(body)
			if strings.Contains(s, `tapswitch_advices{state="due"} 0`) && strings.Contains(s, `tapswitch_advices{state="armed"} 0`) {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("advices not drained within 60s")
}

// compareWithIssuer checks the issuer's standing approvals against the
// journal's, request by request and in total.
func compareWithIssuer(t *testing.T, j *journal.Journal, admin, issuerID string) {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/ledger?issuer=" + issuerID)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	snap, err := issuersim.ReadSnapshot(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	held := map[string]int64{}
	for _, l := range snap.Ledger {
		if !l.Reversed && l.ProcessingCode == iso8583.ProcPurchase {
			held[l.STAN+"/"+l.TransmissionTime] = int64(l.Amount)
		}
	}
	approved := map[string]int64{}
	days, _ := j.Days()
	for _, day := range days {
		j.ScanDay(day, func(e journal.Entry) error {
			if e.IssuerID == issuerID && e.ResponseCode == iso8583.RCApproved && e.OriginalSTAN == "" {
				if _, reversed, _ := j.ReversalOf(e.Key()); !reversed {
					approved[e.IssuerSTAN+"/"+e.IssuerTransmissionTime] = int64(e.Amount)
				}
			}
			return nil
		})
	}
	var sumHeld, sumApproved int64
	for k, a := range held {
		sumHeld += a
		if approved[k] != a {
			t.Errorf("issuer holds %d for %s; journal approves %d", a, k, approved[k])
		}
	}
	for k, a := range approved {
		sumApproved += a
		if _, ok := held[k]; !ok {
			t.Errorf("journal approves %d for %s; the issuer holds nothing", a, k)
		}
	}
	t.Logf("issuer %s holds %d approvals, %s; journal approves %d, %s; %d postings reversed",
		issuerID, len(held), iso8583.Amount(sumHeld), len(approved), iso8583.Amount(sumApproved), snap.Totals.Reversed)
	if sumHeld != sumApproved {
		t.Fatalf("money differs: issuer %s, journal %s", iso8583.Amount(sumHeld), iso8583.Amount(sumApproved))
	}
}
