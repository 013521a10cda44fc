package load

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/bench/world"
	"github.com/tapswitch/tapswitch/switch/daemon"
	"github.com/tapswitch/tapswitch/switch/node"
)

// startLoadWorld starts the dev world in this process with its token API
// on a free loopback port.
func startLoadWorld(t *testing.T) LoadWorld {
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
	// The card bench picks from the world's base, as it does against the
	// switchd -dev it starts (worldLoads).
	table, _, err := transitNetwork()
	if err != nil {
		t.Fatal(err)
	}
	card := loadCard(world.Generate(table, 7, devCardsPerBIN, time.Now()), time.Now())
	if card.Balance < 100_00 {
		t.Fatalf("the card to bind has %d fen", card.Balance)
	}
	return LoadWorld{API: d.Node.PublicURL(), Data: d.Data, Card: card}
}

// TestLoads: a phone binds the dev world's card, opens a card in each of
// the six cities and loads them; every load is loaded, the purses hold
// what the switch loaded, and the report says so.
func TestLoads(t *testing.T) {
	lw := startLoadWorld(t)
	path := filepath.Join(t.TempDir(), "phone.json")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := runLoads(ctx, lw, path, 8, 1_00)
	if err != nil {
		t.Fatal(err)
	}
	if rep.ErrorsN != 0 || len(rep.Errors) != 0 {
		t.Fatalf("errors: %v", rep.Errors)
	}
	if rep.Opened != 6 || rep.Loads != 8 || rep.ByState[stateLoaded] != 8 || len(rep.ByState) != 1 {
		t.Fatalf("report %+v", rep)
	}
	if rep.LoadedFen != 14*1_00 || rep.PurseFen != rep.LoadedFen {
		t.Fatalf("loaded %d fen, purses %d", rep.LoadedFen, rep.PurseFen)
	}
	if rep.PayP50US <= 0 || rep.PayP50US > rep.PayP99US || rep.PayP99US > rep.PayMaxUS {
		t.Fatalf("pay latency p50 %d p99 %d max %d", rep.PayP50US, rep.PayP99US, rep.PayMaxUS)
	}
	w, err := wallet.Load(path)
	if err != nil || len(w.Transit) != 6 || len(w.TopUps) != 0 {
		t.Fatalf("wallet: %v, %d transit cards, %d top-ups pending", err, len(w.Transit), len(w.TopUps))
	}
	// The two loaded cards of the first cities hold two loads and their opening.
	if w.Transit[0].Balance != 3*1_00 || w.Transit[5].Balance != 2*1_00 {
		t.Fatalf("balances %d, %d", w.Transit[0].Balance, w.Transit[5].Balance)
	}
	r := Report{Loads: rep}
	t.Logf("\n%s", r.Summary())
	if s := r.Summary(); !strings.Contains(s, "purse loads  8 through the token API") {
		t.Fatalf("summary:\n%s", s)
	}
	checkLoadFiles(t, r)

	// The check fails when a purse holds what the switch did not load: a
	// phone that credits itself a fen.
	w.Transit[2].Balance++
	if err := wallet.Save(path, w); err != nil {
		t.Fatal(err)
	}
	bad := &LoadReport{}
	checkPurses(path, rep.topUps, bad)
	if bad.ErrorsN != 1 || !strings.Contains(bad.Errors[0], "purse "+w.Transit[2].Label+" holds 201 fen, the switch loaded 200") {
		t.Fatalf("a purse a fen over: %v", bad.Errors)
	}
}

// checkLoadFiles writes both reports of r and finds the loads in them.
func checkLoadFiles(t *testing.T, r Report) {
	t.Helper()
	dir := t.TempDir()
	if err := r.WriteJSON(filepath.Join(dir, "r.json")); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteHTML(filepath.Join(dir, "r.html")); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "r.json"))
	for _, key := range []string{`"loads": {`, `"by_state": {`, `"loaded": 8`, `"pay_p99_us":`, `"loaded_fen": 1400`, `"purse_fen": 1400`} {
		if !strings.Contains(string(data), key) {
			t.Errorf("JSON lacks %s:\n%s", key, data)
		}
	}
	page, _ := os.ReadFile(filepath.Join(dir, "r.html"))
	if !strings.Contains(string(page), "purse loads (token API, after the run)</th><td class=\"n\">8: loaded 8, declined 0, undone 0") {
		t.Error("HTML lacks the loads' row")
	}
}

// TestLoadInTheMix: load is a kind of the mix but not of the switch's
// cycle, its count follows the requests sent, bounded, and it goes only
// with the switch bench starts.
func TestLoadInTheMix(t *testing.T) {
	m, err := ParseMix("purchase=90,decline=10,gate=5,load=2")
	if err != nil {
		t.Fatal(err)
	}
	if m.String() != "purchase=90,decline=10,gate=5,load=2" || !m.Has(KindLoad) || len(m.Table()) != 100 {
		t.Fatalf("mix %s, table of %d", m, len(m.Table()))
	}
	for _, k := range m.Table() {
		if k == KindLoad {
			t.Fatal("a purse load in the switch's cycle")
		}
	}
	if m.Loads(1000) != 20 || m.Loads(0) != 0 || m.Loads(1_000_000) != LoadsMax || m.GateTaps(1000) != 50 {
		t.Fatalf("loads %d %d %d, gate taps %d", m.Loads(1000), m.Loads(0), m.Loads(1_000_000), m.GateTaps(1000))
	}
	if d, _ := ParseMix(DefaultMix); d.Loads(1000) != 0 || d.Has(KindLoad) {
		t.Fatal("the default mix has purse loads")
	}
	if _, err := ParseFlags([]string{"-mix", "load=10"}, os.Stdout, os.Stderr); err == nil || !strings.Contains(err.Error(), "no kind sent to the switch") {
		t.Fatalf("a mix of loads only: %v", err)
	}
	_, err = ParseFlags([]string{"-mix", "purchase=9,load=1", "-switch", "127.0.0.1:9583"}, os.Stdout, os.Stderr)
	if err == nil || !strings.Contains(err.Error(), "-mix load is for the switch bench starts") {
		t.Fatalf("loads against an existing switch: %v", err)
	}
}
