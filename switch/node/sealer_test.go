package node

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// sealedDays lists the days of n's sealed files with their record counts.
func sealedDays(t *testing.T, n *Node) map[string]int {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(SealedDir(n.cfg.Data), "*.sealed"))
	out := map[string]int{}
	for _, p := range names {
		count := 0
		_, day, err := journal.ReadSealed(p, func(journal.Entry) error { count++; return nil })
		if err != nil {
			t.Fatal(err)
		}
		out[day] = count
	}
	return out
}

// daysFrom lists n consecutive days from day.
func daysFrom(day string, n int) []string {
	var out []string
	for range n {
		out = append(out, day)
		day = journal.NextDay(day)
	}
	return out
}

// TestIdleNodeSealsEveryDay (issue 10, defect 2): a node that takes no
// traffic still seals every closed day, as a file of zero records, without
// a gap, so settle can tell "no traffic" from "file lost" and a standby
// node never holds up the night's run.
func TestIdleNodeSealsEveryDay(t *testing.T) {
	n, err := openNode(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown()
	now := time.Now()
	yesterday := journal.PrevDay(n.Journal.BusinessDayOf(now.Add(-n.cfg.SealGrace)))
	n.SealClosedDays(now)
	n.SealClosedDays(now.Add(72 * time.Hour))
	got := sealedDays(t, n)
	want := daysFrom(yesterday, 4)
	if len(got) != len(want) {
		t.Fatalf("sealed days %v, want %v, each empty", got, want)
	}
	for _, day := range want {
		if count, ok := got[day]; !ok || count != 0 {
			t.Errorf("day %s: sealed %v with %d records, want an empty sealed file", day, ok, count)
		}
	}
	c, ok, err := ReadCutoff(SealedDir(n.cfg.Data))
	if err != nil || !ok || c.String() != "23:00 Asia/Shanghai" {
		t.Errorf("recorded cut-off %v %v %v, want 23:00 Asia/Shanghai", c, ok, err)
	}
}

// TestFailedSealHoldsLaterDays (issue 10, defect 1's cause): when a day
// with traffic cannot be sealed, the node does not move on to the later
// day that has traffic too (settle would take the gap for a day without
// traffic); once the cause is gone, the
// next pass seals the day and the ones after it. A sealed file that goes
// missing is written again from the journal.
func TestFailedSealHoldsLaterDays(t *testing.T) {
	n, err := openNode(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown()
	now := time.Now()
	n.SealClosedDays(now)
	first := journal.PrevDay(n.Journal.BusinessDayOf(now.Add(-n.cfg.SealGrace)))
	blocked := journal.NextDay(first)
	// A directory where the seal's temporary file goes makes the seal fail.
	obstacle := filepath.Join(SealedDir(n.cfg.Data), journal.SealedFileName("node-1", blocked)+".tmp")
	if err := os.MkdirAll(filepath.Join(obstacle, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	for i, day := range []string{blocked, journal.NextDay(blocked)} {
		journalOn(t, n, day, i)
	}
	n.SealClosedDays(now.Add(72 * time.Hour))
	if got := sealedDays(t, n); len(got) != 1 || got[first] != 0 || got[journal.NextDay(blocked)] != 0 {
		t.Fatalf("with %s failing, sealed %v; want only %s, nothing after the failed day", blocked, got, first)
	}
	os.RemoveAll(obstacle)
	n.SealClosedDays(now.Add(72 * time.Hour))
	if got := sealedDays(t, n); len(got) != 4 || got[blocked] != 1 || got[journal.NextDay(blocked)] != 1 {
		t.Fatalf("after the cause is gone, sealed %v; want %v", got, daysFrom(first, 4))
	}
	lost := filepath.Join(SealedDir(n.cfg.Data), journal.SealedFileName("node-1", blocked))
	os.Remove(lost)
	n.SealClosedDays(now.Add(72 * time.Hour))
	if _, err := os.Stat(lost); err != nil {
		t.Fatalf("a lost sealed file was not written again: %v", err)
	}
}

// TestCutoffIntoSealedDayRefused (issue 11, item 6): a node whose cut-off
// puts now into a business day it has already sealed (the cut-off moved
// later on the day) refuses to start, saying why, instead of answering 96
// to every tap.
func TestCutoffIntoSealedDayRefused(t *testing.T) {
	var cfg Config
	n, err := openNode(t, func(c *Config) { cfg = *c })
	if err != nil {
		t.Fatal(err)
	}
	today := n.Journal.BusinessDayOf(time.Now())
	os.MkdirAll(SealedDir(cfg.Data), 0o700)
	if _, err := n.Journal.SealDay(today, cfg.NodeID, SealedDir(cfg.Data)); err != nil {
		t.Fatal(err)
	}
	n.Shutdown()
	_, err = Open(cfg, n.log, nil)
	if err == nil || !strings.Contains(err.Error(), "into business day "+today+", which this node has sealed already") {
		t.Fatalf("Open with now in a sealed day: %v; want a refusal naming the day", err)
	}
}

// journalOn journals an approved purchase at noon of business day day.
func journalOn(t *testing.T, n *Node, day string, i int) {
	t.Helper()
	c := n.Journal.Cutoff()
	noon, err := time.ParseInLocation("20060102", day, c.Location)
	if err != nil {
		t.Fatal(err)
	}
	at := noon.Add(12 * time.Hour)
	stan := fmt.Sprintf("%06d", i+1)
	e := journal.Entry{
		Time: at, NodeID: n.cfg.NodeID, MTI: "0200", ProcessingCode: iso8583.ProcPurchase, Amount: 100,
		Currency: iso8583.CurrencyCNY, TerminalID: "T0000001", STAN: stan, TransmissionTime: at.UTC().Format("0102150405"),
		RRN: "607300" + stan, MerchantID: "898310054110001", MCC: "5411", Acquirer: "03080000",
		Token: "6299900000000000018", PANSealed: []byte("sealed"), IssuerID: "ICBC", Product: "debit",
		IssuerSTAN: stan, IssuerTransmissionTime: at.UTC().Format("0102150405"), ResponseCode: "00", AuthCode: "123456",
		CardExpiry: "2912",
	}
	if err := n.Journal.Append(&e); err != nil {
		t.Fatal(err)
	}
}
