// Package saf is the switch's store-and-forward sender: it delivers the
// advices the journal holds (0420 reversals of requests whose answer never
// came or that a terminal reversed, 0220 advices of stand-in approvals) to
// their issuers, retrying with backoff until each is acknowledged.
//
// An advice leaves the queue only when the issuer acknowledges it: a
// reversal with 00 (released) or 25 (nothing to release: the request never
// arrived), a stand-in advice with 00 (posted) or 94 (already posted). Any
// other answer, or none, is a failed attempt: the advice is retried after a
// delay that doubles from RetryMin to RetryMax; after AttemptsMax attempts
// it is parked as dead, counted and logged for an operator, never dropped.
// Sending twice is safe: issuers treat a repeated reversal or advice as the
// same one (the contract, docs/wire.md).
package saf

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	moov "github.com/moov-io/iso8583"
	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/journal"
	"github.com/tapswitch/tapswitch/switch/vault"
)

// Issuer is where advices for one issuer go.
type Issuer struct {
	Institution string
	Link        interface {
		Exchange(ctx context.Context, req *moov.Message) (*moov.Message, error)
	}
}

// Config wires and bounds the sender.
type Config struct {
	Journal     *journal.Journal
	Keys        func() *vault.Keyring // the vault's current keyring (it changes with a rotation): opens the sealed PANs
	Issuers     map[string]Issuer
	Institution string // the switch's, DE33 and DE90's forwarder
	RetryMin    time.Duration
	RetryMax    time.Duration
	AttemptsMax int
	InFlightMax int           // advices being sent at once
	PollEvery   time.Duration // look for due advices at least this often
	Now         func() time.Time
	Log         zerolog.Logger
}

func (c Config) validate() error {
	switch {
	case c.Journal == nil || c.Keys == nil:
		return errors.New("saf: journal and keys are required")
	case c.RetryMin <= 0 || c.RetryMax < c.RetryMin:
		return errors.New("saf: retry_min must be positive and retry_max at least retry_min")
	case c.AttemptsMax < 1 || c.InFlightMax < 1 || c.InFlightMax > 1024:
		return errors.New("saf: attempts_max >= 1 and in_flight_max in 1..1024 are required")
	case c.PollEvery <= 0:
		return errors.New("saf: poll interval must be positive")
	}
	return nil
}

// Sender delivers advices until its context ends.
type Sender struct {
	cfg  Config
	wake chan struct{}
}

// New checks cfg.
func New(cfg Config) (*Sender, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Sender{cfg: cfg, wake: make(chan struct{}, 1)}, nil
}

// Wake makes the sender look for due advices now.
func (s *Sender) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run sends due advices until ctx ends. Each round sends up to
// InFlightMax advices at once and waits for them all.
func (s *Sender) Run(ctx context.Context) {
	ticker := time.NewTicker(s.cfg.PollEvery)
	defer ticker.Stop()
	for {
		more := s.round(ctx)
		if more {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-s.wake:
		}
	}
}

// round sends one batch of due advices; it reports whether a full batch
// was found (there may be more due at once).
func (s *Sender) round(ctx context.Context) bool {
	if ctx.Err() != nil {
		return false
	}
	s.releaseAbandoned()
	due, err := s.cfg.Journal.DueAdvices(s.cfg.Now(), s.cfg.InFlightMax)
	if err != nil {
		s.cfg.Log.Error().Err(err).Msg("store and forward: reading due advices failed")
		return false
	}
	var wg sync.WaitGroup
	for _, a := range due {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.deliver(ctx, a)
		}()
	}
	wg.Wait()
	return len(due) == s.cfg.InFlightMax
}

// releaseAbandoned makes due the reversals armed for issuer calls whose
// outcome the journal failed to record; a failure leaves them for the next
// round.
func (s *Sender) releaseAbandoned() {
	n, err := s.cfg.Journal.ReleaseAbandoned(s.cfg.Now())
	if err != nil {
		s.cfg.Log.Warn().Err(err).Int("released", n).Msg("store and forward: reversals of unjournaled issuer calls not yet due; trying again")
		return
	}
	if n > 0 {
		s.cfg.Log.Warn().Int("released", n).Msg("store and forward: reversals of issuer calls whose outcome was not journaled made due")
	}
}

// deliver sends one advice and records the outcome.
func (s *Sender) deliver(ctx context.Context, a journal.Advice) {
	log := s.cfg.Log.With().Uint64("advice", a.ID).Str("issuer", a.Entry.IssuerID).
		Str("stan", a.Entry.IssuerSTAN).Logger()
	err := s.send(ctx, a)
	if err == nil {
		if err := s.cfg.Journal.CompleteAdvice(a.ID); err != nil {
			log.Error().Err(err).Msg("acknowledged advice not removed; it will be sent again")
		}
		log.Debug().Msg("advice acknowledged")
		return
	}
	a.Attempts++
	a.NextAttempt = s.cfg.Now().Add(backoff(s.cfg.RetryMin, s.cfg.RetryMax, a.Attempts))
	if a.Attempts >= s.cfg.AttemptsMax {
		a.State = journal.AdviceDead
		log.Error().Err(err).Int("attempts", a.Attempts).Msg("advice parked as dead after its last attempt")
	} else {
		log.Info().Err(err).Int("attempts", a.Attempts).Time("next", a.NextAttempt).Msg("advice not acknowledged")
	}
	if err := s.cfg.Journal.RescheduleAdvice(a); err != nil {
		log.Error().Err(err).Msg("advice not rescheduled")
	}
}

// backoff is RetryMin doubled per attempt, at most RetryMax.
func backoff(lo, hi time.Duration, attempts int) time.Duration {
	d := lo
	for i := 1; i < attempts && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

// send builds and exchanges the advice's message; nil means acknowledged.
func (s *Sender) send(ctx context.Context, a journal.Advice) error {
	is, ok := s.cfg.Issuers[a.Entry.IssuerID]
	if !ok {
		return fmt.Errorf("no link to issuer %q", a.Entry.IssuerID)
	}
	pan, err := s.cfg.Keys().Open(a.Entry.PANSealed, journalAAD(a.Entry.Token))
	if err != nil {
		return fmt.Errorf("open sealed PAN: %w", err)
	}
	var req *moov.Message
	acks := map[string]bool{}
	switch a.Kind {
	case journal.AdviceReversal:
		req = reversalAdvice(a.Entry, string(pan), is.Institution, s.cfg.Institution, s.cfg.Now())
		acks[iso8583.RCApproved], acks[iso8583.RCOriginalNotFound] = true, true
	case journal.AdviceStandIn:
		req = standInAdvice(a.Entry, string(pan), is.Institution, s.cfg.Institution)
		acks[iso8583.RCApproved], acks[iso8583.RCDuplicate] = true, true
	default:
		return fmt.Errorf("unknown advice kind %d", a.Kind)
	}
	resp, err := is.Link.Exchange(ctx, req)
	if err != nil {
		return err
	}
	if rc := iso8583.FieldValue(resp, iso8583.FieldResponseCode); !acks[rc] {
		return fmt.Errorf("issuer answered %q", rc)
	}
	return nil
}

// journalAAD must match authorize.JournalAAD; it is repeated here rather
// than imported so that saf does not depend on the pipeline.
func journalAAD(token string) []byte { return []byte("journal:" + token) }
