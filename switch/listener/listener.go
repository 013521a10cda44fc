// Package listener keeps the switch's listeners serving through what would
// otherwise end them or exhaust the process.
//
// An Accept that fails is almost never the listener's end: a process out of
// file descriptors (EMFILE, ENFILE), a connection reset before it was taken
// (ECONNABORTED), a kernel short of buffers. Returning such an error from a
// server's accept loop takes the listener, and with switchd the whole
// process, down at the moment a flood of connections arrives: exactly the
// moment an attacker chooses. So every accept loop in the switch and the
// simulated world treats any error but a closed listener as passing: it
// waits (Retry: 5 ms, doubling to 1 s, reset by the next success), logs one
// line per streak and then at most one per logEvery with the count, counts
// it in a metric, and tries again. Only net.ErrClosed ends a loop.
//
// net/http's own loop backs off on the errors it deems temporary, but logs
// every one through the standard logger and gives up on the others; Guard
// wraps the listener under an http.Server so those errors never reach it.
//
// Guard also caps the connections a listener has open at once
// (ConnectionsMax). A connection over the cap is accepted and closed at once
// (the client sees the connection end before any answer) rather than left
// in the kernel's backlog: a client learns at once that the switch is full,
// and the connections already admitted keep being served.
package listener

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Accept back-off bounds, as net/http's.
const (
	retryDelayMin = 5 * time.Millisecond
	retryDelayMax = time.Second
	// logEvery bounds how often a streak of failed accepts or refused
	// connections is logged after its first line.
	logEvery = 10 * time.Second
)

// Observer counts what a listener does; switch/metrics implements it. A nil
// Observer is allowed wherever one is taken.
type Observer interface {
	AcceptFailed()      // an Accept failed and is being retried
	ConnectionRefused() // a connection was closed at the connection cap
}

// Retry paces an accept loop through failing Accepts. The zero value is
// ready; Name, Log and Observer are optional. One goroutine uses it.
type Retry struct {
	Name     string // the listener, in log lines
	Log      zerolog.Logger
	Observer Observer
	// Now and Sleep are the clock; nil means the real one. Sleep returns
	// false when stop closed before d passed.
	Now   func() time.Time
	Sleep func(d time.Duration, stop <-chan struct{}) bool

	delay time.Duration
	log   Throttle
}

// Failed handles err from Accept: false means the listener is closed and the
// loop should end; true means the loop should Accept again, after Failed
// has waited out the back-off (cut short, with false, when stop closes).
func (r *Retry) Failed(err error, stop <-chan struct{}) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	r.delay = NextDelay(r.delay)
	if r.Observer != nil {
		r.Observer.AcceptFailed()
	}
	if ok, suppressed := r.log.Allow(r.now()); ok {
		r.Log.Warn().Err(err).Str("listener", r.Name).Dur("retry_in", r.delay).Int("failed_since_last_line", suppressed).
			Msg("accept failed; retrying (out of file descriptors? see the process limit)")
	}
	sleep := r.Sleep
	if sleep == nil {
		sleep = sleepOrStop
	}
	return sleep(r.delay, stop)
}

// Accepted ends a streak of failures: the next failure waits retryDelayMin.
func (r *Retry) Accepted() { r.delay = 0 }

func (r *Retry) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

// NextDelay is the wait after a failure when the last wait was d (0: none
// yet): retryDelayMin, then doubled up to retryDelayMax.
func NextDelay(d time.Duration) time.Duration {
	if d <= 0 {
		return retryDelayMin
	}
	return min(2*d, retryDelayMax)
}

func sleepOrStop(d time.Duration, stop <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}

// Throttle lets a repeated log line through once per logEvery, counting the
// ones it held back. The zero value is ready; it is not safe for concurrent
// use on its own.
type Throttle struct {
	last       time.Time
	suppressed int
}

// Allow reports whether a line may be logged at now, and how many were held
// back since the last one that was.
func (t *Throttle) Allow(now time.Time) (ok bool, suppressed int) {
	if !t.last.IsZero() && now.Sub(t.last) < logEvery {
		t.suppressed++
		return false, 0
	}
	suppressed, t.last, t.suppressed = t.suppressed, now, 0
	return true, suppressed
}

// Config is what Guard needs.
type Config struct {
	Name           string // "public", "admin": log lines
	ConnectionsMax int    // connections open at once; more are closed at accept
	Log            zerolog.Logger
	Observer       Observer // nil: none
}

// Guard wraps l: Accept retries every error but a closed listener (Retry)
// and closes connections over cfg.ConnectionsMax. Closing the guard closes
// l and ends an Accept waiting in its back-off.
func Guard(l net.Listener, cfg Config) (net.Listener, error) {
	if cfg.ConnectionsMax < 1 {
		return nil, errors.New("listener: connections maximum must be positive")
	}
	g := &guarded{Listener: l, cfg: cfg, closed: make(chan struct{})}
	g.retry = Retry{Name: cfg.Name, Log: cfg.Log, Observer: cfg.Observer}
	return g, nil
}

type guarded struct {
	net.Listener
	cfg       Config
	closed    chan struct{}
	closeOnce sync.Once

	acceptMu sync.Mutex // serializes Accept: retry is one loop's
	retry    Retry
	mu       sync.Mutex // guards open and refused
	open     int
	refused  Throttle
}

func (g *guarded) Accept() (net.Conn, error) {
	g.acceptMu.Lock()
	defer g.acceptMu.Unlock()
	for {
		nc, err := g.Listener.Accept()
		if err != nil {
			if g.retry.Failed(err, g.closed) {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			return nil, net.ErrClosed // closed during the back-off
		}
		if c := g.admit(nc); c != nil {
			return c, nil
		}
	}
}

// admit counts nc in, or closes it at the cap.
func (g *guarded) admit(nc net.Conn) net.Conn {
	g.retry.Accepted()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open >= g.cfg.ConnectionsMax {
		if g.cfg.Observer != nil {
			g.cfg.Observer.ConnectionRefused()
		}
		if ok, suppressed := g.refused.Allow(time.Now()); ok {
			g.cfg.Log.Warn().Str("listener", g.cfg.Name).Str("remote", nc.RemoteAddr().String()).
				Int("max", g.cfg.ConnectionsMax).Int("refused_since_last_line", suppressed).
				Msg("connection refused: at the connection maximum")
		}
		nc.Close()
		return nil
	}
	g.open++
	return &counted{Conn: nc, g: g}
}

func (g *guarded) release() {
	g.mu.Lock()
	g.open--
	g.mu.Unlock()
}

func (g *guarded) Close() error {
	g.closeOnce.Do(func() { close(g.closed) })
	return g.Listener.Close()
}

// counted is an admitted connection; its first Close frees its place.
type counted struct {
	net.Conn
	g    *guarded
	once sync.Once
}

func (c *counted) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.g.release)
	return err
}
