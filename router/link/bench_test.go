package link_test

import (
	"testing"

	"github.com/tapswitch/tapswitch/bench/issuersim"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/link"
)

// benchLink is a link of two connections to an in-process simulated
// issuer over loopback TCP, signed on.
func benchLink(b *testing.B) *link.Link {
	ln := listen(b, "127.0.0.1:0")
	startSim(b, ln, issuersim.Faults{})
	cfg := testConfig(ln.Addr().String())
	cfg.Connections, cfg.InflightMax = 2, 256
	l, err := link.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	l.Start()
	b.Cleanup(l.Close)
	waitFor(b, "link up", l.Up)
	return l
}

// BenchmarkExchange is one purchase through the link on the moov path:
// built as a moov message, packed and its answer unpacked by moov. The
// issuer's work, in the same process, is in the figure too (the same in
// both benchmarks).
func BenchmarkExchange(b *testing.B) {
	l := benchLink(b)
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := l.Exchange(b.Context(), purchase(b, panCredit, 1))
			if err != nil {
				b.Fatal(err)
			}
			if rc := field(resp, iso8583.FieldResponseCode); rc != iso8583.RCApproved {
				b.Fatalf("rc %s", rc)
			}
		}
	})
}

// BenchmarkExchangeBuilt is BenchmarkExchange on the fast path: the same
// purchase built in a reused Builder, the answer parsed in place into a
// reused Answer.
func BenchmarkExchangeBuilt(b *testing.B) {
	l := benchLink(b)
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var req iso8583.Builder
		var ans link.Answer
		fields := purchaseFields(panCredit, 1)
		for pb.Next() {
			req.Reset(iso8583.MTIFinancialRequest)
			for _, f := range fields {
				req.Set(f.id, f.v)
			}
			if err := l.ExchangeBuilt(b.Context(), &req, &ans); err != nil {
				b.Fatal(err)
			}
			if rc := ans.Fields.Bytes(iso8583.FieldResponseCode); string(rc) != iso8583.RCApproved {
				b.Fatalf("rc %s", rc)
			}
		}
	})
}
