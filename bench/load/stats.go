package load

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/tapswitch/tapswitch/bench/pos"
)

// Histogram range: 1 µs to 60 s at 3 significant digits, in microseconds.
const (
	histLowestUS  = 1
	histHighestUS = 60_000_000
	histDigits    = 3
	// errorKindsMax bounds the distinct error descriptions kept; the rest
	// are counted under errOther.
	errorKindsMax = 64
)

// Error kinds other than a wrong response code.
const (
	errTimeout    = "timeout (no answer within -timeout)"
	errConnection = "connection closed"
	errOther      = "other errors"
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowestUS, histHighestUS, histDigits)
}

// KindCount is what happened to the requests of one kind.
type KindCount struct {
	Sent   int64 `json:"sent"`
	OK     int64 `json:"ok"`
	Errors int64 `json:"errors"`
}

// stats is what one terminal recorded during the measured time. Terminals
// keep their own so that recording never contends across connections;
// merge adds them up at the end.
type stats struct {
	mu       sync.Mutex
	latency  *hdrhistogram.Histogram // µs from intended send to answer
	sendLag  *hdrhistogram.Histogram // µs from intended to actual send (open loop)
	codes    map[string]int64
	errors   map[string]int64
	kinds    map[Kind]*KindCount
	answered int64
}

func newStats() *stats {
	return &stats{
		latency: newHistogram(), sendLag: newHistogram(),
		codes: map[string]int64{}, errors: map[string]int64{}, kinds: map[Kind]*KindCount{},
	}
}

// outcome is one request's result as the recorder sees it.
type outcome struct {
	kind    Kind
	latency time.Duration
	sendLag time.Duration
	rc      string // "" when there was no answer
	errKind string // "" when the answer was the one wanted
	// noLatency: no answer and no wait to record (the connection was gone).
	noLatency bool
}

func (s *stats) record(o outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !o.noLatency {
		s.latency.RecordValue(clampUS(o.latency))
		s.sendLag.RecordValue(clampUS(o.sendLag))
	}
	kc := s.kinds[o.kind]
	if kc == nil {
		kc = &KindCount{}
		s.kinds[o.kind] = kc
	}
	kc.Sent++
	if o.rc != "" {
		s.answered++
		s.codes[o.rc]++
	}
	if o.errKind == "" {
		kc.OK++
		return
	}
	kc.Errors++
	if _, known := s.errors[o.errKind]; !known && len(s.errors) >= errorKindsMax {
		o.errKind = errOther
	}
	s.errors[o.errKind]++
}

// clampUS converts to whole microseconds within the histogram's range.
func clampUS(d time.Duration) int64 {
	us := d.Microseconds()
	switch {
	case us < histLowestUS:
		return histLowestUS
	case us > histHighestUS:
		return histHighestUS
	}
	return us
}

// merge adds o into s. o must no longer be recorded into.
func (s *stats) merge(o *stats) {
	s.latency.Merge(o.latency)
	s.sendLag.Merge(o.sendLag)
	s.answered += o.answered
	for k, v := range o.codes {
		s.codes[k] += v
	}
	for k, v := range o.errors {
		s.errors[k] += v
	}
	for k, v := range o.kinds {
		kc := s.kinds[k]
		if kc == nil {
			kc = &KindCount{}
			s.kinds[k] = kc
		}
		kc.Sent += v.Sent
		kc.OK += v.OK
		kc.Errors += v.Errors
	}
}

// classify names what went wrong with one exchange, or "" when the answer
// carried the code wanted.
func classify(kind Kind, rc, want string, err error) string {
	switch {
	case err == nil && rc == want:
		return ""
	case err == nil:
		return fmt.Sprintf("%s answered %s, want %s", kind, rc, want)
	case errors.Is(err, context.DeadlineExceeded):
		return errTimeout
	case errors.Is(err, pos.ErrClosed):
		return errConnection
	}
	return "send failed: " + err.Error()
}
