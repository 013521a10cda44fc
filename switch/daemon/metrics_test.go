package daemon

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/bench/pos"
	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/node"
)

// dashboardPath is the Grafana dashboard the operators import.
const dashboardPath = "../../configs/grafana-tapswitch.json"

// startWorldLimited is startWorld with a terminal connection maximum.
func startWorldLimited(t *testing.T, connectionsMax int) (*DevWorld, wallet.File) {
	return startWorldWith(t, func(c *node.Config) { c.Terminals.ConnectionsMax = connectionsMax })
}

// TestMetricsOverHTTP taps the demo cards and a malformed request, has a
// second terminal refused at the connection maximum, and reads the
// outcome from /metrics on the admin listener.
func TestMetricsOverHTTP(t *testing.T) {
	d, w := startWorldLimited(t, 1)
	c, err := pos.Dial(d.Node.TerminalAddr(), time.Second, d.AcquirerKeys)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, label := range []string{"approve", "insufficient", "unknown", "expired", "suspended", "transit"} {
		card, err := w.Card(label)
		if err != nil {
			t.Fatal(err)
		}
		if rc, _, _ := tap(t, c, card, "TERM0101", 1234); rc != card.Outcome {
			t.Fatalf("%s: rc %s, want %s", label, rc, card.Outcome)
		}
	}
	approve, _ := w.Card("approve")
	bad := pos.Tap{Terminal: pos.DemoTerminal, ProcessingCode: iso8583.ProcPurchase, Token: approve.Token,
		TokenExpiry: approve.TokenExpiry, Amount: 100, STAN: nextTestSTAN(), Time: time.Now()}.Message()
	bad.UnsetField(iso8583.FieldMerchantID)
	if resp, err := c.Do(context.Background(), bad); err != nil || iso8583.FieldValue(resp, iso8583.FieldResponseCode) != "30" {
		t.Fatalf("request without DE42: %v", err)
	}
	second, err := net.Dial("tcp", d.Node.TerminalAddr())
	if err != nil {
		t.Fatal(err)
	}
	assertClosed(t, second)

	admin := "http://" + d.Node.AdminAddr()
	// The last answer can reach the terminal a moment before its request
	// leaves the in-flight gauge.
	s := scrapeUntil(t, admin, func(s scrape) bool {
		return s.value("tapswitch_requests_in_flight", nil) == 0
	})

	tx := func(rc, issuer string) map[string]string {
		return map[string]string{"mti": "0200", "rc": rc, "issuer": issuer}
	}
	s.want(t, "tapswitch_transactions_total", tx("00", "ICBC"), 1)
	s.want(t, "tapswitch_transactions_total", tx("51", "CMB"), 1)
	s.want(t, "tapswitch_transactions_total", tx("00", "SPTC"), 1)
	s.want(t, "tapswitch_transactions_total", tx("14", "none"), 1)
	s.want(t, "tapswitch_transactions_total", tx("54", "none"), 1)
	s.want(t, "tapswitch_transactions_total", tx("62", "none"), 1)
	s.want(t, "tapswitch_transactions_total", tx("30", "none"), 1)
	s.want(t, "tapswitch_switch_duration_seconds_count", nil, 7)
	for _, issuer := range []string{"ICBC", "CMB", "SPTC"} {
		s.want(t, "tapswitch_issuer_duration_seconds_count", map[string]string{"issuer": issuer}, 1)
	}
	s.want(t, "tapswitch_issuer_duration_seconds_count", map[string]string{"issuer": "BOC"}, 0)
	s.want(t, "tapswitch_journal_commit_duration_seconds_count", nil, 6) // the format error is not journaled
	s.want(t, "tapswitch_vault_lookups_total", map[string]string{"result": "found"}, 5)
	s.want(t, "tapswitch_vault_lookups_total", map[string]string{"result": "not_found"}, 1)
	s.want(t, "tapswitch_vault_lookups_total", map[string]string{"result": "error"}, 0)
	s.want(t, "tapswitch_format_errors_total", map[string]string{"stage": "request"}, 1)
	s.want(t, "tapswitch_terminal_connections", nil, 1)
	s.want(t, "tapswitch_terminal_connections_refused_total", nil, 1)
	s.want(t, "tapswitch_requests_in_flight", nil, 0)
	for _, is := range d.Node.Issuers {
		s.want(t, "tapswitch_issuer_link_up", map[string]string{"issuer": is.ID}, 1)
		s.want(t, "tapswitch_issuer_link_in_flight", map[string]string{"issuer": is.ID}, 0)
	}
	if sum := s.value("tapswitch_switch_duration_seconds_sum", nil); sum <= 0 {
		t.Errorf("switch time sum %v", sum)
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := s.types[name]; !ok {
			t.Errorf("%s not exposed", name)
		}
	}
	for _, card := range w.Cards {
		numbers := []string{card.Token}
		if tok, err := d.Node.Vault.Get(card.Token); err == nil {
			numbers = append(numbers, tok.PAN.Clear())
		}
		for _, n := range numbers {
			if strings.Contains(s.body, n) {
				t.Errorf("/metrics holds the card number or token of %s", card.Label)
			}
		}
	}
	checkHealth(t, admin, len(d.Node.Issuers))
}

func checkHealth(t *testing.T, admin string, issuers int) {
	t.Helper()
	code, _, body := get(t, admin+"/healthz")
	if code != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz %d %q", code, body)
	}
	code, ctype, body := get(t, admin+"/readyz")
	var ready struct {
		Ready bool              `json:"ready"`
		Links map[string]string `json:"issuer_links"`
	}
	if err := json.Unmarshal([]byte(body), &ready); err != nil || code != http.StatusOK || ctype != "application/json" {
		t.Fatalf("/readyz %d %s %q: %v", code, ctype, body, err)
	}
	if !ready.Ready || len(ready.Links) != issuers {
		t.Errorf("/readyz %+v, want ready with %d links", ready, issuers)
	}
	for id, state := range ready.Links {
		if state != "up" {
			t.Errorf("/readyz: link %s %s", id, state)
		}
	}
}

// TestDashboardNamesExposedMetrics checks the Grafana dashboard against a
// running node: every query names metrics /metrics serves, and every
// tapswitch metric is on some panel.
func TestDashboardNamesExposedMetrics(t *testing.T) {
	doc, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(doc, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	checkDatasourceVariable(t, dash)
	var exprs []string
	collectQueries(dash, &exprs)
	if len(exprs) < 12 {
		t.Fatalf("dashboard has %d queries", len(exprs))
	}

	d, w := startWorld(t)
	c, err := pos.Dial(d.Node.TerminalAddr(), time.Second, d.AcquirerKeys)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	card, _ := w.Card("approve")
	tap(t, c, card, "TERM0102", 100)
	s := scrapeUntil(t, "http://"+d.Node.AdminAddr(), func(scrape) bool { return true })

	metricName := regexp.MustCompile(`\b(?:tapswitch|process|go)_[a-zA-Z0-9_]+`)
	used := map[string]bool{}
	for _, e := range exprs {
		names := metricName.FindAllString(e, -1)
		if len(names) == 0 {
			t.Errorf("query names no metric: %s", e)
		}
		for _, n := range names {
			family := s.family(n)
			if family == "" {
				t.Errorf("query names %s, which /metrics does not serve: %s", n, e)
			}
			used[family] = true
		}
	}
	for family := range s.types {
		if strings.HasPrefix(family, "tapswitch_") && !used[family] {
			t.Errorf("%s is on no dashboard panel", family)
		}
	}
}

func checkDatasourceVariable(t *testing.T, dash map[string]any) {
	t.Helper()
	templating, _ := dash["templating"].(map[string]any)
	list, _ := templating["list"].([]any)
	for _, v := range list {
		if v, _ := v.(map[string]any); v["type"] == "datasource" && v["query"] == "prometheus" && v["name"] == "datasource" {
			return
		}
	}
	t.Error("dashboard has no Prometheus datasource variable named datasource")
}

// collectQueries gathers every PromQL string: panel targets' expr and
// template variables' definition.
func collectQueries(v any, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && (k == "expr" || k == "definition") {
				*out = append(*out, s)
				continue
			}
			collectQueries(x, out)
		}
	case []any:
		for _, x := range v {
			collectQueries(x, out)
		}
	}
}

func get(t *testing.T, url string) (code int, contentType, body string) {
	t.Helper()
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// scrapeUntil GETs /metrics until ok holds or five seconds pass, and
// returns the last scrape.
func scrapeUntil(t *testing.T, admin string, ok func(scrape) bool) scrape {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, ctype, body := get(t, admin+"/metrics")
		if code != http.StatusOK || !strings.HasPrefix(ctype, "text/plain") {
			t.Fatalf("/metrics %d %s", code, ctype)
		}
		s := parseExposition(t, body)
		if ok(s) || time.Now().After(deadline) {
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scrape is one /metrics page in the Prometheus text format.
type scrape struct {
	body    string
	types   map[string]string // family name → counter, gauge, histogram, …
	samples []sample
}

type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// parseExposition reads the text format: "# TYPE family type" lines and
// "name{label="value",…} value" samples.
func parseExposition(t *testing.T, body string) scrape {
	t.Helper()
	s := scrape{body: body, types: map[string]string{}}
	for line := range strings.SplitSeq(body, "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			s.types[f[2]] = f[3]
		}
		if line == "" || line[0] == '#' {
			continue
		}
		sm, err := parseSample(line)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		s.samples = append(s.samples, sm)
	}
	return s
}

func parseSample(line string) (sample, error) {
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return sample{}, strconv.ErrSyntax
	}
	sm := sample{name: line[:i], labels: map[string]string{}}
	rest := line[i:]
	if rest[0] == '{' {
		rest = rest[1:]
		for rest[0] != '}' {
			eq := strings.IndexByte(rest, '=')
			if eq < 0 || len(rest) < eq+2 || rest[eq+1] != '"' {
				return sample{}, strconv.ErrSyntax
			}
			end := eq + 2
			for end < len(rest) && rest[end] != '"' {
				if rest[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(rest) {
				return sample{}, strconv.ErrSyntax
			}
			v, err := strconv.Unquote(rest[eq+1 : end+1])
			if err != nil {
				return sample{}, err
			}
			sm.labels[rest[:eq]] = v
			rest = strings.TrimPrefix(rest[end+1:], ",")
			if rest == "" {
				return sample{}, strconv.ErrSyntax
			}
		}
		rest = rest[1:]
	}
	f := strings.Fields(rest)
	if len(f) == 0 {
		return sample{}, strconv.ErrSyntax
	}
	v, err := strconv.ParseFloat(f[0], 64)
	sm.value = v
	return sm, err
}

// find returns the value of the one sample named name whose labels include
// want.
func (s scrape) find(name string, want map[string]string) (float64, int) {
	var v float64
	n := 0
samples:
	for _, sm := range s.samples {
		if sm.name != name {
			continue
		}
		for k, x := range want {
			if sm.labels[k] != x {
				continue samples
			}
		}
		v, n = sm.value, n+1
	}
	return v, n
}

func (s scrape) value(name string, want map[string]string) float64 {
	v, _ := s.find(name, want)
	return v
}

func (s scrape) want(t *testing.T, name string, labels map[string]string, want float64) {
	t.Helper()
	got, n := s.find(name, labels)
	switch {
	case n == 0:
		t.Errorf("%s%v not served", name, labels)
	case n > 1:
		t.Errorf("%s%v matches %d samples", name, labels, n)
	case got != want:
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

// family maps a sample name to the family that serves it: itself, or a
// histogram's _bucket, _sum and _count series.
func (s scrape) family(name string) string {
	if _, ok := s.types[name]; ok {
		return name
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && s.types[base] == "histogram" {
			return base
		}
	}
	return ""
}
