package daemon

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/bench/gate"
	"github.com/tapswitch/tapswitch/bench/issuersim"
	"github.com/tapswitch/tapswitch/bench/pos"
	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/bench/walletcli"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/settlement/transit"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// phoneWithBankCard is a wallet logged in on the dev world, with the
// world's bindable bank card bound through the four steps: what a new
// user has after the README's first steps. It returns the wallet CLI and
// the wallet file.
func phoneWithBankCard(t *testing.T, d *DevWorld) (func(args ...string) (int, string), string, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "phone.json")
	cli := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := walletcli.Run(append(args[:1:1], append([]string{"-wallet", file}, args[1:]...)...), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	must := func(args ...string) string {
		t.Helper()
		code, out := cli(args...)
		if code != 0 {
			t.Fatalf("wallet %v: exit %d: %s", args, code, out)
		}
		return out
	}
	card := d.Bindable
	must("login", "-api", d.Node.PublicURL(), "-login", "tess", "-password", "correct horse", "-create")
	must("add-card", "-pan", card.PAN.Clear(), "-expiry", card.Expiry, "-cvn2", card.CVN2().Clear())
	must("confirm", "-code", strings.TrimSpace(must("dev-code", "-data", d.Data)))
	return cli, file, "card-" + card.PAN.Clear()[len(card.PAN.Clear())-4:]
}

// Open a Beijing card paid by a bound bank card, load it, and see each
// leg where it belongs: the bank's hold, the operator's grants, the
// journal's entries, and the purse in the phone.
func TestOpenAndTopUpTransitCard(t *testing.T) {
	d, _ := startWorld(t)
	cli, file, bank := phoneWithBankCard(t, d)
	if code, out := cli("transit-open", "-operator", "BJT", "-card", bank, "-amount", "50.00"); code != 0 ||
		!strings.Contains(out, "opened BJT card") || !strings.Contains(out, "balance 50.00") {
		t.Fatalf("transit-open: exit %d: %s", code, out)
	}
	if code, out := cli("transit-topup", "-transit", "BJT", "-card", bank, "-amount", "20.00"); code != 0 ||
		!strings.Contains(out, "balance 70.00") {
		t.Fatalf("transit-topup: exit %d: %s", code, out)
	}
	w, err := wallet.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := w.TransitCard("BJT")
	if err != nil || tc.Balance != 7_000 || tc.LoadSequence != 2 || tc.Counter != 0 || len(w.TopUps) != 0 {
		t.Fatalf("purse %+v %v, pending %v", tc, err, w.TopUps)
	}
	purse, err := tc.Purse()
	if err != nil {
		t.Fatal(err)
	}
	masters, err := transit.LoadMasterKeys(d.OperatorKeyPath)
	if err != nil {
		t.Fatal(err)
	}
	if purse.Key != transit.PurseKey(masters["0010"], tc.Card) || !strings.HasPrefix(tc.Card, "99100001") {
		t.Fatal("the purse key is not the operator's derivation for the card")
	}
	// The purse key went to the phone once: its acknowledgement erased the
	// switch's sealed copy.
	d.Node.Journal.EachTopUp(func(jr journal.TopUpRecord) error {
		var r struct {
			Open           bool   `json:"open"`
			PurseKeySealed []byte `json:"purse_key_sealed"`
			KeyDelivered   bool   `json:"key_delivered"`
		}
		if err := json.Unmarshal(jr.Value, &r); err != nil {
			t.Fatal(err)
		}
		if r.Open && (len(r.PurseKeySealed) != 0 || !r.KeyDelivered) {
			t.Errorf("opening %s still holds the purse key (delivered %v)", jr.ID, r.KeyDelivered)
		}
		return nil
	})
	// The operator granted two loads; the bank holds both amounts.
	loads := d.Fleet.Issuer("BJT").Loads()
	if len(loads) != 2 || loads[0].Amount != 5_000 || loads[1].Amount != 2_000 || loads[1].Sequence != 2 {
		t.Fatalf("operator's loads %+v", loads)
	}
	acct, _ := d.Fleet.Issuer(d.Bindable.IssuerID).Account(d.Bindable.PAN.Clear())
	if acct.Held != 7_000 {
		t.Fatalf("bank holds %v, want 70.00", acct.Held)
	}
	// The journal: two bank legs approved, two loads approved with their purse load.
	var bankLegs, loadLegs int
	day := d.Node.Journal.BusinessDayOf(time.Now())
	d.Node.Journal.ScanDay(day, func(e journal.Entry) error {
		switch {
		case e.ProcessingCode == iso8583.ProcTransitTopUp && e.ResponseCode == "00" && e.Acquirer == "31000001":
			bankLegs++
		case (e.ProcessingCode == iso8583.ProcPurseOpen || e.ProcessingCode == iso8583.ProcPurseLoad) &&
			e.ResponseCode == "00" && e.PurseLoad != nil && e.Token == tc.Card:
			loadLegs++
		}
		return nil
	})
	if bankLegs != 2 || loadLegs != 2 {
		t.Fatalf("journal: %d bank legs, %d loads; want 2 and 2", bankLegs, loadLegs)
	}
}

// A load whose operator leg gets no answer takes no money: the bank leg
// is reversed, the operator's grant voided by the armed 0420, and the
// purse not credited.
func TestTopUpLoadTimeoutTakesNoMoney(t *testing.T) {
	d, _ := startWorld(t)
	cli, file, bank := phoneWithBankCard(t, d)
	if code, out := cli("transit-open", "-operator", "SPTC", "-card", bank, "-amount", "30.00"); code != 0 {
		t.Fatalf("transit-open: exit %d: %s", code, out)
	}
	issuer := d.Fleet.Issuer(d.Bindable.IssuerID)
	before, _ := issuer.Account(d.Bindable.PAN.Clear())
	// The operator answers too late: past the switch's 5 s load time-out.
	if err := d.Fleet.SetFaults("SPTC", issuersim.Faults{Latency: 6 * time.Second}); err != nil {
		t.Fatal(err)
	}
	code, out := cli("transit-topup", "-transit", "SPTC", "-card", bank, "-amount", "20.00")
	if code != 0 || !strings.Contains(out, "undone (rc 91); no money was taken") {
		t.Fatalf("transit-topup: exit %d: %s", code, out)
	}
	if err := d.Fleet.SetFaults("SPTC", issuersim.Faults{}); err != nil {
		t.Fatal(err)
	}
	w, _ := wallet.Load(file)
	if tc, _ := w.TransitCard("SPTC"); tc.Balance != 3_000 || tc.LoadSequence != 1 || len(w.TopUps) != 0 {
		t.Fatalf("purse %+v, pending %v: credited without a grant", tc, w.TopUps)
	}
	// The bank's hold of the load goes back (the 0420 is delivered by store
	// and forward), and the operator holds no grant of the load: voided by
	// the armed 0420, or refused as a late original once the 0420 came
	// first. To the fen.
	deadline := time.Now().Add(20 * time.Second)
	for {
		after, _ := issuer.Account(d.Bindable.PAN.Clear())
		loads := d.Fleet.Issuer("SPTC").Loads()
		standing := 0
		for _, l := range loads {
			if !l.Voided {
				standing++
			}
		}
		if after.Held == before.Held && after.Available == before.Available && standing == 1 && len(d.Node.LinksDown()) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bank held %v (before %v), operator loads %+v", after.Held, before.Held, loads)
		}
		time.Sleep(100 * time.Millisecond)
	}
	metrics := string(adminGet(t, d, "/metrics"))
	for _, want := range []string{`tapswitch_transit_topups_total{operator="SPTC",state="undone"} 1`,
		`tapswitch_transit_topups_total{operator="SPTC",state="loaded"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// The purse can still load at the sequence the void freed.
	if code, out := cli("transit-topup", "-transit", "SPTC", "-card", bank, "-amount", "10.00"); code != 0 ||
		!strings.Contains(out, "balance 40.00") {
		t.Fatalf("the next load: exit %d: %s", code, out)
	}
}

// adminGet fetches an admin path of the dev world.
func adminGet(t *testing.T, d *DevWorld, path string) []byte {
	t.Helper()
	resp, err := http.Get("http://" + d.Node.AdminAddr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return body
}

// Turning a lost phone off blacklists its transit cards in the next
// version of the file the gates load, and a gate holding it refuses the
// card offline; turning the phone on again takes the card off.
func TestLostPhoneBlacklistsItsTransitCards(t *testing.T) {
	d, _ := startWorld(t)
	cli, file, bank := phoneWithBankCard(t, d)
	if code, out := cli("transit-open", "-operator", "SZT", "-card", bank, "-amount", "30.00"); code != 0 {
		t.Fatalf("transit-open: exit %d: %s", code, out)
	}
	w, _ := wallet.Load(file)
	tc, _ := w.TransitCard("SZT")
	purse, err := tc.Purse()
	if err != nil {
		t.Fatal(err)
	}
	g, err := gate.Open(t.TempDir(), "075500000001", gate.Flat(200))
	if err != nil {
		t.Fatal(err)
	}
	save := func(transit.Purse) error { return nil }
	if err := g.LoadBlacklist(adminGet(t, d, "/admin/transit/blacklist")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := g.Tap(purse, save, time.Now()); err != nil {
		t.Fatalf("tap before the loss: %v", err)
	}

	status, body := apiCall(t, d.Node.PublicURL()+"/v1/devices/"+w.DeviceID+"/suspend", "POST", w.Session, "")
	if status != http.StatusOK {
		t.Fatalf("suspend: %d %s", status, body)
	}
	list := adminGet(t, d, "/admin/transit/blacklist")
	bl, faults, err := transit.ReadBlacklist(list)
	if err != nil || len(faults) != 0 || len(bl.Entries) != 1 || bl.Entries[0].Card != tc.Card ||
		bl.Entries[0].Reason != transit.ReasonLost || bl.Header.Version < 1 {
		t.Fatalf("blacklist after the loss: %+v %v %v", bl, faults, err)
	}
	if err := g.LoadBlacklist(list); err != nil {
		t.Fatal(err)
	}
	if _, _, err := g.Tap(purse, save, time.Now()); !errors.Is(err, gate.ErrBlacklisted) {
		t.Fatalf("the lost phone's card at the gate: %v", err)
	}
	// A gate offered the older list keeps the newer one.
	if err := g.LoadBlacklist(adminGet(t, d, "/admin/transit/blacklist")); err != nil {
		t.Fatalf("the same version again: %v", err)
	}

	// The owner finds the phone and turns it on from another device: the
	// card is off the next list.
	other := filepath.Join(t.TempDir(), "laptop.json")
	var out bytes.Buffer
	if code := walletcli.Run([]string{"login", "-wallet", other, "-api", d.Node.PublicURL(), "-login", "tess",
		"-password", "correct horse", "-device", "LAPTOP-1"}, &out, &out); code != 0 {
		t.Fatalf("login from the laptop: %s", out.String())
	}
	lw, _ := wallet.Load(other)
	status, body = apiCall(t, d.Node.PublicURL()+"/v1/devices/"+w.DeviceID+"/resume", "POST", lw.Session, `{"password": "correct horse"}`)
	if status != http.StatusOK {
		t.Fatalf("resume: %d %s", status, body)
	}
	list = adminGet(t, d, "/admin/transit/blacklist")
	if bl, _, _ := transit.ReadBlacklist(list); len(bl.Entries) != 0 || bl.Header.Version != 3 {
		t.Fatalf("blacklist after the phone was found: %+v", bl)
	}
	if err := g.LoadBlacklist(list); err != nil {
		t.Fatal(err)
	}
	if _, _, err := g.Tap(purse, save, time.Now()); err != nil {
		t.Fatalf("tap after the phone was found: %v", err)
	}
}

// prepared is a top-up as prepare answered it.
type prepared struct {
	ID    string            `json:"id"`
	State string            `json:"state"`
	RC    string            `json:"rc"`
	Card  string            `json:"card"`
	Leg   map[string]string `json:"bank_leg"`
}

// bankLeg packs the bank leg of p as the phone would, with edit applied to
// the tap first, and spends one counter of the wallet's card.
func bankLeg(t *testing.T, file, label string, p prepared, amount int64, edit func(*pos.Tap)) string {
	t.Helper()
	w, err := wallet.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	c, err := w.Card(label)
	if err != nil {
		t.Fatal(err)
	}
	key, err := c.TokenKey()
	if err != nil {
		t.Fatal(err)
	}
	atc := c.NextATC()
	if err := wallet.Save(file, w); err != nil {
		t.Fatal(err)
	}
	at, err := time.Parse(time.RFC3339, p.Leg["time"])
	if err != nil {
		t.Fatal(err)
	}
	tap := pos.Tap{
		Terminal: pos.Terminal{TerminalID: p.Leg["terminal_id"], MerchantID: p.Leg["merchant_id"],
			MerchantName: "TRANSIT TOP-UP", MCC: p.Leg["mcc"], Acquirer: p.Leg["acquirer"]},
		ProcessingCode: iso8583.ProcTransitTopUp, Token: c.Token, TokenExpiry: c.TokenExpiry,
		Amount: iso8583.Amount(amount), STAN: p.Leg["stan"], Time: at, Key: key, ATC: atc,
	}
	if edit != nil {
		edit(&tap)
	}
	packed, err := iso8583.Pack(tap.Message())
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(packed)
}

// Each refusal of a top-up, attacked on a running switch over HTTP: a
// phone may pay only its own prepared top-up, with the bank leg exactly as
// prepared and a cryptogram for that terminal, and a purse request the
// purse signed; anything else moves no money.
func TestTopUpAttacks(t *testing.T) {
	d, _ := startWorld(t)
	cli, file, bank := phoneWithBankCard(t, d)
	if code, out := cli("transit-open", "-operator", "WHT", "-card", bank, "-amount", "20.00"); code != 0 {
		t.Fatalf("transit-open: exit %d: %s", code, out)
	}
	w, _ := wallet.Load(file)
	tc, _ := w.TransitCard("WHT")
	bankCard, _ := w.Card(bank)
	api := d.Node.PublicURL() + "/v1/devices/" + w.DeviceID + "/transit/topups"
	issuer := d.Fleet.Issuer(d.Bindable.IssuerID)
	before, _ := issuer.Account(d.Bindable.PAN.Clear())
	prepare := func(body string) prepared {
		t.Helper()
		status, out := apiCall(t, api, "POST", w.Session, body)
		if status != http.StatusCreated {
			t.Fatalf("prepare %s: %d %s", body, status, out)
		}
		var p prepared
		if err := json.Unmarshal([]byte(out), &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	loadBody := fmt.Sprintf(`{"card": %q, "token": %q, "amount": 500}`, tc.Card, bankCard.Token)
	purse := func(edit func(*transit.LoadRequest)) string {
		p, _ := tc.Purse()
		r, err := p.LoadRequest(500)
		if err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			edit(&r)
			if r.Amount == 500 && r.Balance == tc.Balance {
				r.MAC[0] ^= 1 // the phone forges MAC1
			}
		}
		return fmt.Sprintf(`"purse": {"card": %q, "amount": %d, "balance": %d, "counter": %d, "sequence": %d, "mac": %q}`,
			r.Card, r.Amount, r.Balance, r.Counter, r.Sequence, hex.EncodeToString(r.MAC[:]))
	}
	pay := func(p prepared, leg, purseJSON string) (int, prepared) {
		t.Helper()
		body := fmt.Sprintf(`{"bank_leg": %q, %s}`, leg, purseJSON)
		status, out := apiCall(t, api+"/"+p.ID+"/pay", "POST", w.Session, body)
		var got prepared
		json.Unmarshal([]byte(out), &got)
		return status, got
	}

	// Refused before any money moves.
	for _, tc := range []struct{ name, body, want string }{
		{"another account's token", `{"operator": "WHT", "token": "6299900000000000017", "amount": 500}`, "not_found"},
		{"an unknown operator", fmt.Sprintf(`{"operator": "XYZ", "token": %q, "amount": 500}`, bankCard.Token), "bad_operator"},
		{"a card of no operator", fmt.Sprintf(`{"card": "1234567890123456789", "token": %q, "amount": 500}`, bankCard.Token), "bad_operator"},
		{"a zero amount", fmt.Sprintf(`{"operator": "WHT", "token": %q, "amount": 0}`, bankCard.Token), "bad_amount"},
	} {
		status, out := apiCall(t, api, "POST", w.Session, tc.body)
		if status < 400 || !strings.Contains(out, tc.want) {
			t.Errorf("%s: %d %s, want %s", tc.name, status, out, tc.want)
		}
	}
	p := prepare(loadBody)
	for _, tc := range []struct {
		name string
		edit func(*pos.Tap)
	}{
		{"a larger amount than prepared", func(tp *pos.Tap) { tp.Amount = 50_000 }},
		{"another STAN", func(tp *pos.Tap) { tp.STAN = "999999" }},
		{"another merchant", func(tp *pos.Tap) { tp.Terminal.MerchantID = "104110054110001" }},
		{"a purchase instead of a top-up", func(tp *pos.Tap) { tp.ProcessingCode = iso8583.ProcPurchase }},
	} {
		if status, _ := pay(p, bankLeg(t, file, bank, p, 500, tc.edit), purse(nil)); status != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", tc.name, status)
		}
	}
	// Another account cannot pay, nor see, this phone's top-up.
	status, _ := apiCall(t, d.Node.PublicURL()+"/v1/devices/"+w.DeviceID+"/transit/topups/"+p.ID, "GET", "not-a-session", "")
	if status != http.StatusUnauthorized {
		t.Errorf("a stranger's GET: %d", status)
	}

	// A replayed counter (the opening's cryptogram counter again): the bank
	// leg is declined 59 and nothing else runs.
	if status, got := pay(p, bankLeg(t, file, bank, p, 500, func(tp *pos.Tap) { tp.ATC = 1 }), purse(nil)); status != http.StatusOK ||
		got.State != "declined" || got.RC != "59" {
		t.Errorf("a replayed cryptogram counter: %d %+v, want declined 59", status, got)
	}
	// A purse request the purse did not sign: the operator refuses it 63,
	// and the bank leg is reversed.
	p = prepare(loadBody)
	if status, got := pay(p, bankLeg(t, file, bank, p, 500, nil), purse(func(r *transit.LoadRequest) {})); status != http.StatusOK ||
		got.State != "undone" || got.RC != "63" {
		t.Errorf("a forged MAC1: %d %+v, want undone 63", status, got)
	}
	// Paying an undone top-up again does nothing new.
	if status, got := pay(p, bankLeg(t, file, bank, p, 500, nil), purse(nil)); status != http.StatusOK || got.State != "undone" {
		t.Errorf("paying again: %d %+v", status, got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		after, _ := issuer.Account(d.Bindable.PAN.Clear())
		if after.Held == before.Held {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bank holds %v after the attacks, %v before", after.Held, before.Held)
		}
		time.Sleep(50 * time.Millisecond)
	}
	w, _ = wallet.Load(file)
	if got, _ := w.TransitCard("WHT"); got.Balance != 2_000 || got.LoadSequence != 1 {
		t.Fatalf("the purse moved: %+v", got)
	}
}
