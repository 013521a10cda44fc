package tokensvc_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/sms"
	"github.com/tapswitch/tapswitch/switch/tokensvc"
	"github.com/tapswitch/tapswitch/switch/tokensvc/tokensvctest"
	"github.com/tapswitch/tapswitch/switch/vault"
)

func TestFourStepsBindACard(t *testing.T) {
	w := tokensvctest.Start(t)
	c := newUser(t, w, "alice")
	card := w.Cards[tokensvctest.CardGood]

	r := c.want(c.addCard("PHONE-A", card.PAN.Clear(), card.Expiry, card.CVN2().Clear()), 202, "")
	id := r.str("binding_id")
	if len(id) != 32 || r.str("card") != card.PAN.String() || r.num("attempts") != 5 || r.str("code_sent_to") != card.Phone.Masked() {
		t.Fatalf("add card answer %s", r.raw)
	}
	// The issuer got an account verification and posted nothing.
	recv := w.Fleet.Issuer(card.IssuerID).Received()
	last := recv[len(recv)-1]
	if last.MTI != "0100" || last.PAN != card.PAN || last.Expiry != card.Expiry || last.TokenData.DeviceID != "PHONE-A" ||
		last.TokenData.RequestorID != tokensvctest.RequestorID || last.TokenData.Token != "" {
		t.Fatalf("issuer received %+v", last)
	}
	if n := len(w.Fleet.Issuer(card.IssuerID).Ledger()); n != 0 {
		t.Fatalf("the verification posted %d ledger entries", n)
	}
	// One SMS, to the cardholder's phone the issuer named (the outbox
	// shows it masked), with a 6-digit code.
	msg, err := sms.Latest(w.Outbox, id)
	if err != nil || msg.ToMasked != card.Phone.Masked() || strings.Contains(msg.Text, "alice") {
		t.Fatalf("outbox: %+v, %v", msg, err)
	}
	code := w.Code(t, id)

	r = c.want(c.do("POST", "/v1/bindings/"+id+"/confirm", map[string]string{"code": code}), 201, "")
	token := r.str("token")
	switch {
	case !strings.HasPrefix(token, tokensvctest.TokenBIN) || len(token) != 16 || !iso8583.LuhnValid(token):
		t.Fatalf("token %q is not a Luhn-valid number of the token BIN", token)
	case token == card.PAN.Clear():
		t.Fatal("token equals the PAN")
	case r.str("key") != hex.EncodeToString(w.Keys.TokenKey(token)):
		t.Fatalf("key %q is not the token's key", r.str("key"))
	case r.str("device_id") != "PHONE-A" || r.str("status") != "active" || r.body["contactless_only"] != true:
		t.Fatalf("confirm answer %s", r.raw)
	case r.str("token_expiry") > card.Expiry:
		t.Fatalf("token expiry %s after the card's %s", r.str("token_expiry"), card.Expiry)
	}
	tok, err := w.Vault.Get(token)
	if err != nil || tok.PAN != card.PAN || tok.DeviceID != "PHONE-A" || tok.WalletAccount != "alice" ||
		tok.Status != vault.StatusActive || !tok.Domain.ContactlessOnly || tok.CardExpiry != card.Expiry ||
		tok.RequestorID != tokensvctest.RequestorID {
		t.Fatalf("vault holds %+v, %v", tok, err)
	}

	// The key was handed over once: the confirmation again is 410 without
	// it, and the list has no key.
	r = c.want(c.do("POST", "/v1/bindings/"+id+"/confirm", map[string]string{"code": code}), 410, "already_confirmed")
	l := c.want(c.do("GET", "/v1/devices/PHONE-A/tokens", nil), 200, "")
	for _, rr := range []reply{r, l} {
		if strings.Contains(rr.raw, "key") || strings.Contains(rr.raw, hex.EncodeToString(w.Keys.TokenKey(token))) {
			t.Fatalf("a later answer carries the key: %s", rr.raw)
		}
	}
	tokens := l.body["tokens"].([]any)
	if len(tokens) != 1 {
		t.Fatalf("list %s", l.raw)
	}
	view := tokens[0].(map[string]any)
	if view["token"] != token || view["card"] != card.PAN.String() || view["status"] != "active" || view["issuer"] != "ICBC" {
		t.Fatalf("list entry %v", view)
	}
	if strings.Contains(l.raw, card.PAN.Clear()) {
		t.Fatal("the list shows the clear PAN")
	}
	d := c.want(c.do("GET", "/v1/devices", nil), 200, "")
	if !strings.Contains(d.raw, `"device_id": "PHONE-A"`) || !strings.Contains(d.raw, `"active": 1`) {
		t.Fatalf("devices %s", d.raw)
	}
	assertNoSecrets(t, w, card.PAN.Clear(), card.CVN2().Clear(), code, password, c.session, hex.EncodeToString(w.Keys.TokenKey(token)))
	a := c.want(c.do("GET", "/v1/audit", nil), 200, "")
	if strings.Contains(a.raw, card.PAN.Clear()) || strings.Contains(a.raw, code) || !strings.Contains(a.raw, card.PAN.String()) {
		t.Fatalf("audit trail %s", a.raw)
	}
	// The service's own store (WAL included) holds no clear PAN, session,
	// password or key either.
	assertNotInFiles(t, w.DataDir, card.PAN.Clear(), c.session, password, hex.EncodeToString(w.Keys.TokenKey(token)))
}

func assertNotInFiles(t *testing.T, dir string, secrets ...string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds a secret (%d chars)", path, len(s))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestAccountsAndSessions(t *testing.T) {
	w := tokensvctest.Start(t)
	c := newUser(t, w, "bob")
	anon := &client{t: t, w: w}
	anon.want(anon.do("POST", "/v1/accounts", map[string]string{"login": "bob", "password": "another password"}), 409, "account_exists")
	anon.want(anon.do("POST", "/v1/accounts", map[string]string{"login": "x/y", "password": "another password"}), 400, "bad_login")
	anon.want(anon.do("POST", "/v1/accounts", map[string]string{"login": "carol", "password": "short"}), 400, "bad_password")
	anon.want(anon.do("POST", "/v1/accounts", `{"login": "carol", "password": "long enough", "admin": true}`), 400, "bad_json")
	anon.want(anon.do("POST", "/v1/accounts", `{"login": "carol"`), 400, "bad_json")
	anon.want(anon.do("POST", "/v1/accounts", `{"login":"`+strings.Repeat("a", 5000)+`"}`), 413, "body_too_large")
	anon.want(anon.do("POST", "/v1/sessions", map[string]string{"login": "bob", "password": "wrong password"}), 401, "wrong_credentials")
	anon.want(anon.do("POST", "/v1/sessions", map[string]string{"login": "nobody", "password": "wrong password"}), 401, "wrong_credentials")

	// No session, an unknown one, an expired one.
	anon.want(anon.do("GET", "/v1/devices", nil), 401, "no_session")
	anon.session = "not-a-session"
	anon.want(anon.do("GET", "/v1/devices", nil), 401, "unknown_session")
	c.want(c.do("GET", "/v1/devices", nil), 200, "")
	w.Clock.Advance(15*time.Minute + time.Second)
	c.want(c.do("GET", "/v1/devices", nil), 401, "session_expired")
	c.want(c.do("POST", "/v1/devices/PHONE-B/cards", map[string]string{"pan": "6222028000000018", "expiry": "3001", "cvn2": "123"}),
		401, "session_expired")

	// Log in again; log out ends the session.
	r := c.want(c.do("POST", "/v1/sessions", map[string]string{"login": "bob", "password": password}), 201, "")
	c.session = r.str("session")
	c.want(c.do("DELETE", "/v1/sessions", nil), 200, "")
	c.want(c.do("GET", "/v1/devices", nil), 401, "unknown_session")
	c.want(c.do("GET", "/v1/nothing", nil), 404, "no_such_endpoint")
}

func TestBadCardInput(t *testing.T) {
	w := tokensvctest.Start(t)
	c := newUser(t, w, "frank")
	good := w.Cards[tokensvctest.CardGood]
	pan, exp, cvn := good.PAN.Clear(), good.Expiry, good.CVN2().Clear()
	badLuhn := pan[:15] + string('0'+(pan[15]-'0'+1)%10)
	tests := []struct {
		name, device, pan, expiry, cvn2 string
		status                          int
		code                            string
	}{
		{"bad Luhn", "PHONE-F", badLuhn, exp, cvn, 400, "bad_pan"},
		{"letters", "PHONE-F", "62220280000000a8", exp, cvn, 400, "bad_pan"},
		{"short", "PHONE-F", "622202", exp, cvn, 400, "bad_pan"},
		{"month 13", "PHONE-F", pan, "3013", cvn, 400, "bad_expiry"},
		{"2-digit CVN2", "PHONE-F", pan, exp, "12", 400, "bad_cvn2"},
		{"bad device", "PHONE F", pan, exp, cvn, 400, "bad_device"},
		{"unknown BIN", "PHONE-F", "4111111111111111", exp, cvn, 402, "card_declined"},
		{"issuer not connected", "PHONE-F", luhn("6228488000000"), exp, cvn, 503, "no_route"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.t = t
			r := c.want(c.addCard(strings.ReplaceAll(tt.device, " ", "%20"), tt.pan, tt.expiry, tt.cvn2), tt.status, tt.code)
			if strings.Contains(r.raw, tt.pan) || (len(tt.cvn2) == 3 && strings.Contains(r.raw, tt.cvn2)) {
				t.Fatalf("the answer repeats the card details: %s", r.raw)
			}
		})
	}
	c.t = t
	assertNothingCreated(t, w, "frank", "PHONE-F")
}

func luhn(body string) string { return body + string(iso8583.LuhnCheckDigit(body)) }

func TestIssuerDeclines(t *testing.T) {
	w := tokensvctest.Start(t)
	c := newUser(t, w, "grace")
	good := w.Cards[tokensvctest.CardGood]
	wrongCVN2 := fmt.Sprintf("%03d", (atoi(good.CVN2().Clear())+1)%1000)
	card := func(label string) (string, string, string) {
		c := w.Cards[label]
		return c.PAN.Clear(), c.Expiry, c.CVN2().Clear()
	}
	tests := []struct {
		name, pan, expiry, cvn2, issuerCode string
	}{
		{"wrong CVN2", good.PAN.Clear(), good.Expiry, wrongCVN2, "05"},
		{"wrong expiry", good.PAN.Clear(), "3912", good.CVN2().Clear(), "54"},
		{"blocked", "", "", "", "05"},
		{"expired", "", "", "", "54"},
		{"unknown at the issuer", "", "", "", "14"},
		{"no phone on the issuer's file", "", "", "", "00 without tag 05"},
		{"BIN of no issuer", "4111111111111111", good.Expiry, good.CVN2().Clear(), "none"},
	}
	for i, label := range []string{tokensvctest.CardBlocked, tokensvctest.CardExpired, tokensvctest.CardUnknown, tokensvctest.CardNoPhone} {
		tests[2+i].pan, tests[2+i].expiry, tests[2+i].cvn2 = card(label)
	}
	// Every failure is answered alike, so the answers are no oracle for a
	// card tester: the same status and the same body, byte for byte.
	var first string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.t = t
			start := time.Now()
			r := c.want(c.addCard("PHONE-G", tt.pan, tt.expiry, tt.cvn2), 402, "card_declined")
			if took := time.Since(start); took < tokensvc.VerifyFailureAnswerMin {
				t.Fatalf("answered in %v, sooner than the floor every failure waits out", took)
			}
			if first == "" {
				first = r.raw
			}
			if r.raw != first || r.header.Get("Retry-After") != "" {
				t.Fatalf("answer %s differs from %s", r.raw, first)
			}
		})
	}
	c.t = t
	if _, err := os.Stat(w.Outbox); !os.IsNotExist(err) {
		t.Fatalf("a declined card sent an SMS: %v", err)
	}
	assertNothingCreated(t, w, "grace", "PHONE-G")
	audit := c.want(c.do("GET", "/v1/audit", nil), 200, "")
	// The audit trail keeps the real reasons.
	if strings.Count(audit.raw, `"declined 05"`) != 2 || strings.Count(audit.raw, `"declined 54"`) != 2 ||
		strings.Count(audit.raw, `"declined 14"`) != 1 || strings.Count(audit.raw, `"unknown_bin:`) != 1 ||
		strings.Count(audit.raw, `named no phone`) != 1 {
		t.Fatalf("audit %s", audit.raw)
	}

	// An issuer that is down: 503, and nothing either.
	w.Fleet.Down("ICBC")
	defer w.Fleet.Up("ICBC")
	r := c.want(c.addCard("PHONE-G", good.PAN.Clear(), good.Expiry, good.CVN2().Clear()), 503, "issuer_unavailable")
	if r.str("issuer_code") != "91" {
		t.Fatalf("answer %s", r.raw)
	}
	assertNothingCreated(t, w, "grace", "PHONE-G")
	assertNoSecrets(t, w, good.PAN.Clear(), wrongCVN2, good.CVN2().Clear())
}

func atoi(s string) int {
	n := 0
	fmt.Sscan(s, &n)
	return n
}

func TestCardVerificationsAreBounded(t *testing.T) {
	w := tokensvctest.Start(t)
	c := newUser(t, w, "heidi")
	good := w.Cards[tokensvctest.CardGood]
	// Ten numbers of no issuer, each from its own device, so that only the
	// account's own bound is reached.
	for i := range 10 {
		c.want(c.addCard(fmt.Sprintf("PHONE-H%d", i), luhn(fmt.Sprintf("411111000000%03d", i)), good.Expiry, "123"), 402, "card_declined")
	}
	r := c.want(c.addCard("PHONE-H", good.PAN.Clear(), good.Expiry, good.CVN2().Clear()), 429, "too_many_verifications")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	w.Clock.Advance(time.Hour)
	c = &client{t: t, w: w}
	c.session = c.want(c.do("POST", "/v1/sessions", map[string]string{"login": "heidi", "password": password}), 201, "").str("session")
	c.want(c.addCard("PHONE-H", good.PAN.Clear(), good.Expiry, good.CVN2().Clear()), 202, "")
}

func TestWrongCodesAndTooManyAttempts(t *testing.T) {
	w := tokensvctest.Start(t)
	c := newUser(t, w, "ivan")
	good := w.Cards[tokensvctest.CardGood]
	r := c.want(c.addCard("PHONE-I", good.PAN.Clear(), good.Expiry, good.CVN2().Clear()), 202, "")
	id := r.str("binding_id")
	code := w.Code(t, id)
	wrong := fmt.Sprintf("%06d", (atoi(code)+1)%1_000_000)
	for left := 4; left >= 1; left-- {
		r := c.want(c.do("POST", "/v1/bindings/"+id+"/confirm", map[string]string{"code": wrong}), 400, "wrong_code")
		if r.num("attempts_left") != left {
			t.Fatalf("attempts_left %d, want %d", r.num("attempts_left"), left)
		}
	}
	c.want(c.do("POST", "/v1/bindings/"+id+"/confirm", map[string]string{"code": "12ab"}), 410, "too_many_attempts")
	// Now even the right code is refused, and nothing was made.
	c.want(c.do("POST", "/v1/bindings/"+id+"/confirm", map[string]string{"code": code}), 410, "too_many_attempts")
	assertNothingCreated(t, w, "ivan", "PHONE-I")
	assertNoSecrets(t, w, code, wrong)
}

func TestExpiredCode(t *testing.T) {
	w := tokensvctest.Start(t)
	c := newUser(t, w, "judy")
	good := w.Cards[tokensvctest.CardGood2]
	r := c.want(c.addCard("PHONE-J", good.PAN.Clear(), good.Expiry, good.CVN2().Clear()), 202, "")
	id := r.str("binding_id")
	code := w.Code(t, id)
	w.Clock.Advance(5*time.Minute + time.Second)
	// The session is still live (15 minutes); the code is not.
	c.want(c.do("POST", "/v1/bindings/"+id+"/confirm", map[string]string{"code": code}), 410, "code_expired")
	c.want(c.do("POST", "/v1/bindings/"+id+"/confirm", map[string]string{"code": code}), 410, "code_expired")
	assertNothingCreated(t, w, "judy", "PHONE-J")
	// Five minutes on, the next card deletes the old binding: 404 from then.
	w.Clock.Advance(5 * time.Minute)
	c.want(c.addCard("PHONE-J", good.PAN.Clear(), good.Expiry, good.CVN2().Clear()), 202, "")
	c.want(c.do("POST", "/v1/bindings/"+id+"/confirm", map[string]string{"code": code}), 404, "not_found")
	c.want(c.do("POST", "/v1/bindings/0123456789abcdef0123456789abcdef/confirm", map[string]string{"code": code}), 404, "not_found")
	c.want(c.do("POST", "/v1/bindings/nope/confirm", map[string]string{"code": code}), 404, "not_found")
}

func TestAnotherAccountsTokensDevicesAndBindings(t *testing.T) {
	w := tokensvctest.Start(t)
	alice := newUser(t, w, "alice")
	mallory := newUser(t, w, "mallory")
	token := alice.bind("PHONE-A", tokensvctest.CardGood).str("token")
	alice.bind("PHONE-A2", tokensvctest.CardGood2)

	// Mallory's answers are the ones a token or device that does not exist
	// gets.
	for _, path := range []string{
		"/v1/tokens/" + token + "/suspend", "/v1/tokens/" + token + "/delete",
		"/v1/devices/PHONE-A/tokens/" + token + "/suspend",
		"/v1/devices/PHONE-A/suspend",
	} {
		mallory.want(mallory.do("POST", path, nil), 404, "not_found")
	}
	// Resumes need her own password, and then they are not found either.
	for _, path := range []string{"/v1/devices/PHONE-A/resume", "/v1/tokens/" + token + "/resume",
		"/v1/devices/PHONE-A/tokens/" + token + "/resume"} {
		mallory.want(mallory.do("POST", path, withPassword(password)), 404, "not_found")
	}
	mallory.want(mallory.do("GET", "/v1/devices/PHONE-A/tokens", nil), 404, "not_found")
	mallory.want(mallory.do("POST", "/v1/tokens/6299900000000000/suspend", nil), 404, "not_found")
	good := w.Cards[tokensvctest.CardGood]
	mallory.want(mallory.addCard("PHONE-A", good.PAN.Clear(), good.Expiry, good.CVN2().Clear()), 404, "not_found")
	// Nor can she confirm Alice's binding, even with the code.
	r := alice.want(alice.addCard("PHONE-A", good.PAN.Clear(), good.Expiry, good.CVN2().Clear()), 202, "")
	id := r.str("binding_id")
	mallory.want(mallory.do("POST", "/v1/bindings/"+id+"/confirm", map[string]string{"code": w.Code(t, id)}), 404, "not_found")
	if tok, _ := w.Vault.Get(token); tok.Status != vault.StatusActive {
		t.Fatalf("status %s after another account's calls", tok.Status)
	}

	// Alice's token, named with her other device: not found either.
	alice.want(alice.do("POST", "/v1/devices/PHONE-A2/tokens/"+token+"/suspend", nil), 404, "not_found")
	alice.want(alice.do("POST", "/v1/devices/PHONE-A/tokens/"+token+"/suspend", nil), 200, "")
	mallory.want(mallory.do("GET", "/v1/audit", nil), 200, "")
	if a := mallory.do("GET", "/v1/audit", nil); strings.Contains(a.raw, "PHONE-A") {
		t.Fatalf("mallory's audit shows alice's device: %s", a.raw)
	}
}

func TestTokenAndDeviceLifecycle(t *testing.T) {
	w := tokensvctest.Start(t)
	c := newUser(t, w, "kim")
	t1 := c.bind("PHONE-K", tokensvctest.CardGood).str("token")
	t2 := c.bind("PHONE-K", tokensvctest.CardGood2).str("token")
	status := func(token string) vault.Status {
		tok, err := w.Vault.Get(token)
		if err != nil {
			t.Fatal(err)
		}
		return tok.Status
	}
	want := func(s1, s2 vault.Status) {
		t.Helper()
		if status(t1) != s1 || status(t2) != s2 {
			t.Fatalf("statuses %s %s, want %s %s", status(t1), status(t2), s1, s2)
		}
	}
	r := c.want(c.do("POST", "/v1/tokens/"+t1+"/suspend", nil), 200, "")
	if r.body["changed"] != true {
		t.Fatalf("suspend %s", r.raw)
	}
	want(vault.StatusSuspended, vault.StatusActive)
	if r := c.want(c.do("POST", "/v1/tokens/"+t1+"/suspend", nil), 200, ""); r.body["changed"] != false {
		t.Fatalf("suspending again changed something: %s", r.raw)
	}
	c.want(c.do("POST", "/v1/tokens/"+t1+"/resume", withPassword(password)), 200, "")
	want(vault.StatusActive, vault.StatusActive)
	c.want(c.do("POST", "/v1/tokens/"+t1+"/frobnicate", nil), 404, "no_such_endpoint")

	// t2 is suspended on its own; then the phone is lost.
	c.want(c.do("POST", "/v1/tokens/"+t2+"/suspend", nil), 200, "")
	r = c.want(c.do("POST", "/v1/devices/PHONE-K/suspend", nil), 200, "")
	if r.num("suspended") != 1 || r.body["off"] != true {
		t.Fatalf("device suspend %s", r.raw)
	}
	want(vault.StatusSuspended, vault.StatusSuspended)
	// While off: no token resumes alone, no card is added.
	c.want(c.do("POST", "/v1/tokens/"+t1+"/resume", withPassword(password)), 409, "device_off")
	good := w.Cards[tokensvctest.CardGood]
	c.want(c.addCard("PHONE-K", good.PAN.Clear(), good.Expiry, good.CVN2().Clear()), 409, "device_off")
	l := c.want(c.do("GET", "/v1/devices/PHONE-K/tokens", nil), 200, "")
	if l.body["off"] != true {
		t.Fatalf("list %s", l.raw)
	}
	// Found again: the device's tokens come back, t2 stays suspended.
	r = c.want(c.do("POST", "/v1/devices/PHONE-K/resume", withPassword(password)), 200, "")
	if r.num("resumed") != 1 {
		t.Fatalf("device resume %s", r.raw)
	}
	want(vault.StatusActive, vault.StatusSuspended)
	c.want(c.do("POST", "/v1/devices/PHONE-K/resume", withPassword(password)), 200, "")

	c.want(c.do("POST", "/v1/tokens/"+t2+"/delete", nil), 200, "")
	want(vault.StatusActive, vault.StatusDeleted)
	c.want(c.do("POST", "/v1/tokens/"+t2+"/resume", withPassword(password)), 409, "token_deleted")
	c.want(c.do("POST", "/v1/tokens/"+t2+"/suspend", nil), 409, "token_deleted")
	l = c.want(c.do("GET", "/v1/devices/PHONE-K/tokens", nil), 200, "")
	if strings.Contains(l.raw, t2) {
		t.Fatalf("a deleted token is listed: %s", l.raw)
	}
	l = c.want(c.do("GET", "/v1/devices/PHONE-K/tokens?deleted=true", nil), 200, "")
	if !strings.Contains(l.raw, t2) {
		t.Fatalf("?deleted=true leaves out the deleted token: %s", l.raw)
	}

	// The audit trail has every change, newest first, PANs masked.
	a := c.want(c.do("GET", "/v1/audit?limit=500", nil), 200, "")
	var actions []string
	for _, rec := range a.body["records"].([]any) {
		actions = append(actions, rec.(map[string]any)["action"].(string))
	}
	wantActions := []string{"token.delete", "device.resume", "device.suspend", "token.suspend", "token.resume",
		"token.suspend", "token.create", "binding.create", "token.create", "binding.create", "session.create", "account.create"}
	if strings.Join(actions, " ") != strings.Join(wantActions, " ") {
		t.Fatalf("audit actions\n got %v\nwant %v", actions, wantActions)
	}
	page := c.want(c.do("GET", "/v1/audit?limit=2", nil), 200, "")
	recs := page.body["records"].([]any)
	before := int(recs[1].(map[string]any)["seq"].(float64))
	next := c.want(c.do("GET", fmt.Sprintf("/v1/audit?limit=2&before=%d", before), nil), 200, "")
	if got := next.body["records"].([]any)[0].(map[string]any)["action"]; got != "device.suspend" {
		t.Fatalf("second page starts with %v", got)
	}
	c.want(c.do("GET", "/v1/audit?limit=0", nil), 400, "bad_limit")
	assertNoSecrets(t, w, good.PAN.Clear(), w.Cards[tokensvctest.CardGood2].PAN.Clear())
}

// TestDevDeviceFromTheVault: tokens put in the vault by other means (the
// dev demo wallet) are manageable by the account they name.
func TestDeviceKnownOnlyToTheVault(t *testing.T) {
	w := tokensvctest.Start(t)
	c := newUser(t, w, "dev@wallet")
	other := newUser(t, w, "someone")
	good := w.Cards[tokensvctest.CardGood]
	token := luhn("629990123456789")
	if err := w.Vault.Put(vault.Token{Token: iso8583.PAN(token), PAN: good.PAN, CardExpiry: good.Expiry, TokenExpiry: good.Expiry,
		Status: vault.StatusActive, DeviceID: "DEV-PHONE-0001", WalletAccount: "dev@wallet", RequestorID: tokensvctest.RequestorID,
		CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	other.want(other.do("GET", "/v1/devices/DEV-PHONE-0001/tokens", nil), 404, "not_found")
	other.want(other.do("POST", "/v1/devices/DEV-PHONE-0001/suspend", nil), 404, "not_found")
	c.want(c.do("GET", "/v1/devices/DEV-PHONE-0001/tokens", nil), 200, "")
	c.want(c.do("POST", "/v1/devices/DEV-PHONE-0001/suspend", nil), 200, "")
	if tok, _ := w.Vault.Get(token); tok.Status != vault.StatusSuspended {
		t.Fatalf("status %s", tok.Status)
	}
	c.want(c.do("POST", "/v1/devices/DEV-PHONE-0001/resume", withPassword(password)), 200, "")
	if tok, _ := w.Vault.Get(token); tok.Status != vault.StatusActive {
		t.Fatalf("status %s", tok.Status)
	}
	other.want(other.do("GET", "/v1/devices/DEV-PHONE-0001/tokens", nil), 404, "not_found")
}

// assertNothingCreated: the account has no token on the device and no
// binding waiting for a code.
func assertNothingCreated(t *testing.T, w *tokensvctest.World, login, device string) {
	t.Helper()
	tokens, err := w.Vault.TokensForDevice(device)
	if err != nil || len(tokens) != 0 {
		t.Fatalf("device %s has tokens %v, %v", device, tokens, err)
	}
	c := &client{t: t, w: w}
	r := c.want(c.do("POST", "/v1/sessions", map[string]string{"login": login, "password": password}), 201, "")
	c.session = r.str("session")
	c.want(c.do("GET", "/v1/devices/"+device+"/tokens", nil), 404, "not_found")
}

// assertNoSecrets: none of the secrets is in the logs or in the audit
// trail's store values as read through the API.
func assertNoSecrets(t *testing.T, w *tokensvctest.World, secrets ...string) {
	t.Helper()
	logs := w.Logs.String()
	if len(logs) == 0 {
		t.Fatal("no log lines captured")
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			t.Fatalf("a secret (%d chars) is in the log", len(s))
		}
	}
}

func TestPendingBindingsAreBounded(t *testing.T) {
	w := tokensvctest.Start(t)
	c := newUser(t, w, "olga")
	good := w.Cards[tokensvctest.CardGood]
	var ids []string
	for range 4 {
		ids = append(ids, c.want(c.addCard("PHONE-O", good.PAN.Clear(), good.Expiry, good.CVN2().Clear()), 202, "").str("binding_id"))
	}
	c.want(c.addCard("PHONE-O", good.PAN.Clear(), good.Expiry, good.CVN2().Clear()), 429, "too_many_pending")
	// Confirming one makes room; each binding has its own code.
	c.want(c.do("POST", "/v1/bindings/"+ids[2]+"/confirm", map[string]string{"code": w.Code(t, ids[2])}), 201, "")
	c.want(c.addCard("PHONE-O", good.PAN.Clear(), good.Expiry, good.CVN2().Clear()), 202, "")
}
