package tokensvc

// The lost-phone page: plain server-rendered HTML under /lost/, for a
// person at a borrowed computer whose phone is gone.
//
//	GET  /lost/                      the log-in form (?m= picks a notice)
//	POST /lost/login                 log in: 303 to /lost/devices with the
//	                                 session cookie, or the form again with
//	                                 401, 429 (+ Retry-After) or 503
//	GET  /lost/devices               the account's phones and their cards,
//	                                 masked, each phone with one button
//	POST /lost/devices/{device}/off  turn the phone off: 303 /lost/devices
//	POST /lost/devices/{device}/on   turn it on again, with the account's
//	                                 password: 303 /lost/devices
//	POST /lost/logout                end the session: 303 /lost/
//
// The page runs the API's own code: a login is handleLogin, turning a
// phone off or on is handleDeviceSuspend or handleDeviceResume, each
// called with a request built for it and its JSON answer read back
// (webcall.go). So the argon2id check, the throttle, the audit records and
// the order of the writes are the API's, by construction; a copy of that
// logic here could drift from it.
//
// The session is the API's: the cookie (HttpOnly, SameSite=Strict, Path
// /lost/, Secure with Config.SecureCookies or over TLS) carries the same
// token a wallet sends as a bearer, so it lasts 15 minutes and a logout
// ends it for both.
//
// Every POST but the log-in carries a CSRF token in a hidden field:
// HMAC-SHA256 keyed by the session token, compared in constant time. It
// needs no record of its own and dies with its session; it reveals nothing
// of the session, and a page that has not read the cookie cannot make it.
// (A random token stored with the session was rejected: it would change
// the session record for one client's sake.) On top of that,
// http.CrossOriginProtection refuses any cross-site POST, the log-in
// included, from browsers that say where a request comes from.
//
// Pages are html/template, no script at all; every answer carries
// Cache-Control: no-store and a Content-Security-Policy that forbids
// scripts and framing. Cards and tokens appear masked (first 6, last 4).

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tapswitch/tapswitch/switch/vault"
)

// Names and bounds of the page.
const (
	webPrefix  = "/lost/"
	webDevices = "/lost/devices"
	webCookie  = "tapswitch_lost"
	csrfField  = "csrf"
	// webFormBytesMax bounds a form body: the largest is a log-in.
	webFormBytesMax = requestBodyBytesMax
	// webLoginBytesMax is loginPattern's longest login.
	webLoginBytesMax = 64
)

//go:embed web/*.html web/style.css
var webFiles embed.FS

var (
	webPages = template.Must(template.ParseFS(webFiles, "web/*.html"))
	webStyle = mustReadWebFile("web/style.css")
)

func mustReadWebFile(name string) []byte {
	b, err := webFiles.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return b
}

// webNotices are the notices /lost/?m= shows; anything else shows none, so
// the page never repeats text from its URL.
var webNotices = map[string]string{
	"nosession": "Log in to see your phones.",
	"expired":   "Your session expired: log in again.",
	"ended":     "Your session has ended: log in again.",
	"loggedout": "You are logged out.",
}

// pageData is what every template gets.
type pageData struct {
	Title   string
	Notice  string // information
	Problem string // what went wrong
	Login   string
	CSRF    string
	Devices []webDevice
	Back    string // where an error page links to
}

// webDevice is a phone as the page shows it.
type webDevice struct {
	ID    string
	Off   bool
	Cards []webCard
}

// webCard is one token on a phone; Card and Token are masked.
type webCard struct {
	Card, Token, Issuer, Product, Status string
}

// webSession is a logged-in visitor: the account and the session token
// from the cookie.
type webSession struct {
	login string
	token string
}

// WebHandler serves the lost-phone page, every path under /lost/. Mount it
// on the public mux at "/lost/".
func (s *Service) WebHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /lost/{$}", s.webOpen(s.pageLogin))
	mux.HandleFunc("GET /lost/style.css", serveStyle)
	mux.HandleFunc("POST /lost/login", s.webOpen(s.pageLoginPost))
	mux.HandleFunc("GET /lost/devices", s.webAuthed(s.pageDevices))
	mux.HandleFunc("POST /lost/devices/{device}/off", s.webAuthed(s.pageDeviceOff))
	mux.HandleFunc("POST /lost/devices/{device}/on", s.webAuthed(s.pageDeviceOn))
	mux.HandleFunc("POST /lost/logout", s.webAuthed(s.pageLogout))
	mux.HandleFunc(webPrefix, func(w http.ResponseWriter, r *http.Request) {
		// The path is not repeated: the page shows nothing it was sent.
		s.errorPage(w, http.StatusNotFound, "No such page", "There is no such page here.", webPrefix)
	})
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Not the path: a made-up one could hold anything, a card number too.
		s.log.Warn().Str("remote", remote(r)).Msg("lost page: cross-site form refused")
		s.errorPage(w, http.StatusForbidden, "Refused",
			"This form was sent from another site. Open the page at /lost/ and try again.", webPrefix)
	}))
	return webHeaders(cop.Handler(mux))
}

// webHeaders sets what every answer of the page carries.
func webHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Cache-Control", "no-store")
		hd.Set("Content-Security-Policy",
			"default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

func serveStyle(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Write(webStyle)
}

// webOpen is open for pages: after Close, a 503 page.
func (s *Service) webOpen(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.enter() {
			s.errorPage(w, http.StatusServiceUnavailable, "Unavailable", "The switch is shutting down. Try again in a minute.", webPrefix)
			return
		}
		defer s.closeMu.RUnlock()
		h(w, r)
	}
}

// webAuthed wraps a page that needs a live session. Without one the
// visitor is sent to the log-in form with a notice; a POST must also carry
// the session's CSRF token.
func (s *Service) webAuthed(h func(http.ResponseWriter, *http.Request, webSession)) http.HandlerFunc {
	return s.webOpen(func(w http.ResponseWriter, r *http.Request) {
		sess, why, e := s.webSession(r)
		switch {
		case e != nil:
			s.apiErrorPage(w, e, webPrefix)
			return
		case why != "":
			s.setSessionCookie(w, r, "")
			http.Redirect(w, r, webPrefix+"?m="+why, http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			if e := parseForm(w, r); e != nil {
				s.apiErrorPage(w, e, webDevices)
				return
			}
			if !csrfValid(sess.token, r.PostFormValue(csrfField)) {
				s.log.Warn().Str("account", sess.login).Msg("lost page: form without its CSRF token refused")
				s.errorPage(w, http.StatusForbidden, "Refused",
					"This form is out of date or did not come from this page. Go back to your phones and try again.", webDevices)
				return
			}
		}
		h(w, r, sess)
	})
}

// webSession returns the session of the request's cookie, checked by the
// API's own authenticate. why is the notice for a visitor without a live
// session; e is a failure of the store.
func (s *Service) webSession(r *http.Request) (sess webSession, why string, e *apiError) {
	c, err := r.Cookie(webCookie)
	if err != nil || c.Value == "" {
		return webSession{}, "nosession", nil
	}
	in, e := s.inner(r, http.MethodGet, "/v1/devices", nil, c.Value)
	if e != nil {
		return webSession{}, "", e
	}
	login, e := s.authenticate(in)
	switch {
	case e == nil:
		return webSession{login: login, token: c.Value}, "", nil
	case e.code == "session_expired":
		return webSession{}, "expired", nil
	case e.status == http.StatusUnauthorized:
		return webSession{}, "ended", nil
	default:
		return webSession{}, "", e
	}
}

// setSessionCookie sets the session cookie, or clears it for "".
func (s *Service) setSessionCookie(w http.ResponseWriter, r *http.Request, token string) {
	c := &http.Cookie{Name: webCookie, Value: token, Path: webPrefix, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.cfg.SecureCookies || r.TLS != nil}
	if token == "" {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

// csrfToken is the session's CSRF token; the package comment above says
// why it is derived rather than stored.
func csrfToken(session string) string {
	m := hmac.New(sha256.New, []byte(session))
	m.Write([]byte("tapswitch lost-phone page csrf v1"))
	return fmt.Sprintf("%x", m.Sum(nil))
}

func csrfValid(session, given string) bool {
	return subtle.ConstantTimeCompare([]byte(csrfToken(session)), []byte(given)) == 1
}

// parseForm reads a form body of at most webFormBytesMax bytes.
func parseForm(w http.ResponseWriter, r *http.Request) *apiError {
	r.Body = http.MaxBytesReader(w, r.Body, webFormBytesMax)
	err := r.ParseForm()
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooBig):
		return newError(http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the form is over %d bytes", webFormBytesMax))
	default:
		return errBadRequest("bad_form", "the form could not be read")
	}
}

// pageLogin is GET /lost/: the form, or the phones for a live session.
func (s *Service) pageLogin(w http.ResponseWriter, r *http.Request) {
	if _, why, e := s.webSession(r); why == "" && e == nil {
		http.Redirect(w, r, webDevices, http.StatusSeeOther)
		return
	}
	s.render(w, http.StatusOK, "login.html", pageData{Title: "Log in", Notice: webNotices[r.URL.Query().Get("m")]})
}

// pageLoginPost is POST /lost/login {login, password}.
func (s *Service) pageLoginPost(w http.ResponseWriter, r *http.Request) {
	if e := parseForm(w, r); e != nil {
		s.apiErrorPage(w, e, webPrefix)
		return
	}
	login := r.PostFormValue("login")
	token, e := s.webLogin(r, login, r.PostFormValue("password"))
	if e != nil {
		setRetryAfter(w, e)
		data := pageData{Title: "Log in", Problem: loginProblem(e)}
		if len(login) <= webLoginBytesMax {
			data.Login = login
		}
		s.render(w, e.status, "login.html", data)
		return
	}
	s.setSessionCookie(w, r, token)
	http.Redirect(w, r, webDevices, http.StatusSeeOther)
}

func loginProblem(e *apiError) string {
	switch e.code {
	case "wrong_credentials":
		return "Wrong login or password."
	case "too_many_failures":
		return "Too many wrong passwords from your network. Try again in " + humanWait(e.retryAfter) + "."
	default:
		return sentence(e.message)
	}
}

// humanWait is a wait in whole minutes, or seconds under one.
func humanWait(d time.Duration) string {
	if d < time.Minute {
		secs := max(1, int((d+time.Second-1)/time.Second))
		return plural(secs, "second")
	}
	return plural(int((d+time.Minute-1)/time.Minute), "minute")
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// setRetryAfter sends an error's wait as the API does, in whole seconds.
func setRetryAfter(w http.ResponseWriter, e *apiError) {
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int64((e.retryAfter+time.Second-1)/time.Second)))
	}
}

// sentence capitalizes an API message and ends it with a period.
func sentence(msg string) string {
	if msg == "" {
		return ""
	}
	r, n := utf8.DecodeRuneInString(msg)
	msg = string(unicode.ToUpper(r)) + msg[n:]
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}

// pageDevices is GET /lost/devices.
func (s *Service) pageDevices(w http.ResponseWriter, r *http.Request, sess webSession) {
	devices, e := s.webDevices(sess.login)
	if e != nil {
		s.apiErrorPage(w, e, webDevices)
		return
	}
	s.render(w, http.StatusOK, "devices.html", pageData{Title: "Your phones", Login: sess.login,
		CSRF: csrfToken(sess.token), Devices: devices})
}

// webDevices lists login's devices as GET /v1/devices does, each with its
// live tokens, masked.
func (s *Service) webDevices(login string) ([]webDevice, *apiError) {
	prefix := prefixAccountDevice + login + "/"
	keys, err := s.st.keysUnder(prefix, devicesPerAccountMax)
	if err != nil {
		return nil, s.internalErr("device list", err)
	}
	out := []webDevice{}
	for _, k := range keys[:min(len(keys), devicesPerAccountMax)] {
		d, e := s.ownDevice(login, k[len(prefix):])
		if e != nil {
			return nil, e
		}
		tokens, err := s.deviceTokens(login, d.ID, false)
		if err != nil {
			return nil, s.internalErr("device list", err)
		}
		wd := webDevice{ID: d.ID, Off: d.Off}
		for _, t := range tokens {
			wd.Cards = append(wd.Cards, s.webCard(t))
		}
		out = append(out, wd)
	}
	return out, nil
}

// webCard is view with the token masked too: the page is shown on
// borrowed screens.
func (s *Service) webCard(t vault.Token) webCard {
	v := s.view(t)
	return webCard{Card: t.PAN.String(), Token: t.Token.String(), Issuer: v.Issuer, Product: v.Product, Status: v.Status}
}

// pageDeviceOff is POST /lost/devices/{device}/off.
func (s *Service) pageDeviceOff(w http.ResponseWriter, r *http.Request, sess webSession) {
	s.switchDevice(w, r, sess, "suspend", nil, s.handleDeviceSuspend)
}

// pageDeviceOn is POST /lost/devices/{device}/on {password}: the API's
// resume with the password typed on the form, never on the strength of
// the session alone.
func (s *Service) pageDeviceOn(w http.ResponseWriter, r *http.Request, sess webSession) {
	body, err := json.Marshal(turnOnBody{Password: r.PostFormValue("password")})
	if err != nil {
		s.apiErrorPage(w, s.internalErr("lost page", err), webDevices)
		return
	}
	s.switchDevice(w, r, sess, "resume", body, s.handleDeviceResume)
}

// pageLogout is POST /lost/logout: the API's logout, then the form.
func (s *Service) pageLogout(w http.ResponseWriter, r *http.Request, sess webSession) {
	if e := s.webLogout(r, sess); e != nil {
		s.apiErrorPage(w, e, webDevices)
		return
	}
	s.setSessionCookie(w, r, "")
	http.Redirect(w, r, webPrefix+"?m=loggedout", http.StatusSeeOther)
}

// apiErrorPage shows an API error as a page with its status.
func (s *Service) apiErrorPage(w http.ResponseWriter, e *apiError, back string) {
	setRetryAfter(w, e)
	msg := sentence(e.message)
	if e.code == "not_found" {
		msg = "There is no such phone on your account."
	}
	s.errorPage(w, e.status, statusTitle(e.status), msg, back)
}

func statusTitle(status int) string {
	switch {
	case status == http.StatusNotFound:
		return "Not found"
	case status == http.StatusRequestEntityTooLarge:
		return "Too large"
	case status == http.StatusServiceUnavailable:
		return "Unavailable"
	case status >= 500:
		return "Something went wrong"
	default:
		return "Cannot do that"
	}
}

func (s *Service) errorPage(w http.ResponseWriter, status int, title, problem, back string) {
	s.render(w, status, "error.html", pageData{Title: title, Problem: problem, Back: back})
}

// render executes a page in full before anything is sent, so a failure is
// a clean 500 rather than half a page.
func (s *Service) render(w http.ResponseWriter, status int, name string, data pageData) {
	var buf bytes.Buffer
	if err := webPages.ExecuteTemplate(&buf, name, data); err != nil {
		s.log.Error().Err(err).Str("page", name).Msg("lost page: template failed")
		http.Error(w, "The page failed; see the switch log.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
