package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/bench/pos"
	"github.com/tapswitch/tapswitch/bench/proctest"
	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/acquirer"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// TestSIGTERMUnderLoadLosesNothing runs the real switchd binary in dev
// mode, drives 20 terminals at it, sends SIGTERM in the middle, restarts it
// on the same data, stops it again, and checks the journal holds exactly the
// approvals the terminals received, once each.
func TestSIGTERMUnderLoadLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs switchd")
	}
	bin := proctest.Build(t, t.TempDir(), ".", "switchd")
	data := t.TempDir()
	began := time.Now()
	defer func() { t.Logf("took %v", time.Since(began)) }()

	proc, w := proctest.DevSwitchd(t, bin, data, "-admin", "127.0.0.1:0", "-log-level", "warn")
	seen := driveUntilStopped(t, w, proctest.DevKeys(t, data), func() {
		time.Sleep(700 * time.Millisecond)
		proc.Process.Signal(syscall.SIGTERM)
	})
	waitExit(t, proc)
	t.Logf("first run stopped after %v", time.Since(began))
	if len(seen) == 0 {
		t.Fatal("no approvals before SIGTERM: the test proves nothing")
	}

	// Restart on the same data: the switch must open its journal and serve.
	proc, w = proctest.DevSwitchd(t, bin, data, "-admin", "127.0.0.1:0", "-log-level", "warn")
	after := driveUntilStopped(t, w, proctest.DevKeys(t, data), func() {
		time.Sleep(200 * time.Millisecond)
		proc.Process.Signal(syscall.SIGTERM)
	})
	waitExit(t, proc)
	for k := range after {
		seen[k]++
	}

	j, err := journal.Open(filepath.Join(data, "journal"), journal.Options{Cutoff: journal.DefaultCutoff()})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	journaled := map[journal.Key]int{}
	days, _ := j.Days()
	for _, day := range days {
		if err := j.ScanDay(day, func(e journal.Entry) error {
			if e.ResponseCode == iso8583.RCApproved {
				journaled[e.Key()]++
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for k, n := range journaled {
		if n != 1 {
			t.Errorf("journal holds %v %d times", k, n)
		}
		if seen[k] != 1 {
			t.Errorf("journal approval %v was seen %d times by terminals", k, seen[k])
		}
	}
	for k := range seen {
		if journaled[k] != 1 {
			t.Errorf("terminal saw approval %v that the journal lacks", k)
		}
	}
	t.Logf("%d approvals seen by terminals, %d journaled", len(seen), len(journaled))
}

func waitExit(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("switchd exited with %v after SIGTERM", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("switchd did not exit within 40s of SIGTERM")
	}
}

// driveUntilStopped taps the approve card from 20 terminals, 8 requests in
// flight each, until the switch stops answering; stop runs alongside. It
// returns the keys of the approvals received.
func driveUntilStopped(t *testing.T, w wallet.File, keys acquirer.Keys, stop func()) map[journal.Key]int {
	card, err := w.Card("approve")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[journal.Key]int{}
	var wg sync.WaitGroup
	for term := range 20 {
		c, err := pos.Dial(w.Switch, time.Second, keys)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now().UnixMicro()%100000 + int64(term)
		for lane := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tapUntilError(c, card, term, start+int64(lane), func(k journal.Key) {
					mu.Lock()
					seen[k]++
					mu.Unlock()
				})
			}()
		}
	}
	stop()
	wg.Wait()
	return seen
}

// tapUntilError taps with STANs first, first+8, ... (bounded: at most 2,000
// taps) until a request gets no answer. Lanes of one terminal start at
// consecutive numbers so their STANs never meet.
func tapUntilError(c *pos.Client, card wallet.Card, term int, first int64, approved func(journal.Key)) {
	terminal := pos.DemoTerminal
	terminal.TerminalID = fmt.Sprintf("SIG%05d", term)
	for i := range 2000 {
		stan := fmt.Sprintf("%06d", (first+int64(i*8))%999999+1)
		req := pos.Tap{Terminal: terminal, ProcessingCode: iso8583.ProcPurchase, Token: card.Token,
			TokenExpiry: card.TokenExpiry, Amount: 100, STAN: stan, Time: time.Now()}.WithCard(card).Message()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := c.Do(ctx, req)
		cancel()
		if err != nil {
			return
		}
		if iso8583.FieldValue(resp, iso8583.FieldResponseCode) == iso8583.RCApproved {
			approved(journal.Key{TerminalID: terminal.TerminalID, STAN: stan,
				TransmissionTime: iso8583.FieldValue(req, iso8583.FieldTransmissionTime)})
		}
	}
}
