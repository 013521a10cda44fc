// Command bench is the load harness: it starts switchd -dev as a child
// process (or drives the switch -switch names), loads it from many simulated
// terminals in a closed or open loop, and reports throughput, latency
// percentiles, response codes, errors and CPU, keeping each run's reports
// in -out. See docs/bench.md and docs/cli.md.
package main

import (
	"os"

	"github.com/tapswitch/tapswitch/bench/load"
)

func main() {
	os.Exit(load.Main(os.Args[1:], os.Stdout, os.Stderr))
}
