package tokensvc

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/replica"
	"github.com/tapswitch/tapswitch/switch/vault"
)

const (
	tokenDigits = 16
	// tokenDrawsMax bounds the draws for a free token number; with a
	// 6-digit BIN there are 10^9 numbers, so even a full vault rarely
	// needs a second.
	tokenDrawsMax = 32
	// tokenLifeMonths caps a token's expiry; the card's own expiry caps
	// it sooner when it comes first.
	tokenLifeMonths = 36
)

// issue creates the token of a binding whose code was right, in the order
// that leaves nothing half-made (the caller holds s.mu):
//
//  1. the binding turns "issuing" with its token number, and the audit
//     record of the token's creation, in one synchronous batch;
//  2. the token goes into the vault (a synchronous batch of its own);
//  3. the binding turns "confirmed" and the device is recorded as the
//     account's, in one synchronous batch.
//
// A failure at 2 fails the binding. A failure at 3 deletes the token from
// the vault again. A crash between 1 and 3 leaves the binding "issuing",
// which recover finds at the next start and undoes the same way: the key
// never reached the wallet, so the token must not live.
func (s *Service) issue(bd *binding, from string) (issuedToken, *apiError) {
	pan, err := s.cfg.Keys.Open(bd.SealedPAN, bindingAAD(bd.ID))
	if err != nil {
		return issuedToken{}, s.internalErr("token creation", err)
	}
	token, err := s.drawToken(string(pan))
	if err != nil {
		return issuedToken{}, s.internalErr("token creation", err)
	}
	now := s.now().UTC()
	tok := vault.Token{
		Token: iso8583.PAN(token), PAN: iso8583.PAN(pan), CardExpiry: bd.CardExpiry,
		TokenExpiry: tokenExpiry(bd.CardExpiry, now), Status: vault.StatusActive,
		DeviceID: bd.Device, WalletAccount: bd.Login, RequestorID: s.cfg.RequestorID,
		Domain: vault.Domain{ContactlessOnly: true}, CreatedAt: now,
	}
	bd.State, bd.Token = bindingIssuing, token
	b := s.st.newBatch()
	b.put(bindingKey(bd.ID), *bd)
	s.audit(b, AuditRecord{Actor: bd.Login, Remote: from, Account: bd.Login, Action: actTokenCreate, Device: bd.Device,
		Token: tok.Token.String(), Card: bd.Card, Binding: bd.ID, Outcome: outcomeOK,
		Detail: "code confirmed; token expires " + tok.TokenExpiry + "; contactless only"})
	if err := b.commit(); err != nil {
		return issuedToken{}, s.internalErr("token creation", err)
	}
	if err := s.step("vault put", func() error { return s.cfg.Vault.Put(tok) }); err != nil {
		s.log.Error().Err(err).Str("binding", bd.ID).Msg("vault put of a new token")
		if e := s.failBinding(bd, from, "vault_failed"); e != nil {
			return issuedToken{}, e
		}
		if errors.Is(err, vault.ErrInvalid) {
			return issuedToken{}, newError(http.StatusConflict, "vault_refused", "the vault refused the token: "+err.Error())
		}
		return issuedToken{}, newError(http.StatusInternalServerError, "internal", "token creation failed; nothing was created")
	}
	if err := s.step("finish", func() error { return s.finishIssue(bd, now) }); err != nil {
		s.log.Error().Err(err).Str("binding", bd.ID).Msg("confirming a new token; deleting it again")
		s.rollBack(bd, from)
		return issuedToken{}, newError(http.StatusInternalServerError, "internal", "token creation failed; nothing was created")
	}
	s.log.Info().Str("account", bd.Login).Str("device", bd.Device).Stringer("token", tok.Token).
		Str("binding", bd.ID).Msg("token issued")
	return issuedToken{
		Token: token, TokenExpiry: tok.TokenExpiry, Key: hex.EncodeToString(s.cfg.Keys.TokenKey(token)),
		DeviceID: bd.Device, Card: bd.Card, Issuer: bd.Issuer, Product: bd.Product,
		Status: string(vault.StatusActive), ContactlessOnly: true, BindingID: bd.ID,
	}, nil
}

// step runs one step of issue, or fails it when a test says so.
func (s *Service) step(name string, f func() error) error {
	if s.failAt != nil {
		if err := s.failAt(name); err != nil {
			return err
		}
	}
	return f()
}

// finishIssue confirms the binding and records the device as the account's.
func (s *Service) finishIssue(bd *binding, now time.Time) error {
	d, found, e := s.deviceOf(bd.Login, bd.Device)
	if e != nil {
		return e
	}
	if !found {
		d = device{V: recordFormat, ID: bd.Device, Owner: bd.Login, CreatedAt: now}
	}
	d.ChangedAt = now
	bd.State = bindingConfirmed
	b := s.st.newBatch()
	b.put(bindingKey(bd.ID), *bd)
	b.put(deviceKey(d.ID), d)
	b.setEmpty(accountDeviceKey(bd.Login, d.ID))
	return b.commit()
}

func (s *Service) failBinding(bd *binding, from, outcome string) *apiError {
	bd.State = bindingFailed
	b := s.st.newBatch()
	b.put(bindingKey(bd.ID), *bd)
	s.audit(b, AuditRecord{Actor: actorSystem, Remote: from, Account: bd.Login, Action: actBindingFail, Device: bd.Device,
		Token: iso8583.MaskPAN(bd.Token), Card: bd.Card, Binding: bd.ID, Outcome: outcome})
	if err := b.commit(); err != nil {
		return s.internalErr("token creation", err)
	}
	return nil
}

// rollBack deletes a binding's token from the vault (if it got there) and
// fails the binding. A deleted token is never reused; its record stays.
func (s *Service) rollBack(bd *binding, from string) error {
	err := s.cfg.Vault.SetStatus(bd.Token, vault.StatusDeleted)
	if err != nil && !errors.Is(err, vault.ErrNotFound) {
		return fmt.Errorf("roll back token %s: %w", iso8583.PAN(bd.Token), err)
	}
	bd.State = bindingFailed
	b := s.st.newBatch()
	b.put(bindingKey(bd.ID), *bd)
	s.audit(b, AuditRecord{Actor: actorSystem, Remote: from, Account: bd.Login, Action: actTokenRollback, Device: bd.Device,
		Token: iso8583.MaskPAN(bd.Token), Card: bd.Card, Binding: bd.ID, Outcome: outcomeOK,
		Detail: "token creation cut off before the wallet got its key; token deleted"})
	return b.commit()
}

// recover undoes the bindings a crash left "issuing" (see issue).
// recoverLocked is recover under s.mu, run again while it loses to
// another node's write.
func (s *Service) recoverLocked() error {
	var err error
	for try := range conflictTriesMax {
		s.mu.Lock()
		err = s.recover()
		s.mu.Unlock()
		if !errors.Is(err, replica.ErrConflict) {
			return err
		}
		replica.Backoff(try)
	}
	return err
}

// issuingCutOffAge: in a cluster, a binding still issuing this long after
// its code expired was cut off by a crash, not in progress on another node
// (an issue takes seconds and starts before the code expires).
const issuingCutOffAge = 10 * time.Minute

// conflictTriesMax bounds the runs of one write that lose to other nodes'
// writes (replica.ErrConflict).
const conflictTriesMax = 32

func (s *Service) recover() error {
	it, err := s.st.iterUnder(prefixBinding)
	if err != nil {
		return err
	}
	var cut []binding
	for ok := it.First(); ok; ok = it.Next() {
		var bd binding
		if err := json.Unmarshal(it.Value(), &bd); err != nil {
			it.Close()
			return fmt.Errorf("%w: binding: %v", errCorrupt, err)
		}
		inProgressElsewhere := s.st.log != nil && s.now().Before(bd.CodeExpires.Add(issuingCutOffAge))
		if bd.State == bindingIssuing && !inProgressElsewhere {
			cut = append(cut, bd)
		}
	}
	if err := closeIter(it); err != nil {
		return err
	}
	for _, bd := range cut {
		if err := s.rollBack(&bd, ""); err != nil {
			return fmt.Errorf("tokensvc: recovering binding %s: %w", bd.ID, err)
		}
		s.log.Warn().Str("binding", bd.ID).Stringer("token", iso8583.PAN(bd.Token)).
			Msg("token creation cut off by a crash: token deleted, binding failed")
	}
	return nil
}

// drawToken returns a fresh token number: the token BIN, random digits and
// a Luhn check digit; never a card BIN's number, never pan, never a number
// the vault holds (deleted tokens included: they are never reused). The
// caller holds s.mu, so no other confirmation draws at the same time.
func (s *Service) drawToken(pan string) (string, error) {
	for range tokenDrawsMax {
		digits, err := s.randomDigits(tokenDigits - len(s.cfg.TokenBIN) - 1)
		if err != nil {
			return "", err
		}
		body := s.cfg.TokenBIN + digits
		token := body + string(iso8583.LuhnCheckDigit(body))
		if token == pan {
			continue
		}
		if _, ok := s.cfg.Table.Lookup(token); ok {
			continue
		}
		_, err = s.cfg.Vault.Get(token)
		if errors.Is(err, vault.ErrNotFound) {
			if clash, err := s.cfg.Vault.TokensForPAN(token); err != nil || len(clash) > 0 {
				continue // the number is some card's PAN in the vault
			}
			return token, nil
		}
		if err != nil && !errors.Is(err, vault.ErrCorrupt) {
			return "", err
		}
	}
	return "", fmt.Errorf("no free token number in %d draws under BIN %s", tokenDrawsMax, s.cfg.TokenBIN)
}

// tokenExpiry is the earlier of the card's expiry and tokenLifeMonths from
// now, as YYMM.
func tokenExpiry(cardExpiry string, now time.Time) string {
	limit := time.Date(now.Year(), now.Month()+tokenLifeMonths, 1, 0, 0, 0, 0, time.UTC)
	capped := fmt.Sprintf("%02d%02d", limit.Year()%100, int(limit.Month()))
	return slices.Min([]string{cardExpiry, capped})
}
