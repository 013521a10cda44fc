package tokensvc

import (
	"encoding/hex"
	"net/http"
	"net/netip"
	"time"
)

// Card verifications are bounded across accounts, since accounts are free
// to make: a thief testing stolen card numbers opens a new account for
// every try, so a bound per account alone stops nothing. Each verification
// counts, before the issuer is asked, against
//
//	the card      verificationsPerCardMax in verificationsPerCardWindow,
//	              keyed by the vault's keyed hash of the PAN (never the PAN)
//	the device    verificationsPerDeviceMax in verificationsPerDeviceWindow
//	the address   verificationsPerAddressMax in verificationsPerAddressWindow,
//	              the TCP peer's IP (an IPv6 peer by its /64)
//
// and one over any of them is answered 429 too_many_verifications with
// Retry-After, the same answer for each, so the answer does not say which
// bound a thief should route around (the audit trail does). Successful
// verifications count too: each sends the cardholder an SMS, and the card
// bound also stops a stranger who has the card's details from flooding
// the cardholder's phone with codes.
//
// The counts are kept in the store (so a restart does not forget them), in
// windows aligned to the window length: key v/<kind>/<window start>/<id>. A
// verification is admitted while the current and the previous window
// together hold fewer than the bound, so no burst at a window's edge gets
// more than the bound through, and a refused client waits at most two
// windows. Windows older than the previous one are deleted as time moves
// on (sweepLimits), so the counts take the room of two windows' traffic.
//
// The device ID is chosen by the wallet, so a script can change it at will:
// its bound catches a careless script; the card and address bounds carry
// the weight. The address is r.RemoteAddr: behind a proxy it would be the
// proxy's, and X-Forwarded-For is not read, since any client can write it.
// A proxy in front would need a trusted-proxy setting, which is not built.
const (
	verificationsPerCardMax       = 5
	verificationsPerCardWindow    = 24 * time.Hour
	verificationsPerDeviceMax     = 10
	verificationsPerDeviceWindow  = time.Hour
	verificationsPerAddressMax    = 20
	verificationsPerAddressWindow = time.Hour
)

// limit is one cross-account bound.
type limit struct {
	name   string // for the audit trail: "card", "device", "address"
	prefix string // store key prefix
	max    int
	window time.Duration
}

var (
	limitCard    = limit{"card", prefixLimitCard, verificationsPerCardMax, verificationsPerCardWindow}
	limitDevice  = limit{"device", prefixLimitDevice, verificationsPerDeviceMax, verificationsPerDeviceWindow}
	limitAddress = limit{"address", prefixLimitAddress, verificationsPerAddressMax, verificationsPerAddressWindow}
	limits       = []limit{limitCard, limitDevice, limitAddress}
)

// counter is the stored count of one window.
type counter struct {
	V     int `json:"v"`
	Count int `json:"count"`
}

// limitVerdict is the whole rule, pure: prev and cur are the counts of the
// previous and the current window, which began at start. It returns whether
// one more may go, and when not, how long until one may.
func limitVerdict(l limit, prev, cur int, start, now time.Time) (ok bool, retryAfter time.Duration) {
	if prev+cur < l.max {
		return true, 0
	}
	end := start.Add(l.window)
	if cur >= l.max {
		// The current window alone is full: it must become the previous
		// one and pass too.
		end = end.Add(l.window)
	}
	return false, end.Sub(now)
}

// windowStart is the start of the window of l holding now.
func (l limit) windowStart(now time.Time) time.Time { return now.UTC().Truncate(l.window) }

func (l limit) key(start time.Time, id string) string {
	return l.prefix + seqText(uint64(start.Unix())) + "/" + id
}

// limitKey is one subject of one limit: the card's hash, the device, the
// address.
type limitKey struct {
	limit
	id string
}

// verificationSubjects are the keys one verification counts against.
func (s *Service) verificationSubjects(pan, deviceID, remoteAddr string) []limitKey {
	return []limitKey{
		{limitCard, hex.EncodeToString(s.cfg.Keys.IndexHash(pan))},
		{limitDevice, deviceID},
		{limitAddress, clientAddress(remoteAddr)},
	}
}

// clientAddress is the TCP peer's IP, an IPv6 one cut to its /64 (a host
// commonly holds a whole /64). An address that does not parse stands for
// itself.
func clientAddress(remoteAddr string) string {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	ip := ap.Addr().Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, _ := ip.Prefix(64) // cannot fail for an IPv6 address
	return p.String()
}

// checkLimits reads the counts of keys at now and returns the first bound
// that refuses, with its wait. The caller holds s.mu.
func (s *Service) checkLimits(keys []limitKey, now time.Time) (refused *limitKey, retryAfter time.Duration, err error) {
	for i := range keys {
		k := &keys[i]
		start := k.windowStart(now)
		var prev, cur counter
		if _, err := s.st.get(k.key(start.Add(-k.window), k.id), &prev); err != nil {
			return nil, 0, err
		}
		if _, err := s.st.get(k.key(start, k.id), &cur); err != nil {
			return nil, 0, err
		}
		if ok, wait := limitVerdict(k.limit, prev.Count, cur.Count, start, now); !ok {
			return k, wait, nil
		}
	}
	return nil, 0, nil
}

// countLimits adds one to the current window of every key, in b. The caller
// holds s.mu.
func (s *Service) countLimits(b *batch, keys []limitKey, now time.Time) error {
	for _, k := range keys {
		key := k.key(k.windowStart(now), k.id)
		var c counter
		if _, err := s.st.get(key, &c); err != nil {
			return err
		}
		c.V, c.Count = recordFormat, c.Count+1
		b.put(key, c)
	}
	return nil
}

// sweepLimits deletes, in b, the windows older than the previous one, once
// per window. The caller holds s.mu.
func (s *Service) sweepLimits(b *batch, now time.Time) {
	for _, l := range limits {
		start := l.windowStart(now)
		if s.limitsSwept[l.name].Equal(start) {
			continue
		}
		b.delRange(l.prefix, l.key(start.Add(-l.window), ""))
		s.limitsSwept[l.name] = start
	}
}

func tooManyVerifications(wait time.Duration) *apiError {
	e := newError(http.StatusTooManyRequests, "too_many_verifications",
		"too many card verifications; try again after Retry-After seconds")
	e.retryAfter = wait
	return e
}
