package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapswitch/tapswitch/internal/cli"
	"github.com/tapswitch/tapswitch/switch/cluster"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// runJournal is tapctl journal restore: rebuild a cluster node's journal
// from the replicated journal stream (docs/cluster.md), into a directory
// that must not exist. Put it at DATA/journal of a node with that node ID
// and start it, or seal its days for settle.
func runJournal(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "restore" {
		fmt.Fprintln(stderr, "usage: tapctl journal restore -nats URLS -node ID -dir DIR [-stream tapswitch_journal]")
		return cli.ExitUsage
	}
	fs := cli.New("tapctl journal restore", "Rebuilds a node's journal from the cluster's journal stream.", stdout, stderr)
	urls := fs.String("nats", "", "the NATS servers' client `URLS`, comma-separated")
	nodeID := fs.String("node", "", "the `ID` of the node whose journal to rebuild")
	dir := fs.String("dir", "", "`DIR` to build the journal in; must not exist")
	stream := fs.String("stream", "tapswitch_journal", "the journal stream's `NAME` (cluster.journal_stream)")
	timeout := fs.Duration("timeout", 5*time.Second, "bound on each read from NATS")
	if err := fs.Parse(args[1:]); err != nil {
		return parseFailed(fs, err, stderr)
	}
	if *urls == "" || *nodeID == "" || *dir == "" {
		fmt.Fprintln(stderr, "tapctl journal restore: -nats, -node and -dir are required")
		return cli.ExitUsage
	}
	n, err := restoreJournal(*urls, *stream, *nodeID, *dir, *timeout)
	if err != nil {
		fmt.Fprintf(stderr, "tapctl journal restore: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "restored the journal of %s into %s: %d business days\n", *nodeID, *dir, n)
	return 0
}

func restoreJournal(urls, stream, nodeID, dir string, timeout time.Duration) (days int, err error) {
	nc, err := nats.Connect(urls, nats.Name("tapctl journal restore"), nats.Timeout(timeout))
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	s, err := cluster.BindJournalStream(ctx, js, stream, timeout)
	if err != nil {
		return 0, err
	}
	if strings.ContainsAny(nodeID, ".*> ") {
		return 0, fmt.Errorf("node ID %q cannot be a subject token", nodeID)
	}
	if err := journal.Restore(dir, s.Node(nodeID)); err != nil {
		return 0, err
	}
	j, err := journal.Open(dir, journal.Options{})
	if err != nil {
		return 0, err
	}
	defer j.Close()
	all, err := j.Days()
	return len(all), err
}
