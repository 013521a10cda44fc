package tokensvc

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/tapswitch/tapswitch/switch/replica"
)

// Session and hashing rules; password.go has the password rules and
// throttle.go the throttle.
const (
	accountsMax           = 1_000_000
	sessionBytes          = 32
	sessionsPerAccountMax = 8
	saltBytes             = 16
	hashBytes             = 32
)

// Argon2Params is the argon2id cost. Each account's hash records the
// parameters it was made with, so raising them affects new passwords only.
type Argon2Params struct {
	Time      uint32 `json:"t"`
	MemoryKiB uint32 `json:"m"`
	Threads   uint8  `json:"p"`
}

// DefaultArgon2 is OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane.
// At most passwordHashesInFlightMax hashes run at once, so logins use at
// most about 80 MB.
var DefaultArgon2 = Argon2Params{Time: 2, MemoryKiB: 19 * 1024, Threads: 1}

func (p Argon2Params) validate() error {
	if p.Time < 1 || p.Time > 10 || p.MemoryKiB < 64 || p.MemoryKiB > 256*1024 || p.Threads < 1 || p.Threads > 16 {
		return fmt.Errorf("tokensvc: argon2 parameters %+v outside t 1..10, m 64..262144 KiB, p 1..16", p)
	}
	return nil
}

// passwordHash is a stored argon2id hash with its salt and parameters.
type passwordHash struct {
	Params Argon2Params `json:"params"`
	Salt   []byte       `json:"salt"`
	Hash   []byte       `json:"hash"`
}

// hashPassword runs argon2id on the normalised password within the bound
// on concurrent hashes; it gives up when the request does.
func (s *Service) hashPassword(r *http.Request, password string, salt []byte, p Argon2Params) ([]byte, *apiError) {
	select {
	case s.hashSlots <- struct{}{}:
	case <-r.Context().Done():
		return nil, newError(http.StatusServiceUnavailable, "busy", "the service is busy; try again")
	}
	defer func() { <-s.hashSlots }()
	s.passwordHashes.Add(1)
	return argon2.IDKey([]byte(normalizePassword(password)), salt, p.Time, p.MemoryKiB, p.Threads, hashBytes), nil
}

type credentials struct {
	Login    string `json:"login"`
	Password string `json:"password"`
	// Device is the phone logging in (the wallet's device ID); empty for
	// a browser. A session knows its device, so turning the device off
	// ends it, and a device that is off cannot log in.
	Device string `json:"device,omitempty"`
}

// handleCreateAccount is POST /v1/accounts {login, password}. A taken
// login is 409: a person choosing a name must be told it is taken, so
// sign-up tells whether a login exists, and is throttled per address
// (signupsPerAddress) so that it cannot be used to list accounts.
func (s *Service) handleCreateAccount(w http.ResponseWriter, r *http.Request) {
	var c credentials
	if e := decodeBody(w, r, &c); e != nil {
		writeError(w, e)
		return
	}
	login, ok := foldLogin(c.Login)
	switch {
	case !ok:
		writeError(w, errBadRequest("bad_login", "login must be 3-64 of A-Z a-z 0-9 . _ @ + - (capitals are folded: Alice is alice)"))
		return
	case c.Device != "":
		writeError(w, errBadRequest("bad_json", "request body is not the JSON object this endpoint takes: a device is named at login"))
		return
	}
	if problem := passwordProblem(login, c.Password); problem != "" {
		writeError(w, errBadRequest("bad_password", problem))
		return
	}
	if wait, ok := s.throttle.take(s.now(), addressCharge(signupsPerAddress, remote(r))); !ok {
		writeError(w, retryLater(http.StatusTooManyRequests, "too_many_signups",
			"too many sign-ups from this address", wait))
		return
	}
	salt := make([]byte, saltBytes)
	if err := s.random(salt); err != nil {
		s.internal(w, "account creation", err)
		return
	}
	hash, e := s.hashPassword(r, c.Password, salt, s.cfg.Argon2)
	if e != nil {
		writeError(w, e)
		return
	}
	acct := account{V: recordFormat, Login: login, CreatedAt: s.now().UTC(),
		Password: passwordHash{Params: s.cfg.Argon2, Salt: salt, Hash: hash}}
	if e := s.createAccount(acct, remote(r)); e != nil {
		if e.code == errConflictCode {
			// Not a sign-up: the write lost to another node's and runs
			// again (conflict.go), charged again.
			s.throttle.give(s.now(), addressCharge(signupsPerAddress, remote(r)))
		}
		writeError(w, e)
		return
	}
	s.log.Info().Str("account", login).Msg("account created")
	writeJSON(w, http.StatusCreated, map[string]any{"login": acct.Login, "created_at": acct.CreatedAt})
}

// retryLater is an error answered with Retry-After.
func retryLater(status int, code, what string, wait time.Duration) *apiError {
	e := newError(status, code, fmt.Sprintf("%s: try again in %v", what, wait.Round(time.Second)))
	e.retryAfter = wait
	return e
}

func (s *Service) createAccount(acct account, from string) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	var existing account
	found, err := s.st.get(accountKey(acct.Login), &existing)
	if err != nil {
		return s.internalErr("account creation", err)
	}
	if found {
		return newError(http.StatusConflict, "account_exists", "an account with this login exists")
	}
	var count uint64
	if _, err := s.st.get(keyAccountCount, &count); err != nil {
		return s.internalErr("account creation", err)
	}
	if count >= accountsMax {
		return newError(http.StatusServiceUnavailable, "accounts_full", fmt.Sprintf("the service holds its maximum of %d accounts", accountsMax))
	}
	b := s.st.newBatch()
	b.put(accountKey(acct.Login), acct)
	b.put(keyAccountCount, count+1)
	s.audit(b, AuditRecord{Actor: acct.Login, Remote: from, Account: acct.Login, Action: actAccountCreate, Outcome: outcomeOK})
	if err := b.commit(); err != nil {
		return s.internalErr("account creation", err)
	}
	return nil
}

// internalErr logs err and returns the 500 to answer with.
func (s *Service) internalErr(what string, err error) *apiError {
	if e := replicaError(what, err); e != nil {
		s.log.Warn().Err(err).Msg(what)
		return e
	}
	s.log.Error().Err(err).Msg(what)
	return newError(http.StatusInternalServerError, "internal", what+" failed; see the switch log")
}

// replicaError is the answer to a write the cluster's replicated log did
// not take (docs/cluster.md): 503, nil for any other error.
func replicaError(what string, err error) *apiError {
	switch {
	case errors.Is(err, replica.ErrConflict):
		return newError(http.StatusServiceUnavailable, errConflictCode,
			what+": another switch node changed the same data at the same moment; try again")
	case errors.Is(err, replica.ErrUnavailable):
		return newError(http.StatusServiceUnavailable, "cluster_unavailable",
			what+": the switch network's shared store is unavailable; try again later")
	}
	return nil
}

// dummySalt stands in for an unknown login's salt, so an unknown login
// costs the same hash as a known one.
var dummySalt = []byte("tapswitch-dummy!")

// errWrongCredentials is the one answer to a failed login, whether the
// login exists or not.
func errWrongCredentials() *apiError {
	return newError(http.StatusUnauthorized, "wrong_credentials", "wrong login or password")
}

// handleLogin is POST /v1/sessions {login, password[, device]}.
func (s *Service) handleLogin(w http.ResponseWriter, r *http.Request) {
	var c credentials
	if e := decodeBody(w, r, &c); e != nil {
		writeError(w, e)
		return
	}
	if c.Device != "" && !devicePattern.MatchString(c.Device) {
		writeError(w, errBadRequest("bad_device", "device ID must be 1-64 of A-Z a-z 0-9 . _ : -"))
		return
	}
	login, _ := foldLogin(c.Login)
	known, ok, e := s.verifyPassword(r, login, c.Password)
	if e != nil {
		writeError(w, e)
		return
	}
	if !ok {
		if e := s.loginFailed(login, known, remote(r)); e != nil {
			writeError(w, e)
			return
		}
		writeError(w, errWrongCredentials())
		return
	}
	token, expires, e := s.startSession(login, c.Device, remote(r))
	if e != nil {
		writeError(w, e)
		return
	}
	s.log.Info().Str("account", login).Str("device", c.Device).Time("expires_at", expires).Msg("session created")
	writeJSON(w, http.StatusCreated, map[string]any{"session": token, "expires_at": expires})
}

// verifyPassword checks login's password, within the throttle: an attempt
// is taken from the client address's buckets first (429 when one is
// empty), and given back when the password is right. An unknown or
// malformed login ("" from foldLogin) is hashed against dummySalt like a
// known one, so neither the answer nor the work tells them apart. known
// says whether the account exists; e is a refusal that is not a wrong
// password (throttled, busy, store failure).
func (s *Service) verifyPassword(r *http.Request, login, password string) (known, ok bool, e *apiError) {
	from, now := remote(r), s.now()
	pair := loginCharge(passwordFailuresPerAddressLogin, from, login)
	addr := addressCharge(passwordFailuresPerAddress, from)
	if wait, admitted := s.throttle.take(now, pair, addr); !admitted {
		s.log.Debug().Str("remote", from).Dur("wait", wait).Msg("password attempt throttled")
		return false, false, retryLater(http.StatusTooManyRequests, "too_many_failures",
			"too many failed passwords from this address", wait)
	}
	var acct account
	if login != "" && len(password) <= passwordBytesMax {
		found, err := s.st.get(accountKey(login), &acct)
		if err != nil {
			s.throttle.give(now, pair, addr)
			return false, false, s.internalErr("password check", err)
		}
		known = found
	}
	salt, params := dummySalt, s.cfg.Argon2
	if known {
		salt, params = acct.Password.Salt, acct.Password.Params
	}
	hash, e := s.hashPassword(r, password, salt, params)
	if e != nil {
		s.throttle.give(now, pair, addr)
		return false, false, e
	}
	if !known || subtle.ConstantTimeCompare(hash, acct.Password.Hash) != 1 {
		return known, false, nil
	}
	s.throttle.forget(pair.key)
	s.throttle.give(now, addr)
	return true, true, nil
}

// loginFailed records a failed login: in the account's trail for a known
// login, in the global trail alone for an unknown one (whose text is not
// kept: it may be a password typed in the wrong field). Both are one
// synchronous write, so the two cost the same.
func (s *Service) loginFailed(login string, known bool, from string) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := AuditRecord{Actor: actorUnknown, Remote: from, Action: actLoginFailed, Outcome: "unknown_login"}
	if known {
		rec.Actor, rec.Account, rec.Outcome = login, login, "wrong_password"
	}
	b := s.st.newBatch()
	s.audit(b, rec)
	if err := b.commit(); err != nil {
		return s.internalErr("login", err)
	}
	s.log.Warn().Str("remote", from).Bool("known", known).Msg("login failed")
	return nil
}

// startSession stores a new session of login, on device when it is not
// "", and prunes the account's expired and oldest sessions beyond
// sessionsPerAccountMax. A device of the account that is off gets no
// session: it comes back on only with the password in the request that
// turns it on (handleDeviceResume), never by logging in from it.
func (s *Service) startSession(login, deviceID, from string) (string, time.Time, *apiError) {
	raw := make([]byte, sessionBytes)
	if err := s.random(raw); err != nil {
		return "", time.Time{}, s.internalErr("login", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	hash := sessionHash(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	if deviceID != "" {
		var d device
		found, err := s.st.get(deviceKey(deviceID), &d)
		if err != nil {
			return "", time.Time{}, s.internalErr("login", err)
		}
		if found && d.Owner == login && d.Off {
			return "", time.Time{}, errDeviceOffLogin()
		}
	}
	now := s.now().UTC()
	sess := session{V: recordFormat, Login: login, Device: deviceID, CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL)}
	b := s.st.newBatch()
	if err := s.pruneSessions(b, login, now); err != nil {
		b.b.Close()
		return "", time.Time{}, s.internalErr("login", err)
	}
	b.put(sessionKey(hash), sess)
	b.setEmpty(accountSessionKey(login, hash))
	detail := "expires " + sess.ExpiresAt.Format(time.RFC3339)
	s.audit(b, AuditRecord{Actor: login, Remote: from, Account: login, Action: actSessionCreate, Device: deviceID,
		Outcome: outcomeOK, Detail: detail})
	if err := b.commit(); err != nil {
		return "", time.Time{}, s.internalErr("login", err)
	}
	return token, sess.ExpiresAt, nil
}

func errDeviceOffLogin() *apiError {
	return newError(http.StatusForbidden, "device_off",
		"this device is turned off: turn it on from the lost-phone page or another device, with the password")
}

// pruneSessions adds to b the deletion of login's expired sessions, and of
// its oldest live ones so that one more fits under sessionsPerAccountMax.
func (s *Service) pruneSessions(b *batch, login string, now time.Time) error {
	prefix := prefixAccountSession + login + "/"
	keys, err := s.st.keysUnder(prefix, sessionsPerAccountMax*4)
	if err != nil {
		return err
	}
	type live struct {
		hashHex string
		created time.Time
	}
	var alive []live
	for _, k := range keys {
		hashHex := strings.TrimPrefix(k, prefix)
		var sess session
		found, err := s.st.get(prefixSession+hashHex, &sess)
		if err != nil {
			return err
		}
		if !found || !now.Before(sess.ExpiresAt) {
			b.del(k)
			b.del(prefixSession + hashHex)
			continue
		}
		alive = append(alive, live{hashHex, sess.CreatedAt})
	}
	for len(alive) >= sessionsPerAccountMax {
		oldest := 0
		for i := range alive {
			if alive[i].created.Before(alive[oldest].created) {
				oldest = i
			}
		}
		b.del(prefix + alive[oldest].hashHex)
		b.del(prefixSession + alive[oldest].hashHex)
		alive = append(alive[:oldest], alive[oldest+1:]...)
	}
	return nil
}

func sessionHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// bearer returns the session token of an "Authorization: Bearer" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const scheme = "Bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	return strings.TrimSpace(h[len(scheme):]), true
}

// authenticate returns the login of the request's session.
func (s *Service) authenticate(r *http.Request) (string, *apiError) {
	token, ok := bearer(r)
	if !ok {
		return "", newError(http.StatusUnauthorized, "no_session", "log in first: POST /v1/sessions, then send Authorization: Bearer <session>")
	}
	if len(token) > 2*sessionBytes {
		return "", newError(http.StatusUnauthorized, "unknown_session", "unknown session; log in again")
	}
	hash := sessionHash(token)
	var sess session
	found, err := s.st.get(sessionKey(hash), &sess)
	if err != nil {
		return "", s.internalErr("session check", err)
	}
	if !found {
		return "", newError(http.StatusUnauthorized, "unknown_session", "unknown session; log in again")
	}
	if !s.now().Before(sess.ExpiresAt) {
		return "", newError(http.StatusUnauthorized, "session_expired", "the session expired; log in again")
	}
	return sess.Login, nil
}

// handleLogout is DELETE /v1/sessions with the session to end.
func (s *Service) handleLogout(w http.ResponseWriter, r *http.Request) {
	login, e := s.authenticate(r)
	if e != nil {
		writeError(w, e)
		return
	}
	token, _ := bearer(r)
	hash := sessionHash(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.st.newBatch()
	b.del(sessionKey(hash))
	b.del(accountSessionKey(login, hash))
	s.audit(b, AuditRecord{Actor: login, Remote: remote(r), Account: login, Action: actSessionDelete, Outcome: outcomeOK})
	if err := b.commit(); err != nil {
		s.internal(w, "logout", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"login": login, "session": "ended"})
}
