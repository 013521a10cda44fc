package saf

import (
	"fmt"
	"time"

	moov "github.com/moov-io/iso8583"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// reversalAdvice is the 0420 that releases the issuer-side request e names
// (its IssuerSTAN and IssuerTransmissionTime). A stand-in approval reached
// the issuer as an 0220, so that is the original MTI it is reversed under.
func reversalAdvice(e journal.Entry, pan, issuerInstitution, switchInstitution string, now time.Time) *moov.Message {
	origMTI := e.MTI
	if e.StandIn {
		origMTI = iso8583.MTIAdvice
	}
	m := iso8583.NewMessage()
	m.MTI(iso8583.MTIReversalAdvice)
	m.Field(iso8583.FieldPAN, pan)
	m.Field(iso8583.FieldProcessingCode, e.ProcessingCode)
	m.Field(iso8583.FieldAmount, e.Amount.Field())
	m.Field(iso8583.FieldTransmissionTime, now.UTC().Format("0102150405"))
	setIf(m, iso8583.FieldAcquirer, e.Acquirer)
	m.Field(iso8583.FieldForwarder, switchInstitution)
	setIf(m, iso8583.FieldRRN, e.RRN)
	m.Field(iso8583.FieldTerminalID, e.TerminalID)
	setIf(m, iso8583.FieldMerchantID, e.MerchantID)
	setIf(m, iso8583.FieldCurrency, e.Currency)
	m.Field(iso8583.FieldOriginalData, fmt.Sprintf("%s%s%s%s%s", origMTI, e.IssuerSTAN,
		e.IssuerTransmissionTime, zeroPad(e.Acquirer), zeroPad(switchInstitution)))
	m.Field(iso8583.FieldReceivingInstitution, issuerInstitution)
	return m
}

// standInAdvice is the 0220 that tells the issuer of a stand-in approval,
// with the STAN and transmission time chosen when it was approved, so a
// repeated advice is recognisably the same one.
func standInAdvice(e journal.Entry, pan, issuerInstitution, switchInstitution string) *moov.Message {
	m := iso8583.NewMessage()
	m.MTI(iso8583.MTIAdvice)
	m.Field(iso8583.FieldPAN, pan)
	m.Field(iso8583.FieldProcessingCode, e.ProcessingCode)
	m.Field(iso8583.FieldAmount, e.Amount.Field())
	m.Field(iso8583.FieldTransmissionTime, e.IssuerTransmissionTime)
	m.Field(iso8583.FieldSTAN, e.IssuerSTAN)
	setIf(m, iso8583.FieldExpiry, e.CardExpiry)
	setIf(m, iso8583.FieldMCC, e.MCC)
	setIf(m, iso8583.FieldAcquirer, e.Acquirer)
	m.Field(iso8583.FieldForwarder, switchInstitution)
	setIf(m, iso8583.FieldRRN, e.RRN)
	m.Field(iso8583.FieldAuthCode, e.AuthCode)
	m.Field(iso8583.FieldResponseCode, iso8583.RCApproved)
	m.Field(iso8583.FieldTerminalID, e.TerminalID)
	setIf(m, iso8583.FieldMerchantID, e.MerchantID)
	setIf(m, iso8583.FieldCurrency, e.Currency)
	m.Field(iso8583.FieldReceivingInstitution, issuerInstitution)
	return m
}

func setIf(m *moov.Message, id int, v string) {
	if v != "" {
		m.Field(id, v)
	}
}

// zeroPad left-pads an institution ID to DE90's 11 digits.
func zeroPad(s string) string {
	for len(s) < 11 {
		s = "0" + s
	}
	return s
}
