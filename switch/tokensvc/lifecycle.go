package tokensvc

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/vault"
)

var tokenPattern = regexp.MustCompile(`^[0-9]{13,19}$`)

// deviceOf returns login's device. A device in the store belongs to its
// owner; one the store lacks (tokens put in the vault by other means, such
// as switchd -dev's demo wallet) belongs to the account that holds every
// one of its tokens. found is false for a device with no owner at all;
// another account's device is errNotFound, exactly as a missing one would
// be in the handlers that need it.
func (s *Service) deviceOf(login, deviceID string) (device, bool, *apiError) {
	var d device
	found, err := s.st.get(deviceKey(deviceID), &d)
	if err != nil {
		return device{}, false, s.internalErr("device look-up", err)
	}
	if found {
		if d.Owner != login {
			return device{}, false, errNotFound("device")
		}
		return d, true, nil
	}
	tokens, err := s.cfg.Vault.TokensForDevice(deviceID)
	if err != nil {
		return device{}, false, s.internalErr("device look-up", err)
	}
	for _, tok := range tokens {
		t, err := s.cfg.Vault.Get(tok)
		if err != nil {
			return device{}, false, s.internalErr("device look-up", err)
		}
		if t.WalletAccount != login {
			return device{}, false, errNotFound("device")
		}
	}
	if len(tokens) == 0 {
		return device{}, false, nil
	}
	now := s.now().UTC()
	return device{V: recordFormat, ID: deviceID, Owner: login, CreatedAt: now, ChangedAt: now}, true, nil
}

// ownDevice is deviceOf for handlers that act on an existing device.
func (s *Service) ownDevice(login, deviceID string) (device, *apiError) {
	if !devicePattern.MatchString(deviceID) {
		return device{}, errNotFound("device")
	}
	d, found, e := s.deviceOf(login, deviceID)
	if e != nil {
		return device{}, e
	}
	if !found {
		return device{}, errNotFound("device")
	}
	return d, nil
}

// tokenView is a token as the API lists it: the card masked, no key.
type tokenView struct {
	Token           string    `json:"token"`
	TokenExpiry     string    `json:"token_expiry"`
	Card            string    `json:"card"`
	Issuer          string    `json:"issuer,omitempty"`
	Product         string    `json:"product,omitempty"`
	Status          string    `json:"status"`
	DeviceID        string    `json:"device_id"`
	ContactlessOnly bool      `json:"contactless_only"`
	CreatedAt       time.Time `json:"created_at"`
}

func (s *Service) view(t vault.Token) tokenView {
	v := tokenView{
		Token: t.Token.Clear(), TokenExpiry: t.TokenExpiry, Card: t.PAN.String(), Status: string(t.Status),
		DeviceID: t.DeviceID, ContactlessOnly: t.Domain.ContactlessOnly, CreatedAt: t.CreatedAt,
	}
	if e, ok := s.cfg.Table.Lookup(t.PAN.Clear()); ok {
		v.Issuer, v.Product = e.Issuer, string(e.Product)
	}
	return v
}

// deviceTokens returns the tokens on a device that belong to login,
// deleted ones only when asked.
func (s *Service) deviceTokens(login, deviceID string, withDeleted bool) ([]vault.Token, error) {
	numbers, err := s.cfg.Vault.TokensForDevice(deviceID)
	if err != nil {
		return nil, err
	}
	out := []vault.Token{}
	for _, n := range numbers {
		t, err := s.cfg.Vault.Get(n)
		if err != nil {
			return nil, err
		}
		if t.WalletAccount != login || (t.Status == vault.StatusDeleted && !withDeleted) {
			continue
		}
		out = append(out, t)
	}
	return out, nil
}

// handleListTokens is GET /v1/devices/{device}/tokens[?deleted=true].
func (s *Service) handleListTokens(w http.ResponseWriter, r *http.Request, login string) {
	d, e := s.ownDevice(login, r.PathValue("device"))
	if e != nil {
		writeError(w, e)
		return
	}
	tokens, err := s.deviceTokens(login, d.ID, r.URL.Query().Get("deleted") == "true")
	if err != nil {
		s.internal(w, "token list", err)
		return
	}
	views := make([]tokenView, len(tokens))
	for i, t := range tokens {
		views[i] = s.view(t)
	}
	writeJSON(w, http.StatusOK, map[string]any{"device_id": d.ID, "off": d.Off, "tokens": views})
}

// handleDevices is GET /v1/devices: the account's devices.
func (s *Service) handleDevices(w http.ResponseWriter, r *http.Request, login string) {
	prefix := prefixAccountDevice + login + "/"
	keys, err := s.st.keysUnder(prefix, devicesPerAccountMax)
	if err != nil {
		s.internal(w, "device list", err)
		return
	}
	type deviceView struct {
		DeviceID  string `json:"device_id"`
		Off       bool   `json:"off"`
		Active    int    `json:"active"`
		Suspended int    `json:"suspended"`
	}
	out := []deviceView{}
	for _, k := range keys {
		d, e := s.ownDevice(login, k[len(prefix):])
		if e != nil {
			writeError(w, e)
			return
		}
		tokens, err := s.deviceTokens(login, d.ID, false)
		if err != nil {
			s.internal(w, "device list", err)
			return
		}
		v := deviceView{DeviceID: d.ID, Off: d.Off}
		for _, t := range tokens {
			if t.Status == vault.StatusActive {
				v.Active++
			} else {
				v.Suspended++
			}
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"account": login, "devices": out})
}

// Token actions and the status each leads to.
var tokenActions = map[string]vault.Status{
	"suspend": vault.StatusSuspended,
	"resume":  vault.StatusActive,
	"delete":  vault.StatusDeleted,
}

var tokenActionAudit = map[string]string{
	"suspend": actTokenSuspend, "resume": actTokenResume, "delete": actTokenDelete,
}

// handleTokenAction is POST /v1/tokens/{token}/{suspend|resume|delete}, and
// the same under /v1/devices/{device}/, which also insists on the device.
// A resume needs the account's password in its body: a session alone, as
// a stolen phone holds, never turns a token back on.
func (s *Service) handleTokenAction(w http.ResponseWriter, r *http.Request, login string) {
	action := r.PathValue("action")
	target, ok := tokenActions[action]
	if !ok {
		writeError(w, newError(http.StatusNotFound, "no_such_endpoint", "token actions are suspend, resume and delete"))
		return
	}
	number := r.PathValue("token")
	if !tokenPattern.MatchString(number) {
		writeError(w, errNotFound("token"))
		return
	}
	if target == vault.StatusActive {
		if e := s.passwordToTurnOn(w, r, login); e != nil {
			writeError(w, e)
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, e := s.ownToken(login, number, r.PathValue("device"))
	if e != nil {
		writeError(w, e)
		return
	}
	changed, e := s.setTokenStatus(t, action, target, login, remote(r))
	if e != nil {
		writeError(w, e)
		return
	}
	t.Status = target
	writeJSON(w, http.StatusOK, map[string]any{"token": s.view(t), "changed": changed})
}

// ownToken returns login's token, on deviceID when it is not "". Another
// account's token, or one on another device, is not found.
func (s *Service) ownToken(login, number, deviceID string) (vault.Token, *apiError) {
	t, err := s.cfg.Vault.Get(number)
	if errors.Is(err, vault.ErrNotFound) {
		return vault.Token{}, errNotFound("token")
	}
	if err != nil {
		return vault.Token{}, s.internalErr("token look-up", err)
	}
	if t.WalletAccount != login || (deviceID != "" && t.DeviceID != deviceID) {
		return vault.Token{}, errNotFound("token")
	}
	return t, nil
}

// setTokenStatus moves t to target; the caller holds s.mu. The audit
// record is durable before the vault changes.
func (s *Service) setTokenStatus(t vault.Token, action string, target vault.Status, login, from string) (bool, *apiError) {
	switch {
	case t.Status == target:
		return false, nil
	case t.Status == vault.StatusDeleted:
		return false, newError(http.StatusConflict, "token_deleted", "the token is deleted, which is final")
	}
	d, found, e := s.deviceOf(login, t.DeviceID)
	if e != nil {
		return false, e
	}
	if target == vault.StatusActive && found && d.Off {
		return false, newError(http.StatusConflict, "device_off", "the device is turned off; turn the device on instead")
	}
	b := s.st.newBatch()
	if found && target == vault.StatusDeleted && slices.Contains(d.Held, t.Token.Clear()) {
		d.Held = slices.DeleteFunc(d.Held, func(n string) bool { return n == t.Token.Clear() })
		b.put(deviceKey(d.ID), d)
		b.setEmpty(accountDeviceKey(login, d.ID))
	}
	s.audit(b, AuditRecord{Actor: login, Remote: from, Account: login, Action: tokenActionAudit[action], Device: t.DeviceID,
		Token: t.Token.String(), Card: t.PAN.String(), Outcome: outcomeOK, Detail: string(t.Status) + " -> " + string(target)})
	if err := b.commit(); err != nil {
		return false, s.internalErr("token "+action, err)
	}
	if err := s.cfg.Vault.SetStatus(t.Token.Clear(), target); err != nil {
		s.auditFailure(login, from, tokenActionAudit[action], t, err)
		return false, s.internalErr("token "+action, err)
	}
	s.log.Info().Str("account", login).Str("device", t.DeviceID).Stringer("token", t.Token).
		Str("status", string(target)).Msg("token " + action)
	return true, nil
}

// auditFailure records that a change whose audit record is written did not
// happen.
func (s *Service) auditFailure(login, from, action string, t vault.Token, cause error) {
	b := s.st.newBatch()
	s.audit(b, AuditRecord{Actor: actorSystem, Remote: from, Account: login, Action: action, Device: t.DeviceID,
		Token: t.Token.String(), Outcome: "failed", Detail: "the vault refused the change; see the switch log"})
	if err := b.commit(); err != nil {
		s.log.Error().Err(errors.Join(cause, err)).Msg("audit of a failed change")
	}
}

// handleDeviceSuspend is POST /v1/devices/{device}/suspend: the lost phone.
// Every active token on it is suspended in one vault batch, and every
// session logged in from it ends in the same store batch that marks it
// off, so the phone's own session can neither act nor turn it back on.
func (s *Service) handleDeviceSuspend(w http.ResponseWriter, r *http.Request, login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, e := s.ownDevice(login, r.PathValue("device"))
	if e != nil {
		writeError(w, e)
		return
	}
	tokens, err := s.deviceTokens(login, d.ID, false)
	if err != nil {
		s.internal(w, "device suspension", err)
		return
	}
	for _, t := range tokens {
		if t.Status == vault.StatusActive && !slices.Contains(d.Held, t.Token.Clear()) {
			d.Held = append(d.Held, t.Token.Clear())
		}
	}
	wasOff := d.Off
	d.Off, d.ChangedAt = true, s.now().UTC()
	b := s.st.newBatch()
	b.put(deviceKey(d.ID), d)
	b.setEmpty(accountDeviceKey(login, d.ID))
	ended, err := s.endDeviceSessions(b, login, d.ID)
	if err != nil {
		b.b.Close()
		s.internal(w, "device suspension", err)
		return
	}
	blacklisted, err := s.blacklistDevice(b, login, d.ID, d.ChangedAt)
	if err != nil {
		b.b.Close()
		s.internal(w, "device suspension", err)
		return
	}
	s.audit(b, AuditRecord{Actor: login, Remote: remote(r), Account: login, Action: actDeviceSuspend, Device: d.ID,
		Outcome: outcomeOK, Detail: fmt.Sprintf("every token on the device suspended; sessions of the device ended: %d; transit cards blacklisted: %d", ended, blacklisted)})
	if err := b.commit(); err != nil {
		s.internal(w, "device suspension", err)
		return
	}
	// Run even when the device was already off: a crash between the
	// record above and this batch is healed by asking again.
	n, err := s.cfg.Vault.SuspendDevice(d.ID)
	if err != nil {
		s.internal(w, "device suspension", err)
		return
	}
	s.log.Info().Str("account", login).Str("device", d.ID).Int("suspended", n).Int("sessions_ended", ended).
		Bool("was_off", wasOff).Msg("device suspended")
	writeJSON(w, http.StatusOK, map[string]any{"device_id": d.ID, "off": true, "suspended": n, "sessions_ended": ended})
}

// handleDeviceResume is POST /v1/devices/{device}/resume {password}: the
// tokens the device suspension suspended become active again; a token
// suspended on its own stays suspended. The password is checked before
// anything else, so a session without it learns nothing.
func (s *Service) handleDeviceResume(w http.ResponseWriter, r *http.Request, login string) {
	if e := s.passwordToTurnOn(w, r, login); e != nil {
		writeError(w, e)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, e := s.ownDevice(login, r.PathValue("device"))
	if e != nil {
		writeError(w, e)
		return
	}
	if !d.Off {
		writeJSON(w, http.StatusOK, map[string]any{"device_id": d.ID, "off": false, "resumed": 0})
		return
	}
	b := s.st.newBatch()
	s.audit(b, AuditRecord{Actor: login, Remote: remote(r), Account: login, Action: actDeviceResume, Device: d.ID,
		Outcome: outcomeOK, Detail: "tokens suspended with the device resumed"})
	if err := b.commit(); err != nil {
		s.internal(w, "device resumption", err)
		return
	}
	resumed := 0
	for _, number := range d.Held {
		t, err := s.cfg.Vault.Get(number)
		if err != nil && !errors.Is(err, vault.ErrNotFound) {
			s.internal(w, "device resumption", err)
			return
		}
		if err != nil || t.Status != vault.StatusSuspended || t.WalletAccount != login {
			continue
		}
		// The device stays off in the store until every token is back, so
		// a failure here is healed by asking again.
		if err := s.cfg.Vault.SetStatus(number, vault.StatusActive); err != nil {
			s.internal(w, "device resumption", err)
			return
		}
		resumed++
	}
	d.Off, d.Held, d.ChangedAt = false, nil, s.now().UTC()
	b = s.st.newBatch()
	b.put(deviceKey(d.ID), d)
	b.setEmpty(accountDeviceKey(login, d.ID))
	if _, err := s.unblacklistDevice(b, login, d.ID, d.ChangedAt); err != nil {
		b.b.Close()
		s.internal(w, "device resumption", err)
		return
	}
	if err := b.commit(); err != nil {
		s.internal(w, "device resumption", err)
		return
	}
	s.log.Info().Str("account", login).Str("device", d.ID).Int("resumed", resumed).Msg("device resumed")
	writeJSON(w, http.StatusOK, map[string]any{"device_id": d.ID, "off": false, "resumed": resumed})
}

// turnOnBody is the body of a resume: the account's password.
type turnOnBody struct {
	Password string `json:"password"`
}

// passwordToTurnOn checks the password a resume carries against login's,
// within the throttle (verifyPassword). A wrong one is audited and is 403
// wrong_password: the session is fine, the password is not.
func (s *Service) passwordToTurnOn(w http.ResponseWriter, r *http.Request, login string) *apiError {
	var body turnOnBody
	if e := decodeBody(w, r, &body); e != nil {
		if e.code == "bad_json" {
			return errPasswordRequired()
		}
		return e
	}
	if body.Password == "" {
		return errPasswordRequired()
	}
	_, ok, e := s.verifyPassword(r, login, body.Password)
	if e != nil {
		return e
	}
	if ok {
		return nil
	}
	rec := AuditRecord{Actor: login, Remote: remote(r), Account: login, Action: actDeviceResume,
		Outcome: "wrong_password", Detail: "refused: wrong password"}
	if id := r.PathValue("device"); devicePattern.MatchString(id) {
		rec.Device = id
	}
	if number := r.PathValue("token"); tokenPattern.MatchString(number) {
		rec.Action, rec.Token = actTokenResume, iso8583.PAN(number).String()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.st.newBatch()
	s.audit(b, rec)
	if err := b.commit(); err != nil {
		return s.internalErr("password check", err)
	}
	return newError(http.StatusForbidden, "wrong_password", "wrong password: turning a device or token on needs the account's password")
}

func errPasswordRequired() *apiError {
	return errBadRequest("password_required",
		`turning a device or token on needs the account's password in the body: {"password": "..."}`)
}

// endDeviceSessions adds to b the end of every session of login that was
// logged in from deviceID, and returns how many.
func (s *Service) endDeviceSessions(b *batch, login, deviceID string) (int, error) {
	prefix := prefixAccountSession + login + "/"
	// An account holds at most sessionsPerAccountMax live sessions plus
	// expired ones not yet pruned; pruneSessions bounds the same way.
	keys, err := s.st.keysUnder(prefix, sessionsPerAccountMax*4)
	if err != nil {
		return 0, err
	}
	ended := 0
	for _, k := range keys {
		hashHex := strings.TrimPrefix(k, prefix)
		var sess session
		found, err := s.st.get(prefixSession+hashHex, &sess)
		if err != nil {
			return 0, err
		}
		if found && sess.Device == deviceID {
			b.del(k)
			b.del(prefixSession + hashHex)
			ended++
		}
	}
	return ended, nil
}
