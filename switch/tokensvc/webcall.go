package tokensvc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// webAnswerBytesMax bounds a JSON answer the page reads back; the largest,
// a device switch or a session, is under 200 bytes.
const webAnswerBytesMax = 16 << 10

var errAnswerTooLarge = errors.New("tokensvc: a JSON answer over the page's bound")

// captured is a JSON handler's answer held in memory, so that the page acts
// through the very code the API runs (web.go says why).
type captured struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (c *captured) Header() http.Header {
	if c.header == nil {
		c.header = http.Header{}
	}
	return c.header
}

func (c *captured) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}

func (c *captured) Write(p []byte) (int, error) {
	c.WriteHeader(http.StatusOK)
	if c.body.Len()+len(p) > webAnswerBytesMax {
		return 0, errAnswerTooLarge
	}
	return c.body.Write(p)
}

// readAnswer reads a success answer of status want into v; any other
// answer is the error it was written from.
func (s *Service) readAnswer(c *captured, want int, v any) *apiError {
	if c.status != want {
		return s.answerError(c)
	}
	if err := json.Unmarshal(c.body.Bytes(), v); err != nil {
		return s.internalErr("lost page: reading an answer", err)
	}
	return nil
}

// answerError turns an error answer back into the error it was written
// from. An answer that is not one is a bug, reported as a 500.
func (s *Service) answerError(c *captured) *apiError {
	var body struct {
		Code       string `json:"code"`
		Error      string `json:"error"`
		RetryAfter int64  `json:"retry_after_seconds"`
	}
	err := json.Unmarshal(c.body.Bytes(), &body)
	if c.status < 400 || err != nil || body.Code == "" || body.Error == "" {
		return s.internalErr("lost page: reading an answer",
			errors.Join(err, fmt.Errorf("status %d, code %q: not an error answer", c.status, body.Code)))
	}
	e := newError(c.status, body.Code, body.Error)
	e.retryAfter = time.Duration(body.RetryAfter) * time.Second
	return e
}

// inner builds the request a JSON handler gets for a page's action: the
// page's context (a visitor who leaves cancels it) and client address (for
// the audit trail), the session as a bearer token.
func (s *Service) inner(r *http.Request, method, target string, body []byte, session string) (*http.Request, *apiError) {
	in, err := http.NewRequestWithContext(r.Context(), method, target, bytes.NewReader(body))
	if err != nil {
		// Targets are constants and pattern-checked device IDs.
		return nil, s.internalErr("lost page request", err)
	}
	in.RemoteAddr = r.RemoteAddr
	in.Header.Set("Content-Type", "application/json")
	if session != "" {
		in.Header.Set("Authorization", "Bearer "+session)
	}
	return in, nil
}

// webLogin is the API's login, POST /v1/sessions: argon2id, throttle,
// constant-time comparison, audit. It returns the session token.
func (s *Service) webLogin(r *http.Request, login, password string) (string, *apiError) {
	// A form field could otherwise grow past decodeBody's bound once
	// JSON-escaped. No login is this long, so the answer tells no account
	// from another.
	if len(login) > webLoginBytesMax || len(password) > passwordBytesMax {
		return "", newError(http.StatusUnauthorized, "wrong_credentials", "wrong login or password")
	}
	body, err := json.Marshal(credentials{Login: login, Password: password})
	if err != nil {
		return "", s.internalErr("login", err)
	}
	in, e := s.inner(r, http.MethodPost, "/v1/sessions", body, "")
	if e != nil {
		return "", e
	}
	var c captured
	s.retryConflicts(s.handleLogin)(&c, in)
	var ok struct {
		Session string `json:"session"`
	}
	if e := s.readAnswer(&c, http.StatusCreated, &ok); e != nil {
		return "", e
	}
	if ok.Session == "" {
		return "", s.internalErr("login", errors.New("a login answer without a session"))
	}
	return ok.Session, nil
}

// webLogout is the API's logout, DELETE /v1/sessions. A session that has
// ended meanwhile is as good as ended here.
func (s *Service) webLogout(r *http.Request, sess webSession) *apiError {
	in, e := s.inner(r, http.MethodDelete, "/v1/sessions", nil, sess.token)
	if e != nil {
		return e
	}
	var c captured
	s.retryConflicts(s.handleLogout)(&c, in)
	if c.status == http.StatusOK || c.status == http.StatusUnauthorized {
		return nil
	}
	return s.answerError(&c)
}

// switchDevice turns a device off or on with the API's handler for it
// (handleDeviceSuspend or handleDeviceResume: the same checks, records
// and audit as POST /v1/devices/{device}/suspend or /resume, with body),
// then sends the visitor back to the list.
func (s *Service) switchDevice(w http.ResponseWriter, r *http.Request, sess webSession, verb string, body []byte,
	h func(http.ResponseWriter, *http.Request, string)) {
	id := r.PathValue("device")
	if !devicePattern.MatchString(id) {
		s.apiErrorPage(w, errNotFound("device"), webDevices)
		return
	}
	in, e := s.inner(r, http.MethodPost, "/v1/devices/"+id+"/"+verb, body, sess.token)
	if e != nil {
		s.apiErrorPage(w, e, webDevices)
		return
	}
	in.SetPathValue("device", id)
	var c captured
	s.retryConflicts(func(w http.ResponseWriter, in *http.Request) { h(w, in, sess.login) })(&c, in)
	var ok struct {
		Off bool `json:"off"`
	}
	if e := s.readAnswer(&c, http.StatusOK, &ok); e != nil {
		s.apiErrorPage(w, e, webDevices)
		return
	}
	http.Redirect(w, r, webDevices, http.StatusSeeOther)
}
