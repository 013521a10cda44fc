package tokensvc_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/tokensvc/tokensvctest"
	"github.com/tapswitch/tapswitch/switch/vault"
)

// startWeb serves the world's lost-phone page as the public listener does,
// mounted at /lost/, and returns its base URL.
func startWeb(t *testing.T, w *tokensvctest.World) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/lost/", w.Service.WebHandler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// visitor is a browser without a rendering engine: a cookie jar, no
// redirects followed, so each answer is checked as it is.
type visitor struct {
	t    *testing.T
	base string
	c    *http.Client
}

type page struct {
	status int
	body   string
	header http.Header
}

func newVisitor(t *testing.T, base string) *visitor {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &visitor{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (v *visitor) do(req *http.Request) page {
	v.t.Helper()
	resp, err := v.c.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		v.t.Fatal(err)
	}
	p := page{status: resp.StatusCode, body: string(body), header: resp.Header}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		v.t.Fatalf("%s %s: Cache-Control %q", req.Method, req.URL.Path, cc)
	}
	if p.status != http.StatusSeeOther && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/") {
		v.t.Fatalf("%s %s: Content-Type %q", req.Method, req.URL.Path, resp.Header.Get("Content-Type"))
	}
	return p
}

func (v *visitor) get(path string) page {
	v.t.Helper()
	req, err := http.NewRequest(http.MethodGet, v.base+path, nil)
	if err != nil {
		v.t.Fatal(err)
	}
	return v.do(req)
}

func (v *visitor) post(path string, form url.Values) page {
	v.t.Helper()
	req, err := http.NewRequest(http.MethodPost, v.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		v.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return v.do(req)
}

// want checks a page's status and that it says what it should.
func (p page) want(t *testing.T, status int, says ...string) page {
	t.Helper()
	if p.status != status {
		t.Fatalf("status %d, want %d: %s", p.status, status, p.body)
	}
	for _, s := range says {
		if !strings.Contains(p.body, s) {
			t.Fatalf("the page does not say %q: %s", s, p.body)
		}
	}
	return p
}

// seeOther checks a 303 to location.
func (p page) seeOther(t *testing.T, location string) {
	t.Helper()
	if p.status != http.StatusSeeOther || p.header.Get("Location") != location {
		t.Fatalf("status %d to %q, want 303 to %q", p.status, p.header.Get("Location"), location)
	}
}

var csrfPattern = regexp.MustCompile(`name="csrf" value="([0-9a-f]{64})"`)

func (p page) csrf(t *testing.T) string {
	t.Helper()
	m := csrfPattern.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no CSRF token on the page: %s", p.body)
	}
	return m[1]
}

// logIn logs in on the page and returns the devices page.
func (v *visitor) logIn(login string) page {
	v.t.Helper()
	v.post("/lost/login", url.Values{"login": {login}, "password": {password}}).seeOther(v.t, "/lost/devices")
	return v.get("/lost/devices").want(v.t, 200)
}

func TestWebLoginPage(t *testing.T) {
	w := tokensvctest.Start(t)
	v := newVisitor(t, startWeb(t, w))
	p := v.get("/lost/").want(t, 200, `action="/lost/login"`, `name="login"`, `name="password"`, `type="password"`, "Log in")
	for header, want := range map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
	} {
		if got := p.header.Get(header); got != want {
			t.Errorf("%s: %q, want %q", header, got, want)
		}
	}
	v.get("/lost/?m=expired").want(t, 200, "Your session expired: log in again.")
	// The notice is picked from a list: the URL's text is never shown.
	if p := v.get("/lost/?m=%3Cb%3Ehi"); strings.Contains(p.body, "hi") || strings.Contains(p.body, `class="notice"`) {
		t.Fatalf("an unknown notice is shown: %s", p.body)
	}
	v.get("/lost/style.css").want(t, 200, "section.device")
	v.get("/lost/nothing").want(t, 404, "No such page")
	v.get("/lost/login").want(t, 404, "No such page")
}

func TestWebLoginFailuresAreThrottled(t *testing.T) {
	w := tokensvctest.Start(t)
	newUser(t, w, "dora")
	v := newVisitor(t, startWeb(t, w))
	wrong := url.Values{"login": {"dora"}, "password": {"not the password"}}
	right := url.Values{"login": {"dora"}, "password": {password}}

	v.post("/lost/login", url.Values{"login": {"nobody"}, "password": {"whatever"}}).want(t, 401, "Wrong login or password.")
	// What was typed comes back escaped.
	p := v.post("/lost/login", url.Values{"login": {`"><script>alert(1)</script>`}, "password": {"x"}}).want(t, 401, "Wrong login or password.")
	if strings.Contains(p.body, "<script>") || !strings.Contains(p.body, "&lt;script&gt;") {
		t.Fatalf("the login is not escaped: %s", p.body)
	}
	v.post("/lost/login", url.Values{"login": {"dora"}, "password": {strings.Repeat("x", 600)}}).want(t, 401, "Wrong login or password.")
	// Capitals are folded: Dora is dora.
	for range 4 {
		p = v.post("/lost/login", url.Values{"login": {"Dora"}, "password": {"not the password"}}).want(t, 401,
			"Wrong login or password.", `value="Dora"`)
		if strings.Contains(p.body, "not the password") {
			t.Fatal("the page repeats the password")
		}
	}
	v.post("/lost/login", wrong).want(t, 401, "Wrong login or password.")
	p = v.post("/lost/login", wrong).want(t, 429, "Too many wrong passwords from your network. Try again in 3 minutes.")
	if p.header.Get("Retry-After") != "180" {
		t.Fatalf("Retry-After %q", p.header.Get("Retry-After"))
	}
	// Slowed, not locked: the right password waits for the same bucket
	// from this address, and an unknown login is answered the same.
	w.Clock.Advance(2*time.Minute + 30*time.Second)
	v.post("/lost/login", right).want(t, 429, "Try again in 30 seconds.")
	w.Clock.Advance(30 * time.Second)

	p = v.post("/lost/login", right)
	p.seeOther(t, "/lost/devices")
	cookie := p.header.Get("Set-Cookie")
	for _, attr := range []string{"tapswitch_lost=", "Path=/lost/", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(cookie, attr) {
			t.Fatalf("session cookie %q lacks %s", cookie, attr)
		}
	}
	// The cookie is the API's session: it works as a bearer.
	api := &client{t: t, w: w, session: strings.TrimPrefix(strings.Split(cookie, ";")[0], "tapswitch_lost=")}
	api.want(api.do("GET", "/v1/devices", nil), 200, "")
	// A logged-in visitor at the form goes to the phones.
	v.get("/lost/").seeOther(t, "/lost/devices")

	v.post("/lost/login", url.Values{"login": {strings.Repeat("a", 5000)}}).want(t, 413, "over 4096 bytes")
	a := api.want(api.do("GET", "/v1/audit", nil), 200, "")
	if strings.Count(a.raw, `"login.failed"`) != 5 {
		t.Fatalf("audit %s", a.raw)
	}
	assertNoSecrets(t, w, password, "not the password", api.session)
}

func TestWebTurnADeviceOffAndOn(t *testing.T) {
	w := tokensvctest.Start(t)
	alice := newUser(t, w, "alice")
	mallory := newUser(t, w, "mallory")
	t1 := alice.bind("PHONE-W", tokensvctest.CardGood).str("token")
	t2 := alice.bind("PHONE-W", tokensvctest.CardGood2).str("token")
	tm := mallory.bind("PHONE-M", tokensvctest.CardGood).str("token")
	status := func(token string) vault.Status {
		t.Helper()
		tok, err := w.Vault.Get(token)
		if err != nil {
			t.Fatal(err)
		}
		return tok.Status
	}
	want := func(s vault.Status) {
		t.Helper()
		if status(t1) != s || status(t2) != s || status(tm) != vault.StatusActive {
			t.Fatalf("statuses %s %s (mallory %s), want %s", status(t1), status(t2), status(tm), s)
		}
	}
	base := startWeb(t, w)
	v := newVisitor(t, base)
	good, good2 := w.Cards[tokensvctest.CardGood], w.Cards[tokensvctest.CardGood2]

	p := v.logIn("alice").want(t, 200, "Logged in as <strong>alice</strong>", `data-device="PHONE-W"`, good.PAN.String(), good2.PAN.String(),
		iso8583.PAN(t1).String(), iso8583.PAN(t2).String(), "ICBC", "Turn off", `action="/lost/devices/PHONE-W/off"`)
	for _, clear := range []string{good.PAN.Clear(), good2.PAN.Clear(), t1, t2, "PHONE-M"} {
		if strings.Contains(p.body, clear) {
			t.Fatalf("the page shows %q", clear)
		}
	}
	csrf := p.csrf(t)

	// Without the CSRF token, with a wrong one, with another session's:
	// 403 and nothing changes.
	other := newVisitor(t, base)
	otherCSRF := other.logIn("alice").csrf(t)
	for _, token := range []string{"", strings.Repeat("0", 64), otherCSRF} {
		v.post("/lost/devices/PHONE-W/off", url.Values{"csrf": {token}}).want(t, 403, "Refused")
	}
	want(vault.StatusActive)

	v.post("/lost/devices/PHONE-W/off", url.Values{"csrf": {csrf}}).seeOther(t, "/lost/devices")
	want(vault.StatusSuspended)
	p = v.get("/lost/devices").want(t, 200, "Turn on", "Off: every card on this phone is suspended", `action="/lost/devices/PHONE-W/on"`)
	if strings.Count(p.body, ">suspended<") != 2 {
		t.Fatalf("the page does not show both cards suspended: %s", p.body)
	}
	// Again: still off, no harm.
	v.post("/lost/devices/PHONE-W/off", url.Values{"csrf": {csrf}}).seeOther(t, "/lost/devices")
	// On needs the password typed on the form, the session is not enough.
	p.want(t, 200, `name="password" type="password"`)
	v.post("/lost/devices/PHONE-W/on", url.Values{"csrf": {csrf}}).want(t, 400, "needs the account&#39;s password")
	v.post("/lost/devices/PHONE-W/on", url.Values{"csrf": {csrf}, "password": {"not the password"}}).want(t, 403, "Wrong password")
	want(vault.StatusSuspended)
	v.post("/lost/devices/PHONE-W/on", url.Values{"csrf": {csrf}, "password": {password}}).seeOther(t, "/lost/devices")
	want(vault.StatusActive)
	v.get("/lost/devices").want(t, 200, "Turn off", "On: the cards on this phone can pay.")

	// Another account's device, a missing one, a malformed one: 404 pages.
	for _, d := range []string{"PHONE-M", "PHONE-NONE", "PHONE%20W", "%3Cb%3E"} {
		v.post("/lost/devices/"+d+"/off", url.Values{"csrf": {csrf}}).want(t, 404, "There is no such phone on your account.")
		v.post("/lost/devices/"+d+"/on", url.Values{"csrf": {csrf}, "password": {password}}).want(t, 404, "There is no such phone on your account.")
	}
	want(vault.StatusActive)
	v.post("/lost/devices/PHONE-W/explode", url.Values{"csrf": {csrf}}).want(t, 404, "No such page")

	// The page went through the API's code: the audit trail has it.
	a := alice.want(alice.do("GET", "/v1/audit", nil), 200, "")
	if strings.Count(a.raw, `"device.suspend"`) != 2 || strings.Count(a.raw, `"device.resume"`) != 2 ||
		strings.Count(a.raw, `"wrong_password"`) != 1 ||
		!strings.Contains(a.raw, `"remote": "127.0.0.1"`) {
		t.Fatalf("audit %s", a.raw)
	}
	assertNoSecrets(t, w, good.PAN.Clear(), good2.PAN.Clear(), password, csrf)
}

func TestWebSessions(t *testing.T) {
	w := tokensvctest.Start(t)
	c := newUser(t, w, "sam")
	token := c.bind("PHONE-S", tokensvctest.CardGood).str("token")
	base := startWeb(t, w)

	// No session: to the form, and a POST does nothing.
	anon := newVisitor(t, base)
	anon.get("/lost/devices").seeOther(t, "/lost/?m=nosession")
	anon.post("/lost/devices/PHONE-S/off", url.Values{}).seeOther(t, "/lost/?m=nosession")
	anon.post("/lost/logout", url.Values{}).seeOther(t, "/lost/?m=nosession")
	anon.get("/lost/?m=nosession").want(t, 200, "Log in to see your phones.")
	// A made-up session.
	req, _ := http.NewRequest(http.MethodGet, base+"/lost/devices", nil)
	req.AddCookie(&http.Cookie{Name: "tapswitch_lost", Value: "made-up"})
	anon.do(req).seeOther(t, "/lost/?m=ended")

	// An expired one: to the form, with the cookie cleared.
	v := newVisitor(t, base)
	csrf := v.logIn("sam").csrf(t)
	w.Clock.Advance(15*time.Minute + time.Second)
	p := v.post("/lost/devices/PHONE-S/off", url.Values{"csrf": {csrf}})
	p.seeOther(t, "/lost/?m=expired")
	if !strings.Contains(p.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("the expired session's cookie stays: %q", p.header.Get("Set-Cookie"))
	}
	if tok, _ := w.Vault.Get(token); tok.Status != vault.StatusActive {
		t.Fatalf("an expired session turned the phone off: %s", tok.Status)
	}
	v.get("/lost/?m=expired").want(t, 200, "Your session expired: log in again.", `action="/lost/login"`)

	// Log out: CSRF-checked, and it ends the API session too.
	csrf = v.logIn("sam").csrf(t)
	v.post("/lost/logout", url.Values{"csrf": {"nope"}}).want(t, 403, "Refused")
	v.get("/lost/devices").want(t, 200)
	session := v.cookie()
	v.post("/lost/logout", url.Values{"csrf": {csrf}}).seeOther(t, "/lost/?m=loggedout")
	v.get("/lost/devices").seeOther(t, "/lost/?m=nosession")
	v.get("/lost/?m=loggedout").want(t, 200, "You are logged out.")
	api := &client{t: t, w: w, session: session}
	api.want(api.do("GET", "/v1/devices", nil), 401, "unknown_session")
}

// cookie returns the session cookie the visitor holds.
func (v *visitor) cookie() string {
	v.t.Helper()
	u, err := url.Parse(v.base + "/lost/")
	if err != nil {
		v.t.Fatal(err)
	}
	for _, c := range v.c.Jar.Cookies(u) {
		if c.Name == "tapswitch_lost" {
			return c.Value
		}
	}
	v.t.Fatal("no session cookie")
	return ""
}

func TestWebRefusesCrossSiteForms(t *testing.T) {
	w := tokensvctest.Start(t)
	c := newUser(t, w, "tess")
	token := c.bind("PHONE-T", tokensvctest.CardGood).str("token")
	base := startWeb(t, w)
	v := newVisitor(t, base)
	csrf := v.logIn("tess").csrf(t)
	for _, path := range []string{"/lost/devices/PHONE-T/off", "/lost/login"} {
		req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(url.Values{"csrf": {csrf}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		req.Header.Set("Origin", "https://evil.example")
		v.do(req).want(t, 403, "sent from another site")
	}
	if tok, _ := w.Vault.Get(token); tok.Status != vault.StatusActive {
		t.Fatalf("a cross-site form turned the phone off: %s", tok.Status)
	}
}

func TestWebAfterClose(t *testing.T) {
	w := tokensvctest.Start(t)
	v := newVisitor(t, startWeb(t, w))
	if err := w.Service.Close(); err != nil {
		t.Fatal(err)
	}
	v.get("/lost/").want(t, 503, "shutting down")
	v.post("/lost/login", url.Values{"login": {"x"}}).want(t, 503, "shutting down")
}
