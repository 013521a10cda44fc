package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapswitch/tapswitch/switch/cluster"
	"github.com/tapswitch/tapswitch/switch/journal"
	switchnode "github.com/tapswitch/tapswitch/switch/node"
)

// heartbeatTTL is the nodes' cluster.heartbeat_ttl here: a killed node is
// taken for dead this long after its last heartbeat.
const heartbeatTTL = 2 * time.Second

// adoptionMax bounds how long the survivors take to adopt a dead node and
// finish its advices.
const adoptionMax = 60 * time.Second

// awaitAdoption waits until a survivor has adopted dead and finished
// sending its advices (the adoption waiting for the day to close, or
// done), then checks a copy of the adopted journal: no advice armed or
// due. It returns the adopter and what the copy holds.
func (w *world) awaitAdoption(t *testing.T, dead *node) (*node, string) {
	t.Helper()
	members := w.openMembers(t)
	deadline := time.Now().Add(adoptionMax)
	var state, adopterID string
	for {
		var found bool
		var err error
		state, adopterID, _, found, err = members.Adoption(context.Background(), dead.id)
		if err == nil && found && (state == cluster.AdoptWaiting || state == cluster.AdoptDone) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not adopted and finished within %v: state %q by %q (%v)", dead.id, adoptionMax, state, adopterID, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var adopter *node
	for _, n := range w.nodes {
		if n.id == adopterID && n != dead {
			adopter = n
		}
	}
	if adopter == nil {
		t.Fatalf("%s adopted by %q, not a survivor", dead.id, adopterID)
	}
	return adopter, w.adoptedAdvices(t, adopter, dead)
}

// adoptedAdvices opens a copy of the journal adopter rebuilt for dead
// (the adopter has it closed while its adoption waits) and fails the test
// if an advice is armed or due there.
func (w *world) adoptedAdvices(t *testing.T, adopter, dead *node) string {
	t.Helper()
	src := filepath.Join(switchnode.AdoptedDir(adopter.data, dead.id), "journal")
	dst := filepath.Join(t.TempDir(), "journal")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatalf("copying %s's adopted journal: %v", adopter.id, err)
	}
	j, err := journal.Open(dst, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	c, err := j.AdviceCounts()
	if err != nil {
		t.Fatal(err)
	}
	if c[journal.AdviceArmed] != 0 || c[journal.AdviceDue] != 0 {
		t.Fatalf("%s's adopted journal of %s still owes advices: %v", adopter.id, dead.id, c)
	}
	return fmt.Sprintf("armed %d, due %d, dead %d", c[journal.AdviceArmed], c[journal.AdviceDue], c[journal.AdviceDead])
}

// openMembers reads the cluster's adoptions as an observer (it never
// heartbeats, and never journals, so it is never taken for a node).
func (w *world) openMembers(t *testing.T) *cluster.Members {
	t.Helper()
	nc, err := nats.Connect(strings.Join(w.nats, ","))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := switchnode.LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	cc := cfg.Cluster
	// Right after a NATS server died the buckets may have no leader for
	// a few seconds: try again until they do.
	deadline := time.Now().Add(readyMax)
	for {
		m, err := cluster.OpenMembers(context.Background(), js, cluster.MembersConfig{Bucket: cc.MembersBucket,
			AdoptionsBucket: cc.AdoptionsBucket, Replicas: cc.Replicas, HeartbeatTTL: heartbeatTTL,
			OpTimeout: 5 * time.Second}, "test-observer")
		if err == nil {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
