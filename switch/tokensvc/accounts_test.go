package tokensvc_test

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/switch/tokensvc"
	"github.com/tapswitch/tapswitch/switch/tokensvc/tokensvctest"
)

// Addresses of the throttle tests: two clients on loopback.
const (
	ownerAddr    = "127.0.0.1"
	attackerAddr = "127.0.0.2"
)

// sameAnswer fails unless a and b are the same answer byte for byte:
// status, body, and the headers a client could tell them apart by.
func sameAnswer(t *testing.T, what string, a, b reply) {
	t.Helper()
	if a.status != b.status || a.raw != b.raw {
		t.Fatalf("%s: answers differ:\n%d %s\n%d %s", what, a.status, a.raw, b.status, b.raw)
	}
	for k := range a.header {
		if k == "Date" {
			continue
		}
		if a.header.Get(k) != b.header.Get(k) {
			t.Fatalf("%s: header %s differs: %q vs %q", what, k, a.header.Get(k), b.header.Get(k))
		}
	}
	if len(a.header) != len(b.header) {
		t.Fatalf("%s: headers differ: %v vs %v", what, a.header, b.header)
	}
}

// TestLoginFailuresTellNoAccountFromAnother: a wrong password and an
// unknown login get byte-identical answers, each after one password hash
// (counted through the service's hasher, not timed), and so do their
// throttled answers.
func TestLoginFailuresTellNoAccountFromAnother(t *testing.T) {
	w := tokensvctest.Start(t)
	newUser(t, w, "dave")
	hashes := tokensvc.CountHashes(w.Service)
	c := &client{t: t, w: w}
	try := func(login string) (reply, int64) {
		t.Helper()
		before := hashes()
		r := c.do("POST", "/v1/sessions", map[string]string{"login": login, "password": "not the password"})
		return r, hashes() - before
	}
	for i := range 5 {
		known, knownHashes := try("dave")
		unknown, unknownHashes := try("nobody")
		c.want(known, 401, "wrong_credentials")
		sameAnswer(t, "attempt "+strconv.Itoa(i+1), known, unknown)
		if knownHashes != 1 || unknownHashes != 1 {
			t.Fatalf("attempt %d: %d hashes for a known login, %d for an unknown one; want 1 and 1", i+1, knownHashes, unknownHashes)
		}
	}
	// Each login's bucket from this address is empty now: both throttled
	// alike, with no hash at all.
	known, knownHashes := try("dave")
	unknown, unknownHashes := try("nobody")
	c.want(known, 429, "too_many_failures")
	sameAnswer(t, "throttled", known, unknown)
	if knownHashes != 0 || unknownHashes != 0 {
		t.Fatalf("throttled attempts hashed: %d and %d", knownHashes, unknownHashes)
	}
	// A malformed login is hashed too.
	if r, n := try("x/y"); r.status != 401 || n != 1 {
		t.Fatalf("malformed login: %d after %d hashes", r.status, n)
	}
}

// TestAttackerCannotLockTheOwnerOut is finding 8's lock-out: an attacker's
// 50 wrong passwords from one address slow that address down (429 with
// Retry-After) and leave the owner, from another address, logging in at
// once.
func TestAttackerCannotLockTheOwnerOut(t *testing.T) {
	w := tokensvctest.Start(t)
	newUser(t, w, "dora")
	attacker := &client{t: t, w: w, from: attackerAddr}
	counts := map[int]int{}
	var last reply
	for range 50 {
		last = attacker.do("POST", "/v1/sessions", map[string]string{"login": "dora", "password": "guess guess"})
		counts[last.status]++
	}
	if counts[401] != 5 || counts[429] != 45 {
		t.Fatalf("attacker's answers %v, want 5 x 401 and 45 x 429", counts)
	}
	attacker.want(last, 429, "too_many_failures")
	if last.header.Get("Retry-After") != "180" || last.num("retry_after_seconds") != 180 {
		t.Fatalf("throttled answer %s, Retry-After %q", last.raw, last.header.Get("Retry-After"))
	}
	owner := &client{t: t, w: w, from: ownerAddr}
	owner.want(owner.do("POST", "/v1/sessions", map[string]string{"login": "dora", "password": password}), 201, "")
	// The owner's mistakes are her own: four wrong, then right, at once.
	for range 4 {
		owner.want(owner.do("POST", "/v1/sessions", map[string]string{"login": "dora", "password": "typo typo"}), 401, "wrong_credentials")
	}
	owner.want(owner.do("POST", "/v1/sessions", map[string]string{"login": "dora", "password": password}), 201, "")

	// The attacker gets one guess per 3 minutes: slowed, never shut out.
	w.Clock.Advance(3 * time.Minute)
	attacker.want(attacker.do("POST", "/v1/sessions", map[string]string{"login": "dora", "password": "guess 51"}), 401, "wrong_credentials")
	attacker.want(attacker.do("POST", "/v1/sessions", map[string]string{"login": "dora", "password": "guess 52"}), 429, "too_many_failures")
}

// TestOneAddressIsSlowedAcrossLogins: guessing at many logins from one
// address empties the address's own bucket (20), whatever the logins.
func TestOneAddressIsSlowedAcrossLogins(t *testing.T) {
	w := tokensvctest.Start(t)
	newUser(t, w, "erin")
	attacker := &client{t: t, w: w, from: attackerAddr}
	for i := range 20 {
		attacker.want(attacker.do("POST", "/v1/sessions",
			map[string]string{"login": "user" + strconv.Itoa(i), "password": "guess guess"}), 401, "wrong_credentials")
	}
	r := attacker.want(attacker.do("POST", "/v1/sessions", map[string]string{"login": "erin", "password": "guess guess"}), 429, "too_many_failures")
	if r.header.Get("Retry-After") != "30" {
		t.Fatalf("Retry-After %q, want 30", r.header.Get("Retry-After"))
	}
	owner := &client{t: t, w: w, from: ownerAddr}
	owner.want(owner.do("POST", "/v1/sessions", map[string]string{"login": "erin", "password": password}), 201, "")
}

// TestThrottleHoldsUnderConcurrency: many wrong passwords at once are
// taken from the bucket one by one, so no more than five are tried.
func TestThrottleHoldsUnderConcurrency(t *testing.T) {
	w := tokensvctest.Start(t)
	newUser(t, w, "fred")
	hashes := tokensvc.CountHashes(w.Service)
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[int]int{}
	for range 20 {
		wg.Go(func() {
			c := &client{t: t, w: w, from: attackerAddr}
			r := c.do("POST", "/v1/sessions", map[string]string{"login": "fred", "password": "guess guess"})
			mu.Lock()
			counts[r.status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if counts[401] != 5 || counts[429] != 15 || hashes() != 5 {
		t.Fatalf("answers %v after %d hashes, want 5 x 401 and 15 x 429 after 5", counts, hashes())
	}
}

// TestPasswordRules: NIST SP 800-63B at sign-up.
func TestPasswordRules(t *testing.T) {
	w := tokensvctest.Start(t)
	c := &client{t: t, w: w}
	refused := []struct{ name, login, password, says string }{
		{"common", "pat", "password", "most common"},
		{"common, capitalised", "pat", "Password1", "most common"},
		{"common, padded", "pat", " iloveyou ", "most common"},
		{"eight spaces", "pat", "        ", "spaces alone"},
		{"tabs and spaces", "pat", " \u3000  \u00a0  \u2003 ", "spaces alone"},
		{"seven characters", "pat", "Zq7#kLm", "8-128 characters"},
		{"129 characters", "pat", strings.Repeat("xy", 64) + "z", "8-128 characters"},
		{"a control character", "pat", "correct\x00horse", "control characters"},
		{"a newline", "pat", "correct horse\nbattery", "control characters"},
		{"one character repeated", "pat", "zzzzzzzzzz", "repeated"},
		{"a run", "pat", "23456789", "run"},
		{"a run down", "pat", "zyxwvuts", "run"},
		{"the login", "zebulon99", "Zebulon99", "login"},
		{"the login inside", "zebulon99", "my name is ZEBULON99", "login"},
		{"the service", "pat", "I love TapSwitch", "service"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			c.t = t
			r := c.want(c.do("POST", "/v1/accounts", map[string]string{"login": tt.login, "password": tt.password}), 400, "bad_password")
			if !strings.Contains(r.str("error"), tt.says) {
				t.Fatalf("error %q does not say %q", r.str("error"), tt.says)
			}
		})
	}
	c.t = t
	accepted := []struct{ login, password string }{
		{"sixty4", strings.Repeat("long passphrase ", 8)[:128]},      // the maximum, with spaces
		{"unicode", "кошелёк и телефон"},                             // any script
		{"gaps", "  four words, some spaces  "},                      // spaces kept as typed
		{"pat", "Zq7#kLm!"},                                          // eight is enough
		{"kim", "kim's phone wallet"},                                // a short login only as the whole
		{"decomposed", "cafe\u0301 cre\u0300me brule\u0301e"},        // NFD as typed on one keyboard ...
		{"emoji", "\U0001F511\U0001F4F1\U0001F4B3 three icons here"}, // printable beyond the BMP
		{"symbols", `!"#$%&'()*+,-./:;<=>?@[\]^_` + "`{|}~"},         // every ASCII symbol
		{"digits.dots", "1.2.3.4.5.6.7.8.9"},                         // not a run
		{"upper", "CORRECT HORSE BATTERY STAPLE"},                    // capitals allowed
		{"rest", "correct horse battery staple"},                     // not on the list
		{"three", "tap switch"},                                      // the service's name split is fine
		{"tabbed", "correct\u00a0horse\u00a0battery"},                // no-break spaces are printable
		{"ideographic", "\u3000正しい馬の電池\u3000"},                       // wide space at either end
	}
	for i, a := range accepted {
		// Each from its own address: one address gets 10 sign-ups.
		signup := &client{t: t, w: w, from: fmt.Sprintf("127.0.1.%d", i+1)}
		signup.want(signup.do("POST", "/v1/accounts", map[string]string{"login": a.login, "password": a.password}), 201, "")
	}
	// ... logs in composed as typed on another (NFKC on both sides).
	c.want(c.do("POST", "/v1/sessions", map[string]string{"login": "decomposed", "password": "caf\u00e9 cr\u00e8me br\u00fbl\u00e9e"}), 401, "wrong_credentials")
	c.want(c.do("POST", "/v1/sessions", map[string]string{"login": "decomposed", "password": "caf\u00e9 cr\u00e8me brul\u00e9e"}), 201, "")
}

// TestLoginsAreCaseFolded: "Alice" and "alice" are one account.
func TestLoginsAreCaseFolded(t *testing.T) {
	w := tokensvctest.Start(t)
	c := &client{t: t, w: w}
	r := c.want(c.do("POST", "/v1/accounts", map[string]string{"login": "Alice", "password": password}), 201, "")
	if r.str("login") != "alice" {
		t.Fatalf("account created as %q, want alice", r.str("login"))
	}
	c.want(c.do("POST", "/v1/accounts", map[string]string{"login": "alice", "password": "another password"}), 409, "account_exists")
	c.want(c.do("POST", "/v1/accounts", map[string]string{"login": "ALICE", "password": "another password"}), 409, "account_exists")
	for _, typed := range []string{"alice", "ALICE", "aLiCe"} {
		c.session = c.want(c.do("POST", "/v1/sessions", map[string]string{"login": typed, "password": password}), 201, "").str("session")
		if d := c.want(c.do("GET", "/v1/devices", nil), 200, ""); d.str("account") != "alice" {
			t.Fatalf("logged in as %q for %q", d.str("account"), typed)
		}
	}
	// A letter that lower-cases into ASCII is not a way in: the Kelvin
	// sign is outside the login alphabet.
	c.want(c.do("POST", "/v1/accounts", map[string]string{"login": "\u212Aim", "password": password}), 400, "bad_login")
}

// TestSignupsAreThrottledPerAddress: sign-up tells a taken login (409), so
// one address gets 10 sign-ups, then one every 6 minutes; another address
// is not slowed.
func TestSignupsAreThrottledPerAddress(t *testing.T) {
	w := tokensvctest.Start(t)
	prober := &client{t: t, w: w, from: attackerAddr}
	prober.want(prober.do("POST", "/v1/accounts", map[string]string{"login": "taken", "password": password}), 201, "")
	for range 9 {
		prober.want(prober.do("POST", "/v1/accounts", map[string]string{"login": "taken", "password": password}), 409, "account_exists")
	}
	r := prober.want(prober.do("POST", "/v1/accounts", map[string]string{"login": "maybe", "password": password}), 429, "too_many_signups")
	if r.header.Get("Retry-After") != "360" {
		t.Fatalf("Retry-After %q, want 360", r.header.Get("Retry-After"))
	}
	// A refused password is no probe: it does not count.
	prober.want(prober.do("POST", "/v1/accounts", map[string]string{"login": "maybe", "password": "password"}), 400, "bad_password")
	other := &client{t: t, w: w, from: ownerAddr}
	other.want(other.do("POST", "/v1/accounts", map[string]string{"login": "maybe", "password": password}), 201, "")
	w.Clock.Advance(6 * time.Minute)
	prober.want(prober.do("POST", "/v1/accounts", map[string]string{"login": "later", "password": password}), 201, "")
}

// login is a POST /v1/sessions body.
func login(name, pw, device string) map[string]string {
	b := map[string]string{"login": name, "password": pw}
	if device != "" {
		b["device"] = device
	}
	return b
}

// TestStolenPhoneCannotTurnItselfOn is finding 8 through the API: the
// owner turns the phone off from a browser session; the phone's own
// session is over on every call, it cannot turn itself on, and it cannot
// log in from its device again; the owner turns it on with the password.
func TestStolenPhoneCannotTurnItselfOn(t *testing.T) {
	w := tokensvctest.Start(t)
	phone := &client{t: t, w: w}
	phone.want(phone.do("POST", "/v1/accounts", login("gina", password, "")), 201, "")
	phone.logIn("gina", "PHONE-G1")
	token := phone.bind("PHONE-G1", tokensvctest.CardGood).str("token")
	// A second phone of hers, and a browser.
	other := &client{t: t, w: w}
	other.logIn("gina", "PHONE-G2")
	other.bind("PHONE-G2", tokensvctest.CardGood2)
	browser := &client{t: t, w: w}
	browser.logIn("gina", "")

	r := browser.want(browser.do("POST", "/v1/devices/PHONE-G1/suspend", nil), 200, "")
	if r.num("sessions_ended") != 1 {
		t.Fatalf("suspend %s, want one session ended", r.raw)
	}
	good := w.Cards[tokensvctest.CardGood]
	for _, call := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/v1/devices", nil},
		{"GET", "/v1/devices/PHONE-G1/tokens", nil},
		{"POST", "/v1/devices/PHONE-G1/resume", withPassword(password)},
		{"POST", "/v1/devices/PHONE-G1/resume", nil},
		{"POST", "/v1/tokens/" + token + "/resume", withPassword(password)},
		{"POST", "/v1/devices/PHONE-G1/cards", map[string]string{"pan": good.PAN.Clear(), "expiry": good.Expiry, "cvn2": good.CVN2().Clear()}},
		{"GET", "/v1/audit", nil},
		{"DELETE", "/v1/sessions", nil},
	} {
		phone.want(phone.do(call.method, call.path, call.body), 401, "unknown_session")
	}
	// The other phone and the browser go on.
	other.want(other.do("GET", "/v1/devices", nil), 200, "")
	browser.want(browser.do("GET", "/v1/devices", nil), 200, "")
	// A fresh login from the lost phone's device ID is refused, even with
	// the password; the answer tells how to turn it on.
	thief := &client{t: t, w: w}
	thief.want(thief.do("POST", "/v1/sessions", login("gina", password, "PHONE-G1")), 403, "device_off")
	thief.want(thief.do("POST", "/v1/sessions", login("gina", "stolen guess", "PHONE-G1")), 401, "wrong_credentials")
	thief.want(thief.do("POST", "/v1/sessions", login("gina", password, "PHONE G1")), 400, "bad_device")
	if st := tokenStatus(t, w, token); st != "suspended" {
		t.Fatalf("token %s after the phone's attempts", st)
	}

	// Turning on needs the password, from any session.
	browser.want(browser.do("POST", "/v1/devices/PHONE-G1/resume", nil), 400, "password_required")
	browser.want(browser.do("POST", "/v1/devices/PHONE-G1/resume", withPassword("")), 400, "password_required")
	browser.want(browser.do("POST", "/v1/devices/PHONE-G1/resume", withPassword("not it at all")), 403, "wrong_password")
	other.want(other.do("POST", "/v1/devices/PHONE-G1/resume", withPassword(password)), 200, "")
	if st := tokenStatus(t, w, token); st != "active" {
		t.Fatalf("token %s after the owner turned the phone on", st)
	}
	phone.logIn("gina", "PHONE-G1")
	phone.want(phone.do("GET", "/v1/devices/PHONE-G1/tokens", nil), 200, "")

	// A token, too, comes back on only with the password.
	phone.want(phone.do("POST", "/v1/tokens/"+token+"/suspend", nil), 200, "")
	phone.want(phone.do("POST", "/v1/tokens/"+token+"/resume", nil), 400, "password_required")
	phone.want(phone.do("POST", "/v1/tokens/"+token+"/resume", withPassword("not it at all")), 403, "wrong_password")
	phone.want(phone.do("POST", "/v1/devices/PHONE-G1/tokens/"+token+"/resume", withPassword("not it at all")), 403, "wrong_password")
	if st := tokenStatus(t, w, token); st != "suspended" {
		t.Fatalf("token %s after wrong passwords", st)
	}
	phone.want(phone.do("POST", "/v1/tokens/"+token+"/resume", withPassword(password)), 200, "")

	a := browser.want(browser.do("GET", "/v1/audit", nil), 200, "")
	if strings.Count(a.raw, `"wrong_password"`) != 4 || !strings.Contains(a.raw, "sessions of the device ended: 1") {
		t.Fatalf("audit %s", a.raw)
	}
	assertNoSecrets(t, w, password, "not it at all", phone.session, browser.session)
}

// TestWrongPasswordsToTurnOnAreThrottled: a session holder guessing the
// password through resume is slowed like a login.
func TestWrongPasswordsToTurnOnAreThrottled(t *testing.T) {
	w := tokensvctest.Start(t)
	c := newUser(t, w, "hana")
	c.bind("PHONE-H1", tokensvctest.CardGood)
	c.want(c.do("POST", "/v1/devices/PHONE-H1/suspend", nil), 200, "")
	for range 5 {
		c.want(c.do("POST", "/v1/devices/PHONE-H1/resume", withPassword("guess guess")), 403, "wrong_password")
	}
	r := c.want(c.do("POST", "/v1/devices/PHONE-H1/resume", withPassword(password)), 429, "too_many_failures")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	w.Clock.Advance(3 * time.Minute)
	c.want(c.do("POST", "/v1/devices/PHONE-H1/resume", withPassword(password)), 200, "")
}

func tokenStatus(t *testing.T, w *tokensvctest.World, token string) string {
	t.Helper()
	tok, err := w.Vault.Get(token)
	if err != nil {
		t.Fatal(err)
	}
	return string(tok.Status)
}
