// Package cluster holds the end-to-end test of a whole tapswitch cluster
// on loopback, as bench/scripts/cluster.sh starts it by hand
// (docs/cluster.md, "Slice: three nodes behind HAProxy"): three NATS
// servers with JetStream (cmd/natsd), the simulated issuers in their own
// process, three switchd nodes and HAProxy in front of their terminal
// ports, every one a real process. The package has no code of its own:
// only its test.
package cluster
