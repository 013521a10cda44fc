package load

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/switch/daemon"
	"github.com/tapswitch/tapswitch/switch/node"
)

// startDevSwitch starts the dev world in this process on free loopback
// ports: a real switch with real TCP listeners and simulated issuers.
func startDevSwitch(t *testing.T) Target {
	t.Helper()
	cfg, err := node.LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Data = t.TempDir()
	cfg.Listen, cfg.Public, cfg.Admin = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	d, err := daemon.StartDev(cfg, 7, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	w, err := wallet.Load(d.WalletPath)
	if err != nil {
		t.Fatal(err)
	}
	return Target{Addr: d.Node.TerminalAddr(), Wallet: w, Keys: d.AcquirerKeys, Description: "in-process dev switch", Issuers: "inside the test"}
}

func runAgainst(t *testing.T, target Target, cfg Config) Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := Run(ctx, cfg, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep := NewReport(res)
	t.Logf("\n%s", rep.Summary())
	return rep
}

// checkDefaultMix checks a run of the default mix: no errors, every answer
// the one its card gets, kinds in proportion.
func checkDefaultMix(t *testing.T, rep Report) {
	t.Helper()
	if rep.Errors != 0 || len(rep.ErrorsByKind) != 0 || rep.Answered != rep.Requests || rep.Requests < 50 {
		t.Fatalf("%d errors %v, %d of %d answered", rep.Errors, rep.ErrorsByKind, rep.Answered, rep.Requests)
	}
	k := rep.Kinds
	approvals := k[KindPurchase].Sent + k[KindRefund].Sent + k[KindTopUp].Sent
	if rep.Codes["00"] != approvals {
		t.Errorf("%d approvals for %d purchases, refunds and top-ups", rep.Codes["00"], approvals)
	}
	var declined int64
	for _, rc := range []string{"51", "54", "62", "14"} {
		declined += rep.Codes[rc]
		if d := float64(rep.Codes[rc]) - float64(k[KindDecline].Sent)/4; math.Abs(d) > 1 {
			t.Errorf("rc %s %d times of %d declines: the decline cards are not taken in turn", rc, rep.Codes[rc], k[KindDecline].Sent)
		}
	}
	if declined != k[KindDecline].Sent || int64(len(rep.Codes)) != 5 {
		t.Errorf("codes %v for %d declines", rep.Codes, k[KindDecline].Sent)
	}
	// The cycle is 100 long; a run sees the mix to within a cycle.
	for kind, share := range map[Kind]float64{KindPurchase: .8, KindRefund: .05, KindTopUp: .05, KindDecline: .1} {
		want := share * float64(rep.Requests)
		if math.Abs(float64(k[kind].Sent)-want) > 100*share+float64(rep.Connections) {
			t.Errorf("%s %d of %d requests, want about %.0f", kind, k[kind].Sent, rep.Requests, want)
		}
	}
	if rep.P50US <= 0 || rep.P50US > rep.P99US || rep.P99US > rep.MaxUS || rep.LatencyN != rep.Answered {
		t.Errorf("latencies p50 %d p99 %d max %d from %d samples", rep.P50US, rep.P99US, rep.MaxUS, rep.LatencyN)
	}
	checkFiles(t, rep)
}

// checkFiles writes both reports and reads them back.
func checkFiles(t *testing.T, rep Report) {
	t.Helper()
	dir := t.TempDir()
	if err := rep.WriteJSON(dir + "/r.json"); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	data, _ := readFile(dir + "/r.json")
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"tps", "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "errors", "codes",
		"mode", "rate", "duration_s", "requests", "cpu_switch_s", "cpu_bench_s", "cpu_us_per_auth"} {
		if _, ok := m[key]; !ok {
			t.Errorf("JSON lacks %q", key)
		}
	}
	if codes, ok := m["codes"].(map[string]any); !ok || codes["00"] == nil {
		t.Errorf("JSON codes %v", m["codes"])
	}
	if err := rep.WriteHTML(dir + "/r.html"); err != nil {
		t.Fatal(err)
	}
	page, _ := readFile(dir + "/r.html")
	html := string(page)
	if !strings.Contains(html, "<svg ") || !strings.Contains(html, "<polyline ") {
		t.Error("HTML has no SVG chart with a line")
	}
	for _, external := range []string{"<script", " src=", "<link", "@import", "url("} {
		if strings.Contains(html, external) {
			t.Errorf("HTML is not self-contained: it has %q", external)
		}
	}
}

func TestClosedLoopAgainstSwitch(t *testing.T) {
	target := startDevSwitch(t)
	cfg := DefaultConfig()
	cfg.Duration, cfg.Warmup, cfg.Concurrency, cfg.Connections = time.Second, 200*time.Millisecond, 8, 4
	rep := runAgainst(t, target, cfg)
	if rep.Mode != ModeClosed || rep.Connections != 4 || rep.DurationS != 1 {
		t.Errorf("mode %s connections %d duration %v", rep.Mode, rep.Connections, rep.DurationS)
	}
	checkDefaultMix(t, rep)
}

func TestOpenLoopAgainstSwitch(t *testing.T) {
	target := startDevSwitch(t)
	cfg := DefaultConfig()
	cfg.Mode, cfg.Rate, cfg.Connections = ModeOpen, 200, 4
	cfg.Duration, cfg.Warmup = time.Second, 200*time.Millisecond
	rep := runAgainst(t, target, cfg)
	// Requests due from 0.2 s to 1.2 s at 200/s: exactly 200.
	if rep.Requests != 200 || rep.Rate != 200 {
		t.Errorf("%d requests at rate %d, want 200", rep.Requests, rep.Rate)
	}
	if rep.TPS < 190 || rep.TPS > 210 {
		t.Errorf("%.1f TPS at a rate of 200/s", rep.TPS)
	}
	checkDefaultMix(t, rep)
}

// TestReversalsAreWellFormed sends reversals of the harness's own approved
// purchases. Until the switch serves reversals it answers them 12; once it
// does, they must be approved (25 or 30 would mean a bad DE90 or 0400).
func TestReversalsAreWellFormed(t *testing.T) {
	target := startDevSwitch(t)
	cfg := DefaultConfig()
	cfg.Mix, _ = ParseMix("purchase=2,reversal=1")
	cfg.Duration, cfg.Warmup, cfg.Concurrency, cfg.Connections = time.Second, 100*time.Millisecond, 4, 2
	rep := runAgainst(t, target, cfg)
	rev := rep.Kinds[KindReversal]
	if rev.Sent < 10 {
		t.Fatalf("%d reversals sent", rev.Sent)
	}
	for what, n := range rep.ErrorsByKind {
		if what != "reversal answered 12, want 00" {
			t.Errorf("%d× %s", n, what)
		}
	}
	if rev.OK+rep.ErrorsByKind["reversal answered 12, want 00"] != rev.Sent {
		t.Errorf("reversals %+v, errors %v", rev, rep.ErrorsByKind)
	}
}

func TestPreflightCatchesAWrongWallet(t *testing.T) {
	target := startDevSwitch(t)
	for i, c := range target.Wallet.Cards {
		if c.Label == "expired" {
			target.Wallet.Cards[i].Outcome = "00" // it is answered 54
		}
	}
	cfg := DefaultConfig()
	cfg.Duration, cfg.Connections, cfg.Concurrency = time.Second, 1, 1
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	_, err := Run(ctx, cfg, target, nil)
	if err == nil || !strings.Contains(err.Error(), "pre-flight: decline answered 54, want 00 (is the wallet") {
		t.Fatalf("Run with a wrong wallet: %v", err)
	}
	t.Logf("%v after %v", err, time.Since(start))
}

func readFile(path string) ([]byte, error) { return os.ReadFile(path) }
