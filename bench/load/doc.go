// Package load is the bench harness behind cmd/bench: it drives a fleet of
// simulated POS terminals at a switch over many TCP connections, checks
// every answer against the outcome its card should get, and reports
// throughput, latency percentiles, response codes, errors and CPU per
// process (docs/bench.md).
//
// # Two ways to load a switch
//
// Closed loop (-max, the default): Concurrency requests are in flight at
// all times, spread over the connections; each worker sends its next
// request the moment the previous one is answered. It finds the maximum
// throughput, and its latencies are the switch's service time under that
// load, measured from each request's send.
//
// Open loop (-rate R): request i is due at the fixed time
//
//	start + i × 1s/R      (schedule.go)
//
// on connection i mod Connections, whatever happened to earlier requests.
// Its latency is measured from that intended time, not from when the
// harness managed to send it. A closed-loop generator, or an open-loop one
// that timed from the actual send, stops sending while the system stalls
// and so never records the requests that would have waited: "coordinated
// omission" (Gil Tene). wrk2 corrects it the same way. The send lag (actual
// minus intended send) is reported apart, so a late harness shows itself.
//
// # Bounds
//
// Every run ends: no request is sent after warm-up + duration, a request
// not answered within Timeout of its intended send is given up and counted
// as a timeout error (recorded in the histogram at the time it was given
// up, so the tail shows it), and the harness waits at most Timeout for
// stragglers. A connection the switch closes is not redialled; the requests
// it would have carried count as connection errors. In-flight requests per
// connection, connections, rate, concurrency and durations all have named
// maxima (config.go). Only loopback switches are driven.
//
// # Duplicate keys
//
// The switch's duplicate key is terminal ID + STAN (DE11) + transmission
// time (DE7, to the second). Each connection is its own terminal with its
// own 8-character ID; its STANs run 000001..999999 and wrap, and stanSeq
// never issues more than 999,999 STANs in one DE7 second, so no key repeats.
package load
