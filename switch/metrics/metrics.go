// Package metrics is a switch node's Prometheus metrics: one Set per node,
// on a registry of its own (never the global default, so tests and several
// nodes in one process do not collide), served by the admin listener at
// /metrics together with the Go runtime and process collectors.
//
// The components record into the Set they are handed in their Deps or
// Config; the names, types and labels are listed in docs/metrics.md.
//
// The hot path touches only resolved children. The per-issuer link gauges,
// late-response counters and issuer-time histograms are resolved for every
// issuer of the directory when the Set is made, so each series exists (at
// 0) from the start; the vault, format-error and connection counters have
// no free labels. The per-transaction counter resolves a child once per
// (MTI, response code, issuer) and keeps it in a copy-on-write map that
// readers load without a lock. That label set is bounded by the switch, not
// by the terminals: two MTIs, the contract's response codes and the issuers
// of the directory. No metric carries a card number or a token.
//
// Every method does nothing on a nil *Set or *Link, so a component built
// without metrics (a unit test) needs no special case.
package metrics

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const (
	namespace = "tapswitch"
	// issuerNone labels a transaction no issuer was asked about.
	issuerNone = "none"
	// transactionSeriesMax bounds the cached transaction children; past it
	// a child is still counted but resolved on every call. The switch's
	// own bound is 2 MTIs × ~20 codes × the issuers, far below.
	transactionSeriesMax = 4096
	// scrapesInflightMax and scrapeTimeout bound the /metrics handler.
	scrapesInflightMax = 4
	scrapeTimeout      = 10 * time.Second
)

// durationBuckets span a fast local step (50 µs) to past the issuer
// request time-out (2 s by default), in 1-2.5-5 steps.
var durationBuckets = []float64{
	50e-6, 100e-6, 250e-6, 500e-6,
	1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3,
	1, 2.5, 5,
}

// Stage says where a malformed input was caught.
type Stage int

const (
	// StageFrame: a bad frame header (zero or over the bound) or bytes with
	// no readable MTI; the connection is closed.
	StageFrame Stage = iota
	// StageMessage: a message that does not unpack; answered 30.
	StageMessage
	// StageRequest: an 0100/0200 that unpacks but breaks the request
	// contract (a mandatory field missing or blank); answered 30.
	StageRequest
	stageCount
)

var stageNames = [stageCount]string{"frame", "message", "request"}

// VaultResult is the outcome of one token look-up.
type VaultResult int

const (
	VaultFound VaultResult = iota
	VaultNotFound
	VaultError
	vaultResultCount
)

var vaultResultNames = [vaultResultCount]string{"found", "not_found", "error"}

// txKey is one child of the transaction counter.
type txKey struct{ mti, rc, issuer string }

// Set is one node's metrics.
type Set struct {
	reg     *prometheus.Registry
	handler http.Handler

	transactions *prometheus.CounterVec
	txWrite      sync.Mutex                                   // held to add a child to tx
	tx           atomic.Pointer[map[txKey]prometheus.Counter] // replaced, never mutated

	switchTime     prometheus.Histogram
	journalCommit  prometheus.Histogram
	issuerTime     *prometheus.HistogramVec
	inflight       prometheus.Gauge
	connections    prometheus.Gauge
	refused        prometheus.Counter
	topups         *prometheus.CounterVec
	noCounters     prometheus.Counter
	noClusterStore *prometheus.CounterVec
	formatErrors   [stageCount]prometheus.Counter
	vaultLookups   [vaultResultCount]prometheus.Counter

	links     map[string]*Link     // by issuer ID; built by New, read-only after
	listeners map[string]*Listener // by listener name (listeners.go); likewise
}

// Link is the metrics of one issuer link, resolved when the Set is made.
type Link struct {
	up        prometheus.Gauge
	inflight  prometheus.Gauge
	late      prometheus.Counter
	roundTrip prometheus.Observer
}

// New makes a Set on a new registry, with a Link for each issuer ID.
func New(issuerIDs []string) *Set {
	m := &Set{reg: prometheus.NewRegistry(), links: make(map[string]*Link, len(issuerIDs))}
	m.transactions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "transactions_total",
		Help: "Answers to terminal authorization and financial requests (0100, 0200), by request MTI, response code and issuer asked (none when the switch answered alone).",
	}, []string{"mti", "rc", "issuer"})
	m.tx.Store(&map[txKey]prometheus.Counter{})
	m.switchTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "switch_duration_seconds", Buckets: durationBuckets,
		Help: "Time one authorization spends inside the switch, from the unpacked request to the answer (issuer round trip and journal commit included).",
	})
	m.journalCommit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "journal_commit_duration_seconds", Buckets: durationBuckets,
		Help: "Time to make one authorization's journal entry durable (synchronous commit, shared fsync).",
	})
	m.issuerTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "issuer_duration_seconds", Buckets: durationBuckets,
		Help: "Issuer round trip of answered requests, from handing the request to the link to its answer; time-outs count as rc 91 in tapswitch_transactions_total.",
	}, []string{"issuer"})
	m.inflight = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "requests_in_flight",
		Help: "Terminal requests being processed now.",
	})
	m.connections = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "terminal_connections",
		Help: "Terminal connections open now.",
	})
	m.refused = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "terminal_connections_refused_total",
		Help: "Terminal connections closed on accept because the server was at its connection maximum.",
	})
	formatErrors := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "format_errors_total",
		Help: "Malformed terminal input, by stage: frame (connection closed), message (does not unpack, answered 30), request (breaks the request contract, answered 30).",
	}, []string{"stage"})
	for i, name := range stageNames {
		m.formatErrors[i] = formatErrors.WithLabelValues(name)
	}
	vaultLookups := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "vault_lookups_total",
		Help: "Token look-ups in the vault by result: found, not_found, error.",
	}, []string{"result"})
	for i, name := range vaultResultNames {
		m.vaultLookups[i] = vaultLookups.WithLabelValues(name)
	}
	linkUp := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "issuer_link_up",
		Help: "1 when at least one connection to the issuer is signed on, 0 when none is.",
	}, []string{"issuer"})
	linkInflight := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "issuer_link_in_flight",
		Help: "Requests waiting for the issuer's answer on its link.",
	}, []string{"issuer"})
	late := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "issuer_late_responses_total",
		Help: "Issuer responses with no waiting request: answers that came after their request timed out, or unknown STANs.",
	}, []string{"issuer"})
	for _, id := range issuerIDs {
		m.links[id] = &Link{
			up: linkUp.WithLabelValues(id), inflight: linkInflight.WithLabelValues(id),
			late: late.WithLabelValues(id), roundTrip: m.issuerTime.WithLabelValues(id),
		}
	}
	m.topups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "transit_topups_total",
		Help: "Transit top-ups that reached an end, by operator and end state: loaded (both legs stand), declined (the bank declined), undone (the bank leg reversed).",
	}, []string{"operator", "state"})
	m.noCounters = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "counters_unavailable_total",
		Help: "Taps answered 91 because the token counter store could not answer: a cluster node that cannot reach its NATS quorum (docs/cluster.md) refuses rather than approve on a window it cannot check.",
	})
	m.noClusterStore = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "cluster_store_unavailable_total",
		Help: "Taps answered 91 because a store the cluster's nodes share could not answer, by store: duplicates (the request's key could not be checked or claimed across the nodes) or stand_in (the token's stand-in usage could not be read or taken). A node that cannot reach its NATS quorum (docs/cluster.md) refuses rather than decide on its local state.",
	}, []string{"store"})
	for _, store := range []string{"duplicates", "stand_in"} {
		m.noClusterStore.WithLabelValues(store) // served as 0 until a tap is refused
	}
	m.reg.MustRegister(
		m.topups, m.noCounters, m.noClusterStore,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.transactions, m.switchTime, m.journalCommit, m.issuerTime, m.inflight,
		m.connections, m.refused, formatErrors, vaultLookups, linkUp, linkInflight, late,
	)
	m.listeners = newListeners(m.reg)
	m.handler = promhttp.InstrumentMetricHandler(m.reg, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry: m.reg, MaxRequestsInFlight: scrapesInflightMax, Timeout: scrapeTimeout,
	}))
	return m
}

// Registry is the Set's registry, for a Gatherer or a test.
func (m *Set) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// Handler serves the registry in the Prometheus exposition formats.
func (m *Set) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return m.handler
}

// Link is the resolved metrics of one issuer's link; nil (no metrics) for
// an issuer New was not given.
func (m *Set) Link(issuerID string) *Link {
	if m == nil {
		return nil
	}
	return m.links[issuerID]
}

// Authorization records one answered 0100/0200: its counter child and the
// time it spent in the switch. issuer "" is recorded as "none".
func (m *Set) Authorization(mti, rc, issuer string, took time.Duration) {
	if m == nil {
		return
	}
	if issuer == "" {
		issuer = issuerNone
	}
	m.transaction(txKey{mti: mti, rc: rc, issuer: issuer}).Inc()
	m.switchTime.Observe(took.Seconds())
}

// transaction returns the counter child for k, resolving it on first use.
func (m *Set) transaction(k txKey) prometheus.Counter {
	if c, ok := (*m.tx.Load())[k]; ok {
		return c
	}
	m.txWrite.Lock()
	defer m.txWrite.Unlock()
	old := *m.tx.Load()
	if c, ok := old[k]; ok {
		return c
	}
	c := m.transactions.WithLabelValues(k.mti, k.rc, k.issuer)
	if len(old) >= transactionSeriesMax {
		return c
	}
	next := make(map[txKey]prometheus.Counter, len(old)+1)
	for key, v := range old {
		next[key] = v
	}
	next[k] = c
	m.tx.Store(&next)
	return c
}

// IssuerTime records one answered issuer round trip.
func (m *Set) IssuerTime(issuerID string, took time.Duration) {
	if m == nil {
		return
	}
	if l := m.links[issuerID]; l != nil {
		l.roundTrip.Observe(took.Seconds())
		return
	}
	// An issuer of the BIN table without a link: bounded by the table.
	m.issuerTime.WithLabelValues(issuerID).Observe(took.Seconds())
}

// JournalCommit records the time one journal append took to become durable.
func (m *Set) JournalCommit(took time.Duration) {
	if m == nil {
		return
	}
	m.journalCommit.Observe(took.Seconds())
}

// VaultLookup counts one token look-up.
func (m *Set) VaultLookup(r VaultResult) {
	if m == nil {
		return
	}
	m.vaultLookups[r].Inc()
}

// FormatError counts one malformed input.
func (m *Set) FormatError(s Stage) {
	if m == nil {
		return
	}
	m.formatErrors[s].Inc()
}

// RequestStarted and RequestFinished bracket one terminal request.
func (m *Set) RequestStarted() {
	if m != nil {
		m.inflight.Inc()
	}
}

// RequestFinished: see RequestStarted.
func (m *Set) RequestFinished() {
	if m != nil {
		m.inflight.Dec()
	}
}

// ConnectionOpened and ConnectionClosed bracket one terminal connection.
func (m *Set) ConnectionOpened() {
	if m != nil {
		m.connections.Inc()
	}
}

// ConnectionClosed: see ConnectionOpened.
func (m *Set) ConnectionClosed() {
	if m != nil {
		m.connections.Dec()
	}
}

// ConnectionRefused counts a connection closed at the connection maximum.
func (m *Set) ConnectionRefused() {
	if m != nil {
		m.refused.Inc()
	}
}

// SetUp publishes whether the link has a signed-on connection.
func (l *Link) SetUp(up bool) {
	if l == nil {
		return
	}
	if up {
		l.up.Set(1)
	} else {
		l.up.Set(0)
	}
}

// ExchangeStarted and ExchangeFinished bracket one request on the link.
func (l *Link) ExchangeStarted() {
	if l != nil {
		l.inflight.Inc()
	}
}

// ExchangeFinished: see ExchangeStarted.
func (l *Link) ExchangeFinished() {
	if l != nil {
		l.inflight.Dec()
	}
}

// LateResponse counts an issuer response with no waiting request.
func (l *Link) LateResponse() {
	if l != nil {
		l.late.Inc()
	}
}

// WatchAdvices exposes the store-and-forward queue as
// tapswitch_advices{state="armed|due|dead"}, read from count at each scrape
// (a scan of the queue, bounded by journal.AdvicesMax).
func (m *Set) WatchAdvices(count func() (armed, due, dead int, err error)) {
	if m == nil {
		return
	}
	desc := prometheus.NewDesc("tapswitch_advices", "Advices owed to issuers in the store-and-forward queue, by state.", []string{"state"}, nil)
	m.reg.MustRegister(adviceCollector{desc: desc, count: count})
}

type adviceCollector struct {
	desc  *prometheus.Desc
	count func() (armed, due, dead int, err error)
}

func (c adviceCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c adviceCollector) Collect(ch chan<- prometheus.Metric) {
	armed, due, dead, err := c.count()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for state, n := range map[string]int{"armed": armed, "due": due, "dead": dead} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), state)
	}
}

// TopUp counts one transit top-up that reached its end state.
func (m *Set) TopUp(operator, state string) {
	if m == nil {
		return
	}
	m.topups.WithLabelValues(operator, state).Inc()
}

// ClusterUnavailable counts one tap answered 91 because the cluster's
// store (duplicates or stand_in) could not answer (no quorum).
func (m *Set) ClusterUnavailable(store string) {
	if m == nil {
		return
	}
	m.noClusterStore.WithLabelValues(store).Inc()
}

// CountersUnavailable counts one tap answered 91 because the token
// counter store could not answer (no cluster quorum).
func (m *Set) CountersUnavailable() {
	if m == nil {
		return
	}
	m.noCounters.Inc()
}
