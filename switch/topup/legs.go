package topup

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"

	moov "github.com/moov-io/iso8583"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/authorize"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// run takes a Paying top-up through its legs to an end state.
func (s *Service) run(ctx context.Context, r Record, req authorize.Request) (Record, error) {
	from, _ := s.cfg.Senders.Originated(r.Terminal)
	ans := s.cfg.Bank.HandleRequest(ctx, req, from)
	if ans.RC != iso8583.RCApproved {
		r.State, r.RC = Declined, ans.RC
		s.log(r, "bank leg declined")
		return r, s.put(&r)
	}
	r, err := s.loadLeg(ctx, r)
	if err != nil {
		return r, err
	}
	if r.State == Undoing {
		return s.undo(ctx, r)
	}
	s.log(r, "top-up loaded")
	return r, nil
}

// loadLeg sends the operator leg with its reversal armed, and journals its
// outcome together with the top-up's new record: Loaded on a grant,
// Undoing otherwise.
func (s *Service) loadLeg(ctx context.Context, r Record) (Record, error) {
	op := s.cfg.Operators[r.Operator]
	now := s.cfg.Now()
	e := journal.Entry{
		Time: now, NodeID: s.cfg.NodeID, MTI: iso8583.MTIFinancialRequest, ProcessingCode: iso8583.ProcPurseLoad,
		Amount: iso8583.Amount(r.Amount), Currency: iso8583.CurrencyCNY,
		TerminalID: r.Load.TerminalID, STAN: r.Load.STAN, TransmissionTime: r.Load.TransmissionTime,
		RRN: rrn(r.Bank), Acquirer: op.Institution, Token: r.Card, IssuerID: op.ID, Product: "transit",
		IssuerSTAN: op.Link.NextSTAN(), IssuerTransmissionTime: now.UTC().Format("0102150405"),
	}
	if r.Open {
		e.ProcessingCode = iso8583.ProcPurseOpen
	}
	e.MerchantID, e.MCC = r.Merchant, MCC
	e.PANSealed = s.cfg.Keys().Seal([]byte(r.Card), authorize.JournalAAD(r.Card))
	armed := e
	armed.ResponseCode = iso8583.RCIssuerUnavailable
	armID, err := s.cfg.Journal.Arm(&armed)
	if err != nil {
		// Not sent: nothing at the operator to undo, only the bank leg.
		s.cfg.Log.Error().Err(err).Str("topup", r.ID).Msg("load reversal not armed: load not sent")
		r.State, r.RC = Undoing, iso8583.RCIssuerUnavailable
		return r, s.put(&r)
	}
	req, err := s.loadRequest(r, e, op)
	if err != nil {
		return r, fmt.Errorf("topup %s: %w", r.ID, err) // Validate bounded the balance: a bug
	}
	lctx, cancel := context.WithTimeout(ctx, s.cfg.LoadTimeout)
	resp, err := op.Link.Exchange(lctx, req)
	cancel()
	change := &journal.Change{Disarm: armID}
	switch {
	case err != nil:
		e.ResponseCode = iso8583.RCIssuerUnavailable
		if s.cfg.Sent(err) {
			// The operator may have granted: the armed 0420 voids it.
			change = &journal.Change{Activate: &journal.Advice{ID: armID, Entry: armed}}
		}
		s.cfg.Log.Warn().Err(err).Str("topup", r.ID).Str("operator", op.ID).Msg("load got no answer")
	default:
		e.ResponseCode = iso8583.FieldValue(resp, iso8583.FieldResponseCode)
		e.AuthCode = strings.TrimSpace(iso8583.FieldValue(resp, iso8583.FieldAuthCode))
	}
	r.RC = e.ResponseCode
	if e.ResponseCode == iso8583.RCApproved {
		if err := s.takeGrant(&r, &e, resp); err != nil {
			// An approval the phone cannot use: void it and undo.
			s.cfg.Log.Error().Err(err).Str("topup", r.ID).Msg("operator's grant unusable")
			e.ResponseCode, r.RC = iso8583.RCSystemError, iso8583.RCSystemError
			e.PurseLoad = nil
			change = &journal.Change{Activate: &journal.Advice{ID: armID, Entry: armed}}
		}
	}
	if e.ResponseCode == iso8583.RCApproved {
		r.State = Loaded
	} else {
		r.State = Undoing
		r.BalanceAfter, r.GrantMAC, r.Sequence, r.PurseKeySealed = 0, "", 0, nil
	}
	jr, err := r.journalRecord()
	if err != nil {
		return r, err
	}
	change.TopUp = jr
	if err := s.cfg.Journal.AppendWith(&e, change); err != nil {
		return r, fmt.Errorf("topup %s: journal the load: %w", r.ID, err)
	}
	return r, nil
}

// rrn is the bank leg's retrieval reference, which ties the two legs
// together at the operator: the same construction as a terminal's (time
// digits and STAN).
func rrn(k journal.Key) string { return k.TransmissionTime[4:10] + k.STAN }

// loadRequest is the operator leg (docs/wire.md, "The purse load").
func (s *Service) loadRequest(r Record, e journal.Entry, op Operator) (*moov.Message, error) {
	m := iso8583.NewMessage()
	m.MTI(iso8583.MTIFinancialRequest)
	m.Field(iso8583.FieldPAN, r.Card)
	m.Field(iso8583.FieldProcessingCode, e.ProcessingCode)
	m.Field(iso8583.FieldAmount, e.Amount.Field())
	m.Field(iso8583.FieldTransmissionTime, e.IssuerTransmissionTime)
	m.Field(iso8583.FieldSTAN, e.IssuerSTAN)
	m.Field(iso8583.FieldAcquirer, op.Institution)
	m.Field(iso8583.FieldForwarder, s.cfg.Institution)
	m.Field(iso8583.FieldRRN, e.RRN)
	m.Field(iso8583.FieldTerminalID, r.Terminal)
	m.Field(iso8583.FieldCurrency, iso8583.CurrencyCNY)
	m.Field(iso8583.FieldReceivingInstitution, op.Institution)
	if !r.Open {
		req := iso8583.PurseLoadRequest{Balance: r.PurseBalance, Counter: r.PurseCounter, Sequence: r.PurseSequence}
		hex.Decode(req.MAC[:], []byte(r.PurseMAC)) // Pay wrote it from 8 bytes
		de48, err := iso8583.PurseLoadData{Request: &req}.Encode()
		if err != nil {
			return nil, err
		}
		m.Field(iso8583.FieldPrivateTokenData, de48)
	}
	return m, nil
}

// takeGrant reads the operator's grant into the record and the entry.
func (s *Service) takeGrant(r *Record, e *journal.Entry, resp *moov.Message) error {
	d, err := iso8583.ParsePurseLoadData(iso8583.FieldValue(resp, iso8583.FieldPrivateTokenData))
	if err != nil {
		return err
	}
	g := d.Grant
	if g == nil {
		return fmt.Errorf("approval without a grant (DE48 tag 41)")
	}
	seq, counter := r.PurseSequence, r.PurseCounter
	if r.Open {
		seq, counter = 1, 0
		if d.Key == nil {
			return fmt.Errorf("opening approved without a purse key (DE48 tag 42)")
		}
		r.PurseKeySealed = s.cfg.Keys().Seal(d.Key[:], purseKeyAAD(r.ID))
	}
	want := r.PurseBalance + r.Amount
	if g.BalanceAfter != want {
		return fmt.Errorf("grant's balance after %d, want %d", g.BalanceAfter, want)
	}
	r.BalanceAfter, r.GrantMAC, r.Sequence = g.BalanceAfter, hex.EncodeToString(g.MAC[:]), seq
	e.PurseLoad = &journal.PurseLoad{Sequence: seq, AfterCounter: counter}
	return nil
}

// undo reverses the bank leg from the top-up terminal, as that terminal
// would: a 0400 through the pipeline, which journals it and queues the
// 0420 to the bank (store and forward). The reversal's key was fixed at
// Prepare, so a repeat (after a crash) is the same reversal, answered as
// the first.
func (s *Service) undo(ctx context.Context, r Record) (Record, error) {
	from, _ := s.cfg.Senders.Originated(r.Terminal)
	resp := s.cfg.Bank.Handle(ctx, reversal(r), from)
	rc := ""
	if resp != nil {
		rc = iso8583.FieldValue(resp, iso8583.FieldResponseCode)
	}
	if rc != iso8583.RCApproved {
		s.cfg.Log.Error().Str("topup", r.ID).Str("rc", rc).Msg("bank leg reversal refused; Recover tries again")
		return r, fmt.Errorf("topup %s: the bank leg's reversal was answered %q", r.ID, rc)
	}
	r.State = Undone
	s.log(r, "top-up undone: bank leg reversed")
	return r, s.put(&r)
}

func reversal(r Record) *moov.Message {
	m := iso8583.NewMessage()
	m.MTI(iso8583.MTIReversalRequest)
	m.Field(iso8583.FieldPAN, r.Token)
	m.Field(iso8583.FieldProcessingCode, iso8583.ProcTransitTopUp)
	m.Field(iso8583.FieldAmount, iso8583.Amount(r.Amount).Field())
	m.Field(iso8583.FieldTransmissionTime, r.Reversal.TransmissionTime)
	m.Field(iso8583.FieldSTAN, r.Reversal.STAN)
	m.Field(iso8583.FieldAcquirer, r.Acquirer)
	m.Field(iso8583.FieldRRN, rrn(r.Bank))
	m.Field(iso8583.FieldTerminalID, r.Terminal)
	m.Field(iso8583.FieldMerchantID, r.Merchant)
	m.Field(iso8583.FieldMCC, MCC)
	m.Field(iso8583.FieldCurrency, iso8583.CurrencyCNY)
	m.Field(iso8583.FieldOriginalData, fmt.Sprintf("%s%s%s%011s%011d", iso8583.MTIFinancialRequest,
		r.Bank.STAN, r.Bank.TransmissionTime, r.Acquirer, 0))
	return m
}

// Recover finishes every top-up a crash left Paying or Undoing. Run it once
// at start, after the journal opened (which made every armed advice due:
// an operator leg that got no answer is voided at the operator by its
// 0420) and before the API serves.
func (s *Service) Recover(ctx context.Context) (finished int, err error) {
	var open []Record
	err = s.cfg.Journal.EachTopUp(func(jr journal.TopUpRecord) error {
		r, err := decodeRecord(jr.Value)
		if err != nil {
			return fmt.Errorf("top-up %s: %w", jr.ID, err)
		}
		if r.State == Paying || r.State == Undoing {
			open = append(open, r)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, r := range open {
		if _, err := s.finish(ctx, r); err != nil {
			return finished, err
		}
		finished++
	}
	return finished, nil
}

// finish decides a Paying top-up from what the journal holds, and undoes
// an Undoing one.
func (s *Service) finish(ctx context.Context, r Record) (Record, error) {
	if r.State == Paying {
		load, found, err := s.cfg.Journal.Lookup(r.Load)
		if err != nil {
			return r, err
		}
		if found && load.ResponseCode == iso8583.RCApproved {
			// Cannot happen: the load's entry and the Loaded record are one batch.
			return r, fmt.Errorf("topup %s: load journaled approved but the record says paying", r.ID)
		}
		bank, found, err := s.cfg.Journal.Lookup(r.Bank)
		if err != nil {
			return r, err
		}
		switch {
		case !found:
			// The bank leg was never decided: its armed advice (if it was
			// sent) releases the bank's hold.
			r.State, r.RC = Undone, iso8583.RCIssuerUnavailable
			s.log(r, "top-up undone at recovery: bank leg never decided")
			return r, s.put(&r)
		case bank.ResponseCode != iso8583.RCApproved:
			r.State, r.RC = Declined, bank.ResponseCode
			s.log(r, "top-up declined at recovery")
			return r, s.put(&r)
		}
		r.State, r.RC = Undoing, iso8583.RCIssuerUnavailable
		if err := s.put(&r); err != nil {
			return r, err
		}
	}
	return s.undo(ctx, r)
}

func (s *Service) log(r Record, msg string) {
	if r.State.Final() {
		s.cfg.Metrics.TopUp(r.Operator, string(r.State))
	}
	s.cfg.Log.Info().Str("topup", r.ID).Str("operator", r.Operator).Bool("open", r.Open).
		Str("card", maskCard(r.Card)).Int64("amount", r.Amount).Str("state", string(r.State)).
		Str("rc", r.RC).Msg(msg)
}

// maskCard shows a transit card number's BIN and last four digits.
func maskCard(c string) string {
	if len(c) < 12 {
		return strings.Repeat("*", len(c))
	}
	return c[:8] + strings.Repeat("*", len(c)-12) + c[len(c)-4:]
}
