package cluster_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/cluster"
	"github.com/tapswitch/tapswitch/switch/cluster/natstest"
	"github.com/tapswitch/tapswitch/switch/vault"
)

// BenchmarkVaultPut: one token put in the vault, one after another. local:
// the single node's synchronous Pebble commit. replicated: node A's put
// through the state stream (replicas 3 on three embedded NATS servers over
// loopback) until A has applied it; lag-µs-median is how long after A's Put
// returned node B (on another NATS server) had the token, not counted in
// ns/op.
func BenchmarkVaultPut(b *testing.B) {
	keyFile := filepath.Join(b.TempDir(), "vault.keys")
	if err := vault.GenerateKeyringFile(keyFile); err != nil {
		b.Fatal(err)
	}
	keys, err := vault.LoadKeyringFile(keyFile)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("local", func(b *testing.B) {
		v, err := vault.Open(b.TempDir(), keys)
		if err != nil {
			b.Fatal(err)
		}
		defer v.Close()
		n := 0
		for b.Loop() {
			n++
			if err := v.Put(benchToken(n)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("replicated", func(b *testing.B) {
		nc := natstest.Start(b, 3)
		a, other := benchReplica(b, nc, 0, keys), benchReplica(b, nc, 1, keys)
		var lags []time.Duration
		n := 0
		for b.Loop() {
			n++
			tok := benchToken(n)
			if err := a.Put(tok); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			done := time.Now()
			for {
				if _, err := other.Get(tok.Token.Clear()); err == nil {
					break
				}
				if time.Since(done) > 10*time.Second {
					b.Fatal("token put on A not on B after 10 s")
				}
			}
			lags = append(lags, time.Since(done))
			b.StartTimer()
		}
		slices.Sort(lags)
		b.ReportMetric(float64(lags[len(lags)/2].Microseconds()), "lag-µs-median")
	})
}

func benchReplica(b *testing.B, nc *natstest.Cluster, server int, keys *vault.Keyring) *vault.Vault {
	js, err := jetstream.New(nc.Connect(server))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := cluster.OpenState(ctx, js, cluster.StateConfig{Stream: stateStream, Replicas: 3, BytesMax: 1 << 30,
		OpTimeout: opTimeout, CatchUpTimeout: 30 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	v, err := vault.OpenReplica(b.TempDir(), keys, st.Store("vault"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { v.Close() })
	return v
}

// benchToken is the n'th token of the benchmark, each with its own card
// and device (a card and a device hold a bounded number of tokens).
func benchToken(n int) vault.Token {
	luhn := func(body string) iso8583.PAN { return iso8583.PAN(body + string(iso8583.LuhnCheckDigit(body))) }
	return vault.Token{
		Token: luhn(fmt.Sprintf("629999%09d", n)), PAN: luhn(fmt.Sprintf("622202%09d", n)),
		CardExpiry: "3012", TokenExpiry: "3012", Status: vault.StatusActive,
		DeviceID: fmt.Sprintf("PHONE-%d", n), WalletAccount: "bench", RequestorID: "40010030273",
		CreatedAt: time.Now().UTC(),
	}
}
