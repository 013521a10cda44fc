package load

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/tapswitch/tapswitch/bench/gate"
	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/bench/world"
	"github.com/tapswitch/tapswitch/configs"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/router/issuers"
	"github.com/tapswitch/tapswitch/settlement/transit"
)

// Gate taps, the offline part of the mix (docs/bench.md, "Gate taps"). A
// metro gate never waits for the network, so these taps never reach the
// switch: after the switch's run, bench plays them in its own process
// against a bench/gate gate at every station of the world's six cities,
// with purses held in a wallet (wallet.File, in memory, written out at the
// end), writes each gate's tap file, and feeds the files to the network's
// ingestion (settlement/transit.Ingest) as its check: every debit must
// clear, with no rejection, no counter gap and no card to blacklist.
const (
	// GateTapsMax bounds the gate taps of one run: each debit is fsynced
	// by its gate before it opens.
	GateTapsMax = 5_000
	// gateCardsPerCity is how many purses each city issues for the run.
	gateCardsPerCity = 4
	// gatePurseBalance is each purse's balance, in fen: more than the
	// dearest card can spend in GateTapsMax taps (7 yuan a journey).
	gatePurseBalance = 5_000_00
	// gateForeignEvery: every gateForeignEvery-th round of taps, a card
	// taps in another city (the inter-city clearing).
	gateForeignEvery = 5
)

// GateReport is what the gate taps did.
type GateReport struct {
	// Taps counts passages: tap-ins at Beijing's gates (no debit),
	// tap-outs and flat-fare taps.
	Taps      int64            `json:"taps"`
	Entries   int64            `json:"entries"`    // Beijing tap-ins
	Debits    int64            `json:"debits"`     // taps the gates recorded
	AmountFen int64            `json:"amount_fen"` // the debits' total
	ByCity    map[string]int64 `json:"by_city"`    // passages by the gate's city
	InterCity int64            `json:"inter_city"` // debits of a card on another operator's gates
	TapFiles  int              `json:"tap_files"`
	Dir       string           `json:"dir,omitempty"` // the gates, their tap files and the wallet; empty when not kept
	Cleared   int64            `json:"cleared"`       // debits ingestion cleared from the files
	Errors    []string         `json:"errors,omitempty"`
	DurationS float64          `json:"duration_s"`
}

// gatePurse is one purse of the run and the city that issued it.
type gatePurse struct {
	label string
	city  int
}

// runGateTaps plays n gate taps in dir (created; the caller removes it
// when the files are not to be kept), with synthetic tap times from start.
func runGateTaps(n int, dir string, start time.Time) (*GateReport, error) {
	began := time.Now()
	cities := world.Cities()
	table, members, err := transitNetwork()
	if err != nil {
		return nil, err
	}
	masters := map[string][]byte{}
	var w wallet.File
	var purses []gatePurse
	for ci, c := range cities {
		sum := sha256.Sum256([]byte("tapswitch bench operator master key v1:" + c.Operator))
		masters[c.Operator] = sum[:]
		bin := table.PrefixOf(c.Issuer, bintable.ProductTransit)
		if bin == "" {
			return nil, fmt.Errorf("bench gates: no transit BIN routes to %s (configs/bins.yaml)", c.Issuer)
		}
		for k := range gateCardsPerCity {
			card := fmt.Sprintf("%s%0*d", bin, 19-len(bin), k+1)
			p := transit.Purse{Operator: c.Operator, Card: card, Balance: gatePurseBalance, Key: transit.PurseKey(sum[:], card)}
			label := fmt.Sprintf("%s-%d", c.Name, k+1)
			w.Transit = append(w.Transit, wallet.TransitCardOf(label, p))
			purses = append(purses, gatePurse{label: label, city: ci})
		}
	}
	gates := make([][]*gate.Gate, len(cities))
	for ci, c := range cities {
		fare := gate.Flat(c.Flat)
		if c.Distance() {
			fare = gate.Fare{Distance: c}
		}
		for _, s := range c.Stations {
			g, err := gate.Open(filepath.Join(dir, s.Gate), s.Gate, fare)
			if err != nil {
				return nil, err
			}
			gates[ci] = append(gates[ci], g)
		}
	}
	rep := &GateReport{ByCity: map[string]int64{}}
	for i := range n {
		gp := purses[i%len(purses)]
		round := i / len(purses)
		ci := gp.city
		if round%gateForeignEvery == gateForeignEvery-1 {
			ci = (gp.city + 1 + round/gateForeignEvery%(len(cities)-1)) % len(cities)
		}
		g := gates[ci][(round+i)%len(gates[ci])]
		if err := gateTap(&w, gp.label, g, start.Add(time.Duration(i)*time.Second), rep); err != nil {
			rep.Errors = append(rep.Errors, err.Error())
			continue
		}
		rep.ByCity[cities[ci].Name]++
	}
	if err := writeAndIngest(gates, transit.NewOperators(table, members), masters, start, rep); err != nil {
		return nil, err
	}
	if err := wallet.Save(filepath.Join(dir, "wallet.json"), w); err != nil {
		return nil, err
	}
	rep.DurationS = time.Since(began).Seconds()
	return rep, nil
}

// gateTap taps the wallet's purse label at g.
func gateTap(w *wallet.File, label string, g *gate.Gate, at time.Time, rep *GateReport) error {
	c, err := w.TransitCard(label)
	if err != nil {
		return err
	}
	p, err := c.Purse()
	if err != nil {
		return err
	}
	save := func(after transit.Purse) error { return w.SetPurse(label, after) }
	_, tap, err := g.Tap(p, save, at)
	if err != nil {
		return fmt.Errorf("gate %s, card %s: %v", g.ID(), p.Card, err)
	}
	rep.Taps++
	if tap.Counter == 0 {
		rep.Entries++
		return nil
	}
	rep.Debits++
	rep.AmountFen += tap.Amount
	if p.Operator != transit.GateOperator(tap.Gate) {
		rep.InterCity++
	}
	return nil
}

// writeAndIngest writes every gate's tap file for start's business day
// and checks that ingestion clears every debit.
func writeAndIngest(gates [][]*gate.Gate, cards transit.Operators, masters map[string][]byte, start time.Time, rep *GateReport) error {
	day := start.In(time.FixedZone("CST", 8*3600)).Format("20060102") // Asia/Shanghai, no DST
	var files []transit.InFile
	for _, city := range gates {
		for _, g := range city {
			path, err := g.WriteTapFile(day)
			if err != nil {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files = append(files, transit.InFile{Name: filepath.Base(path), Data: data})
			rep.TapFiles++
		}
	}
	r := transit.Batch{Cards: cards, Masters: masters, Files: files}.Ingest()
	rep.Cleared = int64(len(r.Cleared))
	var problems []string
	for _, x := range r.Rejections {
		problems = append(problems, fmt.Sprintf("ingestion rejected %s line %d: %s", x.File, x.Line, x.Reason))
	}
	for _, g := range r.Gaps {
		problems = append(problems, fmt.Sprintf("ingestion found a counter gap, card %s %d-%d", g.Card, g.From, g.To))
	}
	for _, c := range r.Blacklist {
		problems = append(problems, "ingestion blacklisted card "+c)
	}
	if rep.Cleared != rep.Debits {
		problems = append(problems, fmt.Sprintf("ingestion cleared %d of %d debits", rep.Cleared, rep.Debits))
	}
	sort.Strings(problems)
	rep.Errors = append(rep.Errors, problems...)
	return nil
}

// transitNetwork is the built-in BIN table and members: the run's cards are
// numbered under their operator's transit BIN, as the network's are.
func transitNetwork() (*bintable.Table, []issuers.Issuer, error) {
	table, err := bintable.Parse(configs.Bins)
	if err != nil {
		return nil, nil, err
	}
	members, err := issuers.Parse(configs.Issuers)
	return table, members, err
}
