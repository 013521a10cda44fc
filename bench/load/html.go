package load

import (
	"bytes"
	"fmt"
	"html/template"
	"strings"

	"github.com/tapswitch/tapswitch/iso8583"
)

// The HTML report is one file with no scripts and nothing fetched: the
// chart is an inline SVG drawn by percentileSVG, the styles are inline.
var htmlReport = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>tapswitch bench {{.R.Started}}</title>
<style>
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1000px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
table { border-collapse: collapse; margin: 8px 0; }
td, th { border: 1px solid #ccc; padding: 4px 10px; text-align: left; font-size: 14px; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.note { color: #555; font-size: 13px; }
.bad { color: #b00; font-weight: bold; }
</style></head><body>
<h1>tapswitch bench: {{.Mode}}</h1>
<p class="note">Started {{.R.Started}} on {{.R.Machine.CPUs}} CPUs ({{.R.Machine.OS}}, {{.R.Machine.GoVersion}}).
Switch: {{.R.Switch}}. Issuers: {{.R.Issuers}}.{{if .R.Interrupted}} <span class="bad">Interrupted: figures cover the time measured before the signal.</span>{{end}}</p>

<h2>Latency by percentile</h2>
{{.SVG}}
<p class="note">Across: percentile on a log scale of 1/(1&minus;p), as HdrHistogram plots it; the line ends at the maximum.
{{.R.LatencyN}} latencies recorded (answers and time-outs).</p>

<h2>Summary</h2>
<table>
<tr><th>throughput</th><td class="n">{{printf "%.0f" .R.TPS}} TPS</td></tr>
<tr><th>requests (measured)</th><td class="n">{{.R.Requests}} sent, {{.R.Answered}} answered in {{printf "%.1f" .R.DurationS}} s</td></tr>
<tr><th>p50</th><td class="n">{{.P50}}</td></tr>
<tr><th>p90</th><td class="n">{{.P90}}</td></tr>
<tr><th>p99</th><td class="n">{{.P99}}</td></tr>
<tr><th>p99.9</th><td class="n">{{.P999}}</td></tr>
<tr><th>max</th><td class="n">{{.Max}}</td></tr>
<tr><th>errors</th><td class="n{{if .R.Errors}} bad{{end}}">{{.R.Errors}}</td></tr>
<tr><th>switch CPU</th><td class="n">{{.CPUSwitch}}</td></tr>
<tr><th>issuers CPU</th><td class="n">{{.CPUIssuers}}</td></tr>
<tr><th>switch CPU per authorization</th><td class="n">{{.CPUPerAuth}}</td></tr>
<tr><th>bench CPU</th><td class="n">{{printf "%.2f" .R.CPUBenchS}} s</td></tr>
<tr><th>mix</th><td>{{.R.Mix}}, amount {{.R.Amount}}</td></tr>
{{with .R.Gate}}<tr><th>gate taps (offline, not sent to the switch)</th><td class="n{{if .Errors}} bad{{end}}">{{.Taps}}: {{.Debits}} debits, {{.Entries}} tap-ins, {{.Cleared}} cleared, {{len .Errors}} errors</td></tr>{{end}}
{{with .R.Loads}}<tr><th>purse loads (token API, after the run)</th><td class="n{{if .ErrorsN}} bad{{end}}">{{.Loads}}: {{.StatesLine}}; pay p50 {{.PayP50}} p99 {{.PayP99}}; purses {{.PurseAmount}}, switch loaded {{.LoadedAmount}}; {{.ErrorsN}} errors</td></tr>{{end}}
</table>
<p class="note">Latency is measured {{.From}}. {{.R.CPUNote}}</p>

{{if .R.Baseline}}<h2>Against one hop: the relay baseline</h2>
<table><tr><th>run</th><th>TPS</th><th>p50</th><th>p99</th><th>p99.9</th><th>errors</th><th>CPU of the middle process per request</th></tr>
{{range .Rows}}<tr><td>{{.Name}}</td><td class="n">{{.TPS}}</td><td class="n">{{.P50}}</td><td class="n">{{.P99}}</td><td class="n">{{.P999}}</td><td class="n">{{.Errors}}</td><td class="n">{{.CPU}}</td></tr>
{{end}}</table>
<p class="note">The baseline ran the same load, purchases only, through a plain TCP relay (cmd/relay) to the issuer, just before the switch's run: {{.R.Baseline.Switch}}.{{with .Cmp}} The switch reached {{printf "%.0f" .TPSPercent}} % of the relay's throughput.{{end}}</p>
{{end}}
<h2>Response codes</h2>
<table><tr><th>DE39</th><th>meaning</th><th>count</th></tr>
{{range .Codes}}<tr><td>{{.RC}}</td><td>{{.Text}}</td><td class="n">{{.Count}}</td></tr>
{{end}}</table>

<h2>By kind</h2>
<table><tr><th>kind</th><th>sent</th><th>as expected</th><th>errors</th></tr>
{{range .Kinds}}<tr><td>{{.Kind}}</td><td class="n">{{.Sent}}</td><td class="n">{{.OK}}</td><td class="n">{{.Errors}}</td></tr>
{{end}}</table>

<h2>Errors</h2>
{{if .Errors}}<table><tr><th>what</th><th>count</th></tr>
{{range .Errors}}<tr><td>{{.What}}</td><td class="n">{{.Count}}</td></tr>
{{end}}</table>{{else}}<p>None: every answer carried the code its card should get.</p>{{end}}

<h2>Percentiles</h2>
<table><tr><th>percentile</th><th>latency</th></tr>
{{range .Table}}<tr><td class="n">{{.P}}</td><td class="n">{{.L}}</td></tr>
{{end}}</table>
</body></html>
`))

type htmlRow struct {
	RC, Text, What, P, L string
	Kind                 Kind
	Count                int64
	KindCount
}

// baselineRow is one line of the baseline table.
type baselineRow struct {
	Name, TPS, P50, P99, P999, CPU string
	Errors                         int64
}

func newBaselineRow(name string, r Report) baselineRow {
	row := baselineRow{Name: name, TPS: fmt.Sprintf("%.0f", r.TPS), P50: fmtUS(r.P50US), P99: fmtUS(r.P99US),
		P999: fmtUS(r.P999US), CPU: "not measured", Errors: r.Errors}
	if r.CPUUSPerAuth != nil {
		row.CPU = fmt.Sprintf("%.1f µs", *r.CPUUSPerAuth)
	}
	return row
}

// HTML renders the self-contained HTML report.
func (r Report) HTML() ([]byte, error) {
	data := map[string]any{
		"R": r, "Mode": r.modeLine(),
		"P50": fmtUS(r.P50US), "P90": fmtUS(r.P90US), "P99": fmtUS(r.P99US), "P999": fmtUS(r.P999US),
		"Max": fmtUS(r.MaxUS), "CPUSwitch": "not measured", "CPUPerAuth": "not measured",
		"CPUIssuers": "not measured",
		"From":       "from each request's send",
		// percentileSVG escapes every text it draws.
		"SVG": template.HTML(percentileSVG(r.Percentiles, "latency (ms) by percentile, "+fmt.Sprintf("%d latencies", r.LatencyN))),
	}
	if r.Mode == ModeOpen {
		data["From"] = "from each request's intended send time (coordinated omission corrected)"
	}
	if r.CPUSwitchS != nil {
		data["CPUSwitch"] = fmt.Sprintf("%.2f s", *r.CPUSwitchS)
	}
	if r.CPUIssuersS != nil {
		data["CPUIssuers"] = fmt.Sprintf("%.2f s", *r.CPUIssuersS)
	} else if strings.HasPrefix(r.Issuers, "inside") {
		data["CPUIssuers"] = "inside switchd"
	}
	if r.CPUUSPerAuth != nil {
		data["CPUPerAuth"] = fmt.Sprintf("%.1f µs", *r.CPUUSPerAuth)
	}
	var codes, errs, kinds, table []htmlRow
	for _, rc := range sortedKeys(r.Codes) {
		codes = append(codes, htmlRow{RC: rc, Text: iso8583.ResponseText(rc), Count: r.Codes[rc]})
	}
	for _, k := range sortedKeys(r.ErrorsByKind) {
		errs = append(errs, htmlRow{What: k, Count: r.ErrorsByKind[k]})
	}
	for _, k := range kindOrder {
		if kc, ok := r.Kinds[k]; ok {
			kinds = append(kinds, htmlRow{Kind: k, KindCount: kc})
		}
	}
	for _, p := range r.PercentileTable {
		table = append(table, htmlRow{P: trimFloat(p.Percentile), L: fmtUS(p.LatencyUS)})
	}
	table = append(table, htmlRow{P: "max", L: fmtUS(r.MaxUS)})
	data["Codes"], data["Errors"], data["Kinds"], data["Table"] = codes, errs, kinds, table
	if r.Baseline != nil {
		data["Rows"] = []baselineRow{newBaselineRow("relay (one hop)", *r.Baseline), newBaselineRow("switch", r)}
		data["Cmp"] = r.Compare()
	}
	var b bytes.Buffer
	if err := htmlReport.Execute(&b, data); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteHTML writes the HTML report atomically.
func (r Report) WriteHTML(path string) error {
	page, err := r.HTML()
	if err != nil {
		return err
	}
	return writeFileAtomic(path, page)
}
