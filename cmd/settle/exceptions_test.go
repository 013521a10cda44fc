package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/bench/proctest"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/settlement/clearing"
	"github.com/tapswitch/tapswitch/settlement/netting"
	"github.com/tapswitch/tapswitch/settlement/quarantine"
	"github.com/tapswitch/tapswitch/switch/daemon"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// TestSettleQuarantinesBadRecords is issue 9's finding: an approved
// purchase whose DE32 was the switch's own institution used to make settle
// exit 1 with no files for any member. Good traffic goes through the switch
// over loopback TCP; the bad records are journaled as the switch journaled
// them before acquirers were checked at authorization (a copy of a real
// approved purchase with DE32 = 00010000, its reversal, and one of an
// issuer that is no member). The settle binary then exits 3 with one line
// naming the count, the amount and the report, writes every member's files
// for the good records (net positions summing to zero) and the exceptions
// report naming the bad ones, and does it byte for byte again on a re-run.
// A corrupted sealed file still fails with 1 and writes nothing.
func TestSettleQuarantinesBadRecords(t *testing.T) {
	bin := proctest.Build(t, t.TempDir(), ".", "settle")
	d, w := startDay(t)
	approve, _ := w.Card("approve")
	transit, _ := w.Card("transit")
	icbc := dial(t, d, "QUAR0001", "01020000")
	cmb := dial(t, d, "QUAR0002", "03080000")
	for i := range 3 {
		icbc.must(t, approve, iso8583.ProcPurchase, iso8583.Amount(20_00+i), "00")
		cmb.must(t, transit, iso8583.ProcPurchase, 3_00, "00")
	}
	cmb.must(t, approve, iso8583.ProcRefund, 5_00, "00")
	day := d.Node.Journal.BusinessDayOf(time.Now())
	bad := journalBadRecords(t, d, day)
	d.Node.SealClosedDays(time.Now().Add(48 * time.Hour))
	settling := settlingEntries(t, d, day)
	d.Close()

	out := t.TempDir()
	args := []string{"-date", day[:4] + "-" + day[4:6] + "-" + day[6:], "-journals", d.Data,
		"-keys", d.SettleKeyPath, "-out", out, "-quiet"}
	code, stdout, stderr := runBin(t, bin, args...)
	exceptions := filepath.Join(out, day, "exceptions-"+day+".txt")
	if code != exitExceptions || stdout != "" || strings.Count(stderr, "\n") != 1 ||
		!strings.Contains(stderr, "3 records (85.00 yuan) quarantined") || !strings.Contains(stderr, exceptions) {
		t.Fatalf("settle: exit %d, stdout %q, stderr %q: want %d and one line naming 3 records, 85.00 yuan and %s",
			code, stdout, stderr, exitExceptions, exceptions)
	}
	first := readDir(t, filepath.Join(out, day))
	checkSettledBut(t, first, settling, bad)
	checkNetZero(t, first["net-"+day+".json"], len(settling)-len(bad))
	var rep quarantine.Report
	if err := json.Unmarshal(first["exceptions-"+day+".json"], &rep); err != nil {
		t.Fatal(err)
	}
	got := map[string]quarantine.Reason{}
	for _, x := range rep.Exceptions {
		got[fmt.Sprintf("%s/%d", x.NodeID, x.Seq)] = x.Reason
	}
	if fmt.Sprint(got) != fmt.Sprint(bad) {
		t.Errorf("exceptions %v, want %v", got, bad)
	}
	if code, _, stderr := runBin(t, bin, args...); code != exitExceptions {
		t.Fatalf("re-run: exit %d: %s", code, stderr)
	}
	for name, data := range readDir(t, filepath.Join(out, day)) {
		if !bytes.Equal(first[name], data) {
			t.Errorf("%s differs on the re-run", name)
		}
	}

	sealed := filepath.Join(d.Data, "sealed", journal.SealedFileName("node-1", day))
	data, err := os.ReadFile(sealed)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x20
	os.WriteFile(sealed, data, 0o600)
	fresh := t.TempDir()
	args[len(args)-2] = fresh
	if code, _, stderr := runBin(t, bin, args...); code != 1 || !strings.Contains(stderr, "digest") {
		t.Fatalf("corrupt sealed file: exit %d, stderr %q: want 1 and a digest error", code, stderr)
	}
	if left := readDir(t, filepath.Join(fresh, day)); len(left) != 0 {
		t.Fatalf("a failed run left %d files", len(left))
	}
}

// journalBadRecords appends, beside the day's real traffic, what the switch
// journaled before the authorization-time check: a copy of a real approved
// purchase with DE32 the network's own institution and its reversal (which
// copies the original's parties, as switch/authorize does), and one of an
// issuer that is no member. It returns their node/seq with the reason each
// must be quarantined for.
func journalBadRecords(t *testing.T, d *daemon.DevWorld, day string) map[string]quarantine.Reason {
	var real journal.Entry
	d.Node.Journal.ScanDay(day, func(e journal.Entry) error {
		if real.Seq == 0 && e.MTI == iso8583.MTIFinancialRequest && e.ProcessingCode == iso8583.ProcPurchase && e.ResponseCode == "00" {
			real = e
		}
		return nil
	})
	if real.Seq == 0 {
		t.Fatal("no approved purchase journaled")
	}
	now := time.Now().UTC()
	own := real
	own.STAN, own.TransmissionTime, own.Time, own.Amount = "900001", now.Format("0102150405"), now, 30_00
	own.Acquirer = "00010000" // configs/switch.yaml's institution
	rev := own
	rev.MTI, rev.STAN, rev.Time, rev.StandIn = iso8583.MTIReversalRequest, "900002", now.Add(time.Millisecond), false
	rev.OriginalSTAN, rev.OriginalTransmissionTime = own.STAN, own.TransmissionTime
	gone := real
	gone.STAN, gone.TransmissionTime, gone.Time, gone.Amount = "900003", now.Format("0102150405"), now.Add(2*time.Millisecond), 25_00
	gone.IssuerID = "GONEBANK"
	want := map[string]quarantine.Reason{}
	for _, x := range []struct {
		e      *journal.Entry
		reason quarantine.Reason
	}{{&own, quarantine.AcquirerIsSwitch}, {&rev, quarantine.AcquirerIsSwitch}, {&gone, quarantine.IssuerNotMember}} {
		if err := d.Node.Journal.Append(x.e); err != nil {
			t.Fatal(err)
		}
		want[fmt.Sprintf("%s/%d", x.e.NodeID, x.e.Seq)] = x.reason
	}
	return want
}

func runBin(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatal(err)
	return 0, "", ""
}

// checkSettledBut wants every settling entry but the bad ones once in its
// issuer's and once in its acquirer's file, and the bad ones in none.
func checkSettledBut(t *testing.T, files map[string][]byte, settling []string, bad map[string]quarantine.Reason) {
	t.Helper()
	seen := map[string]int{}
	for name, data := range files {
		if strings.HasSuffix(name, ".clr") {
			for _, det := range readClearing(t, name, data).Details {
				seen[fmt.Sprintf("%s/%d", det.NodeID, det.JournalSeq)]++
			}
		}
	}
	for _, id := range settling {
		want := 2
		if _, ok := bad[id]; ok {
			want = 0
		}
		if seen[id] != want {
			t.Errorf("%s is in %d clearing files, want %d", id, seen[id], want)
		}
	}
	if len(seen) != len(settling)-len(bad) {
		t.Errorf("files hold %d entries, want %d", len(seen), len(settling)-len(bad))
	}
}

func checkNetZero(t *testing.T, data []byte, txns int) {
	t.Helper()
	var r netting.Report
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	var sum iso8583.Amount
	for _, p := range r.Positions {
		sum += p.Net
	}
	if sum != 0 || r.Transactions != int64(txns) {
		t.Errorf("net positions sum to %d over %d transactions, want 0 over %d", int64(sum), r.Transactions, txns)
	}
}

func readClearing(t *testing.T, name string, data []byte) *clearing.File {
	t.Helper()
	f, err := clearing.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return f
}
