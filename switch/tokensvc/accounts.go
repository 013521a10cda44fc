package tokensvc

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"regexp"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
)

// Login and lock-out rules.
const (
	loginFailuresMax      = 5
	lockoutDuration       = 15 * time.Minute
	passwordBytesMin      = 8
	passwordBytesMax      = 128
	accountsMax           = 1_000_000
	sessionBytes          = 32
	sessionsPerAccountMax = 8
	saltBytes             = 16
	hashBytes             = 32
)

// loginPattern keeps logins fit for store keys ('/' separates key parts)
// and for the vault's wallet account field (printable ASCII, 64 bytes).
var loginPattern = regexp.MustCompile(`^[A-Za-z0-9._@+-]{3,64}$`)

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

// hashPassword runs argon2id within the bound on concurrent hashes; it
// gives up when the request does.
func (s *Service) hashPassword(r *http.Request, password string, salt []byte, p Argon2Params) ([]byte, *apiError) {
	select {
	case s.hashSlots <- struct{}{}:
	case <-r.Context().Done():
		return nil, newError(http.StatusServiceUnavailable, "busy", "the service is busy; try again")
	}
	defer func() { <-s.hashSlots }()
	return argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, hashBytes), nil
}

type credentials struct {
	Login    string `json:"login"`
	Password string `json:"password"`
}

// handleCreateAccount is POST /v1/accounts {login, password}.
func (s *Service) handleCreateAccount(w http.ResponseWriter, r *http.Request) {
	var c credentials
	if e := decodeBody(w, r, &c); e != nil {
		writeError(w, e)
		return
	}
	switch {
	case !loginPattern.MatchString(c.Login):
		writeError(w, errBadRequest("bad_login", "login must be 3-64 of A-Z a-z 0-9 . _ @ + -"))
		return
	case len(c.Password) < passwordBytesMin || len(c.Password) > passwordBytesMax:
		writeError(w, errBadRequest("bad_password", fmt.Sprintf("password must be %d-%d bytes", passwordBytesMin, passwordBytesMax)))
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
	acct := account{V: recordFormat, Login: c.Login, CreatedAt: s.now().UTC(),
		Password: passwordHash{Params: s.cfg.Argon2, Salt: salt, Hash: hash}}
	if e := s.createAccount(acct, remote(r)); e != nil {
		writeError(w, e)
		return
	}
	s.log.Info().Str("account", c.Login).Msg("account created")
	writeJSON(w, http.StatusCreated, map[string]any{"login": acct.Login, "created_at": acct.CreatedAt})
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
	s.log.Error().Err(err).Msg(what)
	return newError(http.StatusInternalServerError, "internal", what+" failed; see the switch log")
}

// dummySalt and the hash made with it stand in for an unknown login, so an
// unknown login costs the same time as a known one.
var dummySalt = []byte("tapswitch-dummy!")

// handleLogin is POST /v1/sessions {login, password}.
func (s *Service) handleLogin(w http.ResponseWriter, r *http.Request) {
	var c credentials
	if e := decodeBody(w, r, &c); e != nil {
		writeError(w, e)
		return
	}
	wrong := newError(http.StatusUnauthorized, "wrong_credentials", "wrong login or password")
	if !loginPattern.MatchString(c.Login) || len(c.Password) > passwordBytesMax {
		writeError(w, wrong)
		return
	}
	lock := &s.loginLocks[stripe(c.Login)]
	lock.Lock()
	defer lock.Unlock()
	var acct account
	found, err := s.st.get(accountKey(c.Login), &acct)
	if err != nil {
		s.internal(w, "login", err)
		return
	}
	now := s.now()
	if !found {
		if _, e := s.hashPassword(r, c.Password, dummySalt, s.cfg.Argon2); e != nil {
			writeError(w, e)
			return
		}
		writeError(w, wrong)
		return
	}
	if now.Before(acct.LockedUntil) {
		writeError(w, lockedError(acct.LockedUntil.Sub(now)))
		return
	}
	hash, e := s.hashPassword(r, c.Password, acct.Password.Salt, acct.Password.Params)
	if e != nil {
		writeError(w, e)
		return
	}
	if subtle.ConstantTimeCompare(hash, acct.Password.Hash) != 1 {
		writeError(w, s.loginFailed(acct.Login, remote(r)))
		return
	}
	token, expires, e := s.startSession(acct.Login, remote(r))
	if e != nil {
		writeError(w, e)
		return
	}
	s.log.Info().Str("account", acct.Login).Time("expires_at", expires).Msg("session created")
	writeJSON(w, http.StatusCreated, map[string]any{"session": token, "expires_at": expires})
}

func lockedError(left time.Duration) *apiError {
	e := newError(http.StatusLocked, "account_locked",
		fmt.Sprintf("too many failed logins: the account is locked for %v more", left.Round(time.Second)))
	e.retryAfter = left
	return e
}

// stripe picks the login's lock.
func stripe(login string) int {
	h := fnv.New32a()
	h.Write([]byte(login))
	return int(h.Sum32() % loginStripes)
}

// loginFailed counts a wrong password and locks the account at the
// loginFailuresMax-th in a row.
func (s *Service) loginFailed(login, from string) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	var acct account
	if found, err := s.st.get(accountKey(login), &acct); err != nil || !found {
		return s.internalErr("login", errors.Join(err, errors.New("account vanished")))
	}
	now := s.now()
	acct.Failures++
	rec := AuditRecord{Actor: login, Remote: from, Account: login, Action: actLoginFailed, Outcome: "wrong_password",
		Detail: fmt.Sprintf("failure %d of %d", acct.Failures, loginFailuresMax)}
	answer := newError(http.StatusUnauthorized, "wrong_credentials", "wrong login or password")
	locked := acct.Failures >= loginFailuresMax
	if locked {
		acct.Failures, acct.LockedUntil = 0, now.Add(lockoutDuration)
		answer = lockedError(lockoutDuration)
	}
	b := s.st.newBatch()
	b.put(accountKey(login), acct)
	s.audit(b, rec)
	if locked {
		s.audit(b, AuditRecord{Actor: actorSystem, Remote: from, Account: login, Action: actAccountLocked, Outcome: outcomeOK,
			Detail: fmt.Sprintf("%d failed logins in a row; locked until %s", loginFailuresMax, acct.LockedUntil.UTC().Format(time.RFC3339))})
	}
	if err := b.commit(); err != nil {
		return s.internalErr("login", err)
	}
	s.log.Warn().Str("account", login).Bool("locked", locked).Msg("login failed")
	return answer
}

// startSession resets the failure count, stores a new session and prunes
// the account's expired and oldest sessions beyond sessionsPerAccountMax.
func (s *Service) startSession(login, from string) (string, time.Time, *apiError) {
	raw := make([]byte, sessionBytes)
	if err := s.random(raw); err != nil {
		return "", time.Time{}, s.internalErr("login", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	hash := sessionHash(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	var acct account
	if found, err := s.st.get(accountKey(login), &acct); err != nil || !found {
		return "", time.Time{}, s.internalErr("login", errors.Join(err, errors.New("account vanished")))
	}
	now := s.now().UTC()
	sess := session{V: recordFormat, Login: login, CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL)}
	b := s.st.newBatch()
	if err := s.pruneSessions(b, login, now); err != nil {
		b.b.Close()
		return "", time.Time{}, s.internalErr("login", err)
	}
	acct.Failures = 0
	b.put(accountKey(login), acct)
	b.put(sessionKey(hash), sess)
	b.setEmpty(accountSessionKey(login, hash))
	s.audit(b, AuditRecord{Actor: login, Remote: from, Account: login, Action: actSessionCreate, Outcome: outcomeOK,
		Detail: "expires " + sess.ExpiresAt.Format(time.RFC3339)})
	if err := b.commit(); err != nil {
		return "", time.Time{}, s.internalErr("login", err)
	}
	return token, sess.ExpiresAt, nil
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
