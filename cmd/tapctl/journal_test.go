package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapswitch/tapswitch/switch/cluster"
	"github.com/tapswitch/tapswitch/switch/cluster/natstest"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// TestJournalRestore: tapctl journal restore rebuilds a node's journal
// from the stream: the entry the node journaled is in it.
func TestJournalRestore(t *testing.T) {
	nc := natstest.Start(t, 3)
	js, err := jetstream.New(nc.Connect(0))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := cluster.OpenJournalStream(ctx, js, cluster.JournalConfig{Stream: "tapswitch_journal", Replicas: 3, OpTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(filepath.Join(t.TempDir(), "journal"), journal.Options{Replica: s.Node("node-2")})
	if err != nil {
		t.Fatal(err)
	}
	e := &journal.Entry{Time: time.Date(2026, 3, 15, 6, 30, 0, 0, time.UTC), NodeID: "node-2", MTI: "0100",
		TerminalID: "TERM0001", STAN: "000001", TransmissionTime: "0315063001", ResponseCode: "00"}
	if err := j.Append(e); err != nil {
		t.Fatal(err)
	}
	j.Close()

	dir := filepath.Join(t.TempDir(), "restored")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"journal", "restore", "-nats", nc.URL(2), "-node", "node-2", "-dir", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "1 business days") {
		t.Errorf("output %q", stdout.String())
	}
	r, err := journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, found, err := r.Lookup(e.Key()); err != nil || !found || got.Seq != e.Seq {
		t.Fatalf("restored journal: %+v, %v, %v", got, found, err)
	}
	if code := run([]string{"journal", "restore", "-nats", nc.URL(2), "-node", "node-2", "-dir", dir}, &stdout, &stderr); code != 1 {
		t.Fatalf("restore into an existing journal: exit %d", code)
	}
}
