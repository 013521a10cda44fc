package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapswitch/tapswitch/bench/pos"
	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/acquirer"
)

// dialTimeout bounds one connection's TCP handshake.
const dialTimeout = 2 * time.Second

// Target is the switch a run drives.
type Target struct {
	Addr   string
	Wallet wallet.File
	// Keys are the acquirer keys the fleet derives its terminals' MAC keys
	// from (the dev switch's dev-acquirer.keys, beside its wallet).
	Keys acquirer.Keys
	// SwitchCPU and IssuersCPU are each process's CPU time so far; nil
	// when it cannot be measured (a process whose PID is not given, or
	// issuers inside the switch process).
	SwitchCPU, IssuersCPU func() (time.Duration, error)
	// Direct, when set, makes the run a baseline: purchases of this card
	// as the switch sends them to its issuer, unsigned, to Addr (a relay in
	// front of that issuer). Wallet and Keys are not used.
	Direct *directCard
	// Description says what the switch is, Issuers where the issuers
	// run, for the report.
	Description, Issuers string
}

// Result is one run's measurements.
type Result struct {
	Config      Config
	Target      string
	Issuers     string
	Start       time.Time     // the first request's intended send
	Measured    time.Duration // the measured time actually run
	Interrupted bool          // stopped early by a signal
	Connections int
	Lost        int // connections the switch closed during the run
	stats       *stats
	CPU         CPUFigures // during the measured time
}

// runner is one run in progress.
type runner struct {
	cfg         Config
	plan        *plan
	remembers   bool // keep approved purchases for reversals and refunds to name
	terms       []*terminal
	start       time.Time
	measureFrom time.Time
	end         time.Time
	seq         atomic.Int64 // closed loop: the next request number
	progress    progress
}

// Run checks the target with a pre-flight tap of every card the mix uses,
// opens the connections and drives them for warm-up + duration. ctx ends
// the run early (what was measured is still returned). progressOut, when
// not nil, gets a progress bar.
func Run(ctx context.Context, cfg Config, target Target, progressOut io.Writer) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p, err := newPlan(cfg, target)
	if err != nil {
		return nil, err
	}
	if err := preflight(ctx, target, p, cfg.Mix, terminalID(0)); err != nil {
		return nil, err
	}
	return drive(ctx, cfg, p, target, progressOut)
}

// drive opens the connections and runs the plan: Run without the
// pre-flight.
func drive(ctx context.Context, cfg Config, p *plan, target Target, progressOut io.Writer) (*Result, error) {
	r := &runner{cfg: cfg, plan: p, remembers: cfg.Mix.Has(KindReversal) || cfg.Mix.Has(KindRefund)}
	if err := r.dial(target); err != nil {
		return nil, err
	}
	defer r.close()

	r.start = time.Now()
	r.measureFrom = r.start.Add(cfg.Warmup)
	r.end = r.measureFrom.Add(cfg.Duration)
	r.progress.start(progressOut, r.start, r.measureFrom, r.end)
	cpu := startCPUWindow(ctx, r.measureFrom, target.SwitchCPU, target.IssuersCPU)

	if cfg.Mode == ModeOpen {
		r.openLoop(ctx)
	} else {
		r.closedLoop(ctx)
	}
	stopped := time.Now()
	r.progress.finish()
	res := &Result{Config: cfg, Target: target.Description, Issuers: target.Issuers, Start: r.start,
		Connections: len(r.terms), Interrupted: ctx.Err() != nil, stats: newStats()}
	if stopped.After(r.end) {
		stopped = r.end
	}
	res.Measured = max(0, stopped.Sub(r.measureFrom))
	res.CPU = cpu.stop()
	for _, t := range r.terms {
		res.stats.merge(t.stats)
		if t.lost.Load() {
			res.Lost++
		}
	}
	return res, nil
}

func (r *runner) dial(target Target) error {
	n := r.cfg.ConnectionsUsed()
	stanStart := int(time.Now().UnixMicro() % stanMax)
	for k := range n {
		c, err := pos.Dial(target.Addr, dialTimeout, target.Keys)
		if err != nil {
			r.close()
			return fmt.Errorf("connection %d of %d to the switch at %s: %w", k+1, n, target.Addr, err)
		}
		r.terms = append(r.terms, newTerminal(terminalID(k+1), c, target.Keys, stanStart+k*7919, newStats()))
	}
	return nil
}

func (r *runner) close() {
	for _, t := range r.terms {
		t.client.Close()
	}
}

// closedLoop keeps Concurrency requests in flight: worker w sends on
// connection w mod Connections, one request after the other, until the end.
func (r *runner) closedLoop(ctx context.Context) {
	var wg sync.WaitGroup
	for w := range r.cfg.Concurrency {
		t := r.terms[w%len(r.terms)]
		wg.Go(func() {
			for ctx.Err() == nil && !t.lost.Load() {
				now := time.Now()
				if !now.Before(r.end) {
					return
				}
				r.do(t, r.seq.Add(1)-1, now)
			}
		})
	}
	wg.Wait()
}

// openLoop runs one scheduler per connection. Connection k sends requests
// k, k+N, k+2N, ... each at its intended time; the ones answered late do
// not hold the schedule back, up to inflightPerConnectionMax in flight, and
// past that the wait for a slot counts in the latency.
func (r *runner) openLoop(ctx context.Context) {
	var wg sync.WaitGroup
	for k, t := range r.terms {
		wg.Go(func() { r.schedule(ctx, t, k) })
	}
	wg.Wait()
}

func (r *runner) schedule(ctx context.Context, t *terminal, k int) {
	n := int64(len(r.terms))
	slots := make(chan struct{}, inflightPerConnectionMax)
	var inflight sync.WaitGroup
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for i := int64(k); ; i += n {
		intended := r.start.Add(intendedOffset(i, r.cfg.Rate))
		if !intended.Before(r.end) || !sleepUntil(ctx, timer, intended) {
			break
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		inflight.Go(func() {
			defer func() { <-slots }()
			r.do(t, i, intended)
		})
	}
	inflight.Wait()
}

// sleepUntil waits for at; false when ctx ended first.
func sleepUntil(ctx context.Context, timer *time.Timer, at time.Time) bool {
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer.Reset(d)
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// do sends request i of the run on t, due at intended, and records what
// happened if intended falls in the measured time.
func (r *runner) do(t *terminal, i int64, intended time.Time) {
	kind := r.plan.table[i%int64(len(r.plan.table))]
	o := outcome{kind: kind}
	var err error
	var req request
	if t.lost.Load() {
		err = pos.ErrClosed
	} else if req, err = t.build(r.plan, kind); err == nil {
		o.kind = req.kind
		sent := time.Now()
		o.sendLag = sent.Sub(intended)
		o.rc, err = t.exchange(req, intended.Add(r.cfg.Timeout))
		o.latency = time.Since(intended)
		if errors.Is(err, pos.ErrClosed) {
			t.lost.Store(true)
		}
		o.errKind = classify(req.kind, o.rc, req.want, err)
		if o.errKind == "" && req.kind == KindPurchase && r.remembers {
			t.remember(req.orig)
		}
	}
	if err != nil && o.errKind == "" {
		o.errKind = classify(kind, "", "", err)
	}
	r.progress.done(o.errKind != "")
	if intended.Before(r.measureFrom) {
		return
	}
	// A request that got no answer for a reason other than waiting (the
	// connection was gone) has no latency to record.
	o.noLatency = o.rc == "" && o.errKind != errTimeout
	t.stats.record(o)
}

// exchange sends req on t and returns the answer's DE39.
func (t *terminal) exchange(req request, deadline time.Time) (string, error) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	return t.client.Exchange(ctx, req.stan, req.payload, t.key)
}

// preflightTimeout bounds the wait for the switch to answer every card as
// its wallet says (issuer links still signing on answer 91 meanwhile), and
// preflightAttemptsMax the taps of one card.
const (
	preflightTimeout     = 20 * time.Second
	preflightAttemptsMax = 200
)

// preflight taps each card the mix uses once, retrying until the answer is
// the card's outcome or preflightTimeout passes: a run against a switch
// that is not ready, or a wallet that does not match it, fails here with a
// clear message instead of as a run full of errors.
func preflight(ctx context.Context, target Target, p *plan, mix Mix, id string) error {
	c, err := pos.Dial(target.Addr, dialTimeout, target.Keys)
	if err != nil {
		return fmt.Errorf("no connection to the switch at %s: %w", target.Addr, err)
	}
	defer c.Close()
	t := newTerminal(id, c, target.Keys, int(time.Now().UnixMicro()%stanMax), newStats())
	var kinds []Kind
	for _, k := range []Kind{KindPurchase, KindRefund, KindTopUp} {
		if mix.Has(k) {
			kinds = append(kinds, k)
		}
	}
	if mix.Has(KindDecline) {
		for range p.declines {
			kinds = append(kinds, KindDecline)
		}
	}
	deadline := time.Now().Add(preflightTimeout)
	for _, k := range kinds {
		if err := preflightOne(ctx, t, p, k, deadline); err != nil {
			return err
		}
	}
	return nil
}

func preflightOne(ctx context.Context, t *terminal, p *plan, k Kind, deadline time.Time) error {
	for attempt := 0; ; attempt++ {
		req, err := t.build(p, k)
		if err != nil {
			return fmt.Errorf("pre-flight: %v", err)
		}
		rc, err := t.exchange(req, time.Now().Add(2*time.Second))
		if err == nil && rc == req.want {
			return nil
		}
		what := classify(req.kind, rc, req.want, err)
		// Issuer links still signing on answer 91 (or time out): wait for
		// them. Any other answer is the switch's word on this card.
		transient := rc == iso8583.RCIssuerUnavailable || rc == iso8583.RCSystemError ||
			errors.Is(err, context.DeadlineExceeded)
		switch {
		case !transient:
			return fmt.Errorf("pre-flight: %s (is the wallet the dev wallet of this switch?)", what)
		case time.Now().After(deadline) || attempt >= preflightAttemptsMax:
			return fmt.Errorf("pre-flight: %s, still after %v (are the switch's issuer links up?)", what, preflightTimeout)
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
		if k == KindDecline {
			p.declineSeq.Add(^uint64(0)) // the same card again
		}
	}
}
