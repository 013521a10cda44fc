package authorize

import (
	"bytes"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/configs"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/switch/cryptogram"
	"github.com/tapswitch/tapswitch/switch/vault"
)

var testTokenKey = []byte("0123456789abcdef")

const testCVMLimit iso8583.Amount = 300_00

// testChip checks taps at decideNow, in Shanghai 2026-11-25 20:00: the
// switch's date is 261125, the date signed() gives its taps.
func testChip() Chip {
	return Chip{Key: testTokenKey, CVMLimit: testCVMLimit, Today: decideNow.In(shanghai)}
}

var shanghai = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err)
	}
	return loc
}()

// signing is how the phone signs a test request; the zero value is a
// first tap (counter 1), verified on the phone, with the test key.
type signing struct {
	key     []byte
	counter uint32
	cvm     *[3]byte
	date    string // 261125 unless set
}

// signed returns req with the DE55 its phone would send.
func signed(req Request, s signing) Request {
	if s.key == nil {
		s.key = testTokenKey
	}
	if s.counter == 0 {
		s.counter = 1
	}
	cvm := cryptogram.CVMDeviceVerified
	if s.cvm != nil {
		cvm = *s.cvm
	}
	if s.date == "" {
		s.date = "261125"
	}
	tap := cryptogram.Tap{Amount: int64(req.Amount), Currency: req.Currency, Date: s.date,
		Type: req.ProcessingCode[:2], Terminal: req.TerminalID, Unpredictable: [4]byte{1, 2, 3, 4},
		Counter: s.counter, CVM: cvm}
	arqc, err := cryptogram.ARQC(s.key, tap)
	if err != nil {
		panic(err)
	}
	req.ICC, err = cryptogram.EMV{ARQC: arqc, ATC: tap.ATC(), Unpredictable: tap.Unpredictable, CVM: cvm,
		Date: tap.Date}.AppendDE55(nil)
	if err != nil {
		panic(err)
	}
	return req
}

func TestCheckCryptogram(t *testing.T) {
	noCVM := cryptogram.CVMNone
	window := func(counters ...uint32) cryptogram.Window {
		var w cryptogram.Window
		for _, c := range counters {
			w = w.Accept(c)
		}
		return w
	}
	cases := []struct {
		name    string
		req     func(*Request) // before signing
		sign    signing
		after   func(*Request) // after signing: what changes on the way
		seen    cryptogram.Window
		rc      string
		counter uint32 // spent
	}{
		{name: "first tap", counter: 1},
		{name: "next counter", sign: signing{counter: 8}, seen: window(7), counter: 8},
		{name: "contactless without DE55", after: func(r *Request) { r.ICC = nil }, rc: "30"},
		{name: "contact chip without DE55 is not checked", req: func(r *Request) { r.POSEntryMode = "051" },
			after: func(r *Request) { r.ICC = nil }},
		{name: "DE55 cut short", after: func(r *Request) { r.ICC = r.ICC[:len(r.ICC)-1] }, rc: "30"},
		{name: "DE55 without its date", after: func(r *Request) { r.ICC = r.ICC[:len(r.ICC)-5] }, rc: "30"},
		{name: "tampered ARQC", after: func(r *Request) { r.ICC[3] ^= 0x01 }, rc: "59"},
		{name: "amount changed after the phone signed", after: func(r *Request) { r.Amount++ }, rc: "59"},
		{name: "processing code changed", after: func(r *Request) { r.ProcessingCode = iso8583.ProcTransitTopUp }, rc: "59"},
		{name: "another token's key", sign: signing{key: []byte("fedcba9876543210")}, rc: "59"},
		{name: "CVM flipped to verified on the way", sign: signing{cvm: &noCVM},
			after: func(r *Request) { copy(r.ICC[len(r.ICC)-8:], cryptogram.CVMDeviceVerified[:]) }, rc: "59"},
		{name: "replay of the last counter", sign: signing{counter: 7}, seen: window(7), rc: "59"},
		{name: "replay within the window", sign: signing{counter: 5}, seen: window(5, 7), rc: "59"},
		{name: "late but unseen within the window", sign: signing{counter: 6}, seen: window(5, 7), counter: 6},
		{name: "at the window's end", sign: signing{counter: 10}, seen: window(10 + cryptogram.WindowSize), counter: 10},
		{name: "older than the window", sign: signing{counter: 10}, seen: window(10 + cryptogram.WindowSize + 1), rc: "59"},
		{name: "ATC not resolvable", sign: signing{counter: 40_000}, rc: "59"},
		{name: "above the CVM limit without fingerprint", req: func(r *Request) { r.Amount = testCVMLimit + 1 },
			sign: signing{cvm: &noCVM}, rc: "05", counter: 1},
		{name: "above the CVM limit with fingerprint", req: func(r *Request) { r.Amount = testCVMLimit + 1 }, counter: 1},
		{name: "at the CVM limit without fingerprint", req: func(r *Request) { r.Amount = testCVMLimit },
			sign: signing{cvm: &noCVM}, counter: 1},
		{name: "top-up above the limit without fingerprint",
			req:  func(r *Request) { r.Amount, r.ProcessingCode = testCVMLimit+1, iso8583.ProcTransitTopUp },
			sign: signing{cvm: &noCVM}, rc: "05", counter: 1},
		{name: "refund above the limit needs no fingerprint",
			req:  func(r *Request) { r.Amount, r.ProcessingCode = testCVMLimit+1, iso8583.ProcRefund },
			sign: signing{cvm: &noCVM}, counter: 1},
		{name: "balance inquiry without fingerprint", req: func(r *Request) { r.Amount, r.ProcessingCode = 0, iso8583.ProcBalanceInquiry },
			sign: signing{cvm: &noCVM}, rc: "05", counter: 1},
		{name: "balance inquiry with fingerprint", req: func(r *Request) { r.Amount, r.ProcessingCode = 0, iso8583.ProcBalanceInquiry },
			counter: 1},
		{name: "another terminal", after: func(r *Request) { r.TerminalID = "TERM0002" }, rc: "59"},
		{name: "terminal ID cut to 7 characters", after: func(r *Request) { r.TerminalID = "TERM000" }, rc: "59"},
		{name: "no terminal ID", after: func(r *Request) { r.TerminalID = "" }, rc: "59"},
		{name: "yesterday's date", sign: signing{date: "261124"}, counter: 1},
		{name: "tomorrow's date", sign: signing{date: "261126"}, counter: 1},
		{name: "two days ago", sign: signing{date: "261123"}, rc: "59", counter: 1},
		{name: "two days ahead", sign: signing{date: "261127"}, rc: "59", counter: 1},
		{name: "pre-played, months ahead", sign: signing{date: "270301"}, rc: "59", counter: 1},
		{name: "a year before", sign: signing{date: "251125"}, rc: "59", counter: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := goodRequest()
			if c.req != nil {
				c.req(&req)
			}
			req = signed(req, c.sign)
			req.ICC = bytes.Clone(req.ICC)
			if c.after != nil {
				c.after(&req)
			}
			chip := testChip()
			chip.Counters = c.seen
			v := CheckCryptogram(req, chip)
			if v.RC != c.rc || v.Counter != c.counter {
				t.Fatalf("rc %q counter %d (%s), want rc %q counter %d", v.RC, v.Counter, v.Reason, c.rc, c.counter)
			}
			if (v.RC != "") != (v.Reason != "") {
				t.Fatalf("rc %q with reason %q", v.RC, v.Reason)
			}
		})
	}
}

// TestDecideChecksTheCryptogramAfterTheToken: a token the switch refuses
// anyway gets its own answer, not the cryptogram's; a verified cryptogram
// is spent even when the answer is a decline.
func TestDecideChecksTheCryptogramAfterTheToken(t *testing.T) {
	table, err := bintable.Parse(configs.Bins)
	if err != nil {
		t.Fatal(err)
	}
	bad := signed(goodRequest(), signing{})
	bad.ICC = bytes.Clone(bad.ICC)
	bad.ICC[3] ^= 1
	suspended := goodToken()
	suspended.Status = vault.StatusSuspended
	if d := Decide(bad, suspended, true, testChip(), table, decideNow); d.RC != "62" || d.Counter != 0 {
		t.Fatalf("suspended token, bad cryptogram: %+v", d)
	}
	if d := Decide(bad, goodToken(), false, testChip(), table, decideNow); d.RC != "14" {
		t.Fatalf("unknown token, bad cryptogram: %+v", d)
	}
	if d := Decide(bad, goodToken(), true, testChip(), table, decideNow); d.RC != "59" || d.Counter != 0 || d.Reason == "" {
		t.Fatalf("bad cryptogram: %+v", d)
	}
	unroutable := goodToken()
	unroutable.PAN = "4000000000000002"
	if d := Decide(signed(goodRequest(), signing{}), unroutable, true, testChip(), table, decideNow); d.RC != "92" || d.Counter != 1 {
		t.Fatalf("good cryptogram, no route: %+v", d)
	}
}

// TestTheSwitchDateIsTheNetworkZones: at 00:30 in Shanghai on the 26th
// (16:30 UTC on the 25th) the switch's date is the 26th, so the 24th is two
// days away; in UTC it would be one.
func TestTheSwitchDateIsTheNetworkZones(t *testing.T) {
	chip := testChip()
	chip.Today = time.Date(2026, 11, 25, 16, 30, 0, 0, time.UTC).In(shanghai)
	if v := CheckCryptogram(signed(goodRequest(), signing{date: "261124"}), chip); v.RC != "59" {
		t.Fatalf("the 24th at 00:30 on the 26th in Shanghai: rc %q (%s), want 59", v.RC, v.Reason)
	}
	if v := CheckCryptogram(signed(goodRequest(), signing{date: "261127"}), chip); v.RC != "" {
		t.Fatalf("the 27th at 00:30 on the 26th in Shanghai: rc %q (%s), want approved", v.RC, v.Reason)
	}
}
