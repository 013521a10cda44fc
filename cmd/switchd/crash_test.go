package main

import (
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/bench/issuersim"
	"github.com/tapswitch/tapswitch/bench/proctest"
	"github.com/tapswitch/tapswitch/iso8583"
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
	switchd, issuersimBin, issuersFile, cfgFile := crashWorld(t, dir)
	issuerAdmin, _ := proctest.Issuersim(t, issuersimBin, "-issuers", issuersFile, "-cards", "100")
	data := filepath.Join(dir, "data")
	rng := rand.New(rand.NewPCG(1, 2))

	seen := map[journal.Key]int{}
	for round := range 5 {
		proc, w := proctest.Switchd(t, switchd, cfgFile, data, "127.0.0.1:0")
		got := driveUntilStopped(t, w, proctest.DevKeys(t, data), func() {
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

// crashWorld builds switchd and issuersim into dir and writes a member
// list on free ports and a switch configuration whose time-outs and
// retries are short, so a test's kills and restarts take seconds.
func crashWorld(t *testing.T, dir string) (switchd, issuersimBin, issuersFile, cfgFile string) {
	t.Helper()
	switchd, issuersimBin = proctest.Build(t, dir, ".", "switchd"), proctest.Build(t, dir, "../issuersim", "issuersim")
	issuersFile = proctest.IssuersOnFreePorts(t, dir)
	cfgFile = proctest.Config(t, dir, map[string]string{
		`issuers_file: ""`:      "issuers_file: " + issuersFile,
		"request_timeout: 2s":   "request_timeout: 500ms",
		"retry_min: 500ms":      "retry_min: 50ms",
		"retry_max: 1m":         "retry_max: 500ms",
		"shutdown_timeout: 30s": "shutdown_timeout: 10s",
		"backoff_max: 5s":       "backoff_max: 200ms",
	})
	return switchd, issuersimBin, issuersFile, cfgFile
}

// checkAfterRestart restarts the switch on the killed one's data, lets the
// advices drain, stops it, and checks the invariants.
func checkAfterRestart(t *testing.T, switchd, cfgFile, data, issuerAdmin string, seen map[journal.Key]int) {
	t.Helper()
	admin := proctest.FreeAddr(t)
	proc, _ := proctest.Switchd(t, switchd, cfgFile, data, admin)
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
