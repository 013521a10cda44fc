package authorize

import (
	"errors"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/cryptogram"
)

// Chip is what the switch holds to check one tap's cryptogram
// (docs/cryptogram.md): the token's key, the counters it has accepted for
// the token, the amount above which the cardholder must have been verified
// on the phone, and the switch's clock in the network's time zone, whose
// date the tap's date (9A) must be near.
type Chip struct {
	Key      []byte
	Counters cryptogram.Window
	CVMLimit iso8583.Amount
	Today    time.Time // its date in its own location is the switch's date
}

// ChipVerdict is the outcome of CheckCryptogram. Counter is the tap's
// counter when its cryptogram verified (0 otherwise): it is spent, whatever
// the answer, and is written with the outcome. Reason says why a tap was
// refused, for the log; it never holds key or cryptogram bytes.
type ChipVerdict struct {
	RC      string
	Counter uint32
	Reason  string
}

// CheckCryptogram checks a token request's DE55, in this order:
//
//   - contactless (DE22 07x) without DE55, or any DE55 that does not
//     parse: 30;
//   - the ATC cannot be resolved to a counter, or the counter was
//     accepted before or is older than the window: 59;
//   - the ARQC is not the one the token's key gives for this request
//     (its terminal ID included): 59;
//   - the tap's date (9A) is more than cryptogram.DateSkewDaysMax calendar
//     days from chip.Today's: 59, a cryptogram made for another day
//     (pre-play), its counter spent;
//   - a purchase or top-up above chip.CVMLimit, or a balance inquiry,
//     without the fingerprint verified on the phone (9F34): 05, cardholder
//     verification required.
//
// A request of another entry mode without DE55 passes unchecked: only the
// token's domain restriction (CheckToken) keeps a contactless-only token
// from being keyed in.
func CheckCryptogram(req Request, chip Chip) ChipVerdict {
	if len(req.ICC) == 0 {
		if contactless(req.POSEntryMode) {
			return ChipVerdict{RC: iso8583.RCFormatError, Reason: "contactless request without DE55"}
		}
		return ChipVerdict{}
	}
	emv, err := cryptogram.ParseDE55(req.ICC)
	if err != nil {
		return ChipVerdict{RC: iso8583.RCFormatError, Reason: err.Error()}
	}
	counter, err := chip.Counters.Resolve(emv.ATC)
	if err == nil {
		err = chip.Counters.Check(counter)
	}
	if err != nil {
		return ChipVerdict{RC: iso8583.RCSuspectedFraud, Reason: counterReason(err)}
	}
	tap := cryptogram.Tap{
		Amount: int64(req.Amount), Currency: req.Currency, Date: emv.Date, Type: req.ProcessingCode[:2],
		Terminal: req.TerminalID, Unpredictable: emv.Unpredictable, Counter: counter, CVM: emv.CVM,
	}
	if !cryptogram.Verify(chip.Key, tap, emv.ARQC) {
		return ChipVerdict{RC: iso8583.RCSuspectedFraud, Reason: "ARQC does not verify"}
	}
	if days, ok := cryptogram.DaysApart(emv.Date, chip.Today); !ok || days > cryptogram.DateSkewDaysMax {
		return ChipVerdict{RC: iso8583.RCSuspectedFraud, Counter: counter,
			Reason: "9A date more than a day from the switch's date"}
	}
	if cvmRequired(req, chip.CVMLimit) && !emv.DeviceVerified() {
		return ChipVerdict{RC: RCCardholderVerificationRequired, Counter: counter,
			Reason: "cardholder not verified on the phone: " + cvmRule(req)}
	}
	return ChipVerdict{Counter: counter}
}

// RCCardholderVerificationRequired is the answer to a tap above the CVM
// limit, or a balance inquiry, that the phone did not verify: 05 from the
// switch itself, with no issuer asked (docs/cryptogram.md).
const RCCardholderVerificationRequired = iso8583.RCDoNotHonor

// cvmRequired: money leaving the cardholder above the limit, and every
// balance inquiry, whose answer (the card's balance) is the cardholder's
// to see, not the terminal's. A refund pays the cardholder.
func cvmRequired(req Request, limit iso8583.Amount) bool {
	switch req.ProcessingCode {
	case iso8583.ProcPurchase, iso8583.ProcTransitTopUp:
		return req.Amount > limit
	case iso8583.ProcBalanceInquiry:
		return true
	}
	return false
}

func cvmRule(req Request) string {
	if req.ProcessingCode == iso8583.ProcBalanceInquiry {
		return "a balance inquiry"
	}
	return "above the CVM limit"
}

func counterReason(err error) string {
	switch {
	case errors.Is(err, cryptogram.ErrReplay):
		return "ATC replayed"
	case errors.Is(err, cryptogram.ErrTooOld):
		return "ATC older than the window"
	}
	return "ATC too far from the last accepted"
}
