package main

import (
	"bytes"
	moov "github.com/moov-io/iso8583"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/bench/pos"
	"github.com/tapswitch/tapswitch/bench/proctest"
	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/settlement/clearing"
	"github.com/tapswitch/tapswitch/switch/acquirer"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// TestSettleThroughProcesses is the nightly run end to end with real
// processes: issuersim and switchd on loopback with a cut-off a minute
// away, a day of mixed traffic (purchases, refunds, top-ups, a reversal,
// time-outs reversed by advice, stand-in approvals posted by advice), the
// switch sealing the day itself after the cut-off, settle reading it while
// the switch keeps running, issuersim exporting its ledgers on SIGTERM, and
// settle reconcile finding zero breaks.
func TestSettleThroughProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes across a cut-off")
	}
	dir := t.TempDir()
	switchd, issuersimBin := proctest.Build(t, dir, "../switchd", "switchd"), proctest.Build(t, dir, "../issuersim", "issuersim")
	cutoff, cutAt := nextCutoff(time.Now().UTC())
	issuersFile := proctest.IssuersOnFreePorts(t, dir)
	cfgFile := proctest.Config(t, dir, map[string]string{
		`issuers_file: ""`:        "issuers_file: " + issuersFile,
		`cutoff: "23:00"`:         `cutoff: "` + cutoff + `"`,
		"timezone: Asia/Shanghai": "timezone: UTC",
		"seal_grace: 2m":          "seal_grace: 1s",
		"seal_every: 1m":          "seal_every: 1s",
		"request_timeout: 2s":     "request_timeout: 300ms",
		"retry_min: 500ms":        "retry_min: 50ms",
		"retry_max: 1m":           "retry_max: 300ms",
	})
	ledgers := filepath.Join(dir, "ledgers")
	os.MkdirAll(ledgers, 0o700)
	issuerAdmin, issuerProc := proctest.Issuersim(t, issuersimBin, "-issuers", issuersFile, "-cards", "100",
		"-cutoff", cutoff, "-timezone", "UTC", "-ledger-dir", ledgers)
	data, admin := filepath.Join(dir, "data"), proctest.FreeAddr(t)
	proc, w := proctest.Switchd(t, switchd, cfgFile, data, admin)
	defer proc.Process.Signal(syscall.SIGTERM)

	driveProcesses(t, w, proctest.DevKeys(t, data), issuerAdmin, admin)
	day := journal.BusinessDay(time.Now(), mustCutoff(t, cutoff))
	sealed := filepath.Join(data, "sealed", journal.SealedFileName("node-1", day))
	waitFor(t, time.Until(cutAt)+30*time.Second, "the switch to seal "+day, func() bool {
		_, err := os.Stat(sealed)
		return err == nil
	})

	out := filepath.Join(dir, "clearing")
	date := day[:4] + "-" + day[4:6] + "-" + day[6:]
	var stdout, stderr bytes.Buffer
	args := []string{"-date", date, "-journals", data, "-keys", filepath.Join(data, "dev-settle.keys"), "-out", out}
	if code := run(args, time.Now(), &stdout, &stderr); code != 0 {
		t.Fatalf("settle while the switch runs: exit %d: %s", code, stderr.String())
	}
	t.Log(strings.TrimSpace(stdout.String()))
	checkFiles(t, filepath.Join(out, day))
	issuerProc.Process.Signal(syscall.SIGTERM)
	issuerProc.Wait()
	stdout.Reset()
	if code := run([]string{"reconcile", "-date", date, "-ledgers", ledgers, "-out", out}, time.Now(), &stdout, &stderr); code != 0 {
		rep, _ := os.ReadFile(filepath.Join(out, day, "reconcile-ICBC.txt"))
		t.Fatalf("reconcile: exit %d: %s\n%s", code, stderr.String(), rep)
	}
	t.Log(strings.TrimSpace(stdout.String()))
}

// nextCutoff picks a whole minute at least 25 s away (never midnight,
// whose rule differs) as HH:MM in UTC.
func nextCutoff(now time.Time) (string, time.Time) {
	at := now.Add(25 * time.Second).Truncate(time.Minute).Add(time.Minute)
	if at.Hour() == 0 && at.Minute() == 0 {
		at = at.Add(time.Minute)
	}
	return at.Format("15:04"), at
}

func mustCutoff(t *testing.T, hhmm string) journal.Cutoff {
	c, err := journal.ParseCutoff(hhmm, "UTC")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// driveProcesses sends the day's traffic through the switch process,
// with a fault drill on the approve card's issuer in the middle.
func driveProcesses(t *testing.T, w wallet.File, keys acquirer.Keys, issuerAdmin, switchAdmin string) {
	approve, _ := w.Card("approve")
	transit, _ := w.Card("transit")
	c, err := pos.Dial(w.Switch, time.Second, keys)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	icbc := &terminal{c: c, term: pos.DemoTerminal}
	icbc.term.TerminalID = "PROC0001"
	var first *moov.Message
	for i := range 5 {
		bought := icbc.tap(approve, iso8583.ProcPurchase, iso8583.Amount(100_00+i))
		icbc.expect(t, bought, "00")
		if first == nil {
			first = bought
		}
		icbc.must(t, transit, iso8583.ProcPurchase, 2_00, "00")
	}
	icbc.expect(t, icbc.refundOf(approve, first, 10_00), "00")
	icbc.must(t, approve, iso8583.ProcTransitTopUp, 50_00, "00")
	reversed := icbc.tap(approve, iso8583.ProcPurchase, 33_00)
	icbc.expect(t, reversed, "00")
	icbc.expect(t, icbc.reversalOf(reversed), "00")
	postFaults(t, issuerAdmin, approve.Issuer, `{"drop_rate":1}`)
	icbc.must(t, approve, iso8583.ProcPurchase, 7_00, "00")   // time-out, then stand-in
	icbc.expect(t, icbc.refundOf(approve, first, 1_00), "91") // never stood in for
	postFaults(t, issuerAdmin, approve.Issuer, `{}`)
	waitFor(t, 30*time.Second, "the advices to drain", func() bool {
		resp, err := http.Get("http://" + switchAdmin + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return strings.Contains(b.String(), `tapswitch_advices{state="due"} 0`) &&
			strings.Contains(b.String(), `tapswitch_advices{state="armed"} 0`)
	})
}

func postFaults(t *testing.T, admin, issuer, body string) {
	resp, err := http.Post("http://"+admin+"/faults?issuer="+issuer, "application/json", strings.NewReader(body))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /faults %s: %v %v", body, err, resp)
	}
	resp.Body.Close()
}

// checkFiles reads every clearing file back through the validating reader.
func checkFiles(t *testing.T, dir string) {
	records := 0
	for name, data := range readDir(t, dir) {
		if strings.HasSuffix(name, ".clr") {
			f, err := clearing.Read(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			records += len(f.Details)
		}
	}
	if records == 0 {
		t.Fatal("no clearing records")
	}
}

func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %v", what, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
