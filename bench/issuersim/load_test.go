package issuersim

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	moov "github.com/moov-io/iso8583"

	"github.com/tapswitch/tapswitch/configs"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/router/issuers"
	"github.com/tapswitch/tapswitch/settlement/transit"
)

// The test operator is Shanghai's (BIN 99100002 in configs/bins.yaml).
var (
	testOperator = issuers.Issuer{ID: "SPTC", Kind: issuers.KindTransit, Operator: "0021",
		Institution: "31000002", Address: "127.0.0.1:0"}
	testMaster = []byte("tapswitch test operator master!!") // 32 bytes
)

const (
	cardNew   = "9910000200000000013" // SPTC's
	cardOther = "9910000100000000015" // BJT's BIN: another operator's
)

// startOperator serves a transit operator with master key master (nil for
// none) on a loopback port.
func startOperator(t *testing.T, master []byte) (*Issuer, *client) {
	t.Helper()
	s, err := New(Config{Issuer: testOperator, Seed: 7, OperatorKey: master,
		Now: func() time.Time { return testNow }, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, dial(t, l.Addr().String())
}

// loadSpec is one leg 2 as the switch sends it.
type loadSpec struct {
	pc     string // ProcPurseLoad or ProcPurseOpen
	card   string
	amount int64
	stan   int
	txTime string
	purse  *transit.LoadRequest // tag 40; nil for an opening
	de48   *string              // DE48 as is, instead of tag 40
	omit   int                  // a field to leave out
}

func (m loadSpec) build(t *testing.T) *moov.Message {
	t.Helper()
	msg := iso8583.NewMessage()
	msg.MTI(iso8583.MTIFinancialRequest)
	txTime := m.txTime
	if txTime == "" {
		txTime = "0315100000"
	}
	fields := map[int]string{
		2: m.card, 3: m.pc, 4: iso8583.Amount(m.amount).Field(), 7: txTime, 11: fmt.Sprintf("%06d", m.stan),
		32: "31000002", 33: "00010000", 37: fmt.Sprintf("%012d", m.stan), 41: "TOPUP001", 49: "156", 100: "31000002",
	}
	if m.purse != nil {
		fields[48] = tag40(t, *m.purse)
	}
	if m.de48 != nil {
		fields[48] = *m.de48
	}
	delete(fields, m.omit)
	for id, v := range fields {
		if err := msg.Field(id, v); err != nil {
			t.Fatal(err)
		}
	}
	return msg
}

func tag40(t *testing.T, r transit.LoadRequest) string {
	t.Helper()
	s, err := iso8583.PurseLoadData{Request: &iso8583.PurseLoadRequest{
		Balance: r.Balance, Counter: r.Counter, Sequence: r.Sequence, MAC: r.MAC}}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// loadAnswer is what an 0210 to a load says.
type loadAnswer struct {
	rc, authCode, de48 string
	purse              iso8583.PurseLoadData
}

func (c *client) load(m loadSpec) loadAnswer {
	c.t.Helper()
	c.send(m.build(c.t))
	resp, err := c.recv(5 * time.Second)
	if err != nil {
		c.t.Fatalf("load STAN %d: %v", m.stan, err)
	}
	if mti, _ := resp.GetMTI(); mti != "0210" {
		c.t.Fatalf("load STAN %d answered %s", m.stan, mti)
	}
	want := map[int]string{2: m.card, 3: m.pc, 4: iso8583.Amount(m.amount).Field(), 11: fmt.Sprintf("%06d", m.stan),
		37: fmt.Sprintf("%012d", m.stan), 41: "TOPUP001", 49: "156"}
	for id, v := range want {
		if m.omit != id && fieldString(resp, id) != v {
			c.t.Fatalf("load STAN %d: DE%d %q, want %q echoed", m.stan, id, fieldString(resp, id), v)
		}
	}
	a := loadAnswer{rc: fieldString(resp, 39), authCode: fieldString(resp, 38), de48: fieldString(resp, 48)}
	if a.purse, err = iso8583.ParsePurseLoadData(a.de48); err != nil {
		c.t.Fatalf("load STAN %d: DE48 %v", m.stan, err)
	}
	if (a.rc == "00") != (a.purse.Grant != nil) || (a.rc == "00") != (len(a.authCode) == 6) {
		c.t.Fatalf("load STAN %d: rc %s with DE38 %q and DE48 %q", m.stan, a.rc, a.authCode, a.de48)
	}
	return a
}

func (c *client) wantLoad(m loadSpec, rc string) loadAnswer {
	c.t.Helper()
	a := c.load(m)
	if a.rc != rc {
		c.t.Fatalf("%s of %d STAN %d: rc %s, want %s", m.pc, m.amount, m.stan, a.rc, rc)
	}
	return a
}

// credit applies an answer's grant to the purse that asked, as the phone
// does: the purse takes it only if MAC2 verifies under its own key.
func credit(t *testing.T, p transit.Purse, r transit.LoadRequest, a loadAnswer) transit.Purse {
	t.Helper()
	g := transit.LoadGrant{BalanceAfter: a.purse.Grant.BalanceAfter, MAC: a.purse.Grant.MAC}
	after, err := p.Credit(r, g)
	if err != nil {
		t.Fatalf("the purse refuses the grant: %v", err)
	}
	return after
}

// void is the switch's 0420 for a load that got no answer.
func (c *client) void(orig loadSpec, stan int) string {
	c.t.Helper()
	txTime := orig.txTime
	if txTime == "" {
		txTime = "0315100000"
	}
	return get(c.t, c.call(msgSpec{mti: "0420", pc: orig.pc, pan: orig.card, amount: iso8583.Amount(orig.amount),
		stan: stan, txTime: "0315100500", original: fmt.Sprintf("0200%06d%s%011d%011d", orig.stan, txTime, 31000002, 10000)}), 39)
}

// An opening registers the card and answers its purse key and a grant of
// sequence 1 that the new purse takes; a load then grants on the purse's
// own signed request, and the book shows both.
func TestOperatorOpeningAndLoad(t *testing.T) {
	s, c := startOperator(t, testMaster)
	open := loadSpec{pc: iso8583.ProcPurseOpen, card: cardNew, amount: 50_00, stan: 1}
	a := c.wantLoad(open, "00")
	if a.purse.Key == nil || [16]byte(*a.purse.Key) != transit.PurseKey(testMaster, cardNew) {
		t.Fatalf("opening answered key %v, want PurseKey(master, card)", a.purse.Key != nil)
	}
	if a.purse.Grant.BalanceAfter != 50_00 {
		t.Fatalf("balance after %d", a.purse.Grant.BalanceAfter)
	}
	purse := transit.Purse{Operator: "0021", Card: cardNew, Key: [16]byte(*a.purse.Key)}
	purse = credit(t, purse, transit.LoadRequest{Card: cardNew, Amount: 50_00, Sequence: 1}, a)
	if purse.Balance != 50_00 || purse.LoadSequence != 1 {
		t.Fatalf("purse after the opening %+v", purse)
	}

	// Two rides, then a load of 20.00.
	purse, _, _ = purse.Debit(3_00, "002100000001", testNow)
	purse, _, _ = purse.Debit(2_00, "002100000001", testNow)
	r, err := purse.LoadRequest(20_00)
	if err != nil {
		t.Fatal(err)
	}
	a = c.wantLoad(loadSpec{pc: iso8583.ProcPurseLoad, card: cardNew, amount: 20_00, stan: 2, purse: &r}, "00")
	if a.purse.Key != nil {
		t.Fatal("a load's answer carries the purse key")
	}
	purse = credit(t, purse, r, a)
	if purse.Balance != 65_00 || purse.LoadSequence != 2 {
		t.Fatalf("purse after the load %+v", purse)
	}

	loads := s.Loads()
	if len(loads) != 2 {
		t.Fatalf("%d loads: %+v", len(loads), loads)
	}
	if e := loads[0]; e.Seq != 1 || e.ProcessingCode != "720000" || e.Card.Clear() != cardNew || e.Amount != 50_00 ||
		e.BalanceBefore != 0 || e.Sequence != 1 || e.BalanceAfter != 50_00 || e.STAN != "000001" || e.Voided {
		t.Fatalf("opening entry %+v", e)
	}
	if e := loads[1]; e.Seq != 2 || e.ProcessingCode != "220000" || e.BalanceBefore != 45_00 || e.Counter != 2 ||
		e.Sequence != 2 || e.BalanceAfter != 65_00 || e.RRN != "000000000002" || e.TerminalID != "TOPUP001" || e.AuthCode != a.authCode {
		t.Fatalf("load entry %+v", e)
	}

	// The snapshot shows the loads, masked, and passes its check; the bank
	// ledger beside them is untouched.
	snap := s.Snapshot()
	if err := snap.Check(); err != nil {
		t.Fatal(err)
	}
	js := mustJSON(t, snap)
	if bytes.Contains(js, []byte(cardNew)) || !bytes.Contains(js, []byte(`"loads":[{"seq":1,`)) || len(snap.Ledger) != 0 {
		t.Fatalf("snapshot %s", js)
	}
	back, err := ReadSnapshot(bytes.NewReader(js))
	if err != nil || len(back.Loads) != 2 || back.Loads[1].BalanceAfter != 65_00 {
		t.Fatalf("read back: %v %+v", err, back.Loads)
	}
	if key := string(iso8583.PurseKey(transit.PurseKey(testMaster, cardNew)).Append(nil)); strings.Contains(string(js), key) {
		t.Fatal("the snapshot holds the purse key")
	}
}

// A purse loads at its own word on an operator that does not know it (one
// restarted since its last load); what MAC1 does not cover is refused 63.
func TestOperatorLoadUnknownCardAndBadMAC(t *testing.T) {
	_, c := startOperator(t, testMaster)
	purse := transit.Purse{Operator: "0021", Card: cardNew, Balance: 12_00, Counter: 40, LoadSequence: 5,
		Key: transit.PurseKey(testMaster, cardNew)}
	r, _ := purse.LoadRequest(10_00)

	forged := r
	forged.Balance = 2_00 // the phone lying about the balance
	c.wantLoad(loadSpec{pc: iso8583.ProcPurseLoad, card: cardNew, amount: 10_00, stan: 1, purse: &forged}, "63")
	wrongKey := purse
	wrongKey.Key = transit.PurseKey([]byte("another operator's master key!!!"), cardNew)
	bad, _ := wrongKey.LoadRequest(10_00)
	c.wantLoad(loadSpec{pc: iso8583.ProcPurseLoad, card: cardNew, amount: 10_00, stan: 2, purse: &bad}, "63")
	// MAC1 covers the amount too: the same request for more is refused.
	c.wantLoad(loadSpec{pc: iso8583.ProcPurseLoad, card: cardNew, amount: 10_01, stan: 3, purse: &r}, "63")

	a := c.wantLoad(loadSpec{pc: iso8583.ProcPurseLoad, card: cardNew, amount: 10_00, stan: 4, purse: &r}, "00")
	if purse = credit(t, purse, r, a); purse.Balance != 22_00 || purse.LoadSequence != 6 {
		t.Fatalf("purse %+v", purse)
	}
}

// A sequence granted once is not granted again to a different request
// (94), and a sequence past the next is refused too; the same request
// again under its DE11 and DE7 is a retry and gets the first answer.
func TestOperatorReplayAndRetry(t *testing.T) {
	s, c := startOperator(t, testMaster)
	purse := transit.Purse{Operator: "0021", Card: cardNew, Balance: 1_00, LoadSequence: 1, Key: transit.PurseKey(testMaster, cardNew)}
	r, _ := purse.LoadRequest(30_00)
	first := loadSpec{pc: iso8583.ProcPurseLoad, card: cardNew, amount: 30_00, stan: 1, purse: &r}
	a := c.wantLoad(first, "00")

	retry := c.wantLoad(first, "00")
	if retry.rc != a.rc || retry.authCode != a.authCode || retry.de48 != a.de48 {
		t.Fatalf("retry answered %+v, first %+v", retry, a)
	}
	if len(s.Loads()) != 1 {
		t.Fatalf("a retry was granted again: %+v", s.Loads())
	}
	// The same key with other content: 94, nothing granted.
	other := first
	other.amount = 30_01
	c.wantLoad(other, "94")

	// The same purse request under a new STAN: a replay of sequence 2.
	replay := first
	replay.stan = 2
	c.wantLoad(replay, "94")

	// A purse that claims sequence 4 while the operator granted 2.
	ahead := purse
	ahead.LoadSequence = 3
	r4, _ := ahead.LoadRequest(1_00)
	c.wantLoad(loadSpec{pc: iso8583.ProcPurseLoad, card: cardNew, amount: 1_00, stan: 3, purse: &r4}, "94")

	// The purse took the grant; its next load is sequence 3.
	purse = credit(t, purse, r, a)
	r3, _ := purse.LoadRequest(5_00)
	c.wantLoad(loadSpec{pc: iso8583.ProcPurseLoad, card: cardNew, amount: 5_00, stan: 4, purse: &r3}, "00")
	if n := len(s.Loads()); n != 2 {
		t.Fatalf("%d loads", n)
	}
}

// A reversal advice voids a grant the purse never took: its sequence is
// free again for a new request; a voided opening unregisters the card.
func TestOperatorVoid(t *testing.T) {
	s, c := startOperator(t, testMaster)
	open := loadSpec{pc: iso8583.ProcPurseOpen, card: cardNew, amount: 10_00, stan: 1}
	c.wantLoad(open, "00")
	c.wantLoad(loadSpec{pc: iso8583.ProcPurseOpen, card: cardNew, amount: 10_00, stan: 2}, "94") // registered
	if rc := c.void(open, 3); rc != "00" {
		t.Fatalf("void of the opening: %s", rc)
	}
	a := c.wantLoad(loadSpec{pc: iso8583.ProcPurseOpen, card: cardNew, amount: 10_00, stan: 4}, "00")
	purse := transit.Purse{Operator: "0021", Card: cardNew, Key: [16]byte(*a.purse.Key)}
	purse = credit(t, purse, transit.LoadRequest{Card: cardNew, Amount: 10_00, Sequence: 1}, a)

	r, _ := purse.LoadRequest(7_00)
	lost := loadSpec{pc: iso8583.ProcPurseLoad, card: cardNew, amount: 7_00, stan: 5, purse: &r}
	c.wantLoad(lost, "00")
	if rc := c.void(lost, 6); rc != "00" {
		t.Fatalf("void: %s", rc)
	}
	if rc := c.void(lost, 7); rc != "00" {
		t.Fatalf("void again: %s", rc)
	}
	// The retry of a voided load is no retry: 94. A new request for the
	// same sequence is granted, and the purse takes it.
	c.wantLoad(lost, "94")
	again := c.wantLoad(loadSpec{pc: iso8583.ProcPurseLoad, card: cardNew, amount: 7_00, stan: 8, purse: &r}, "00")
	if purse = credit(t, purse, r, again); purse.Balance != 17_00 || purse.LoadSequence != 2 {
		t.Fatalf("purse %+v", purse)
	}

	loads := s.Loads()
	if len(loads) != 4 || !loads[0].Voided || loads[1].Voided || !loads[2].Voided || loads[3].Voided ||
		loads[2].Void.STAN != "000006" || loads[2].Void.MTI != "0420" || loads[2].Void.TransmissionTime != "0315100500" {
		t.Fatalf("loads %+v", loads)
	}
	if err := s.Snapshot().Check(); err != nil {
		t.Fatal(err)
	}

	// A void of nothing: 25, and the original arriving late is refused.
	late := loadSpec{pc: iso8583.ProcPurseLoad, card: cardNew, amount: 1_00, stan: 20, txTime: "0315110000", purse: &r}
	if rc := c.void(late, 21); rc != "25" {
		t.Fatalf("void of nothing: %s", rc)
	}
	c.wantLoad(late, "94")
	// A void naming another card finds nothing.
	wrong := lost
	wrong.stan, wrong.card = 8, "9910000200000000021"
	if rc := c.void(wrong, 22); rc != "25" {
		t.Fatalf("void of another card's load: %s", rc)
	}
}

// The decisions before the MAC, in order.
func TestOperatorRefusals(t *testing.T) {
	_, c := startOperator(t, testMaster)
	purse := transit.Purse{Operator: "0021", Card: cardNew, Balance: 5_00, LoadSequence: 1, Key: transit.PurseKey(testMaster, cardNew)}
	r, _ := purse.LoadRequest(1_00)
	load := func(stan int, f func(*loadSpec)) loadSpec {
		m := loadSpec{pc: iso8583.ProcPurseLoad, card: cardNew, amount: 1_00, stan: stan, purse: &r}
		f(&m)
		return m
	}
	str := func(s string) *string { return &s }
	full := transit.Purse{Operator: "0021", Card: cardNew, Balance: transit.AmountMax, LoadSequence: 1, Key: purse.Key}
	over := transit.LoadRequest{Card: cardNew, Amount: 1, Balance: transit.AmountMax, Sequence: 2}
	over.MAC = transit.RequestMAC(full.Key, &over)
	zeroSeq := r
	zeroSeq.Sequence = 0
	for _, tt := range []struct {
		name string
		m    loadSpec
		rc   string
	}{
		{"no tag 40 on a load", load(1, func(m *loadSpec) { m.purse = nil }), "30"},
		{"tag 40 on an opening", load(2, func(m *loadSpec) { m.pc = iso8583.ProcPurseOpen }), "30"},
		{"tag 40 malformed", load(3, func(m *loadSpec) { m.purse, m.de48 = nil, str("40003abc") }), "30"},
		{"tag 40 sequence 0", load(4, func(m *loadSpec) { m.purse = &zeroSeq }), "30"},
		{"tag 41 in a request", load(5, func(m *loadSpec) { m.purse, m.de48 = nil, str(tag40(t, r)+"41028000000000100fedcba9876543210") }), "30"},
		{"no DE32", load(6, func(m *loadSpec) { m.omit = 32 }), "30"},
		{"no DE100", load(7, func(m *loadSpec) { m.omit = 100 }), "30"},
		{"another operator's card", load(8, func(m *loadSpec) { m.card = cardOther }), "14"},
		{"a bank card", load(9, func(m *loadSpec) { m.card = panDebit }), "14"},
		{"amount 0", load(10, func(m *loadSpec) { m.amount = 0 }), "13"},
		{"opening over AmountMax", load(11, func(m *loadSpec) { m.pc, m.purse, m.amount = iso8583.ProcPurseOpen, nil, transit.AmountMax+1 }), "13"},
		{"balance after over AmountMax", load(12, func(m *loadSpec) { m.amount, m.purse = 1, &over }), "13"},
	} {
		if a := c.load(tt.m); a.rc != tt.rc {
			t.Errorf("%s: rc %s, want %s", tt.name, a.rc, tt.rc)
		}
	}
}

// An operator without a master key cannot check or sign: 91. A key of the
// wrong length, or one for a bank, refuses to start.
func TestOperatorKey(t *testing.T) {
	_, c := startOperator(t, nil)
	c.wantLoad(loadSpec{pc: iso8583.ProcPurseOpen, card: cardNew, amount: 1_00, stan: 1}, "91")
	c.wantLoad(loadSpec{pc: iso8583.ProcPurseOpen, card: cardOther, amount: 1_00, stan: 2}, "14")

	if _, err := New(Config{Issuer: testOperator, OperatorKey: testMaster[:16]}); err == nil {
		t.Fatal("a 16-byte master key was taken")
	}
	bank := issuers.Issuer{ID: "TST", Kind: issuers.KindBank, Institution: "01020000"}
	if _, err := New(Config{Issuer: bank, OperatorKey: testMaster}); err == nil {
		t.Fatal("a bank was given an operator key")
	}
}

// A fleet hands each transit member its key by operator code.
func TestFleetOperatorKeys(t *testing.T) {
	list := []issuers.Issuer{testOperator,
		{ID: "BJT", Kind: issuers.KindTransit, Operator: "0010", Institution: "31000001", Address: "127.0.0.1:0"}}
	f, err := StartAllWith("127.0.0.1", list, FleetConfig{OperatorKeys: map[string][]byte{"0021": testMaster}, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	c := dial(t, f.Addr("SPTC"))
	a := c.wantLoad(loadSpec{pc: iso8583.ProcPurseOpen, card: cardNew, amount: 1_00, stan: 1}, "00")
	if [16]byte(*a.purse.Key) != transit.PurseKey(testMaster, cardNew) {
		t.Fatal("wrong purse key")
	}
	dial(t, f.Addr("BJT")).wantLoad(loadSpec{pc: iso8583.ProcPurseOpen, card: cardOther, amount: 1_00, stan: 1}, "91")
	snap, err := f.Snapshot(AllIssuers)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(snap)
	if got := strings.Count(string(js), `"loads":`); got != 1 {
		t.Fatalf("%d issuers list loads, want SPTC alone", got)
	}
}

// docs/wire.md's purse load test vector is what the operator answers.
func TestWireDocPurseLoadVector(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "wire.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, text, ok := strings.Cut(string(doc), "### Purse load test vector")
	if !ok {
		t.Fatal("docs/wire.md has no purse load test vector")
	}
	_, text, _ = strings.Cut(text, "```text\n")
	text, _, _ = strings.Cut(text, "```")
	v := map[string]string{}
	for line := range strings.Lines(text) {
		name, value, ok := strings.Cut(strings.TrimSpace(line), ": ")
		if !ok {
			t.Fatalf("vector line %q", line)
		}
		v[name] = value
	}
	unhex := func(name string) []byte {
		b, err := hex.DecodeString(v[name])
		if err != nil || len(b) == 0 {
			t.Fatalf("%s %q: %v", name, v[name], err)
		}
		return b
	}
	amount := func(name string) int64 {
		n, err := strconv.ParseInt(v[name], 10, 64)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return n
	}
	master, card := unhex("master key"), v["card"]
	key := transit.PurseKey(master, card)
	if !bytes.Equal(key[:], unhex("purse key")) {
		t.Fatalf("purse key %x, the doc says %s", key, v["purse key"])
	}
	_, c := startOperator(t, master)
	a := c.wantLoad(loadSpec{pc: iso8583.ProcPurseOpen, card: card, amount: amount("opening amount"), stan: 1}, "00")
	if a.de48 != v["opening answer DE48"] {
		t.Fatalf("opening answered DE48 %q, the doc says %q", a.de48, v["opening answer DE48"])
	}
	purse := transit.Purse{Operator: "0021", Card: card, Key: key}
	purse = credit(t, purse, transit.LoadRequest{Card: card, Amount: amount("opening amount"), Sequence: 1}, a)
	purse, _, _ = purse.Debit(3_00, "002100000001", testNow)
	purse, _, _ = purse.Debit(2_00, "002100000001", testNow)
	r, err := purse.LoadRequest(amount("load amount"))
	if err != nil {
		t.Fatal(err)
	}
	if got := tag40(t, r); got != v["load request DE48"] {
		t.Fatalf("the purse asks %q, the doc says %q", got, v["load request DE48"])
	}
	a = c.wantLoad(loadSpec{pc: iso8583.ProcPurseLoad, card: card, amount: r.Amount, stan: 2, purse: &r}, "00")
	if a.de48 != v["load answer DE48"] {
		t.Fatalf("load answered DE48 %q, the doc says %q", a.de48, v["load answer DE48"])
	}
	credit(t, purse, r, a)
}

// The registry on the pure decision: voiding an older grant leaves the
// card known at its latest, and keys are shared with the bank ledger.
func TestDecideLoadRegistry(t *testing.T) {
	bins, err := bintable.Parse(configs.Bins)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newBook("SPTC", nil, 1, DefaultCutoff())
	if err != nil {
		t.Fatal(err)
	}
	b.operator = newOperatorBook("SPTC", testMaster, bins)
	purse := transit.Purse{Operator: "0021", Card: cardNew, Key: transit.PurseKey(testMaster, cardNew)}
	req := func(stan int, pc string, amount int64, r *transit.LoadRequest) request {
		q := request{MTI: "0200", ProcessingCode: pc, PAN: iso8583.PAN(cardNew), Amount: iso8583.Amount(amount),
			STAN: pad6(stan), TransmissionTime: "0315100000"}
		if r != nil {
			q.Purse.Request = &iso8583.PurseLoadRequest{Balance: r.Balance, Counter: r.Counter, Sequence: r.Sequence, MAC: r.MAC}
		}
		return q
	}
	open := req(1, iso8583.ProcPurseOpen, 10_00, nil)
	step(t, b, open, "00")
	purse.Balance, purse.LoadSequence = 10_00, 1
	r2, _ := purse.LoadRequest(5_00)
	step(t, b, req(2, iso8583.ProcPurseLoad, 5_00, &r2), "00")
	purse.Balance, purse.LoadSequence = 15_00, 2

	// A (late, odd) void of the opening: the card stays known at sequence 2.
	step(t, b, reversalOf(iso8583.MTIReversalAdvice, open), "00")
	if got := b.operator.purses[cardNew]; len(got) != 1 || b.operator.loads[got[0]].Sequence != 2 {
		t.Fatalf("grants standing %v", got)
	}
	step(t, b, req(3, iso8583.ProcPurseLoad, 5_00, &r2), "94")
	r3, _ := purse.LoadRequest(1_00)
	step(t, b, req(4, iso8583.ProcPurseLoad, 1_00, &r3), "00")

	// A bank request under a load's key, and a load under a bank posting's.
	bank := fin("0200", iso8583.ProcPurchase, cardNew, 1_00)
	bank.STAN, bank.TransmissionTime = pad6(4), "0315100000"
	step(t, b, bank, "94")
	b.byKey[txKey{pad6(5), "0315100000"}] = 0 // a bank posting holds key 5; only the key matters
	purse.Balance, purse.LoadSequence = 16_00, 3
	r4, _ := purse.LoadRequest(1_00)
	step(t, b, req(5, iso8583.ProcPurseLoad, 1_00, &r4), "94")
	step(t, b, req(6, iso8583.ProcPurseLoad, 1_00, &r4), "00")
}
