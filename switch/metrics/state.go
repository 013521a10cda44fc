package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// StateStore is one replicated store (the vault, the token service) of a
// cluster node as its log reports it (docs/cluster.md, "Slice: tokens and
// token-service data").
type StateStore struct {
	Store string
	// Applied is the stream sequence of the last batch applied here.
	Applied uint64
	// ApplyDelay is how long after its append the last batch was applied
	// here: the node's lag behind the network's writes.
	ApplyDelay time.Duration
	// Writes of this node, by outcome.
	Committed, Conflicts, Unavailable uint64
}

// WatchState exposes the replicated stores, read from stats at each
// scrape: tapswitch_state_applied_sequence{store},
// tapswitch_state_apply_delay_seconds{store} and
// tapswitch_state_writes_total{store,outcome="committed|conflict|unavailable"}.
func (m *Set) WatchState(stats func() []StateStore) {
	if m == nil {
		return
	}
	m.reg.MustRegister(stateCollector{stats: stats,
		applied: prometheus.NewDesc("tapswitch_state_applied_sequence",
			"Stream sequence of the last replicated batch this node applied to the store.", []string{"store"}, nil),
		delay: prometheus.NewDesc("tapswitch_state_apply_delay_seconds",
			"How long after its append the last replicated batch was applied here: this node's lag behind the other nodes' writes.", []string{"store"}, nil),
		writes: prometheus.NewDesc("tapswitch_state_writes_total",
			"This node's writes to the replicated store, by outcome: committed; conflict (another node wrote first: run again); unavailable (no quorum or no answer in time: refused, 503).", []string{"store", "outcome"}, nil),
	})
}

type stateCollector struct {
	stats                  func() []StateStore
	applied, delay, writes *prometheus.Desc
}

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.applied
	ch <- c.delay
	ch <- c.writes
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.stats() {
		ch <- prometheus.MustNewConstMetric(c.applied, prometheus.GaugeValue, float64(s.Applied), s.Store)
		ch <- prometheus.MustNewConstMetric(c.delay, prometheus.GaugeValue, s.ApplyDelay.Seconds(), s.Store)
		for outcome, n := range map[string]uint64{"committed": s.Committed, "conflict": s.Conflicts, "unavailable": s.Unavailable} {
			ch <- prometheus.MustNewConstMetric(c.writes, prometheus.CounterValue, float64(n), s.Store, outcome)
		}
	}
}
