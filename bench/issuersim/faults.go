package issuersim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Bounds of fault injection.
const (
	// faultDelayMax bounds Latency+Jitter, and LateBy on its own: a longer
	// delay is a typo, not a scenario any switch timeout would wait for.
	faultDelayMax = time.Minute
	// garbageBytesMin and garbageBytesMax bound a garbage answer's length.
	garbageBytesMin = 16
	garbageBytesMax = 128
)

// Faults is how badly the issuer behaves. One draw per request picks at
// most one of the six faults: the rates are shares of the same draw, so
// they add up to at most 1. The package doc says what each does to the
// money.
type Faults struct {
	Latency time.Duration // added to every answer
	Jitter  time.Duration // plus a uniform share of this
	// DropRate is the share of requests decided but never answered.
	DropRate float64
	// ErrorRate is the share of requests answered 96 without a decision.
	ErrorRate float64
	// DisconnectRate is the share of requests decided, after which the
	// connection is closed instead of answered.
	DisconnectRate float64
	// DuplicateRate is the share of requests whose answer is written twice.
	DuplicateRate float64
	// GarbageRate is the share of requests decided and answered with a
	// well-framed payload that is not a message.
	GarbageRate float64
	// LateRate is the share of requests decided on time and answered
	// LateBy later still.
	LateRate float64
	LateBy   time.Duration
	// ZeroSecondaryBitmap sends every answer with a secondary bitmap,
	// present and all zero when no field of DE65-128 is set, as some
	// issuer hosts' ISO 8583 libraries do. Legal, so not a fault the
	// switch may refuse: it must read such an answer like any other.
	ZeroSecondaryBitmap bool
}

type namedRate struct {
	name string
	v    float64
}

// rates lists the fault rates in the order a draw tests them.
func (f Faults) rates() [faultCount - 1]namedRate {
	return [faultCount - 1]namedRate{
		{"drop rate", f.DropRate}, {"error rate", f.ErrorRate},
		{"disconnect rate", f.DisconnectRate}, {"duplicate rate", f.DuplicateRate},
		{"garbage rate", f.GarbageRate}, {"late rate", f.LateRate},
	}
}

// Validate checks the rates are shares adding up to at most 1 and the
// delays bounded.
func (f Faults) Validate() error {
	sum := 0.0
	for _, r := range f.rates() {
		if math.IsNaN(r.v) || r.v < 0 || r.v > 1 {
			return fmt.Errorf("%s %v is not between 0 and 1", r.name, r.v)
		}
		sum += r.v
	}
	if sum > 1+1e-9 {
		return fmt.Errorf("fault rates add up to %v, more than 1", sum)
	}
	if f.Latency < 0 || f.Jitter < 0 || f.Latency+f.Jitter > faultDelayMax {
		return fmt.Errorf("latency %v and jitter %v must be non-negative and add up to at most %v", f.Latency, f.Jitter, faultDelayMax)
	}
	if f.LateBy < 0 || f.LateBy > faultDelayMax {
		return fmt.Errorf("late-by %v is not between 0 and %v", f.LateBy, faultDelayMax)
	}
	if f.LateRate > 0 && f.LateBy == 0 {
		return fmt.Errorf("late rate %v needs a late-by above 0", f.LateRate)
	}
	return nil
}

// pick maps a uniform draw x in [0, 1) to a fault: each rate takes its
// share of the interval in the order of rates.
func (f Faults) pick(x float64) fault {
	edge := 0.0
	for i, r := range f.rates() {
		edge += r.v
		if x < edge {
			return fault(i + 1)
		}
	}
	return faultNone
}

// faultsJSON is the wire shape of Faults: durations as Go duration strings
// ("250ms", "3s"), rates as numbers.
type faultsJSON struct {
	Latency        string  `json:"latency"`
	Jitter         string  `json:"jitter"`
	DropRate       float64 `json:"drop_rate"`
	ErrorRate      float64 `json:"error_rate"`
	DisconnectRate float64 `json:"disconnect_rate"`
	DuplicateRate  float64 `json:"duplicate_rate"`
	GarbageRate    float64 `json:"garbage_rate"`
	LateRate       float64 `json:"late_rate"`
	LateBy         string  `json:"late_by"`
	// Left out when false, so documents written before it stay the same.
	ZeroSecondaryBitmap bool `json:"zero_secondary_bitmap,omitempty"`
}

// MarshalJSON writes the shape the admin endpoint reads.
func (f Faults) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultsJSON{
		Latency: f.Latency.String(), Jitter: f.Jitter.String(),
		DropRate: f.DropRate, ErrorRate: f.ErrorRate, DisconnectRate: f.DisconnectRate,
		DuplicateRate: f.DuplicateRate, GarbageRate: f.GarbageRate,
		LateRate: f.LateRate, LateBy: f.LateBy.String(),
		ZeroSecondaryBitmap: f.ZeroSecondaryBitmap,
	})
}

// UnmarshalJSON reads the whole Faults: a field left out is zero, an
// unknown field is an error (a misspelt rate must not silently be 0).
// It does not validate; SetFaults does.
func (f *Faults) UnmarshalJSON(data []byte) error {
	var j faultsJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("faults: %w", err)
	}
	out := Faults{
		DropRate: j.DropRate, ErrorRate: j.ErrorRate, DisconnectRate: j.DisconnectRate,
		DuplicateRate: j.DuplicateRate, GarbageRate: j.GarbageRate, LateRate: j.LateRate,
		ZeroSecondaryBitmap: j.ZeroSecondaryBitmap,
	}
	for _, d := range []struct {
		name string
		s    string
		dst  *time.Duration
	}{{"latency", j.Latency, &out.Latency}, {"jitter", j.Jitter, &out.Jitter}, {"late_by", j.LateBy, &out.LateBy}} {
		if d.s == "" {
			continue
		}
		v, err := time.ParseDuration(d.s)
		if err != nil {
			return fmt.Errorf("faults: %s: %w", d.name, err)
		}
		*d.dst = v
	}
	*f = out
	return nil
}

// fault is what the dice say about one request. The order after faultNone
// is the order of Faults.rates.
type fault int

const (
	faultNone fault = iota
	faultDrop
	faultError
	faultDisconnect
	faultDuplicate
	faultGarbage
	faultLate
	faultCount
)

var faultNames = [faultCount]string{"none", "drop", "error", "disconnect", "duplicate", "garbage", "late"}

func (f fault) String() string { return faultNames[f] }

// plan is how one request will be treated, drawn when it is read.
type plan struct {
	delay   time.Duration // before the decision
	fault   fault
	lateBy  time.Duration // faultLate: after the decision, before the answer
	garbage []byte        // faultGarbage: the payload sent instead
	// wideBitmap: the answer carries a secondary bitmap, all zero when
	// unused (Faults.ZeroSecondaryBitmap).
	wideBitmap bool
}

// garbageAlphabet is printable ASCII without digits: a payload that does not
// start with four digits has no MTI, so it can never unpack as a message.
const garbageAlphabet = " !\"#$%&'()*+,-./:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"

func garbageBytes(rng *rand.Rand) []byte {
	b := make([]byte, garbageBytesMin+rng.IntN(garbageBytesMax-garbageBytesMin+1))
	for i := range b {
		b[i] = garbageAlphabet[rng.IntN(len(garbageAlphabet))]
	}
	return b
}
