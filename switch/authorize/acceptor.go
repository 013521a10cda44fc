package authorize

import (
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/acquirer"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// The checks of who may ask for what (docs/wire.md section 11). Like
// Decide they are pure: the terminal session established the sender's
// Identity from the frame's MAC; these say what it may do.

// CheckSender refuses a message whose sender the MAC did not establish:
// no MAC, or a wrong one, is a security violation (63); a MAC from a DE41
// the registry does not know is 58. The order matters: a message with no
// MAC learns nothing about which terminals exist.
func CheckSender(from acquirer.Identity) (rc, reason string) {
	switch from.Status {
	case acquirer.Authenticated:
		return "", ""
	case acquirer.Unregistered:
		return iso8583.RCTerminalNotAllowed, from.Status.String()
	case acquirer.MACMissing, acquirer.MACBad:
		return iso8583.RCSecurityViolation, from.Status.String()
	}
	return iso8583.RCSecurityViolation, "sender not established"
}

// CheckAcceptor holds an authenticated terminal to its registration: DE42
// must be its merchant, DE32 that merchant's acquirer, and DE18 (when the
// message carries one) one of the merchant's MCCs; otherwise 03.
func CheckAcceptor(from acquirer.Identity, acquirerID, merchantID, mcc string) (rc, reason string) {
	switch {
	case merchantID != from.Merchant.ID:
		return iso8583.RCInvalidMerchant, "DE42 is not the terminal's merchant"
	case acquirerID != from.Merchant.Acquirer:
		return iso8583.RCInvalidMerchant, "DE32 is not the merchant's acquirer"
	case mcc != "" && !from.Merchant.AllowsMCC(mcc):
		return iso8583.RCInvalidMerchant, "DE18 is not one of the merchant's MCCs"
	}
	return "", ""
}

// CheckRefund decides whether a refund that names its original (DE90) may
// go to the issuer. The original was looked up at the refund's own
// terminal (the journal's key); it must be an approved purchase of the
// same MTI, token, merchant and acquirer, not reversed, and the refund may
// not exceed what earlier refunds left of it.
func CheckRefund(req Request, orig journal.Entry, found, reversed bool, refunded iso8583.Amount) (rc, reason string) {
	switch {
	case !found:
		return iso8583.RCOriginalNotFound, "no original at this terminal"
	case orig.MTI != req.OriginalMTI || orig.ProcessingCode != iso8583.ProcPurchase:
		return iso8583.RCOriginalNotFound, "the original is not a purchase of that MTI"
	case orig.ResponseCode != iso8583.RCApproved:
		return iso8583.RCOriginalNotFound, "the original was not approved"
	case orig.Token != req.Token.Clear():
		return iso8583.RCOriginalNotFound, "the original is another token's"
	case orig.MerchantID != req.MerchantID || orig.Acquirer != req.Acquirer:
		return iso8583.RCOriginalNotFound, "the original is another merchant's"
	case reversed:
		return iso8583.RCOriginalNotFound, "the original was reversed"
	case req.Amount > orig.Amount-refunded:
		return iso8583.RCInvalidAmount, "more than the original has left to refund"
	}
	return "", ""
}

// CheckRefundWithoutOriginal applies a merchant's rule to a refund that
// names no original: refused 12 unless the merchant's rule allows it, 13
// above the rule's cap.
func CheckRefundWithoutOriginal(req Request, rule acquirer.RefundRule) (rc, reason string) {
	switch {
	case !rule.Enabled:
		return iso8583.RCInvalidTransaction, "refund names no original (DE90) and the merchant may not"
	case req.Amount > rule.AmountMax:
		return iso8583.RCInvalidAmount, "refund without original above the merchant's cap"
	}
	return "", ""
}

// CheckReversal decides whether a reversal may act on its original, found
// at the reversal's own (authenticated) terminal: the same token and the
// same merchant and acquirer, no older than ageMax, the full amount, and
// no refund given back against it yet. "" means go on: answered 00, the
// hold released when the original was an approval not yet reversed.
func CheckReversal(rev Reversal, orig journal.Entry, found bool, refunded iso8583.Amount, now time.Time, ageMax time.Duration) (rc, reason string) {
	switch {
	case !found || orig.Token != rev.Token.Clear():
		return iso8583.RCOriginalNotFound, "no original of this token at this terminal"
	case orig.MerchantID != rev.MerchantID || orig.Acquirer != rev.Acquirer:
		return iso8583.RCOriginalNotFound, "the original is another merchant's"
	case now.Sub(orig.Time) > ageMax:
		return iso8583.RCOriginalNotFound, "the original is older than the reversal age limit"
	case orig.Amount != rev.Amount:
		return iso8583.RCInvalidAmount, "partial reversals are not part of the contract"
	case refunded > 0:
		return iso8583.RCInvalidTransaction, "the original has refunds: refund the rest instead"
	}
	return "", ""
}
