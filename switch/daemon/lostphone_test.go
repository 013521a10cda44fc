package daemon

import (
	"bytes"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/bench/pos"
	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/bench/walletcli"
	"github.com/tapswitch/tapswitch/iso8583"
)

// The owner of the stolen phone.
const (
	lostLogin    = "olivia"
	lostPassword = "correct horse battery"
	lostDevice   = "PHONE-STOLEN"
)

// tokenAPI is where the switch serves the token API and the lost-phone
// page.
func tokenAPI(d *DevWorld) string { return d.Node.PublicURL() }

// TestStolenPhoneCannotTurnItselfBackOn is issue 9's finding 8 against the
// dev switch, taps over TCP: the owner turns her phone off on /lost/; the
// phone's own still-valid session is refused on every call, /resume
// included, a fresh login from the phone is refused, and a tap gets 62;
// the owner turns it on with her password and the phone pays again.
func TestStolenPhoneCannotTurnItselfBackOn(t *testing.T) {
	d, _ := startWorld(t)
	file := filepath.Join(t.TempDir(), "phone.json")
	phoneCLI := func(args ...string) (int, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		code := walletcli.Run(append(args, "-wallet", file), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	mustWallet := func(args ...string) string {
		t.Helper()
		code, out := phoneCLI(args...)
		if code != 0 {
			t.Fatalf("wallet %v: exit %d: %s", args, code, out)
		}
		return out
	}
	card := d.Bindable
	mustWallet("login", "-api", tokenAPI(d), "-login", lostLogin, "-password", lostPassword, "-create", "-device", lostDevice)
	mustWallet("add-card", "-pan", card.PAN.Clear(), "-expiry", card.Expiry, "-cvn2", card.CVN2().Clear())
	mustWallet("confirm", "-code", strings.TrimSpace(mustWallet("dev-code", "-data", d.Data)))
	phone := loadPhone(t, file)
	c, err := pos.Dial(d.Node.TerminalAddr(), time.Second, d.AcquirerKeys)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if rc := send(t, c, purchase(phone.Cards[0], 100).Message()); rc != iso8583.RCApproved {
		t.Fatalf("tap before the loss: rc %s", rc)
	}

	owner := newOwnerBrowser(t, tokenAPI(d))
	owner.turn("off", "")

	// The phone's session, still within its 15 minutes, is over.
	for _, call := range []struct{ method, path, body string }{
		{"GET", "/v1/devices", ""},
		{"GET", "/v1/devices/" + lostDevice + "/tokens", ""},
		{"POST", "/v1/devices/" + lostDevice + "/resume", `{"password": "guessed"}`},
		{"POST", "/v1/devices/" + lostDevice + "/resume", `{"password": "` + lostPassword + `"}`},
		{"POST", "/v1/tokens/" + phone.Cards[0].Token + "/resume", `{"password": "` + lostPassword + `"}`},
	} {
		status, body := apiCall(t, tokenAPI(d)+call.path, call.method, phone.Session, call.body)
		if status != http.StatusUnauthorized || !strings.Contains(body, "unknown_session") {
			t.Fatalf("%s %s with the phone's session: %d %s", call.method, call.path, status, body)
		}
	}
	if code, out := phoneCLI("tokens"); code != 1 || !strings.Contains(out, "unknown_session") {
		t.Fatalf("wallet tokens: exit %d: %s", code, out)
	}
	// Nor can the phone log in again as itself, even with the password.
	if code, out := phoneCLI("login", "-login", lostLogin, "-password", lostPassword); code != 1 || !strings.Contains(out, "device_off") {
		t.Fatalf("login from the lost phone: exit %d: %s", code, out)
	}
	if rc := send(t, c, purchase(phone.Cards[0], 100).Message()); rc != iso8583.RCRestrictedCard {
		t.Fatalf("tap with the phone off: rc %s, want 62", rc)
	}

	// The owner turns it on with her password; the phone logs in and pays.
	owner.turn("on", "not my password")
	if rc := send(t, c, purchase(phone.Cards[0], 100).Message()); rc != iso8583.RCRestrictedCard {
		t.Fatalf("tap after a wrong password on the page: rc %s, want 62", rc)
	}
	owner.turn("on", lostPassword)
	mustWallet("login", "-login", lostLogin, "-password", lostPassword)
	mustWallet("tokens")
	if rc := send(t, c, purchase(phone.Cards[0], 100).Message()); rc != iso8583.RCApproved {
		t.Fatalf("tap after the owner turned the phone on: rc %s", rc)
	}
}

func loadPhone(t *testing.T, file string) wallet.File {
	t.Helper()
	f, err := wallet.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Cards) != 1 || f.Session == "" || f.DeviceID != lostDevice {
		t.Fatalf("phone wallet %+v", f)
	}
	return f
}

// apiCall sends one API request with a bearer session.
func apiCall(t *testing.T, target, method, session, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+session)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(raw)
}

// ownerBrowser is the owner at a borrowed computer, logged in on /lost/.
type ownerBrowser struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

var lostCSRF = regexp.MustCompile(`name="csrf" value="([0-9a-f]{64})"`)

func newOwnerBrowser(t *testing.T, base string) *ownerBrowser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &ownerBrowser{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	if status, body := b.post("/lost/login", url.Values{"login": {"Olivia"}, "password": {lostPassword}}); status != http.StatusSeeOther {
		t.Fatalf("log-in on the lost page: %d %s", status, body)
	}
	status, body := b.get("/lost/devices")
	m := lostCSRF.FindStringSubmatch(body)
	if status != http.StatusOK || m == nil || !strings.Contains(body, `data-device="`+lostDevice+`"`) {
		t.Fatalf("the lost page: %d %s", status, body)
	}
	b.csrf = m[1]
	return b
}

// turn presses "Turn off" or "Turn on" (with password); a wrong password
// must be refused.
func (b *ownerBrowser) turn(verb, password string) {
	b.t.Helper()
	form := url.Values{"csrf": {b.csrf}}
	if password != "" {
		form.Set("password", password)
	}
	status, body := b.post("/lost/devices/"+lostDevice+"/"+verb, form)
	wantStatus := http.StatusSeeOther
	if verb == "on" && password != lostPassword {
		wantStatus = http.StatusForbidden
	}
	if status != wantStatus {
		b.t.Fatalf("turn %s: %d, want %d: %s", verb, status, wantStatus, body)
	}
}

func (b *ownerBrowser) get(path string) (int, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	return b.read(resp, err)
}

func (b *ownerBrowser) post(path string, form url.Values) (int, string) {
	b.t.Helper()
	resp, err := b.c.PostForm(b.base+path, form)
	return b.read(resp, err)
}

func (b *ownerBrowser) read(resp *http.Response, err error) (int, string) {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp.StatusCode, string(raw)
}
