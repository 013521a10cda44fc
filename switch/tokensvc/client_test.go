package tokensvc_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/switch/tokensvc/tokensvctest"
)

// client calls the API over HTTP as a wallet would.
type client struct {
	t       *testing.T
	w       *tokensvctest.World
	session string
	// hc, when set, is the HTTP client to call with; nil means the
	// client for from.
	hc *http.Client
	// header is added to every request.
	header http.Header
	// from is the loopback address the client connects from ("" for
	// 127.0.0.1): the throttle tells clients apart by it.
	from string
}

// httpClients are the HTTP clients by local address, each with its own
// connection pool.
var httpClients sync.Map

// httpClientFrom returns a client whose connections come from the
// loopback address from (all of 127/8 is loopback on Linux).
func httpClientFrom(from string) *http.Client {
	if from == "" {
		return http.DefaultClient
	}
	if c, ok := httpClients.Load(from); ok {
		return c.(*http.Client)
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = d.DialContext
	c, _ := httpClients.LoadOrStore(from, &http.Client{Transport: tr, Timeout: 30 * time.Second})
	return c.(*http.Client)
}

// reply is one answer: status, body as JSON, headers.
type reply struct {
	status int
	body   map[string]any
	raw    string
	header http.Header
}

func (r reply) str(key string) string {
	s, _ := r.body[key].(string)
	return s
}

func (r reply) num(key string) int {
	f, _ := r.body[key].(float64)
	return int(f)
}

func (c *client) do(method, path string, body any) reply {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		if s, ok := body.(string); ok {
			rd = strings.NewReader(s)
		} else {
			b, err := json.Marshal(body)
			if err != nil {
				c.t.Fatal(err)
			}
			rd = bytes.NewReader(b)
		}
	}
	req, err := http.NewRequest(method, c.w.URL+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	if c.session != "" {
		req.Header.Set("Authorization", "Bearer "+c.session)
	}
	hc := c.hc
	if hc == nil {
		hc = httpClientFrom(c.from)
	}
	resp, err := hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	r := reply{status: resp.StatusCode, raw: string(raw), header: resp.Header}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		c.t.Fatalf("%s %s: Content-Type %q, body %s", method, path, ct, raw)
	}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		c.t.Fatalf("%s %s: body is not a JSON object: %s", method, path, raw)
	}
	return r
}

// want checks an answer's status and, for errors, its code.
func (c *client) want(r reply, status int, code string) reply {
	c.t.Helper()
	if r.status != status || (code != "" && r.str("code") != code) {
		c.t.Fatalf("got %d %s, want %d %s", r.status, r.raw, status, code)
	}
	if status >= 400 && r.str("error") == "" {
		c.t.Fatalf("error answer without a message: %s", r.raw)
	}
	return r
}

const password = "correct horse battery"

// newUser creates an account and logs it in from a browser (no device).
func newUser(t *testing.T, w *tokensvctest.World, login string) *client {
	t.Helper()
	c := &client{t: t, w: w}
	c.want(c.do("POST", "/v1/accounts", map[string]string{"login": login, "password": password}), 201, "")
	c.logIn(login, "")
	return c
}

// logIn logs c in as login, from device when it is not "", and keeps the
// session.
func (c *client) logIn(login, device string) {
	c.t.Helper()
	body := map[string]string{"login": login, "password": password}
	if device != "" {
		body["device"] = device
	}
	r := c.want(c.do("POST", "/v1/sessions", body), 201, "")
	c.session = r.str("session")
	if len(c.session) < 40 {
		c.t.Fatalf("session %q", c.session)
	}
}

// withPassword is the body of a resume.
func withPassword(p string) map[string]string { return map[string]string{"password": p} }

// addCard asks to bind a card and returns the answer.
func (c *client) addCard(device, pan, expiry, cvn2 string) reply {
	c.t.Helper()
	return c.do("POST", "/v1/devices/"+device+"/cards", map[string]string{"pan": pan, "expiry": expiry, "cvn2": cvn2})
}

// bind runs add-card and confirm with the code from the outbox and returns
// the confirmation.
func (c *client) bind(device, label string) reply {
	c.t.Helper()
	card := c.w.Cards[label]
	r := c.want(c.addCard(device, card.PAN.Clear(), card.Expiry, card.CVN2().Clear()), 202, "")
	id := r.str("binding_id")
	return c.want(c.do("POST", "/v1/bindings/"+id+"/confirm", map[string]string{"code": c.w.Code(c.t, id)}), 201, "")
}
