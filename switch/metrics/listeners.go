package metrics

import "github.com/prometheus/client_golang/prometheus"

// The switch's listeners, as the listener label names them.
const (
	ListenerTerminal = "terminal" // POS terminals, ISO 8583 over TCP
	ListenerPublic   = "public"   // the token API and the lost-phone page
	ListenerAdmin    = "admin"    // the operator endpoints
)

var listenerNames = []string{ListenerTerminal, ListenerPublic, ListenerAdmin}

// Listener is the metrics of one listener (switch/listener.Observer),
// resolved when the Set is made. Its methods do nothing on nil.
type Listener struct {
	acceptErrors prometheus.Counter
	refused      prometheus.Counter
}

// newListeners resolves every listener's series and registers them.
func newListeners(reg *prometheus.Registry) map[string]*Listener {
	acceptErrors := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "accept_errors_total",
		Help: "Failed accepts (out of file descriptors, aborted connections) the listener backed off from and retried, by listener.",
	}, []string{"listener"})
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "http_connections_refused_total",
		Help: "HTTP connections closed on accept because the listener was at its connection maximum, by listener (public, admin).",
	}, []string{"listener"})
	reg.MustRegister(acceptErrors, refused)
	out := make(map[string]*Listener, len(listenerNames))
	for _, name := range listenerNames {
		l := &Listener{acceptErrors: acceptErrors.WithLabelValues(name)}
		if name != ListenerTerminal { // the terminal server counts its own refusals
			l.refused = refused.WithLabelValues(name)
		}
		out[name] = l
	}
	return out
}

// Listener returns the metrics of the listener called name (one of the
// Listener* constants); nil for another name or a nil Set.
func (m *Set) Listener(name string) *Listener {
	if m == nil {
		return nil
	}
	return m.listeners[name]
}

// AcceptFailed counts an accept that failed and is being retried.
func (l *Listener) AcceptFailed() {
	if l != nil {
		l.acceptErrors.Inc()
	}
}

// ConnectionRefused counts an HTTP connection closed at the cap.
func (l *Listener) ConnectionRefused() {
	if l != nil && l.refused != nil {
		l.refused.Inc()
	}
}
