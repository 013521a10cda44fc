package settleday

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/configs"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/issuers"
	"github.com/tapswitch/tapswitch/settlement/fees"
	"github.com/tapswitch/tapswitch/switch/journal"
	"github.com/tapswitch/tapswitch/switch/vault"
)

// BenchmarkSettleMillion settles a sealed day of 1,000,000 journal entries
// (purchases, refunds and top-ups across four issuers and two acquirers) and
// reports the run's time and its peak heap. Building the day takes longer
// than settling it; set SETTLE_ENTRIES to change its size.
//
//	go test -run '^$' -bench SettleMillion -benchtime 1x ./settlement/settleday
func BenchmarkSettleMillion(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("SETTLE_ENTRIES")); err == nil && v > 0 {
		n = v
	}
	dir := b.TempDir()
	keys, sealedDir, day := buildDay(b, dir, n)
	list, _ := issuers.Parse(configs.Issuers)
	schedule, _ := fees.Parse(configs.Fees)
	cfg := Config{Day: day, Nodes: []Node{{ID: "node-1", SealedDir: sealedDir}}, Keys: &keys.DataKeys, Issuers: list,
		Fees: schedule, SwitchInstitution: "00010000", Out: filepath.Join(dir, "out")}
	b.ResetTimer()
	for b.Loop() {
		runtime.GC()
		peak, stop := watchHeap()
		start := time.Now()
		res, err := Run(cfg)
		took := time.Since(start)
		stop()
		if err != nil {
			b.Fatal(err)
		}
		if res.Transactions != n {
			b.Fatalf("%d of %d entries settled", res.Transactions, n)
		}
		b.ReportMetric(took.Seconds(), "s/run")
		b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MB")
	}
}

// watchHeap samples the live heap every 10 ms until stopped.
func watchHeap() (*atomic.Uint64, func()) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return &peak, func() { close(done); wg.Wait() }
}

// buildDay journals n settling entries for one business day and seals it.
func buildDay(b *testing.B, dir string, n int) (*vault.Keyring, string, string) {
	keyFile := filepath.Join(dir, "keys")
	if err := vault.GenerateKeyringFile(keyFile); err != nil {
		b.Fatal(err)
	}
	keys, _ := vault.LoadKeyringFile(keyFile)
	j, err := journal.Open(filepath.Join(dir, "journal"), journal.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	when := time.Date(2026, 11, 25, 4, 0, 0, 0, time.UTC)
	cards := []struct{ issuer, pan, product string }{
		{"ICBC", "6222020000000000009", "debit"}, {"CMB", "6258020000000000003", "credit"},
		{"BOC", "6216610000000000006", "debit"}, {"SPTC", "9910000200000000008", "transit"},
	}
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				c := cards[i%len(cards)]
				e := benchEntry(i, c.issuer, c.product, when)
				e.PANSealed = keys.Seal([]byte(c.pan), []byte("journal:"+e.Token))
				if err := j.Append(&e); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	day := journal.BusinessDay(when, j.Cutoff())
	sealed := filepath.Join(dir, "sealed")
	os.MkdirAll(sealed, 0o700)
	if _, err := j.SealDay(day, "node-1", sealed); err != nil {
		b.Fatal(err)
	}
	return keys, sealed, day
}

func benchEntry(i int, issuerID, product string, when time.Time) journal.Entry {
	pc := []string{iso8583.ProcPurchase, iso8583.ProcPurchase, iso8583.ProcRefund, iso8583.ProcTransitTopUp}[i%4/2*2+i%2]
	acquirer := []string{"01020000", "03080000"}[i%2]
	return journal.Entry{
		Time: when.Add(time.Duration(i) * time.Millisecond), NodeID: "node-1", MTI: "0200", ProcessingCode: pc,
		Amount: iso8583.Amount(100 + i%10000), Currency: "156", TerminalID: fmt.Sprintf("T%07d", i/999999),
		STAN: fmt.Sprintf("%06d", i%999999+1), TransmissionTime: "1125040000", RRN: fmt.Sprintf("%012d", i),
		MerchantID: "104110054110001", MCC: "5411", Acquirer: acquirer, Token: "6299906048458884",
		IssuerID: issuerID, Product: product, IssuerSTAN: fmt.Sprintf("%06d", i%999999+1),
		IssuerTransmissionTime: "1125040000", ResponseCode: "00", AuthCode: "123456", CardExpiry: "2912",
	}
}
