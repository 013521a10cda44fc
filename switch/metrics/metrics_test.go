package metrics

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// value finds the sample of family name whose labels include want, and
// returns its counter, gauge or histogram-count value.
func value(t *testing.T, reg prometheus.Gatherer, name string, want map[string]string) (float64, bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue metrics
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func mustValue(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string, want float64) {
	t.Helper()
	got, ok := value(t, reg, name, labels)
	if !ok {
		t.Fatalf("%s%v not exposed", name, labels)
	}
	if got != want {
		t.Fatalf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func TestNilIsNoMetrics(t *testing.T) {
	var m *Set
	m.Authorization("0200", "00", "ICBC", time.Millisecond)
	m.IssuerTime("ICBC", time.Millisecond)
	m.JournalCommit(time.Millisecond)
	m.VaultLookup(VaultFound)
	m.FormatError(StageFrame)
	m.RequestStarted()
	m.RequestFinished()
	m.ConnectionOpened()
	m.ConnectionClosed()
	m.ConnectionRefused()
	l := m.Link("ICBC")
	l.SetUp(true)
	l.ExchangeStarted()
	l.ExchangeFinished()
	l.LateResponse()
	if m.Registry() != nil {
		t.Fatal("nil set has a registry")
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 404 {
		t.Fatalf("nil set serves /metrics with %d", rec.Code)
	}
}

// TestResolvedAtStart: a fresh node exposes every per-issuer and fixed
// series at 0 before any traffic, so dashboards and alerts see "down" and
// "none yet" instead of "no data".
func TestResolvedAtStart(t *testing.T) {
	m := New([]string{"ICBC", "CMB"})
	reg := m.Registry()
	for _, issuer := range []string{"ICBC", "CMB"} {
		mustValue(t, reg, "tapswitch_issuer_link_up", map[string]string{"issuer": issuer}, 0)
		mustValue(t, reg, "tapswitch_issuer_link_in_flight", map[string]string{"issuer": issuer}, 0)
		mustValue(t, reg, "tapswitch_issuer_late_responses_total", map[string]string{"issuer": issuer}, 0)
		mustValue(t, reg, "tapswitch_issuer_duration_seconds", map[string]string{"issuer": issuer}, 0)
	}
	for _, r := range vaultResultNames {
		mustValue(t, reg, "tapswitch_vault_lookups_total", map[string]string{"result": r}, 0)
	}
	for _, s := range stageNames {
		mustValue(t, reg, "tapswitch_format_errors_total", map[string]string{"stage": s}, 0)
	}
	for _, name := range []string{"tapswitch_switch_duration_seconds", "tapswitch_journal_commit_duration_seconds",
		"tapswitch_requests_in_flight", "tapswitch_terminal_connections", "tapswitch_terminal_connections_refused_total"} {
		mustValue(t, reg, name, nil, 0)
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := value(t, reg, name, nil); !ok {
			t.Errorf("%s not exposed", name)
		}
	}
}

func TestRecords(t *testing.T) {
	m := New([]string{"ICBC"})
	reg := m.Registry()
	m.Authorization("0200", "00", "ICBC", 300*time.Microsecond)
	m.Authorization("0200", "00", "ICBC", 400*time.Microsecond)
	m.Authorization("0100", "14", "", 100*time.Microsecond)
	mustValue(t, reg, "tapswitch_transactions_total", map[string]string{"mti": "0200", "rc": "00", "issuer": "ICBC"}, 2)
	mustValue(t, reg, "tapswitch_transactions_total", map[string]string{"mti": "0100", "rc": "14", "issuer": "none"}, 1)
	mustValue(t, reg, "tapswitch_switch_duration_seconds", nil, 3)

	m.IssuerTime("ICBC", time.Millisecond)
	m.IssuerTime("NOLINK", time.Millisecond) // a BIN-table issuer without a link
	mustValue(t, reg, "tapswitch_issuer_duration_seconds", map[string]string{"issuer": "ICBC"}, 1)
	mustValue(t, reg, "tapswitch_issuer_duration_seconds", map[string]string{"issuer": "NOLINK"}, 1)

	l := m.Link("ICBC")
	l.SetUp(true)
	l.ExchangeStarted()
	l.ExchangeStarted()
	l.ExchangeFinished()
	l.LateResponse()
	mustValue(t, reg, "tapswitch_issuer_link_up", map[string]string{"issuer": "ICBC"}, 1)
	mustValue(t, reg, "tapswitch_issuer_link_in_flight", map[string]string{"issuer": "ICBC"}, 1)
	mustValue(t, reg, "tapswitch_issuer_late_responses_total", map[string]string{"issuer": "ICBC"}, 1)
	l.SetUp(false)
	mustValue(t, reg, "tapswitch_issuer_link_up", map[string]string{"issuer": "ICBC"}, 0)
	if m.Link("UNKNOWN") != nil {
		t.Fatal("a link for an issuer New was not given")
	}

	m.VaultLookup(VaultNotFound)
	m.FormatError(StageMessage)
	m.ConnectionOpened()
	m.ConnectionOpened()
	m.ConnectionClosed()
	m.ConnectionRefused()
	m.RequestStarted()
	m.JournalCommit(2 * time.Millisecond)
	mustValue(t, reg, "tapswitch_vault_lookups_total", map[string]string{"result": "not_found"}, 1)
	mustValue(t, reg, "tapswitch_format_errors_total", map[string]string{"stage": "message"}, 1)
	mustValue(t, reg, "tapswitch_terminal_connections", nil, 1)
	mustValue(t, reg, "tapswitch_terminal_connections_refused_total", nil, 1)
	mustValue(t, reg, "tapswitch_requests_in_flight", nil, 1)
	mustValue(t, reg, "tapswitch_journal_commit_duration_seconds", nil, 1)
}

// TestTransactionCacheBound: with the cache full, a new child is still
// counted, resolved on every call instead of cached.
func TestTransactionCacheBound(t *testing.T) {
	m := New(nil)
	full := make(map[txKey]prometheus.Counter, transactionSeriesMax)
	for i := range transactionSeriesMax {
		full[txKey{mti: "0200", rc: "00", issuer: fmt.Sprintf("I%05d", i)}] = prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
	}
	m.tx.Store(&full)
	m.Authorization("0200", "05", "ICBC", 0)
	m.Authorization("0200", "05", "ICBC", 0)
	if n := len(*m.tx.Load()); n != transactionSeriesMax {
		t.Fatalf("cache holds %d children, want %d", n, transactionSeriesMax)
	}
	mustValue(t, m.Registry(), "tapswitch_transactions_total", map[string]string{"rc": "05", "issuer": "ICBC"}, 2)
}

// TestSetsDoNotCollide: two nodes in one process each have their own
// registry; neither touches the global default.
func TestSetsDoNotCollide(t *testing.T) {
	a, b := New([]string{"ICBC"}), New([]string{"ICBC"})
	a.Authorization("0200", "00", "ICBC", 0)
	mustValue(t, a.Registry(), "tapswitch_transactions_total", map[string]string{"rc": "00"}, 1)
	if _, ok := value(t, b.Registry(), "tapswitch_transactions_total", nil); ok {
		t.Fatal("b sees a's transaction")
	}
	if _, ok := value(t, prometheus.DefaultGatherer, "tapswitch_transactions_total", nil); ok {
		t.Fatal("the default registry holds tapswitch metrics")
	}
}

func TestHandlerServesText(t *testing.T) {
	m := New([]string{"ICBC"})
	m.Authorization("0200", "51", "ICBC", time.Millisecond)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `tapswitch_transactions_total{issuer="ICBC",mti="0200",rc="51"} 1`) {
		t.Fatalf("status %d body:\n%s", resp.StatusCode, body)
	}
}

// BenchmarkAuthorization is the per-transaction cost on the hot path: one
// cached counter child and one histogram observation.
func BenchmarkAuthorization(b *testing.B) {
	m := New([]string{"ICBC"})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Authorization("0200", "00", "ICBC", 300*time.Microsecond)
		}
	})
}

// BenchmarkWithLabelValues is the uncached alternative, for comparison.
func BenchmarkWithLabelValues(b *testing.B) {
	m := New([]string{"ICBC"})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.transactions.WithLabelValues("0200", "00", "ICBC").Inc()
			m.switchTime.Observe(300e-6)
		}
	})
}
