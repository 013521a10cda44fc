package issuersim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/issuers"
)

func TestFaultPick(t *testing.T) {
	f := Faults{DropRate: 0.1, ErrorRate: 0.1, DisconnectRate: 0.1, DuplicateRate: 0.1, GarbageRate: 0.1, LateRate: 0.1, LateBy: time.Second}
	for _, tt := range []struct {
		x    float64
		want fault
	}{
		{0, faultDrop}, {0.05, faultDrop}, {0.15, faultError}, {0.25, faultDisconnect},
		{0.35, faultDuplicate}, {0.45, faultGarbage}, {0.55, faultLate}, {0.65, faultNone}, {0.999, faultNone},
	} {
		if got := f.pick(tt.x); got != tt.want {
			t.Errorf("pick(%v) = %v, want %v", tt.x, got, tt.want)
		}
	}
	if got := (Faults{}).pick(0); got != faultNone {
		t.Errorf("no faults: pick(0) = %v", got)
	}
	if got := (Faults{GarbageRate: 1}).pick(0.999999); got != faultGarbage {
		t.Errorf("garbage rate 1: pick = %v", got)
	}
}

// The seeded draws follow the rates, and each plan carries what its fault
// needs.
func TestPlanDraws(t *testing.T) {
	f := Faults{Latency: time.Millisecond, Jitter: time.Millisecond, DropRate: 0.05, ErrorRate: 0.1,
		DisconnectRate: 0.05, DuplicateRate: 0.1, GarbageRate: 0.05, LateRate: 0.15, LateBy: 3 * time.Second}
	s, err := New(Config{Issuer: issuers.Issuer{ID: "TST"}, Faults: f, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	const n = 60_000
	var got [faultCount]int
	for range n {
		p := s.plan()
		got[p.fault]++
		if p.delay < f.Latency || p.delay >= f.Latency+f.Jitter {
			t.Fatalf("delay %v", p.delay)
		}
		if (p.lateBy != 0) != (p.fault == faultLate) || (p.fault == faultLate && p.lateBy != f.LateBy) {
			t.Fatalf("fault %v late by %v", p.fault, p.lateBy)
		}
		if (p.garbage != nil) != (p.fault == faultGarbage) {
			t.Fatalf("fault %v garbage %q", p.fault, p.garbage)
		}
		if p.fault == faultGarbage && got[faultGarbage] <= 100 {
			checkGarbage(t, p.garbage)
		}
	}
	rates := f.rates()
	for i, r := range rates {
		share := float64(got[i+1]) / n
		if math.Abs(share-r.v) > 0.01 {
			t.Errorf("%s: drew %.4f, want %.2f", r.name, share, r.v)
		}
	}
}

func checkGarbage(t *testing.T, frame []byte) {
	t.Helper()
	if len(frame) < garbageBytesMin || len(frame) > garbageBytesMax {
		t.Fatalf("garbage of %d bytes", len(frame))
	}
	for _, b := range frame {
		if b < 0x20 || b > 0x7e {
			t.Fatalf("garbage byte %#x is not printable: %q", b, frame)
		}
	}
	if _, err := iso8583.Unpack(frame); err == nil {
		t.Fatalf("garbage %q unpacks as a message", frame)
	}
}

func TestFaultsJSON(t *testing.T) {
	f := Faults{Latency: 20 * time.Millisecond, Jitter: 30 * time.Millisecond, DropRate: 0.01, ErrorRate: 0.02,
		DisconnectRate: 0.03, DuplicateRate: 0.04, GarbageRate: 0.05, LateRate: 0.06, LateBy: 3 * time.Second}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"latency":"20ms","jitter":"30ms","drop_rate":0.01,"error_rate":0.02,"disconnect_rate":0.03,` +
		`"duplicate_rate":0.04,"garbage_rate":0.05,"late_rate":0.06,"late_by":"3s"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	var back Faults
	if err := json.Unmarshal(b, &back); err != nil || back != f {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	wide := Faults{ZeroSecondaryBitmap: true}
	if b, err := json.Marshal(wide); err != nil || !strings.Contains(string(b), `"zero_secondary_bitmap":true`) {
		t.Fatalf("ZeroSecondaryBitmap marshals to %s, %v", b, err)
	} else if err := json.Unmarshal(b, &back); err != nil || back != wide {
		t.Fatalf("ZeroSecondaryBitmap round trip: %+v, %v", back, err)
	}
	// A partial document replaces the whole: what it leaves out is zero.
	back = f
	if err := json.Unmarshal([]byte(`{"late_rate":0.5,"late_by":"2s"}`), &back); err != nil ||
		back != (Faults{LateRate: 0.5, LateBy: 2 * time.Second}) {
		t.Fatalf("partial: %+v, %v", back, err)
	}
	for _, bad := range []string{`{"drop_rat":0.1}`, `{"latency":"soon"}`, `{"late_by":3}`, `[]`} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

var purchaseDebit = msgSpec{mti: "0200", pc: "000000", pan: panDebit, expiry: "2812", amount: 25_00, stan: 1}

// Disconnect mid-request: the issuer decided and posted, then closed the
// connection without an answer.
func TestFaultDisconnect(t *testing.T) {
	s, addr := startIssuer(t, Faults{DisconnectRate: 1})
	c := dial(t, addr)
	c.send(build(t, purchaseDebit))
	if _, err := c.recv(5 * time.Second); !isClosed(err) {
		t.Fatalf("read %v, want the connection closed", err)
	}
	wantAcct(t, s, panDebit, 75_00, 25_00)
	snap := s.Snapshot()
	if len(snap.Holds) != 1 || snap.Holds[0].STAN != "000001" || snap.Holds[0].Amount != 25_00 {
		t.Fatalf("holds %+v", snap.Holds)
	}
	if snap.Traffic.Disconnected != 1 || snap.Traffic.Answered != 0 {
		t.Fatalf("traffic %+v", snap.Traffic)
	}
	// The issuer itself stays up.
	if err := s.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	dial(t, addr).call(msgSpec{mti: "0800", stan: 2, netCode: "301"})
}

// Duplicate: the same frame twice, one posting.
func TestFaultDuplicate(t *testing.T) {
	s, addr := startIssuer(t, Faults{DuplicateRate: 1})
	c := dial(t, addr)
	c.send(build(t, purchaseDebit))
	first, second := c.recvFrame(5*time.Second), c.recvFrame(5*time.Second)
	if first == nil || !bytes.Equal(first, second) {
		t.Fatalf("frames differ:\n%q\n%q", first, second)
	}
	resp, err := iso8583.Unpack(first)
	if err != nil || get(t, resp, 39) != "00" || get(t, resp, 11) != "000001" {
		t.Fatalf("answer %v: %v", resp, err)
	}
	if _, err := c.recv(200 * time.Millisecond); err == nil {
		t.Fatal("a third answer")
	}
	wantAcct(t, s, panDebit, 75_00, 25_00)
	if tr := s.Snapshot().Traffic; len(s.Ledger()) != 1 || tr.Duplicated != 1 || tr.Answered != 1 {
		t.Fatalf("ledger %d entries, traffic %+v", len(s.Ledger()), tr)
	}
}

// Garbage: a well-framed answer that is not a message; the hold is placed
// and the connection stays open.
func TestFaultGarbage(t *testing.T) {
	s, addr := startIssuer(t, Faults{GarbageRate: 1})
	c := dial(t, addr)
	c.send(build(t, purchaseDebit))
	checkGarbage(t, c.recvFrame(5*time.Second))
	wantAcct(t, s, panDebit, 75_00, 25_00)
	if tr := s.Snapshot().Traffic; tr.Garbled != 1 || tr.Answered != 0 {
		t.Fatalf("traffic %+v", tr)
	}
	if err := s.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	c.call(msgSpec{mti: "0800", stan: 2, netCode: "301"})
}

// Late: decided and posted on time, answered LateBy later.
func TestFaultLate(t *testing.T) {
	const lateBy = time.Second
	s, addr := startIssuer(t, Faults{LateRate: 1, LateBy: lateBy})
	c := dial(t, addr)
	start := time.Now()
	c.send(build(t, purchaseDebit))
	for len(s.Ledger()) == 0 {
		if time.Since(start) > lateBy {
			t.Fatal("not posted before the late answer was due")
		}
		time.Sleep(time.Millisecond)
	}
	wantAcct(t, s, panDebit, 75_00, 25_00)
	resp, err := c.recv(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < lateBy {
		t.Fatalf("answered after %v, want at least %v", d, lateBy)
	}
	if get(t, resp, 39) != "00" || get(t, resp, 11) != "000001" {
		t.Fatalf("late answer rc %s STAN %s", get(t, resp, 39), get(t, resp, 11))
	}
	if tr := s.Snapshot().Traffic; tr.Late != 1 || tr.Answered != 1 {
		t.Fatalf("traffic %+v", tr)
	}
}

// SetFaults races the connections' readers and handlers; run with -race.
// Every request is answered (00 or 96, some twice) and the ledger holds
// exactly the approvals.
func TestSetFaultsWhileServing(t *testing.T) {
	s, addr := startIssuer(t, Faults{})
	sick := Faults{Latency: time.Millisecond, Jitter: 2 * time.Millisecond, ErrorRate: 0.4, DuplicateRate: 0.3}
	stop := make(chan struct{})
	var flips sync.WaitGroup
	flips.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			f := Faults{}
			if i%2 == 0 {
				f = sick
			}
			if err := s.SetFaults(f); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(200 * time.Microsecond)
		}
	})
	const conns, perConn = 4, 50
	var approved atomic.Int64
	var wg sync.WaitGroup
	for w := range conns {
		wg.Go(func() {
			c := dial(t, addr)
			for i := range perConn {
				stan := w*1000 + i + 1
				c.send(build(t, msgSpec{mti: "0100", pc: "000000", pan: panCredit, expiry: "2812", amount: 1, stan: stan}))
				switch rc := c.answerTo(stan); rc {
				case "00":
					approved.Add(1)
				case "96":
				default:
					t.Errorf("STAN %d: rc %s", stan, rc)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	flips.Wait()
	n := approved.Load()
	wantAcct(t, s, panCredit, 500_00-iso8583.Amount(n), iso8583.Amount(n))
	if int64(len(s.Ledger())) != n || n == 0 {
		t.Fatalf("ledger %d entries, %d approved of %d", len(s.Ledger()), n, conns*perConn)
	}
	if err := s.SetFaults(Faults{DropRate: 2}); err == nil {
		t.Fatal("invalid faults accepted")
	}
	if got := s.Faults(); got != sick && got != (Faults{}) {
		t.Fatalf("faults after a refused SetFaults: %+v", got)
	}
}

// answerTo reads until the answer to stan, skipping duplicated answers to
// earlier requests, and returns its response code.
func (c *client) answerTo(stan int) string {
	want := fmt.Sprintf("%06d", stan)
	for {
		resp, err := c.recv(5 * time.Second)
		if err != nil {
			c.t.Errorf("STAN %s: %v", want, err)
			return ""
		}
		if fieldString(resp, iso8583.FieldSTAN) == want {
			return fieldString(resp, iso8583.FieldResponseCode)
		}
	}
}

func TestDownUp(t *testing.T) {
	s, addr := startIssuer(t, Faults{Latency: 30 * time.Second})
	c := dial(t, addr)
	c.send(build(t, purchaseDebit))
	for s.Snapshot().Traffic.Requests == 0 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	s.Down()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Down took %v", d)
	}
	if !s.IsDown() {
		t.Fatal("not down after Down")
	}
	if _, err := c.recv(5 * time.Second); !isClosed(err) {
		t.Fatalf("open connection after Down: read %v", err)
	}
	// The request in flight was never decided, so nothing is held.
	if len(s.Ledger()) != 0 {
		t.Fatalf("ledger %+v", s.Ledger())
	}
	wantAcct(t, s, panDebit, 100_00, 0)
	// Down, the listener still accepts, and closes what it accepts.
	for range 3 {
		d := dial(t, addr)
		d.send(build(t, msgSpec{mti: "0800", stan: 2, netCode: "301"}))
		if _, err := d.recv(5 * time.Second); !isClosed(err) {
			t.Fatalf("connection while down: read %v", err)
		}
	}
	s.Down() // again: no-op
	if err := s.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	s.Up()
	if s.IsDown() {
		t.Fatal("down after Up")
	}
	if rc := get(t, dial(t, addr).call(purchaseDebit), 39); rc != "00" {
		t.Fatalf("after Up: rc %s", rc)
	}
	wantAcct(t, s, panDebit, 75_00, 25_00)
}
