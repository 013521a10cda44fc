package load

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
)

// Report is a run's figures as the summary, the JSON file and the HTML
// report give them. Latencies are in microseconds.
type Report struct {
	Mode        Mode    `json:"mode"`
	Rate        int     `json:"rate"`        // open loop; 0 in closed loop
	Concurrency int     `json:"concurrency"` // closed loop; 0 in open loop
	Connections int     `json:"connections"`
	DurationS   float64 `json:"duration_s"` // measured time actually run
	WarmupS     float64 `json:"warmup_s"`
	TimeoutS    float64 `json:"timeout_s"`
	Mix         string  `json:"mix"`
	Amount      string  `json:"amount"`
	Switch      string  `json:"switch"`
	Issuers     string  `json:"issuers"` // where the simulated issuers ran
	Started     string  `json:"started"`
	Interrupted bool    `json:"interrupted"`

	Requests int64   `json:"requests"` // sent (or due) in the measured time
	Answered int64   `json:"answered"`
	TPS      float64 `json:"tps"` // answers per second of measured time

	P50US    int64   `json:"p50_us"`
	P90US    int64   `json:"p90_us"`
	P99US    int64   `json:"p99_us"`
	P999US   int64   `json:"p999_us"`
	MaxUS    int64   `json:"max_us"`
	MinUS    int64   `json:"min_us"`
	MeanUS   float64 `json:"mean_us"`
	LatencyN int64   `json:"latency_samples"`
	// Open loop: how late the harness sent, actual minus intended time.
	SendLagP99US int64 `json:"send_lag_p99_us"`
	SendLagMaxUS int64 `json:"send_lag_max_us"`

	Errors          int64              `json:"errors"`
	ErrorsByKind    map[string]int64   `json:"errors_by_kind"`
	Codes           map[string]int64   `json:"codes"`
	Kinds           map[Kind]KindCount `json:"kinds"`
	ConnectionsLost int                `json:"connections_lost"`

	// CPU seconds over the measured time, null when not measurable (a
	// process whose PID bench does not know; issuers inside switchd).
	CPUSwitchS   *float64 `json:"cpu_switch_s"`
	CPUIssuersS  *float64 `json:"cpu_issuers_s"`
	CPUBenchS    float64  `json:"cpu_bench_s"`
	CPUUSPerAuth *float64 `json:"cpu_us_per_auth"` // switch CPU µs per answer
	// The children's CPU over their whole lives (start-up, warm-up, drain).
	CPUSwitchTotalS  *float64 `json:"cpu_switch_total_s,omitempty"`
	CPUIssuersTotalS *float64 `json:"cpu_issuers_total_s,omitempty"`
	CPUNote          string   `json:"cpu_note"`

	Machine         Machine      `json:"machine"`
	PercentileTable []ChartPoint `json:"percentile_table"` // the usual percentiles the run reached
	Percentiles     []ChartPoint `json:"percentiles"`      // the chart's points

	// Baseline is the run of the same load through a plain relay to the
	// issuer (-baseline relay), made just before this one; its "switch"
	// figures are the relay's.
	Baseline *Report `json:"baseline,omitempty"`
	// Gate is the offline gate taps played after the run (the mix's gate
	// weight); none of them reached the switch or its figures above.
	Gate *GateReport `json:"gate,omitempty"`
	// Loads is the purse loads a phone made through the token API after
	// the run (the mix's load weight); none of them is in the figures
	// above, but the switch's whole-life CPU includes them.
	Loads *LoadReport `json:"loads,omitempty"`
}

// Machine is where the run ran.
type Machine struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
}

// NewReport computes the figures of res.
func NewReport(res *Result) Report {
	cfg, st := res.Config, res.stats
	r := Report{
		Mode: cfg.Mode, Connections: res.Connections,
		DurationS: res.Measured.Seconds(), WarmupS: cfg.Warmup.Seconds(), TimeoutS: cfg.Timeout.Seconds(),
		Mix: cfg.Mix.String(), Amount: cfg.Amount.String(), Switch: res.Target, Issuers: res.Issuers,
		Started: res.Start.UTC().Format(time.RFC3339), Interrupted: res.Interrupted,
		Answered: st.answered, ErrorsByKind: st.errors, Codes: st.codes, Kinds: map[Kind]KindCount{},
		ConnectionsLost: res.Lost, CPUBenchS: res.CPU.Bench.Seconds(),
		Machine: Machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
			GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH},
	}
	if cfg.Mode == ModeOpen {
		r.Rate = cfg.Rate
	} else {
		r.Concurrency = cfg.Concurrency
	}
	for k, v := range st.kinds {
		r.Kinds[k] = *v
		r.Requests += v.Sent
		r.Errors += v.Errors
	}
	if res.Measured > 0 {
		r.TPS = float64(st.answered) / res.Measured.Seconds()
	}
	h := st.latency
	r.P50US, r.P90US, r.P99US = h.ValueAtPercentile(50), h.ValueAtPercentile(90), h.ValueAtPercentile(99)
	r.P999US, r.MaxUS, r.MinUS, r.MeanUS = h.ValueAtPercentile(99.9), h.Max(), h.Min(), h.Mean()
	r.LatencyN = h.TotalCount()
	r.SendLagP99US, r.SendLagMaxUS = st.sendLag.ValueAtPercentile(99), st.sendLag.Max()
	r.Percentiles = percentilePoints(h)
	r.PercentileTable = percentileTable(h)
	if res.CPU.SwitchOK {
		r.CPUSwitchS = seconds(res.CPU.Switch)
		if st.answered > 0 {
			us := float64(res.CPU.Switch.Microseconds()) / float64(st.answered)
			r.CPUUSPerAuth = &us
		}
	}
	if res.CPU.IssuersOK {
		r.CPUIssuersS = seconds(res.CPU.Issuers)
	}
	r.CPUNote = "CPU over the measured time; per authorization = switch CPU / answers (declines included). " +
		"Simulated issuers: " + res.Issuers + "."
	return r
}

// seconds is d in seconds, for the JSON's nullable figures.
func seconds(d time.Duration) *float64 {
	s := d.Seconds()
	return &s
}

// WriteJSON writes the report, indented, atomically (temporary file, then
// rename).
func (r Report) WriteJSON(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(data, '\n'))
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Summary is the human report printed at the end of a run.
func (r Report) Summary() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("tapswitch bench: %s\n", r.modeLine())
	w("switch       %s\n", r.Switch)
	w("issuers      %s\n", r.Issuers)
	w("mix          %s; amount %s (declines %s)\n", r.Mix, r.Amount, declineAmount)
	if r.Interrupted {
		w("INTERRUPTED  figures cover the %.1fs measured before the signal\n", r.DurationS)
	}
	w("requests     %d sent, %d answered in %.1fs measured\n", r.Requests, r.Answered, r.DurationS)
	w("throughput   %.0f TPS\n", r.TPS)
	from := "send"
	if r.Mode == ModeOpen {
		from = "intended send time (coordinated omission corrected)"
	}
	w("latency      p50 %s  p90 %s  p99 %s  p99.9 %s  max %s   (from %s)\n",
		fmtUS(r.P50US), fmtUS(r.P90US), fmtUS(r.P99US), fmtUS(r.P999US), fmtUS(r.MaxUS), from)
	if r.Mode == ModeOpen {
		w("send lag     p99 %s  max %s   (harness sending late; large values blame the harness, not the switch)\n",
			fmtUS(r.SendLagP99US), fmtUS(r.SendLagMaxUS))
	}
	w("codes        %s\n", r.codesLine())
	w("by kind      %s\n", r.kindsLine())
	w("errors       %d%s\n", r.Errors, r.errorsLines())
	if r.ConnectionsLost > 0 {
		w("connections  %d of %d closed by the switch during the run\n", r.ConnectionsLost, r.Connections)
	}
	w("cpu          %s\n", r.cpuLine())
	if r.Baseline != nil {
		w("%s", r.baselineLines())
	}
	if g := r.Gate; g != nil {
		w("gate taps    %d offline after the run, not sent to the switch: %d debits (%d inter-city) %s, %d Beijing tap-ins; %d tap files, %d cleared by ingestion; errors %d; %.1fs\n",
			g.Taps, g.Debits, g.InterCity, iso8583.Amount(g.AmountFen), g.Entries, g.TapFiles, g.Cleared, len(g.Errors), g.DurationS)
		for _, e := range g.Errors[:min(len(g.Errors), 5)] {
			w("               %s\n", e)
		}
		if g.Dir != "" {
			w("  files      %s\n", g.Dir)
		}
	}
	if l := r.Loads; l != nil {
		w("%s", l.summaryLines())
	}
	return b.String()
}

// baselineLines sets the run beside its relay baseline: the relay's own
// figures, then the switch's as shares and differences of them.
func (r Report) baselineLines() string {
	bl := r.Baseline
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("baseline     %s\n", bl.Switch)
	relayCPU := "not measured"
	if bl.CPUUSPerAuth != nil {
		relayCPU = fmt.Sprintf("%.1f µs per request", *bl.CPUUSPerAuth)
	}
	w("  relay      %.0f TPS; p50 %s  p99 %s  p99.9 %s; errors %d; relay CPU %s\n",
		bl.TPS, fmtUS(bl.P50US), fmtUS(bl.P99US), fmtUS(bl.P999US), bl.Errors, relayCPU)
	if c := r.Compare(); c != nil {
		w("  switch     %.0f %% of the relay's TPS; p50 %+.0f µs, p99 %+.0f µs over the relay's",
			c.TPSPercent, c.P50DeltaUS, c.P99DeltaUS)
		if c.CPURatio > 0 {
			w("; CPU per authorization %.1f× the relay's per request", c.CPURatio)
		}
		w("\n")
	}
	return b.String()
}

// Comparison is the switch's run set against its relay baseline.
type Comparison struct {
	TPSPercent float64 // the switch's TPS as a percentage of the relay's
	P50DeltaUS float64 // switch p50 minus relay p50
	P99DeltaUS float64
	CPURatio   float64 // switch CPU per authorization / relay CPU per request; 0: not measured
}

// Compare is nil without a baseline.
func (r Report) Compare() *Comparison {
	bl := r.Baseline
	if bl == nil || bl.TPS <= 0 {
		return nil
	}
	c := &Comparison{TPSPercent: 100 * r.TPS / bl.TPS,
		P50DeltaUS: float64(r.P50US - bl.P50US), P99DeltaUS: float64(r.P99US - bl.P99US)}
	if r.CPUUSPerAuth != nil && bl.CPUUSPerAuth != nil && *bl.CPUUSPerAuth > 0 {
		c.CPURatio = *r.CPUUSPerAuth / *bl.CPUUSPerAuth
	}
	return c
}

func (r Report) modeLine() string {
	if r.Mode == ModeOpen {
		return fmt.Sprintf("open loop at %d/s over %d connections, %v warm-up", r.Rate, r.Connections, r.warmup())
	}
	return fmt.Sprintf("closed loop, %d in flight over %d connections, %v warm-up",
		r.Concurrency, r.Connections, r.warmup())
}

func (r Report) warmup() time.Duration {
	return time.Duration(r.WarmupS * float64(time.Second)).Round(time.Millisecond)
}

func (r Report) codesLine() string {
	if len(r.Codes) == 0 {
		return "none"
	}
	var parts []string
	for _, rc := range sortedKeys(r.Codes) {
		parts = append(parts, fmt.Sprintf("%s %s %d", rc, iso8583.ResponseText(rc), r.Codes[rc]))
	}
	return strings.Join(parts, " | ")
}

func (r Report) kindsLine() string {
	var parts []string
	for _, k := range kindOrder {
		if kc, ok := r.Kinds[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %d (%d ok)", k, kc.Sent, kc.OK))
		}
	}
	return strings.Join(parts, " | ")
}

func (r Report) errorsLines() string {
	var b strings.Builder
	for _, k := range sortedKeys(r.ErrorsByKind) {
		fmt.Fprintf(&b, "\n               %d  %s", r.ErrorsByKind[k], k)
	}
	return b.String()
}

func (r Report) cpuLine() string {
	var b strings.Builder
	fig := func(name string, v *float64, extra string) {
		if v == nil {
			fmt.Fprintf(&b, "%s not measured%s; ", name, extra)
			return
		}
		fmt.Fprintf(&b, "%s %.2fs (%.2f cores%s); ", name, *v, r.cores(*v), extra)
	}
	perAuth := ""
	if r.CPUUSPerAuth != nil {
		perAuth = fmt.Sprintf(", %.1f µs per authorization", *r.CPUUSPerAuth)
	}
	fig("switchd", r.CPUSwitchS, perAuth)
	switch {
	case r.CPUIssuersS != nil:
		fig("issuersim", r.CPUIssuersS, "")
	case strings.HasPrefix(r.Issuers, "inside"):
		b.WriteString("issuers inside switchd; ")
	default:
		fig("issuers", nil, "")
	}
	bench := r.CPUBenchS
	fig("bench", &bench, "")
	s := strings.TrimSuffix(b.String(), "; ")
	if r.CPUSwitchTotalS != nil {
		s += fmt.Sprintf("\n             whole lives (start-up, warm-up, drain): switchd %.2fs", *r.CPUSwitchTotalS)
		if r.CPUIssuersTotalS != nil {
			s += fmt.Sprintf(", issuersim %.2fs", *r.CPUIssuersTotalS)
		}
	}
	return s
}

func (r Report) cores(s float64) float64 {
	if r.DurationS <= 0 {
		return 0
	}
	return s / r.DurationS
}

// fmtUS prints a latency in µs below a millisecond, in ms below a
// second, else in seconds.
func fmtUS(us int64) string {
	switch {
	case us < 1000:
		return fmt.Sprintf("%dµs", us)
	case us < 1_000_000:
		return fmt.Sprintf("%.2fms", float64(us)/1000)
	}
	return fmt.Sprintf("%.3fs", float64(us)/1e6)
}

func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
