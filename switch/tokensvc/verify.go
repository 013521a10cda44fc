package tokensvc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	moov "github.com/moov-io/iso8583"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/switch/vault"
)

// The card verification of add-card is an oracle a card tester would love:
// before this design, its answers told an unknown card (14) from a wrong
// expiry (54) from a wrong CVN2 (05). Now every failed verification, the
// card unknown to the issuer, a wrong expiry, a wrong CVN2, a blocked or
// expired card, an issuer's refusal of any kind and a number whose BIN no
// issuer of the network has, is answered alike: 402 card_declined with one
// fixed message, nothing else (errNotVerified). The audit trail keeps the
// real reason, with the card masked.
//
// Timing: a card whose BIN routes is always asked of its issuer, in one
// round trip whatever is wrong with it. An unroutable BIN has no issuer to
// ask (sending its number to some other bank would leak it), so to give it
// no shortcut every failed verification is answered no sooner than
// verifyFailureAnswerMin after it was admitted: the unroutable one waits
// the floor out, a declined one waits what the floor has left after its
// round trip. An issuer slower than the floor still shows in the timing,
// but that tells only that the BIN routes, which the BIN table published
// to every acquirer tells anyway.
//
// An issuer that does not answer (91, a timeout) or cannot process the
// request (96, 30) is still told apart, 503 or 502: that is a state of the
// issuer, the same for every card it holds, and the wallet should retry.
const verifyFailureAnswerMin = 250 * time.Millisecond

// verification is the issuer's verdict: phone, where the code must go, on
// success; failed, the reason for the audit trail, otherwise.
type verification struct {
	phone  iso8583.Phone
	failed string
}

// errNotVerified is the one answer to every failed verification.
func errNotVerified() *apiError {
	return newError(http.StatusPaymentRequired, "card_declined",
		"the card could not be verified: check its number, expiry and CVN2")
}

// handleAddCard is POST /v1/devices/{device}/cards {pan, expiry, cvn2}:
// the issuer verifies the card, and on its approval a code goes to the
// cardholder's phone that the issuer named.
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
	pan, from := iso8583.PAN(c.PAN), remote(r)
	route, routed := s.cfg.Table.Lookup(c.PAN)
	is, connected := s.cfg.Issuers[route.Issuer]
	if routed && !connected {
		writeError(w, newError(http.StatusServiceUnavailable, "no_route", "the card's issuer is not connected to this switch").
			with("issuer_code", iso8583.RCNoRoute))
		return
	}
	if e := s.admitCard(login, deviceID, c.PAN, r.RemoteAddr, from); e != nil {
		writeError(w, e)
		return
	}
	admitted := time.Now()
	v := verification{failed: "unknown_bin: no issuer of the network has this BIN"}
	if routed {
		var e *apiError
		if v, e = s.verifyCard(r.Context(), is, route, c, deviceID); e != nil {
			s.auditCardVerify(login, from, deviceID, pan, route.Issuer, e.code)
			writeError(w, e)
			return
		}
	}
	if v.failed != "" {
		s.log.Info().Str("account", login).Stringer("card", pan).Str("issuer", route.Issuer).Str("reason", v.failed).
			Msg("card not verified")
		s.auditCardVerify(login, from, deviceID, pan, route.Issuer, v.failed)
		waitOut(r.Context(), admitted.Add(verifyFailureAnswerMin))
		writeError(w, errNotVerified())
		return
	}
	s.bindVerified(w, r, login, deviceID, c, route, v.phone)
}

// waitOut returns at deadline, or when ctx ends.
func waitOut(ctx context.Context, deadline time.Time) {
	d := time.Until(deadline)
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// bindVerified makes the binding of a verified card and sends its code to
// phone.
func (s *Service) bindVerified(w http.ResponseWriter, r *http.Request, login, deviceID string, c cardDetails, route bintable.Entry, phone iso8583.Phone) {
	from := remote(r)
	others, err := s.otherHolders(c.PAN, login)
	if err != nil {
		s.internal(w, "binding", err)
		return
	}
	bd, code, e := s.newBinding(login, deviceID, c, route, phone, len(others))
	if e == nil {
		e = s.storeBinding(bd, from, others)
	}
	if e == nil {
		e = s.sendCode(r.Context(), bd, code, phone, from)
	}
	if e != nil {
		writeError(w, e)
		return
	}
	s.log.Info().Str("account", login).Str("device", deviceID).Stringer("card", iso8583.PAN(c.PAN)).Str("issuer", route.Issuer).
		Str("binding", bd.ID).Int("other_accounts", len(others)).Msg("card verified, code sent to the cardholder's phone")
	writeJSON(w, http.StatusAccepted, map[string]any{
		"binding_id": bd.ID, "device_id": deviceID, "card": bd.Card, "issuer": bd.Issuer,
		"code_sent_to": bd.PhoneHint, "code_expires_at": bd.CodeExpires, "attempts": codeAttemptsMax,
	})
}

// holdersNoticeMax bounds the other accounts told that their card is
// being bound elsewhere.
const holdersNoticeMax = 8

// otherHolders lists the accounts other than login that hold a live
// (active or suspended) token of pan, found through the vault's keyed-hash
// PAN index; at most holdersNoticeMax of them.
func (s *Service) otherHolders(pan, login string) ([]string, error) {
	tokens, err := s.cfg.Vault.TokensForPAN(pan)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range tokens {
		tok, err := s.cfg.Vault.Get(t)
		if errors.Is(err, vault.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if tok.Status == vault.StatusDeleted || tok.WalletAccount == login || containsString(out, tok.WalletAccount) {
			continue
		}
		if out = append(out, tok.WalletAccount); len(out) == holdersNoticeMax {
			break
		}
	}
	return out, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// admitCard checks that the account may ask for a verification now, and
// counts the attempt, against the account and against the card, device and
// address bounds across accounts (limits.go), durably before the issuer is
// asked: the bounds are what stop guessing CVN2s and testing stolen cards.
func (s *Service) admitCard(login, deviceID, pan, remoteAddr, from string) *apiError {
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
		return s.refuseVerification(login, from, deviceID, pan, "account", acct.CardWindow.Add(cardAttemptWindow).Sub(now))
	}
	pending, err := s.pendingBindings(login, now)
	if err != nil {
		return s.internalErr("card verification", err)
	}
	if pending >= pendingBindingsPerAccountMax {
		return newError(http.StatusTooManyRequests, "too_many_pending",
			fmt.Sprintf("%d cards are waiting for their codes: confirm them or wait %v", pending, codeTTL))
	}
	keys := s.verificationSubjects(pan, deviceID, remoteAddr)
	refused, wait, err := s.checkLimits(keys, now)
	if err != nil {
		return s.internalErr("card verification", err)
	}
	if refused != nil {
		return s.refuseVerification(login, from, deviceID, pan, refused.name, wait)
	}
	acct.CardAttempts++
	b := s.st.newBatch()
	b.put(accountKey(login), acct)
	if err := s.countLimits(b, keys, now); err != nil {
		b.b.Close()
		return s.internalErr("card verification", err)
	}
	s.sweepLimits(b, now)
	if err := b.commit(); err != nil {
		return s.internalErr("card verification", err)
	}
	return nil
}

// refuseVerification audits a verification refused by the bound named
// which and answers it. The caller holds s.mu.
func (s *Service) refuseVerification(login, from, deviceID, pan, which string, wait time.Duration) *apiError {
	b := s.st.newBatch()
	s.audit(b, AuditRecord{Actor: login, Remote: from, Account: login, Action: actCardVerify, Device: deviceID,
		Card: iso8583.MaskPAN(pan), Outcome: "limited", Detail: "too many verifications per " + which})
	if err := b.commit(); err != nil {
		s.log.Error().Err(err).Msg("audit of a refused card verification")
	}
	return tooManyVerifications(wait)
}

// verifyCard asks the issuer: an 0100 account verification, amount zero,
// PAN, expiry and CVN2. It returns the verdict, or the answer to give when
// the issuer could not be asked or could not process the request.
func (s *Service) verifyCard(ctx context.Context, is Issuer, route bintable.Entry, c cardDetails, deviceID string) (verification, *apiError) {
	select {
	case s.verifySlots <- struct{}{}:
	default:
		return verification{}, newError(http.StatusServiceUnavailable, "busy", "too many card verifications in progress; try again")
	}
	defer func() { <-s.verifySlots }()
	resp, err := is.Link.Exchange(ctx, s.verificationRequest(is, c, deviceID))
	if err != nil {
		// A verification holds no money, so an unanswered one needs no
		// reversal: the wallet simply asks again.
		s.log.Warn().Err(err).Str("issuer", route.Issuer).Msg("card verification unanswered")
		return verification{}, errIssuerUnavailable()
	}
	mti, _ := resp.GetMTI()
	rc := iso8583.FieldValue(resp, iso8583.FieldResponseCode)
	if mti != iso8583.MTIAuthResponse || len(rc) != 2 {
		s.log.Warn().Str("issuer", route.Issuer).Str("mti", mti).Msg("card verification: malformed issuer answer")
		return verification{}, newError(http.StatusBadGateway, "issuer_error", "the issuer's answer was malformed").
			with("issuer_code", iso8583.RCSystemError)
	}
	switch rc {
	case iso8583.RCApproved:
		return s.phoneOf(resp, route), nil
	case iso8583.RCIssuerUnavailable:
		return verification{}, errIssuerUnavailable()
	case iso8583.RCSystemError, iso8583.RCFormatError:
		return verification{}, newError(http.StatusBadGateway, "issuer_error",
			"the issuer could not process the verification: "+iso8583.ResponseText(rc)).with("issuer_code", rc)
	}
	return verification{failed: "declined " + rc}, nil
}

func errIssuerUnavailable() *apiError {
	return newError(http.StatusServiceUnavailable, "issuer_unavailable", "the issuer did not answer; try again later").
		with("issuer_code", iso8583.RCIssuerUnavailable)
}

// phoneOf reads the cardholder's phone from an approval's DE48 tag 05. An
// approval without one cannot be confirmed by the cardholder, so it fails
// the verification; the number is never logged.
func (s *Service) phoneOf(resp *moov.Message, route bintable.Entry) verification {
	ans, err := iso8583.ParseVerificationAnswer(iso8583.FieldValue(resp, iso8583.FieldPrivateTokenData))
	switch {
	case err != nil:
		s.log.Warn().Err(err).Str("issuer", route.Issuer).Msg("card verification: approval with a malformed DE48")
		return verification{failed: "approved, but DE48 is malformed: no phone to send the code to"}
	case ans.Phone == "":
		return verification{failed: "approved, but the issuer named no phone (DE48 tag 05) to send the code to"}
	}
	return verification{phone: ans.Phone}
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
	detail := "issuer " + issuer
	if issuer == "" {
		detail = "no issuer"
	}
	s.audit(b, AuditRecord{Actor: login, Remote: from, Account: login, Action: actCardVerify, Device: deviceID,
		Card: pan.String(), Outcome: outcome, Detail: detail})
	if err := b.commit(); err != nil {
		s.log.Error().Err(err).Msg("audit of a failed card verification")
	}
}
