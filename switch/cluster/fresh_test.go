package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapswitch/tapswitch/switch/cluster/natstest"
)

// TestFreshReadsACachedWindowAgain: a node's cached window lags the
// bucket once another node accepted a counter; Fresh reads it again (once
// per hold), and the stale revision's swap is lost, not taken.
func TestFreshReadsACachedWindowAgain(t *testing.T) {
	nc := natstest.Start(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	open := func(server int) *Counters {
		js, err := jetstream.New(nc.Connect(server))
		if err != nil {
			t.Fatal(err)
		}
		c, err := OpenCounters(ctx, js, CountersConfig{Bucket: "fresh", Replicas: 3, OpTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := open(0), open(1)
	const token = "6299901234567893"
	accept := func(c *Counters, counter uint32) {
		t.Helper()
		h, err := c.Hold(ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Release(nil, true)
		defer h.Checked()
		if err := h.Window().Check(counter); err != nil {
			t.Fatal(err)
		}
		if _, spent, err := h.Accept(ctx, counter); err != nil || !spent {
			t.Fatalf("accept %d: spent %v, %v", counter, spent, err)
		}
	}
	accept(b, 5) // b caches last 5
	accept(a, 6)

	h, err := b.Hold(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Window().Last; got != 5 {
		t.Fatalf("cached window last %d, want the stale 5", got)
	}
	if _, spent, err := h.Accept(ctx, 7); err != nil || spent {
		t.Fatalf("swap on a stale revision: spent %v, %v", spent, err)
	}
	if got := h.Window().Last; got != 6 {
		t.Fatalf("after the lost swap last %d, want 6", got)
	}
	if reread, err := h.Fresh(ctx); err != nil || reread {
		t.Fatalf("window just read: reread %v, %v", reread, err)
	}
	h.Checked()
	h.Release(nil, true)

	accept(a, 8)
	h, err = b.Hold(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release(nil, true)
	defer h.Checked()
	if reread, err := h.Fresh(ctx); err != nil || !reread {
		t.Fatalf("cached window: reread %v, %v", reread, err)
	}
	if got := h.Window().Last; got != 8 {
		t.Fatalf("fresh window last %d, want 8", got)
	}
}
