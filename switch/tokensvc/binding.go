package tokensvc

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"time"

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

// newBinding makes a pending binding and its code. phone is where the
// issuer said the code must go; others is how many other accounts hold a
// live token of the card.
func (s *Service) newBinding(login, deviceID string, c cardDetails, route bintable.Entry, phone iso8583.Phone, others int) (binding, string, *apiError) {
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
		SealedPAN:   s.cfg.Keys.Seal([]byte(c.PAN), bindingAAD(id)),
		SealedPhone: s.cfg.Keys.Seal([]byte(phone.Clear()), bindingPhoneAAD(id)), PhoneHint: phone.Masked(),
		OtherAccounts: others,
		Card:          iso8583.MaskPAN(c.PAN), CardExpiry: c.Expiry, Issuer: route.Issuer, Product: string(route.Product),
		CodeHash: s.codeHash(id, code), CodeExpires: now.Add(codeTTL), AttemptsLeft: codeAttemptsMax, CreatedAt: now,
	}, code, nil
}

func bindingAAD(id string) []byte { return []byte("tokensvc binding " + id) }

func bindingPhoneAAD(id string) []byte { return []byte("tokensvc binding phone " + id) }

// codeHash is a keyed hash of a binding's code: a plain hash of a 6-digit
// code is reversed by trying a million codes, a keyed one needs the
// vault's index key.
func (s *Service) codeHash(id, code string) []byte {
	return s.cfg.Keys.IndexHash("tokensvc sms code\x00" + id + "\x00" + code)
}

// storeBinding makes a binding durable before its code is sent, so every
// code that goes out belongs to a stored binding. When other accounts hold
// the card, each of their trails records that it is being bound elsewhere.
func (s *Service) storeBinding(bd binding, from string, others []string) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.st.newBatch()
	b.put(bindingKey(bd.ID), bd)
	b.setEmpty(accountBindingKey(bd.Login, bd.ID))
	detail := "issuer " + bd.Issuer + " approved (00); code sent by SMS to the cardholder's phone " + bd.PhoneHint
	if len(others) > 0 {
		detail += fmt.Sprintf("; the card has live tokens in %d other wallet account(s): the SMS warned the cardholder", len(others))
	}
	s.audit(b, AuditRecord{Actor: bd.Login, Remote: from, Account: bd.Login, Action: actBindingCreate, Device: bd.Device,
		Card: bd.Card, Binding: bd.ID, Outcome: outcomeOK, Detail: detail})
	for _, other := range others {
		s.audit(b, AuditRecord{Actor: actorSystem, Account: other, Action: actCardBoundElsewhere, Card: bd.Card,
			Outcome: "cardholder_warned", Detail: "another wallet account is adding this card; the code went to the cardholder's phone " +
				bd.PhoneHint + ", with a warning"})
	}
	if err := b.commit(); err != nil {
		return s.internalErr("binding", err)
	}
	return nil
}

// codeText is the SMS. A card already in another account gets a warning
// first, since its holder may be the victim of a stolen card's details,
// not the one adding it.
func codeText(bd binding, code string) string {
	last4 := bd.Card[len(bd.Card)-4:]
	minutes := int(codeTTL / time.Minute)
	if bd.OtherAccounts > 0 {
		return fmt.Sprintf("tapswitch: your card ending %s is being added to ANOTHER wallet account than the one it is in. "+
			"Only if that is you, the code is %s (expires in %d minutes). If not, share it with nobody and call your bank.",
			last4, code, minutes)
	}
	return fmt.Sprintf("tapswitch: %s is your code to add your card ending %s to a phone wallet. It expires in %d minutes. Never share it.",
		code, last4, minutes)
}

// sendCode sends the code to the cardholder's phone; when it cannot, the
// binding fails, so no binding waits for a code that never went out.
func (s *Service) sendCode(ctx context.Context, bd binding, code string, phone iso8583.Phone, from string) *apiError {
	err := s.cfg.SMS.Send(ctx, sms.Message{Time: s.now().UTC(), To: phone, Ref: bd.ID, Text: codeText(bd, code)})
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
