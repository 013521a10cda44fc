package tokensvc

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	moov "github.com/moov-io/iso8583"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/switch/sms"
)

// Binding rules.
const (
	codeDigits        = 6
	codeTTL           = 5 * time.Minute
	codeAttemptsMax   = 5
	cardAttemptsMax   = 10 // card verifications per account per window
	cardAttemptWindow = time.Hour
	bindingIDBytes    = 16
	// bindingKeepFor is how long a binding is kept after its code expired
	// (so a late confirmation is told 410, not 404); past it the account's
	// next card verification deletes it.
	bindingKeepFor = codeTTL
)

var (
	devicePattern  = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)
	bindingPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

type cardDetails struct {
	PAN    string `json:"pan"`
	Expiry string `json:"expiry"`
	CVN2   string `json:"cvn2"`
}

// check validates the card details; its messages never repeat them.
func (c cardDetails) check() *apiError {
	switch {
	case len(c.PAN) < 13 || len(c.PAN) > 19 || !allDigits(c.PAN):
		return errBadRequest("bad_pan", "card number must be 13-19 digits")
	case !iso8583.LuhnValid(c.PAN):
		return errBadRequest("bad_pan", "card number fails the Luhn check: a digit is mistyped")
	case len(c.Expiry) != 4 || !allDigits(c.Expiry) || c.Expiry[2:] < "01" || c.Expiry[2:] > "12":
		return errBadRequest("bad_expiry", "expiry must be YYMM with month 01-12")
	case !iso8583.CVN2(c.CVN2).Valid():
		return errBadRequest("bad_cvn2", "CVN2 must be the 3 digits on the back of the card")
	}
	return nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// handleAddCard is POST /v1/devices/{device}/cards {pan, expiry, cvn2}:
// the issuer verifies the card, and on its approval a code goes out.
func (s *Service) handleAddCard(w http.ResponseWriter, r *http.Request, login string) {
	deviceID := r.PathValue("device")
	if !devicePattern.MatchString(deviceID) {
		writeError(w, errBadRequest("bad_device", "device ID must be 1-64 of A-Z a-z 0-9 . _ : -"))
		return
	}
	var c cardDetails
	if e := decodeBody(w, r, &c); e != nil {
		writeError(w, e)
		return
	}
	if e := c.check(); e != nil {
		writeError(w, e)
		return
	}
	pan := iso8583.PAN(c.PAN)
	route, ok := s.cfg.Table.Lookup(c.PAN)
	if !ok {
		writeError(w, newError(http.StatusUnprocessableEntity, "unknown_bin", "no issuer on this network issues this card number"))
		return
	}
	is, ok := s.cfg.Issuers[route.Issuer]
	if !ok {
		writeError(w, newError(http.StatusServiceUnavailable, "no_route", "the card's issuer is not connected to this switch").
			with("issuer_code", iso8583.RCNoRoute))
		return
	}
	if e := s.admitCard(login, deviceID); e != nil {
		writeError(w, e)
		return
	}
	rc, e := s.verifyCard(r.Context(), is, route, c, deviceID)
	if e != nil {
		s.auditCardVerify(login, remote(r), deviceID, pan, route.Issuer, e.code)
		writeError(w, e)
		return
	}
	if rc != iso8583.RCApproved {
		s.log.Info().Str("account", login).Stringer("card", pan).Str("issuer", route.Issuer).Str("rc", rc).Msg("card declined by issuer")
		s.auditCardVerify(login, remote(r), deviceID, pan, route.Issuer, "declined "+rc)
		writeError(w, declined(rc))
		return
	}
	bd, code, e := s.newBinding(login, deviceID, c, route)
	if e != nil {
		writeError(w, e)
		return
	}
	if e := s.storeBinding(bd, remote(r)); e != nil {
		writeError(w, e)
		return
	}
	if e := s.sendCode(r.Context(), bd, code, remote(r)); e != nil {
		writeError(w, e)
		return
	}
	s.log.Info().Str("account", login).Str("device", deviceID).Stringer("card", pan).Str("issuer", route.Issuer).
		Str("binding", bd.ID).Msg("card verified, code sent")
	writeJSON(w, http.StatusAccepted, map[string]any{
		"binding_id": bd.ID, "device_id": deviceID, "card": bd.Card, "issuer": bd.Issuer,
		"code_expires_at": bd.CodeExpires, "attempts": codeAttemptsMax,
	})
}

// declined is the answer to an issuer's refusal: 402 for a refusal of the
// card, 502 for an issuer that could not process the request.
func declined(rc string) *apiError {
	switch rc {
	case iso8583.RCDoNotHonor, iso8583.RCNoSuchCard, iso8583.RCExpiredCard, iso8583.RCInsufficientFunds,
		iso8583.RCNotPermitted, iso8583.RCSuspectedFraud, iso8583.RCRestrictedCard:
		return newError(http.StatusPaymentRequired, "card_declined",
			"the issuer declined the card: "+iso8583.ResponseText(rc)+" (check number, expiry and CVN2)").with("issuer_code", rc)
	case iso8583.RCIssuerUnavailable:
		return newError(http.StatusServiceUnavailable, "issuer_unavailable", "the issuer is unavailable; try again later").
			with("issuer_code", rc)
	}
	return newError(http.StatusBadGateway, "issuer_error", "the issuer could not verify the card: "+iso8583.ResponseText(rc)).
		with("issuer_code", rc)
}

// admitCard checks that the account may ask for a verification now, and
// counts the attempt durably before the issuer is asked: the bound on
// verifications is what stops a session from guessing CVN2s.
func (s *Service) admitCard(login, deviceID string) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.checkDeviceForBinding(login, deviceID); e != nil {
		return e
	}
	var acct account
	if found, err := s.st.get(accountKey(login), &acct); err != nil || !found {
		return s.internalErr("card verification", errors.Join(err, errors.New("account vanished")))
	}
	now := s.now()
	if now.Sub(acct.CardWindow) >= cardAttemptWindow || now.Before(acct.CardWindow) {
		acct.CardWindow, acct.CardAttempts = now.UTC(), 0
	}
	if acct.CardAttempts >= cardAttemptsMax {
		e := newError(http.StatusTooManyRequests, "too_many_cards",
			fmt.Sprintf("at most %d card verifications an hour", cardAttemptsMax))
		e.retryAfter = acct.CardWindow.Add(cardAttemptWindow).Sub(now)
		return e
	}
	pending, err := s.pendingBindings(login, now)
	if err != nil {
		return s.internalErr("card verification", err)
	}
	if pending >= pendingBindingsPerAccountMax {
		return newError(http.StatusTooManyRequests, "too_many_pending",
			fmt.Sprintf("%d cards are waiting for their codes: confirm them or wait %v", pending, codeTTL))
	}
	acct.CardAttempts++
	b := s.st.newBatch()
	b.put(accountKey(login), acct)
	if err := b.commit(); err != nil {
		return s.internalErr("card verification", err)
	}
	return nil
}

// checkDeviceForBinding: a card may be bound to a device of the account,
// or to one nobody has, and not while the device is turned off. The caller
// holds s.mu.
func (s *Service) checkDeviceForBinding(login, deviceID string) *apiError {
	d, found, e := s.deviceOf(login, deviceID)
	if e != nil {
		return e
	}
	if !found {
		return s.checkDeviceRoom(login)
	}
	if d.Off {
		return newError(http.StatusConflict, "device_off", "the device is turned off; turn it on before adding cards")
	}
	return nil
}

// checkDeviceRoom bounds the devices of one account.
func (s *Service) checkDeviceRoom(login string) *apiError {
	keys, err := s.st.keysUnder(prefixAccountDevice+login+"/", devicesPerAccountMax)
	if err != nil {
		return s.internalErr("device check", err)
	}
	if len(keys) >= devicesPerAccountMax {
		return newError(http.StatusConflict, "too_many_devices", fmt.Sprintf("an account has at most %d devices", devicesPerAccountMax))
	}
	return nil
}

// pendingBindings counts login's bindings still waiting for a code, and
// deletes those whose code expired more than bindingKeepFor ago, so an
// account's bindings stay few.
func (s *Service) pendingBindings(login string, now time.Time) (int, error) {
	prefix := prefixAccountBinding + login + "/"
	keys, err := s.st.keysUnder(prefix, pendingBindingsPerAccountMax*16)
	if err != nil {
		return 0, err
	}
	b := s.st.newBatch()
	pending := 0
	for _, k := range keys {
		var bd binding
		found, err := s.st.get(bindingKey(k[len(prefix):]), &bd)
		if err != nil {
			b.b.Close()
			return 0, err
		}
		switch {
		case !found:
			b.del(k)
		case bd.State == bindingIssuing:
			// recover's to finish, at the next start
		case now.After(bd.CodeExpires.Add(bindingKeepFor)):
			b.del(k)
			b.del(bindingKey(bd.ID))
		case bd.State == bindingPending && now.Before(bd.CodeExpires):
			pending++
		}
	}
	return pending, b.commit()
}

// verifyCard asks the issuer: an 0100 account verification, amount zero,
// PAN, expiry and CVN2. It returns the issuer's DE39, or the answer to give
// when the issuer could not be asked.
func (s *Service) verifyCard(ctx context.Context, is Issuer, route bintable.Entry, c cardDetails, deviceID string) (string, *apiError) {
	select {
	case s.verifySlots <- struct{}{}:
	default:
		return "", newError(http.StatusServiceUnavailable, "busy", "too many card verifications in progress; try again")
	}
	defer func() { <-s.verifySlots }()
	req := s.verificationRequest(is, c, deviceID)
	resp, err := is.Link.Exchange(ctx, req)
	if err != nil {
		// A verification holds no money, so an unanswered one needs no
		// reversal: the wallet simply asks again.
		s.log.Warn().Err(err).Str("issuer", route.Issuer).Msg("card verification unanswered")
		return "", newError(http.StatusServiceUnavailable, "issuer_unavailable", "the issuer did not answer; try again later").
			with("issuer_code", iso8583.RCIssuerUnavailable)
	}
	mti, _ := resp.GetMTI()
	rc := iso8583.FieldValue(resp, iso8583.FieldResponseCode)
	if mti != iso8583.MTIAuthResponse || len(rc) != 2 {
		s.log.Warn().Str("issuer", route.Issuer).Str("mti", mti).Msg("card verification: malformed issuer answer")
		return "", newError(http.StatusBadGateway, "issuer_error", "the issuer's answer was malformed").
			with("issuer_code", iso8583.RCSystemError)
	}
	return rc, nil
}

// Fields of the account verification that identify the switch as the
// acquirer of its own request (docs/wire.md, DE48).
const (
	verifyTerminalID = "TOKENSVC"
	verifyMerchantID = "TAPSWITCHWALLET"
	verifyEntryMode  = "012" // keyed in, no PIN
)

func (s *Service) verificationRequest(is Issuer, c cardDetails, deviceID string) *moov.Message {
	now := s.now().UTC()
	stan := is.Link.NextSTAN()
	m := iso8583.NewMessage()
	m.MTI(iso8583.MTIAuthRequest)
	m.Field(iso8583.FieldPAN, c.PAN)
	m.Field(iso8583.FieldProcessingCode, iso8583.ProcPurchase)
	m.Field(iso8583.FieldAmount, iso8583.Amount(0).Field())
	m.Field(iso8583.FieldTransmissionTime, now.Format("0102150405"))
	m.Field(iso8583.FieldSTAN, stan)
	m.Field(iso8583.FieldExpiry, c.Expiry)
	m.Field(iso8583.FieldPOSEntryMode, verifyEntryMode)
	m.Field(iso8583.FieldAcquirer, s.cfg.Institution)
	m.Field(iso8583.FieldForwarder, s.cfg.Institution)
	// RRN: last digit of the year, day of the year, hour, STAN.
	m.Field(iso8583.FieldRRN, fmt.Sprintf("%d%03d%02d%s", now.Year()%10, now.YearDay(), now.Hour(), stan))
	m.Field(iso8583.FieldTerminalID, verifyTerminalID)
	m.Field(iso8583.FieldMerchantID, verifyMerchantID)
	av := iso8583.AccountVerification{RequestorID: s.cfg.RequestorID, DeviceID: deviceID, CVN2: iso8583.CVN2(c.CVN2)}
	m.Field(iso8583.FieldPrivateTokenData, av.Encode())
	m.Field(iso8583.FieldCurrency, iso8583.CurrencyCNY)
	m.Field(iso8583.FieldReceivingInstitution, is.Institution)
	return m
}

func (s *Service) auditCardVerify(login, from, deviceID string, pan iso8583.PAN, issuer, outcome string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.st.newBatch()
	s.audit(b, AuditRecord{Actor: login, Remote: from, Account: login, Action: actCardVerify, Device: deviceID,
		Card: pan.String(), Outcome: outcome, Detail: "issuer " + issuer})
	if err := b.commit(); err != nil {
		s.log.Error().Err(err).Msg("audit of a declined card verification")
	}
}

// newBinding makes a pending binding and its code.
func (s *Service) newBinding(login, deviceID string, c cardDetails, route bintable.Entry) (binding, string, *apiError) {
	idBytes := make([]byte, bindingIDBytes)
	if err := s.random(idBytes); err != nil {
		return binding{}, "", s.internalErr("binding", err)
	}
	code, err := s.randomDigits(codeDigits)
	if err != nil {
		return binding{}, "", s.internalErr("binding", err)
	}
	id := hex.EncodeToString(idBytes)
	now := s.now().UTC()
	return binding{
		V: recordFormat, ID: id, Login: login, Device: deviceID, State: bindingPending,
		SealedPAN: s.cfg.Keys.Seal([]byte(c.PAN), bindingAAD(id)),
		Card:      iso8583.MaskPAN(c.PAN), CardExpiry: c.Expiry, Issuer: route.Issuer, Product: string(route.Product),
		CodeHash: s.codeHash(id, code), CodeExpires: now.Add(codeTTL), AttemptsLeft: codeAttemptsMax, CreatedAt: now,
	}, code, nil
}

func bindingAAD(id string) []byte { return []byte("tokensvc binding " + id) }

// codeHash is a keyed hash of a binding's code: a plain hash of a 6-digit
// code is reversed by trying a million codes, a keyed one needs the
// vault's index key.
func (s *Service) codeHash(id, code string) []byte {
	return s.cfg.Keys.IndexHash("tokensvc sms code\x00" + id + "\x00" + code)
}

// storeBinding makes a binding durable before its code is sent, so every
// code that goes out belongs to a stored binding.
func (s *Service) storeBinding(bd binding, from string) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.st.newBatch()
	b.put(bindingKey(bd.ID), bd)
	b.setEmpty(accountBindingKey(bd.Login, bd.ID))
	s.audit(b, AuditRecord{Actor: bd.Login, Remote: from, Account: bd.Login, Action: actBindingCreate, Device: bd.Device,
		Card: bd.Card, Binding: bd.ID, Outcome: outcomeOK, Detail: "issuer " + bd.Issuer + " approved (00); code sent by SMS"})
	if err := b.commit(); err != nil {
		return s.internalErr("binding", err)
	}
	return nil
}

// sendCode sends the code; when it cannot, the binding fails, so no binding
// waits for a code that never went out.
func (s *Service) sendCode(ctx context.Context, bd binding, code, from string) *apiError {
	text := fmt.Sprintf("tapswitch: %s is your code to add card %s to your wallet. It expires in %d minutes. Never share it.",
		code, bd.Card[len(bd.Card)-4:], int(codeTTL/time.Minute))
	err := s.cfg.SMS.Send(ctx, sms.Message{Time: s.now().UTC(), To: bd.Login, Ref: bd.ID, Text: text})
	if err == nil {
		return nil
	}
	s.log.Error().Err(err).Str("binding", bd.ID).Msg("SMS code not sent")
	s.mu.Lock()
	defer s.mu.Unlock()
	bd.State = bindingFailed
	b := s.st.newBatch()
	b.put(bindingKey(bd.ID), bd)
	s.audit(b, AuditRecord{Actor: actorSystem, Remote: from, Account: bd.Login, Action: actBindingFail, Device: bd.Device,
		Card: bd.Card, Binding: bd.ID, Outcome: "sms_failed"})
	if err := b.commit(); err != nil {
		return s.internalErr("binding", err)
	}
	return newError(http.StatusBadGateway, "sms_failed", "the SMS code could not be sent; add the card again")
}

type confirmBody struct {
	Code string `json:"code"`
}

// handleConfirm is POST /v1/bindings/{id}/confirm {code}.
func (s *Service) handleConfirm(w http.ResponseWriter, r *http.Request, login string) {
	id := r.PathValue("id")
	var body confirmBody
	if e := decodeBody(w, r, &body); e != nil {
		writeError(w, e)
		return
	}
	if !bindingPattern.MatchString(id) {
		writeError(w, errNotFound("binding"))
		return
	}
	issued, e := s.confirm(login, id, body.Code, remote(r))
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusCreated, issued)
}

// issuedToken is the answer to a right code: the only answer that ever
// carries the token's key.
type issuedToken struct {
	Token           string `json:"token"`
	TokenExpiry     string `json:"token_expiry"`
	Key             string `json:"key"`
	DeviceID        string `json:"device_id"`
	Card            string `json:"card"`
	Issuer          string `json:"issuer"`
	Product         string `json:"product"`
	Status          string `json:"status"`
	ContactlessOnly bool   `json:"contactless_only"`
	BindingID       string `json:"binding_id"`
}

// confirm checks the code and, when it is right, issues the token.
func (s *Service) confirm(login, id, code, from string) (issuedToken, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var bd binding
	found, err := s.st.get(bindingKey(id), &bd)
	if err != nil {
		return issuedToken{}, s.internalErr("confirmation", err)
	}
	if !found || bd.Login != login {
		return issuedToken{}, errNotFound("binding")
	}
	if e := s.checkBindingOpen(&bd, from); e != nil {
		return issuedToken{}, e
	}
	want := bd.CodeHash
	got := s.codeHash(id, code)
	if len(code) != codeDigits || !allDigits(code) || subtle.ConstantTimeCompare(got, want) != 1 {
		return issuedToken{}, s.wrongCode(&bd, from)
	}
	if e := s.checkDeviceForBinding(login, bd.Device); e != nil {
		return issuedToken{}, e
	}
	return s.issue(&bd, from)
}

// checkBindingOpen answers 410 for a binding whose code can no longer be
// used, expiring it on the way when its time is up.
func (s *Service) checkBindingOpen(bd *binding, from string) *apiError {
	gone := func(code, msg string) *apiError { return newError(http.StatusGone, code, msg) }
	switch {
	case bd.State == bindingConfirmed:
		return gone("already_confirmed", "this binding was confirmed; its token is listed on the device")
	case bd.AttemptsLeft <= 0:
		return gone("too_many_attempts", "too many wrong codes; add the card again")
	}
	switch bd.State {
	case bindingFailed, bindingIssuing:
		return gone("binding_failed", "this binding failed; add the card again")
	case bindingExpired:
		return gone("code_expired", "the code expired; add the card again for a new one")
	}
	if s.now().Before(bd.CodeExpires) {
		return nil
	}
	bd.State = bindingExpired
	b := s.st.newBatch()
	b.put(bindingKey(bd.ID), *bd)
	s.audit(b, AuditRecord{Actor: bd.Login, Remote: from, Account: bd.Login, Action: actBindingExpire, Device: bd.Device,
		Card: bd.Card, Binding: bd.ID, Outcome: "code_expired"})
	if err := b.commit(); err != nil {
		return s.internalErr("confirmation", err)
	}
	return gone("code_expired", "the code expired; add the card again for a new one")
}

// wrongCode uses up an attempt; the last one fails the binding.
func (s *Service) wrongCode(bd *binding, from string) *apiError {
	bd.AttemptsLeft--
	outcome := "wrong_code"
	answer := errBadRequest("wrong_code", "wrong code").with("attempts_left", bd.AttemptsLeft)
	if bd.AttemptsLeft <= 0 {
		bd.State, outcome = bindingFailed, "too_many_attempts"
		answer = newError(http.StatusGone, "too_many_attempts",
			fmt.Sprintf("%d wrong codes: the binding is cancelled; add the card again", codeAttemptsMax)).with("attempts_left", 0)
	}
	b := s.st.newBatch()
	b.put(bindingKey(bd.ID), *bd)
	s.audit(b, AuditRecord{Actor: bd.Login, Remote: from, Account: bd.Login, Action: actBindingCode, Device: bd.Device,
		Card: bd.Card, Binding: bd.ID, Outcome: outcome, Detail: fmt.Sprintf("%d attempts left", bd.AttemptsLeft)})
	if err := b.commit(); err != nil {
		return s.internalErr("confirmation", err)
	}
	return answer
}
