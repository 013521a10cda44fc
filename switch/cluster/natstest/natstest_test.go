package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestStart: a single server and a cluster of three both take a key-value
// bucket with as many replicas as servers, and the three survive a server
// killed and restarted on its data.
func TestStart(t *testing.T) {
	for _, n := range []int{1, 3} {
		c := Start(t, n)
		js, err := jetstream.New(c.Connect(0))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "b", Replicas: n})
		if err != nil {
			t.Fatalf("%d servers: %v", n, err)
		}
		if _, err := kv.Put(ctx, "k", []byte("v1")); err != nil {
			t.Fatalf("%d servers: %v", n, err)
		}
		if n == 1 {
			continue
		}
		c.Kill(n - 1)
		if _, err := kv.Put(ctx, "k", []byte("v2")); err != nil {
			t.Fatalf("one of %d down: %v", n, err)
		}
		c.Restart(n - 1)
		c.WaitJetStream()
		e, err := kv.Get(ctx, "k")
		if err != nil || string(e.Value()) != "v2" {
			t.Fatalf("after restart: %v, %v", e, err)
		}
	}
}
