package daemon

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/bench/load"
	"github.com/tapswitch/tapswitch/bench/pos"
	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/authorize"
	"github.com/tapswitch/tapswitch/switch/node"
)

// benchWorld starts the dev world for a benchmark.
func benchWorld(b *testing.B) (*DevWorld, wallet.Card) {
	b.Helper()
	cfg, err := node.LoadConfig("")
	if err != nil {
		b.Fatal(err)
	}
	cfg.Data = b.TempDir()
	cfg.Listen, cfg.Public, cfg.Admin = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	d, err := StartDev(cfg, 1, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for d.Node.LinksUp() < len(d.Node.Issuers) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	w, err := wallet.Load(d.WalletPath)
	if err != nil {
		b.Fatal(err)
	}
	card, err := w.Card("approve")
	if err != nil {
		b.Fatal(err)
	}
	return d, card
}

// uniqueTap returns a purchase whose duplicate key no other call shares: the
// terminal ID carries the high part of n, the STAN the low part.
func uniqueTap(card wallet.Card, n uint64, now time.Time) pos.Tap {
	term := pos.DemoTerminal
	term.TerminalID = fmt.Sprintf("B%07d", n/999999)
	return pos.Tap{Terminal: term, ProcessingCode: iso8583.ProcPurchase, Token: card.Token,
		TokenExpiry: card.TokenExpiry, Amount: 1, STAN: fmt.Sprintf("%06d", n%999999+1), Time: now}.WithCard(card)
}

// BenchmarkAuthorize is one whole authorization inside the switch, on the
// hot path the terminal session takes: parse the terminal's frame in place
// (iso8583.Fields) into the pipeline's Request, check its MAC, detokenize,
// route, the issuer round trip over loopback TCP, the synchronous journal
// append, pack and MAC the answer with a Builder. Run in parallel, as the
// switch runs requests, so journal fsyncs are shared. The terminal's own
// packing of its request (moov) is inside the loop too, as before.
//
// ns/op is mostly waiting (the issuer's round trip, the shared fsync) and
// swings with the machine's load; cpu-ns/op is the CPU the whole process
// used per authorization (switch, the in-process issuers and the
// terminal's packing, garbage collection included), the steadier figure
// for comparing two versions of the hot path.
func BenchmarkAuthorize(b *testing.B) {
	d, card := benchWorld(b)
	now := time.Now()
	var seq atomic.Uint64
	b.ReportAllocs()
	b.SetParallelism(16)
	b.ResetTimer()
	cpu0 := load.SelfCPU()
	defer func() { b.ReportMetric(float64(load.SelfCPU()-cpu0)/float64(b.N), "cpu-ns/op") }()
	b.RunParallel(func(pb *testing.PB) {
		var fields iso8583.Fields
		var answer iso8583.Builder
		var out []byte
		for pb.Next() {
			tap := uniqueTap(card, seq.Add(1), now)
			key, _ := d.AcquirerKeys.TerminalKey(tap.Terminal.Acquirer, tap.Terminal.TerminalID)
			frame, err := iso8583.PackSigned(tap.Message(), key)
			if err != nil {
				b.Fatal(err)
			}
			if err := fields.Parse(frame); err != nil {
				b.Fatal(err)
			}
			req, err := authorize.ParseFields(&fields)
			if err != nil {
				b.Fatal(err)
			}
			from := d.Node.Senders().Check(frame, req.TerminalID)
			a := d.Node.Pipeline.HandleRequest(context.Background(), req, from)
			if a.RC != "00" {
				b.Fatalf("rc %s", a.RC)
			}
			a.Build(&answer)
			if out, err = answer.AppendSigned(out[:0], from.AnswerKey()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAuthorizeMoov is BenchmarkAuthorize on the moov path (the only
// one before issue 12, and still every message but a well-formed 0100/0200
// takes it), for a side-by-side comparison: unpack
// the terminal's frame, detokenize, route, the issuer round trip over
// loopback TCP, the synchronous journal append, pack the answer. Run in
// parallel, as the switch runs requests, so journal fsyncs are shared.
func BenchmarkAuthorizeMoov(b *testing.B) {
	d, card := benchWorld(b)
	now := time.Now()
	var seq atomic.Uint64
	b.ReportAllocs()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tap := uniqueTap(card, seq.Add(1), now)
			key, _ := d.AcquirerKeys.TerminalKey(tap.Terminal.Acquirer, tap.Terminal.TerminalID)
			frame, err := iso8583.PackSigned(tap.Message(), key)
			if err != nil {
				b.Fatal(err)
			}
			msg, err := iso8583.Unpack(frame)
			if err != nil {
				b.Fatal(err)
			}
			from := d.Node.Senders().Check(frame, tap.Terminal.TerminalID)
			resp := d.Node.Pipeline.Handle(context.Background(), msg, from)
			if rc := iso8583.FieldValue(resp, iso8583.FieldResponseCode); rc != "00" {
				b.Fatalf("rc %s", rc)
			}
			if _, err := iso8583.PackSigned(resp, from.AnswerKey()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAuthorizeOverTCP adds the terminal side: 32 terminals on
// loopback, requests pipelined, each b.N iteration one tap answered.
func BenchmarkAuthorizeOverTCP(b *testing.B) {
	d, card := benchWorld(b)
	now := time.Now()
	var seq atomic.Uint64
	b.ReportAllocs()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c, err := pos.Dial(d.Node.TerminalAddr(), time.Second, d.AcquirerKeys)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		for pb.Next() {
			resp, err := c.Do(context.Background(), uniqueTap(card, seq.Add(1), now).Message())
			if err != nil {
				b.Fatal(err)
			}
			if rc := iso8583.FieldValue(resp, iso8583.FieldResponseCode); rc != "00" {
				b.Fatalf("rc %s", rc)
			}
		}
	})
}
