package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/bench/issuersim"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/journal"
	switchnode "github.com/tapswitch/tapswitch/switch/node"
)

// approvals are the standing approved purchases of every node's journal,
// by issuer, keyed by the request the issuer saw (the switch's STAN and
// DE7 towards it).
type approvals struct {
	purchases int
	byIssuer  map[string]map[string]int64 // issuer → "STAN/DE7" → amount
	byNode    map[string]int              // node → its approved purchases
}

func (a approvals) issuers() []string {
	var ids []string
	for id := range a.byIssuer {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// readJournals reads the three stopped nodes' journals. It fails the test
// when one terminal request is journaled on two nodes, when two approvals
// name the same issuer request, or when a node's issuer STAN is outside
// its block (its first digit is the node's number).
func readJournals(t *testing.T, nodes []*node) approvals {
	t.Helper()
	a := approvals{byIssuer: map[string]map[string]int64{}, byNode: map[string]int{}}
	owner := map[journal.Key]string{}
	for k, n := range nodes {
		j, err := journal.Open(filepath.Join(n.data, "journal"), journal.Options{})
		if err != nil {
			t.Fatalf("%s: %v", n.id, err)
		}
		block := fmt.Sprint(k + 1)
		days, _ := j.Days()
		for _, day := range days {
			err := j.ScanDay(day, func(e journal.Entry) error {
				if o, ok := owner[e.Key()]; ok && o != n.id {
					return fmt.Errorf("request %v journaled on %s and on %s", e.Key(), o, n.id)
				}
				owner[e.Key()] = n.id
				if e.IssuerSTAN != "" && !strings.HasPrefix(e.IssuerSTAN, block) {
					return fmt.Errorf("%s sent issuer STAN %s, outside its block %s", n.id, e.IssuerSTAN, block)
				}
				return a.add(j, e)
			})
			if err != nil {
				j.Close()
				t.Fatalf("%s: %v", n.id, err)
			}
		}
		j.Close()
	}
	return a
}

// add counts e when it is an approved purchase that no reversal undid.
func (a *approvals) add(j *journal.Journal, e journal.Entry) error {
	if e.ProcessingCode != iso8583.ProcPurchase || e.ResponseCode != iso8583.RCApproved || e.OriginalSTAN != "" {
		return nil
	}
	if _, reversed, _ := j.ReversalOf(e.Key()); reversed {
		return nil
	}
	byKey := a.byIssuer[e.IssuerID]
	if byKey == nil {
		byKey = map[string]int64{}
		a.byIssuer[e.IssuerID] = byKey
	}
	k := e.IssuerSTAN + "/" + e.IssuerTransmissionTime
	if _, dup := byKey[k]; dup {
		return fmt.Errorf("two approvals name issuer %s request %s", e.IssuerID, k)
	}
	byKey[k] = int64(e.Amount)
	a.purchases++
	a.byNode[e.NodeID]++
	return nil
}

// compareWithIssuer checks one issuer's standing purchase holds (its
// ledger file) against the journals' approvals, request by request.
func compareWithIssuer(t *testing.T, a approvals, ledgers, issuerID string) {
	t.Helper()
	f, err := os.Open(filepath.Join(ledgers, issuersim.LedgerFileName(issuerID)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	snap, err := issuersim.ReadSnapshot(f)
	if err != nil {
		t.Fatal(err)
	}
	held := map[string]int64{}
	for _, l := range snap.Ledger {
		if !l.Reversed && l.ProcessingCode == iso8583.ProcPurchase {
			held[l.STAN+"/"+l.TransmissionTime] = int64(l.Amount)
		}
	}
	approved := a.byIssuer[issuerID]
	for k, amount := range held {
		if approved[k] != amount {
			t.Errorf("issuer %s holds %d for %s; the journals approve %d", issuerID, amount, k, approved[k])
		}
	}
	for k, amount := range approved {
		if _, ok := held[k]; !ok {
			t.Errorf("the journals approve %d for %s; issuer %s holds nothing", amount, k, issuerID)
		}
	}
	t.Logf("issuer %s: %d holds, %d journal approvals", issuerID, len(held), len(approved))
}

// stopIssuers stops issuersim with SIGTERM (once), which writes its
// ledgers, and returns their directory.
func (w *world) stopIssuers() string {
	w.t.Helper()
	if w.issuerProc.ProcessState == nil {
		w.issuerProc.Process.Signal(syscall.SIGTERM)
		w.issuerProc.Wait()
	}
	return w.ledgers
}

// settleAndReconcile closes the business day on every node (switchd -dev
// closes it on demand and seals it), settles it from the three nodes'
// journals, then reconciles every issuer's own ledger against its
// clearing file: zero breaks. It returns the day.
func (w *world) settleAndReconcile(t *testing.T) string {
	var day string
	for _, n := range w.nodes {
		closed := closeDay(t, n)
		if day != "" && closed.Day != day {
			t.Fatalf("%s closed day %s, node-1 %s", n.id, closed.Day, day)
		}
		day = closed.Day
	}
	date := day[:4] + "-" + day[4:6] + "-" + day[6:]
	var journals []string
	for _, n := range w.nodes {
		journals = append(journals, n.data)
	}
	out := filepath.Join(w.dir, "clearing")
	w.runSettle(t, "-date", date, "-journals", strings.Join(journals, ","),
		"-keys", filepath.Join(w.nodes[0].data, "dev-settle.keys"), "-out", out)
	ledgers := w.stopIssuers()
	if rep := w.runSettle(t, "reconcile", "-date", date, "-ledgers", ledgers, "-out", out); t.Failed() {
		reports, _ := filepath.Glob(filepath.Join(out, day, "reconcile-*.txt"))
		for _, r := range reports {
			b, _ := os.ReadFile(r)
			t.Logf("%s:\n%s", filepath.Base(r), b)
		}
		t.Fatalf("reconcile: %s", rep)
	}
	return day
}

// runSettle runs the settle command; a non-zero exit fails the test.
func (w *world) runSettle(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(w.bin.settle, args...).CombinedOutput()
	if err != nil {
		t.Errorf("settle %s: %v\n%s", strings.Join(args, " "), err, out)
	} else {
		t.Logf("settle %s", strings.TrimSpace(string(out)))
	}
	return string(out)
}

// closeDay closes and seals a node's open business day.
func closeDay(t *testing.T, n *node) switchnode.ClosedDay {
	t.Helper()
	resp, err := http.Post("http://"+n.admin+"/admin/close-day", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var closed switchnode.ClosedDay
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &closed) != nil {
		t.Fatalf("%s close-day: %s %s", n.id, resp.Status, body)
	}
	return closed
}

// waitAdvicesDrained waits until a node has no advice (reversal, stand-in
// 0220) armed or due.
func waitAdvicesDrained(t *testing.T, n *node) {
	t.Helper()
	deadline := time.Now().Add(readyMax)
	var last []string
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + n.admin + "/metrics")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			s := string(body)
			if strings.Contains(s, `tapswitch_advices{state="due"} 0`) && strings.Contains(s, `tapswitch_advices{state="armed"} 0`) {
				return
			}
			last = last[:0]
			for _, line := range strings.Split(s, "\n") {
				if strings.HasPrefix(line, "tapswitch_advices{") {
					last = append(last, line)
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: advices not drained within %v: %s", n.id, readyMax, strings.Join(last, ", "))
}
