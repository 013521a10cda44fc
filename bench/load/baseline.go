package load

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/tapswitch/tapswitch/bench/pos"
	"github.com/tapswitch/tapswitch/bench/world"
	"github.com/tapswitch/tapswitch/configs"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/router/issuers"
)

// BaselineRelay is -baseline relay: before the switch's run, the same load
// through cmd/relay, a plain TCP relay, straight to the simulated issuer of
// the demo "approve" card. It measures what one hop costs on this machine,
// so that the report sets the switch's throughput, latency and CPU beside
// it.
const BaselineRelay = "relay"

// The messages of the relay baseline are what the switch itself sends the
// issuer for a purchase (docs/wire.md, "switch to issuer"): the card's
// number and expiry instead of the token's, the network's institution in
// DE33 and the issuer's in DE100, the token in DE48, no DE55. They carry
// no MAC, as issuer links do not.
const (
	relayForwarder = "00010000" // configs/switch.yaml's institution
	relayRequestor = "00000000000"
	relayDeviceID  = "BENCHRELAY"
)

// directCard is the card the relay baseline's purchases are for, and
// where its issuer listens.
type directCard struct {
	card        world.Card
	institution string // the issuer's, DE100
	address     string
}

// approveCard finds the demo "approve" card (which issuersim always loads)
// and its issuer in the built-in configuration.
func approveCard(now time.Time) (directCard, error) {
	table, err := bintable.Parse(configs.Bins)
	if err != nil {
		return directCard{}, err
	}
	list, err := issuers.Parse(configs.Issuers)
	if err != nil {
		return directCard{}, err
	}
	for _, d := range world.Demo(table, now) {
		if d.Label != world.DemoApprove {
			continue
		}
		for _, is := range list {
			if is.ID == d.Card.IssuerID {
				return directCard{card: d.Card, institution: is.Institution, address: is.Address}, nil
			}
		}
		return directCard{}, fmt.Errorf("the approve card's issuer %s is not in configs/issuers.yaml", d.Card.IssuerID)
	}
	return directCard{}, fmt.Errorf("configs/bins.yaml has no BIN for the demo approve card")
}

// directPurchase is a purchase of d.card as the switch sends it to the
// issuer, from terminal t.
func (t *terminal) directPurchase(b *iso8583.Builder, d *directCard, amount iso8583.Amount) request {
	stan, now := t.nextSTAN()
	pos.Tap{Terminal: t.base, ProcessingCode: iso8583.ProcPurchase, Token: string(d.card.PAN),
		TokenExpiry: d.card.Expiry, Amount: amount, STAN: stan, Time: now}.Build(b)
	b.Set(iso8583.FieldForwarder, relayForwarder)
	td := iso8583.TokenData{Token: d.card.PAN, RequestorID: relayRequestor, DeviceID: relayDeviceID}
	b.Set(iso8583.FieldPrivateTokenData, td.Encode())
	b.Set(iso8583.FieldReceivingInstitution, d.institution)
	return request{kind: KindPurchase, stan: stan, want: iso8583.RCApproved}
}

// relayWorld is what -baseline relay starts: issuersim and, in front of
// the approve card's issuer, cmd/relay.
type relayWorld struct {
	dir     string
	issuers *child
	relay   *child
	addr    string // the relay's
	direct  directCard
}

var relayListening = regexp.MustCompile(`relay listening on (\S+),`)

// startRelayWorld starts issuersim and the relay from binDir.
func startRelayWorld(ctx context.Context, binDir string, status io.Writer) (*relayWorld, error) {
	dir, err := os.MkdirTemp("", "tapswitch-bench-relay-")
	if err != nil {
		return nil, err
	}
	w := &relayWorld{dir: dir}
	if err := w.start(ctx, binDir, status); err != nil {
		w.stop()
		os.RemoveAll(dir)
		return nil, err
	}
	return w, nil
}

func (w *relayWorld) start(ctx context.Context, binDir string, status io.Writer) error {
	var err error
	if w.direct, err = approveCard(time.Now()); err != nil {
		return err
	}
	if w.issuers, err = startIssuersim(ctx, filepath.Join(binDir, "issuersim"), filepath.Join(w.dir, "issuersim.log")); err != nil {
		return err
	}
	logPath := filepath.Join(w.dir, "relay.log")
	if w.relay, err = startChild("relay", logPath, filepath.Join(binDir, "relay"), "-to", w.direct.address); err != nil {
		return err
	}
	err = w.relay.waitFor(ctx, "it listened", func() bool {
		data, _ := os.ReadFile(logPath)
		if m := relayListening.FindSubmatch(data); m != nil {
			w.addr = string(m[1])
		}
		return w.addr != ""
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(status, "bench: baseline: relay, child process %d at %s, in front of issuer %s at %s\n",
		w.relay.PID(), w.addr, w.direct.card.IssuerID, w.direct.address)
	return nil
}

func (w *relayWorld) target() Target {
	return Target{
		Addr: w.addr, Direct: &w.direct, SwitchCPU: w.relay.CPU, IssuersCPU: w.issuers.CPU,
		Description: fmt.Sprintf("relay (baseline), child process %d at %s, in front of issuer %s at %s",
			w.relay.PID(), w.addr, w.direct.card.IssuerID, w.direct.address),
		Issuers: fmt.Sprintf("issuersim, child process %d", w.issuers.PID()),
	}
}

// stop stops the relay, then issuersim, and returns the first error.
func (w *relayWorld) stop() error {
	var first error
	for _, c := range []*child{w.relay, w.issuers} {
		if c == nil {
			continue
		}
		if _, err := c.stop(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// runBaseline runs cfg's load, purchases only, through a relay to the
// issuer, and returns its report.
func runBaseline(ctx context.Context, cfg Config, binDir string, stderr io.Writer) (Report, error) {
	w, err := startRelayWorld(ctx, binDir, stderr)
	if err != nil {
		return Report{}, fmt.Errorf("baseline: %w", err)
	}
	defer func() {
		if !cfg.Keep {
			os.RemoveAll(w.dir)
		}
	}()
	purchases, _ := ParseMix("purchase=100")
	cfg.Mix = purchases
	res, runErr := Run(ctx, cfg, w.target(), progressOut(cfg, stderr))
	stopErr := w.stop()
	if runErr != nil {
		return Report{}, fmt.Errorf("baseline: %v%s%s", runErr, w.relay.logTail(), w.issuers.logTail())
	}
	if stopErr != nil {
		fmt.Fprintf(stderr, "bench: baseline: %v\n", stopErr)
	}
	return NewReport(res), nil
}
