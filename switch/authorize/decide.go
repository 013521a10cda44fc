// Package authorize is the switch's authorization pipeline for token
// transactions. The decisions (is the request well formed, may this token be
// used here, which issuer holds the card, which response code) are pure
// functions in this file, table-tested without sockets or clocks; who may
// ask for what (the sender's MAC, its merchant and acquirer, a refund's or
// a reversal's original) is decided the same way in acceptor.go. Pipeline
// in pipeline.go does the I/O around them in a fixed order: sender, vault,
// issuer, journal (durable), reply.
package authorize

import (
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/switch/vault"
)

// Decision is the outcome of the checks made before the issuer is asked.
// When RC is empty the request goes to Route's issuer. Counter is the tap's
// cryptogram counter when the cryptogram verified (0 otherwise), to be
// written with the outcome whatever RC is; Reason says why the cryptogram
// check refused the tap, for the log.
type Decision struct {
	RC      string
	Route   bintable.Entry
	Counter uint32
	Reason  string
}

// CheckRequest validates what the terminal asks for, independent of the
// token: a known processing code, an amount, our currency.
func CheckRequest(req Request) string {
	switch req.ProcessingCode {
	case iso8583.ProcPurchase, iso8583.ProcRefund, iso8583.ProcTransitTopUp:
		if req.Amount <= 0 {
			return iso8583.RCInvalidAmount
		}
	case iso8583.ProcBalanceInquiry:
	default:
		return iso8583.RCInvalidTransaction
	}
	if req.Currency != iso8583.CurrencyCNY {
		return iso8583.RCInvalidAmount
	}
	return ""
}

// CheckToken applies the vault's rules for one token to one request.
func CheckToken(tok vault.Token, req Request, now time.Time) string {
	switch tok.Status {
	case vault.StatusActive:
	case vault.StatusSuspended:
		return iso8583.RCRestrictedCard
	default:
		return iso8583.RCNoSuchCard
	}
	if req.TokenExpiry != tok.TokenExpiry || expired(tok.TokenExpiry, now) {
		return iso8583.RCExpiredCard
	}
	if tok.Domain.ContactlessOnly && !contactless(req.POSEntryMode) {
		return iso8583.RCNotPermitted
	}
	return ""
}

// contactless reports a DE22 of 07x: contactless chip.
func contactless(posEntryMode string) bool {
	return len(posEntryMode) == 3 && posEntryMode[:2] == "07"
}

// expired reports whether a YYMM expiry lies before now's month. A card is
// good through the last day of its expiry month.
func expired(yymm string, now time.Time) bool {
	current := now.Format("0601")
	return yymm < current
}

// Decide runs every check before the issuer, in the order a network answers
// them: the request itself, then the token (unknown, status, expiry,
// domain), then its cryptogram (chip.go), then the route.
func Decide(req Request, tok vault.Token, tokenFound bool, chip Chip, table *bintable.Table, now time.Time) Decision {
	if rc := CheckRequest(req); rc != "" {
		return Decision{RC: rc}
	}
	if !tokenFound {
		return Decision{RC: iso8583.RCNoSuchCard}
	}
	if rc := CheckToken(tok, req, now); rc != "" {
		return Decision{RC: rc}
	}
	v := CheckCryptogram(req, chip)
	if v.RC != "" {
		return Decision{RC: v.RC, Counter: v.Counter, Reason: v.Reason}
	}
	route, ok := table.Lookup(tok.PAN.Clear())
	if !ok {
		return Decision{RC: iso8583.RCNoRoute, Counter: v.Counter}
	}
	return Decision{Route: route, Counter: v.Counter}
}

// knownIssuerCodes are the issuer answers passed on to the terminal as they
// are; anything else becomes 05 so a terminal never sees a code outside the
// contract. Each maps to itself, so issuerCode (issuer.go) can hand back
// the code of an answer read in place without copying it.
var knownIssuerCodes = func() map[string]string {
	m := map[string]string{}
	for _, code := range []string{
		iso8583.RCApproved, iso8583.RCDoNotHonor, iso8583.RCInvalidTransaction, iso8583.RCInvalidAmount,
		iso8583.RCNoSuchCard, iso8583.RCFormatError, iso8583.RCInsufficientFunds, iso8583.RCExpiredCard,
		iso8583.RCNotPermitted, iso8583.RCSuspectedFraud, iso8583.RCRestrictedCard, iso8583.RCSystemError,
	} {
		m[code] = code
	}
	return m
}()

// IssuerAnswer maps the issuer's DE39 and DE38 to what the terminal gets. An
// approval that moves money but carries no authorization code is not one
// the network can settle, so it is refused as a system error; a balance
// inquiry moves no money and needs none.
func IssuerAnswer(processingCode, rc, authCode string) (string, string) {
	if _, known := knownIssuerCodes[rc]; !known {
		return iso8583.RCDoNotHonor, ""
	}
	if rc == iso8583.RCApproved && authCode == "" && processingCode != iso8583.ProcBalanceInquiry {
		return iso8583.RCSystemError, ""
	}
	if rc != iso8583.RCApproved {
		authCode = ""
	}
	return rc, authCode
}
