package issuersim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/bench/world"
	"github.com/tapswitch/tapswitch/configs"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/router/issuers"
)

// startICBCAndSPTC starts a fleet of ICBC and SPTC on loopback with the
// world's cards and returns it with the demo cards by label.
func startICBCAndSPTC(t *testing.T) (*Fleet, map[string]world.Card) {
	t.Helper()
	list, err := issuers.Parse(configs.Issuers)
	if err != nil {
		t.Fatal(err)
	}
	table, err := bintable.Parse(configs.Bins)
	if err != nil {
		t.Fatal(err)
	}
	demo := world.Demo(table, testNow)
	cards := append(world.Generate(table, 1, 10, testNow), world.DemoCards(demo)...)
	var pick []issuers.Issuer
	for _, is := range list {
		if is.ID == "ICBC" || is.ID == "SPTC" {
			pick = append(pick, is)
		}
	}
	f, err := StartAll("127.0.0.1", pick, cards, Faults{}, 1, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	byLabel := map[string]world.Card{}
	for _, d := range demo {
		byLabel[d.Label] = d.Card
	}
	return f, byLabel
}

func purchaseOf(card world.Card, amount int64, stan int) msgSpec {
	return msgSpec{mti: "0200", pc: "000000", pan: card.PAN.Clear(), expiry: card.Expiry, amount: iso8583.Amount(amount), stan: stan}
}

func TestFleetFaultsDownUp(t *testing.T) {
	f, demo := startICBCAndSPTC(t)
	approve := demo[world.DemoApprove]
	if err := f.SetFaults("ICBC", Faults{ErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	if rc := get(t, dial(t, f.Addr("ICBC")).call(purchaseOf(approve, 1_00, 1)), 39); rc != "96" {
		t.Fatalf("ICBC with error rate 1: rc %s", rc)
	}
	dial(t, f.Addr("SPTC")).call(msgSpec{mti: "0800", stan: 2, netCode: "301"})
	if err := f.SetFaults("NOPE", Faults{}); err == nil {
		t.Fatal("unknown issuer accepted")
	}
	if err := f.SetFaults(AllIssuers, Faults{DropRate: 2}); err == nil || f.Issuer("ICBC").Faults().ErrorRate != 1 {
		t.Fatalf("invalid faults: %v, ICBC now %+v", err, f.Issuer("ICBC").Faults())
	}
	if err := f.SetFaults(AllIssuers, Faults{}); err != nil || f.Issuer("ICBC").Faults() != (Faults{}) {
		t.Fatalf("clear all: %v", err)
	}

	if err := f.Down(AllIssuers); err != nil {
		t.Fatal(err)
	}
	for _, id := range f.IDs() {
		if !f.Issuer(id).IsDown() {
			t.Fatalf("%s up after Down(all)", id)
		}
		refused(t, f.Addr(id))
	}
	if err := f.Up("ICBC"); err != nil {
		t.Fatal(err)
	}
	if rc := get(t, dial(t, f.Addr("ICBC")).call(purchaseOf(approve, 1_00, 3)), 39); rc != "00" {
		t.Fatalf("ICBC after Up: rc %s", rc)
	}
	refused(t, f.Addr("SPTC"))
	if f.Down("NOPE") == nil || f.Up("NOPE") == nil {
		t.Fatal("unknown issuer accepted")
	}
	if err := f.Up(AllIssuers); err != nil {
		t.Fatal(err)
	}
	dial(t, f.Addr("SPTC")).call(msgSpec{mti: "0800", stan: 4, netCode: "301"})
}

// refused checks that addr accepts a connection and closes it unanswered.
func refused(t *testing.T, addr string) {
	t.Helper()
	c := dial(t, addr)
	c.send(build(t, msgSpec{mti: "0800", stan: 1, netCode: "301"}))
	if _, err := c.recv(5 * time.Second); !isClosed(err) {
		t.Fatalf("%s while down: read %v", addr, err)
	}
}

type adminClient struct {
	t    *testing.T
	base string
}

func (a adminClient) do(method, path, body string) (int, string) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.base+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func (a adminClient) status(method, path, body string) []IssuerStatus {
	a.t.Helper()
	code, doc := a.do(method, path, body)
	if code != http.StatusOK {
		a.t.Fatalf("%s %s: %d %s", method, path, code, doc)
	}
	var st struct{ Issuers []IssuerStatus }
	if err := json.Unmarshal([]byte(doc), &st); err != nil {
		a.t.Fatalf("%s %s: %v in %s", method, path, err, doc)
	}
	return st.Issuers
}

func TestAdminLedger(t *testing.T) {
	f, demo := startICBCAndSPTC(t)
	srv := httptest.NewServer(f.AdminHandler())
	defer srv.Close()
	admin := adminClient{t, srv.URL}
	approve := demo[world.DemoApprove]
	c := dial(t, f.Addr("ICBC"))
	kept, reversed := purchaseOf(approve, 12_34, 1), purchaseOf(approve, 5_00, 2)
	c.call(kept)
	c.call(reversed)
	c.call(msgSpec{mti: "0400", pc: "000000", pan: approve.PAN.Clear(), amount: 5_00, stan: 3, original: dataOf(reversed)})

	if code, body := admin.do("GET", "/healthz", ""); code != 200 || body != "ok\n" {
		t.Fatalf("healthz: %d %q", code, body)
	}
	code, doc := admin.do("GET", "/ledger?issuer=ICBC", "")
	if code != 200 || strings.Contains(doc, approve.PAN.Clear()) {
		t.Fatalf("ledger: %d, clear PAN in it: %v", code, strings.Contains(doc, approve.PAN.Clear()))
	}
	got, err := ReadSnapshot(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	// It is the issuer's Snapshot, as JSON, but for when it was taken.
	want := f.Issuer("ICBC").Snapshot()
	got.TakenAt, want.TakenAt = time.Time{}, time.Time{}
	if string(mustJSON(t, got)) != string(mustJSON(t, want)) {
		t.Fatalf("ledger\n%s\nSnapshot\n%s", mustJSON(t, got), mustJSON(t, want))
	}
	if got.Totals.Entries != 2 || got.Totals.Held != 12_34 || len(got.Holds) != 1 || got.Holds[0].STAN != "000001" {
		t.Fatalf("ICBC totals %+v holds %+v", got.Totals, got.Holds)
	}

	code, doc = admin.do("GET", "/ledger", "")
	var all FleetSnapshot
	if err := json.Unmarshal([]byte(doc), &all); code != 200 || err != nil {
		t.Fatalf("ledger of all: %d %v", code, err)
	}
	if len(all.Issuers) != 2 || all.Issuers[0].Issuer != "ICBC" || all.Issuers[1].Issuer != "SPTC" ||
		all.Issuers[0].Totals != got.Totals || all.Issuers[1].Totals.Entries != 0 {
		t.Fatalf("ledger of all: %+v", all)
	}
	if code, _ := admin.do("GET", "/ledger?issuer=NOPE", ""); code != http.StatusNotFound {
		t.Fatalf("unknown issuer: %d", code)
	}
}

func TestAdminFaultsDownUp(t *testing.T) {
	f, demo := startICBCAndSPTC(t)
	srv := httptest.NewServer(f.AdminHandler())
	defer srv.Close()
	admin := adminClient{t, srv.URL}
	approve := demo[world.DemoApprove]

	st := admin.status("POST", "/faults?issuer=ICBC", `{"error_rate":1,"latency":"1ms"}`)
	if len(st) != 1 || st[0].ID != "ICBC" || st[0].Faults != (Faults{ErrorRate: 1, Latency: time.Millisecond}) {
		t.Fatalf("status %+v", st)
	}
	if got := f.Issuer("ICBC").Faults(); got != (Faults{ErrorRate: 1, Latency: time.Millisecond}) {
		t.Fatalf("ICBC faults %+v", got)
	}
	if rc := get(t, dial(t, f.Addr("ICBC")).call(purchaseOf(approve, 1_00, 1)), 39); rc != "96" {
		t.Fatalf("rc %s", rc)
	}
	for _, bad := range []struct {
		path, body string
		code       int
	}{
		{"/faults?issuer=ICBC", `{"error_rat":1}`, 400},
		{"/faults?issuer=ICBC", `{"drop_rate":2}`, 400},
		{"/faults?issuer=ICBC", `{"late_rate":0.5}`, 400},
		{"/faults?issuer=ICBC", strings.Repeat(" ", adminBodyBytesMax+1) + "{}", 400},
		{"/faults", `{}`, 400},
		{"/faults?issuer=NOPE", `{}`, 404},
		{"/down", ``, 400},
		{"/down?issuer=NOPE", ``, 404},
		{"/up?issuer=NOPE", ``, 404},
	} {
		if code, body := admin.do("POST", bad.path, bad.body); code != bad.code {
			t.Errorf("POST %s %.40q: %d %s, want %d", bad.path, bad.body, code, body, bad.code)
		}
	}
	if got := f.Issuer("ICBC").Faults(); got.ErrorRate != 1 {
		t.Fatalf("a refused body changed the faults: %+v", got)
	}
	if code, _ := admin.do("GET", "/down?issuer=ICBC", ""); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET /down: %d", code)
	}

	admin.status("POST", "/faults?issuer=*", `{}`)
	if st := admin.status("POST", "/down?issuer=ICBC", ""); len(st) != 1 || !st[0].Down {
		t.Fatalf("down: %+v", st)
	}
	refused(t, f.Addr("ICBC"))
	dial(t, f.Addr("SPTC")).call(msgSpec{mti: "0800", stan: 2, netCode: "301"})
	if st := admin.status("GET", "/status", ""); len(st) != 2 || !st[0].Down || st[1].Down || st[0].Addr != f.Addr("ICBC") {
		t.Fatalf("status %+v", st)
	}
	if st := admin.status("POST", "/up?issuer=*", ""); len(st) != 2 || st[0].Down || st[1].Down {
		t.Fatalf("up: %+v", st)
	}
	if rc := get(t, dial(t, f.Addr("ICBC")).call(purchaseOf(approve, 1_00, 3)), 39); rc != "00" {
		t.Fatalf("after up: rc %s", rc)
	}
}
