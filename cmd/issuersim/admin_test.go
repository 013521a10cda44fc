package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	moov "github.com/moov-io/iso8583"

	"github.com/tapswitch/tapswitch/bench/issuersim"
	"github.com/tapswitch/tapswitch/bench/world"
	"github.com/tapswitch/tapswitch/configs"
	"github.com/tapswitch/tapswitch/internal/syncbuf"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
)

// TestMain lets a test run this binary as issuersim itself, to send it a
// real SIGTERM.
func TestMain(m *testing.M) {
	if os.Getenv("ISSUERSIM_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// demoApprove is the demo card ICBC approves, as run generates it.
func demoApprove(t *testing.T) world.Card {
	t.Helper()
	table, err := bintable.Parse(configs.Bins)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range world.Demo(table, time.Now()) {
		if d.Label == world.DemoApprove {
			return d.Card
		}
	}
	t.Fatal("no demo approve card")
	return world.Card{}
}

// purchase sends a 0200 purchase to addr and returns its answer, nil when
// none comes within wait.
func purchase(t *testing.T, addr string, card world.Card, amount iso8583.Amount, stan int, wait time.Duration) *moov.Message {
	t.Helper()
	msg := iso8583.NewMessage()
	msg.MTI(iso8583.MTIFinancialRequest)
	for id, v := range map[int]string{
		iso8583.FieldPAN: card.PAN.Clear(), iso8583.FieldProcessingCode: iso8583.ProcPurchase,
		iso8583.FieldAmount: amount.Field(), iso8583.FieldTransmissionTime: "0315100000",
		iso8583.FieldSTAN: fmt.Sprintf("%06d", stan), iso8583.FieldExpiry: card.Expiry,
		iso8583.FieldRRN: fmt.Sprintf("%012d", stan), iso8583.FieldTerminalID: "TERM0001",
		iso8583.FieldCurrency: iso8583.CurrencyCNY,
	} {
		if err := msg.Field(id, v); err != nil {
			t.Fatal(err)
		}
	}
	payload, err := iso8583.Pack(msg)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := iso8583.WriteFrame(nc, payload); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(wait))
	frame, err := iso8583.NewFrameReader(nc, iso8583.FrameBytesMaxDefault).Next()
	if err != nil {
		return nil
	}
	resp, err := iso8583.Unpack(frame)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func httpDo(t *testing.T, method, url, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func readLedgerFile(t *testing.T, dir, id string) issuersim.Snapshot {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, issuersim.LedgerFileName(id)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	snap, err := issuersim.ReadSnapshot(f)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// The admin endpoints drive a running issuersim, and the ledger files it
// writes on the way out hold what /ledger showed.
func TestAdminAndLedgerDir(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	var stdout, stderr syncbuf.Buffer
	done := make(chan int, 1)
	args := []string{"-issuers", issuersFile(t, "127.0.0.1:0", "127.0.0.1:0"), "-cards", "10", "-log-level", "warn",
		"-admin", "127.0.0.1:0", "-ledger-dir", dir}
	go func() { done <- run(ctx, args, &stdout, &stderr) }()
	icbc := waitFor(t, &stdout, &stderr, "ICBC listening on ")
	admin := "http://" + waitFor(t, &stdout, &stderr, "admin listening on ")
	card := demoApprove(t)

	if code, body := httpDo(t, "GET", admin+"/healthz", ""); code != 200 || string(body) != "ok\n" {
		t.Fatalf("healthz: %d %q", code, body)
	}
	if resp := purchase(t, icbc, card, 12_00, 1, 5*time.Second); resp == nil {
		t.Fatal("no answer")
	}
	if code, body := httpDo(t, "POST", admin+"/faults?issuer=ICBC", `{"drop_rate":1}`); code != 200 {
		t.Fatalf("faults: %d %s", code, body)
	}
	if resp := purchase(t, icbc, card, 3_00, 2, 300*time.Millisecond); resp != nil {
		t.Fatal("answered with drop rate 1")
	}
	code, body := httpDo(t, "GET", admin+"/ledger?issuer=ICBC", "")
	live, err := issuersim.ReadSnapshot(strings.NewReader(string(body)))
	if code != 200 || err != nil {
		t.Fatalf("ledger: %d %v", code, err)
	}
	// The dropped purchase was posted all the same.
	if live.Totals.Entries != 2 || live.Totals.Held != 15_00 || live.Traffic.Dropped != 1 {
		t.Fatalf("ledger totals %+v traffic %+v", live.Totals, live.Traffic)
	}
	if code, _ := httpDo(t, "POST", admin+"/down?issuer=ICBC", ""); code != 200 {
		t.Fatalf("down: %d", code)
	}
	if resp := purchase(t, icbc, card, 1_00, 3, time.Second); resp != nil {
		t.Fatal("answered while down")
	}
	httpDo(t, "POST", admin+"/faults?issuer=*", `{}`)
	if code, _ := httpDo(t, "POST", admin+"/up?issuer=ICBC", ""); code != 200 {
		t.Fatalf("up: %d", code)
	}
	if resp := purchase(t, icbc, card, 1_00, 4, 5*time.Second); resp == nil {
		t.Fatal("no answer after up")
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d, stderr %q", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop on cancel")
	}
	snap := readLedgerFile(t, dir, "ICBC")
	if snap.Totals.Entries != 3 || snap.Totals.Held != 16_00 {
		t.Fatalf("ledger-ICBC.json totals %+v", snap.Totals)
	}
	for i, e := range live.Ledger {
		if a, b := mustJSON(t, e), mustJSON(t, snap.Ledger[i]); a != b {
			t.Fatalf("entry %d: /ledger %s, file %s", i, a, b)
		}
	}
	if readLedgerFile(t, dir, "SPTC").Totals.Entries != 0 {
		t.Fatal("SPTC has entries")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A real SIGTERM to a real process writes the ledgers and exits 0.
func TestSIGTERMWritesLedgers(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-issuers", issuersFile(t, "127.0.0.1:0", "127.0.0.1:0"), "-only", "ICBC",
		"-cards", "10", "-log-level", "warn", "-admin", "", "-ledger-dir", dir)
	cmd.Env = append(os.Environ(), "ISSUERSIM_TEST_MAIN=1")
	var stdout, stderr syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			cmd.Process.Kill()
			<-exited
		}
	}()
	icbc := waitFor(t, &stdout, &stderr, "ICBC listening on ")
	if resp := purchase(t, icbc, demoApprove(t), 7_00, 1, 5*time.Second); resp == nil {
		t.Fatal("no answer")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Fatalf("exit: %v, stderr %q", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit within 10s of SIGTERM")
	}
	snap := readLedgerFile(t, dir, "ICBC")
	if snap.Totals.Entries != 1 || snap.Holds[0].Amount != 7_00 || snap.Holds[0].STAN != "000001" {
		t.Fatalf("ledger-ICBC.json: %+v", snap)
	}
	if names, _ := filepath.Glob(filepath.Join(dir, "*")); len(names) != 1 {
		t.Fatalf("ledger dir holds %v", names)
	}
}
