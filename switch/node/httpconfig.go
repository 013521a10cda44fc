package node

import (
	"fmt"
	"net"
	"time"
)

// HTTPLimits bounds one HTTP listener, so that no client, slow or idle or
// many, can hold it: a connection that sends its headers or its body too
// slowly, reads its answer too slowly or sits idle between requests is cut
// at the time-out, and connections over ConnectionsMax are closed at accept
// (switch/listener.Guard).
type HTTPLimits struct {
	ConnectionsMax    int           `yaml:"connections_max"`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout covers the headers and the body of one request.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout runs from the end of the request headers to the end of
	// the answer: it must cover the slowest handler.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout closes a keep-alive connection that sends no new request.
	IdleTimeout    time.Duration `yaml:"idle_timeout"`
	HeaderBytesMax int           `yaml:"header_bytes_max"`
}

// Defaults of public_http and admin_http for a config file without them.
var (
	// The slowest public handler is a card verification waiting for the
	// issuer (issuer_links.request_timeout) and a password hash queue.
	PublicHTTPDefault = HTTPLimits{ConnectionsMax: 1024, ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute, HeaderBytesMax: 16 << 10}
	// The slowest admin handler is a CPU profile: /debug/pprof/profile
	// refuses a duration over write_timeout (the default takes 30 s).
	AdminHTTPDefault = HTTPLimits{ConnectionsMax: 64, ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 10 * time.Second, WriteTimeout: 2 * time.Minute, IdleTimeout: time.Minute, HeaderBytesMax: 16 << 10}
)

// PublicDefault is the public listener of a config file without one.
const PublicDefault = "127.0.0.1:8585"

// Bounds of HTTPLimits.
const (
	httpConnectionsMax = 1 << 16
	httpHeaderBytesMin = 1 << 10
	httpHeaderBytesMax = 1 << 20
	httpTimeoutMax     = time.Hour
)

func (l HTTPLimits) validate(name string) error {
	switch {
	case l.ConnectionsMax < 1 || l.ConnectionsMax > httpConnectionsMax:
		return fmt.Errorf("config: %s.connections_max %d outside 1..%d", name, l.ConnectionsMax, httpConnectionsMax)
	case l.HeaderBytesMax < httpHeaderBytesMin || l.HeaderBytesMax > httpHeaderBytesMax:
		return fmt.Errorf("config: %s.header_bytes_max %d outside %d..%d", name, l.HeaderBytesMax, httpHeaderBytesMin, httpHeaderBytesMax)
	}
	for field, d := range map[string]time.Duration{"read_header_timeout": l.ReadHeaderTimeout, "read_timeout": l.ReadTimeout,
		"write_timeout": l.WriteTimeout, "idle_timeout": l.IdleTimeout} {
		if d <= 0 || d > httpTimeoutMax {
			return fmt.Errorf("config: %s.%s %v outside (0, %v]", name, field, d, httpTimeoutMax)
		}
	}
	if l.ReadHeaderTimeout > l.ReadTimeout {
		return fmt.Errorf("config: %s.read_header_timeout %v is over read_timeout %v", name, l.ReadHeaderTimeout, l.ReadTimeout)
	}
	return nil
}

// validateListeners refuses listeners that would let the wrong people in:
// a public listener off loopback without TLS (phones would send passwords,
// card numbers and sessions in the clear), an admin listener off loopback
// without a token (anyone who reaches it could rotate keys and read
// profiles).
func (c Config) validateListeners() error {
	if (c.PublicTLSCert == "") != (c.PublicTLSKey == "") {
		return fmt.Errorf("config: public_tls_cert and public_tls_key go together (one is set, the other empty)")
	}
	if c.PublicTLSCert == "" && !IsLoopback(c.Public) {
		return fmt.Errorf("config: public listener %s is not on loopback and has no TLS: set public_tls_cert and "+
			"public_tls_key (phones send passwords and card numbers to it), or bind it to 127.0.0.1", c.Public)
	}
	if c.AdminTokenFile == "" && !IsLoopback(c.Admin) {
		return fmt.Errorf("config: admin listener %s is not on loopback and has no admin_token_file: "+
			"set one (a file of mode 0600 holding a random token of at least %d characters), or bind it to 127.0.0.1",
			c.Admin, adminTokenBytesMin)
	}
	if err := c.PublicHTTP.validate("public_http"); err != nil {
		return err
	}
	return c.AdminHTTP.validate("admin_http")
}

// IsLoopback reports whether addr (HOST:PORT) can only be reached from this
// machine: its host is a loopback IP or "localhost". An empty host (every
// interface) or any other name is not.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
