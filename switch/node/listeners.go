package node

// The node's two HTTP listeners, for two kinds of client:
//
//	public  phones and cardholders: the token API (/v1/, docs/api.md) and
//	        the lost-phone page (/lost/). TLS with public_tls_cert; plain
//	        HTTP only on loopback (switchd -dev), refused elsewhere.
//	admin   operators: /healthz, /readyz, /metrics, /admin/rotate and, when
//	        admin_pprof is on, /debug/pprof/. Loopback by default; with
//	        admin_token_file every request needs "Authorization: Bearer
//	        TOKEN", and off loopback the file is required.
//
// Neither serves the other's routes (they answer 404), so a firewall rule
// or a proxy in front of one cannot leak the other. Both are bounded the
// same way (HTTPLimits, switch/listener.Guard).

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/tapswitch/tapswitch/switch/listener"
	"github.com/tapswitch/tapswitch/switch/metrics"
)

const (
	// adminTokenBytesMin: a shorter token could be guessed.
	adminTokenBytesMin = 32
	// adminTokenFileBytesMax bounds what is read of the token file.
	adminTokenFileBytesMax = 4096
	// requestBodyBytesMax bounds any request body on either listener; the
	// token service bounds its own tighter.
	requestBodyBytesMax = 64 << 10
)

// loadAdminToken reads the admin token file: mode 0600 or stricter (like an
// SSH key, a token others can read is no secret), at least
// adminTokenBytesMin characters after trimming white space. It returns the
// token's SHA-256, which is what requests are compared against.
func loadAdminToken(path string) ([32]byte, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return [32]byte{}, fmt.Errorf("admin_token_file: %w; create one with: tapctl keys init-admin-token %s", err, path)
	}
	if err != nil {
		return [32]byte{}, fmt.Errorf("admin_token_file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return [32]byte{}, fmt.Errorf("admin_token_file %s has mode %v: group and others must have no access (chmod 600)", path, fi.Mode().Perm())
	}
	if fi.Size() > adminTokenFileBytesMax {
		return [32]byte{}, fmt.Errorf("admin_token_file %s is over %d bytes", path, adminTokenFileBytesMax)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return [32]byte{}, fmt.Errorf("admin_token_file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if len(token) < adminTokenBytesMin {
		return [32]byte{}, fmt.Errorf("admin_token_file %s holds %d characters, want at least %d (e.g. openssl rand -hex 32)",
			path, len(token), adminTokenBytesMin)
	}
	return sha256.Sum256([]byte(token)), nil
}

// adminTokenRandomBytes is the randomness of a token CreateAdminTokenFile
// writes: 32 bytes, 64 hex characters.
const adminTokenRandomBytes = 32

// CreateAdminTokenFile writes a new random admin token to path, mode 0600,
// for admin_token_file and tapctl's -token-file. It never replaces a file:
// the operators' tools hold its token.
func CreateAdminTokenFile(path string) error {
	token := make([]byte, adminTokenRandomBytes)
	rand.Read(token) // crypto/rand.Read never fails; it crashes the program instead
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	_, err = f.WriteString(hex.EncodeToString(token) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("admin token %s: %w", path, err)
	}
	return nil
}

// requireToken answers 401 to a request without the admin bearer token.
// Both sides are hashed before the constant-time comparison, so neither the
// token's length nor its bytes show in the time taken.
func (n *Node) requireToken(want [32]byte, h http.Handler) http.Handler {
	var mu sync.Mutex
	var throttle listener.Throttle
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		given, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(given))
		if ok && subtle.ConstantTimeCompare(sum[:], want[:]) == 1 {
			h.ServeHTTP(w, r)
			return
		}
		mu.Lock()
		logIt, held := throttle.Allow(time.Now())
		mu.Unlock()
		if logIt {
			n.log.Warn().Str("remote", r.RemoteAddr).Bool("token_sent", ok).Int("refused_since_last_line", held).
				Msg("admin request refused: no valid bearer token")
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="tapswitch admin"`)
		http.Error(w, "admin: this listener needs the bearer token of admin_token_file (tapctl -admin-token-file)", http.StatusUnauthorized)
	})
}

// publicHandler serves the token API and the lost-phone page, nothing else.
func (n *Node) publicHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/", n.Tokens.Handler())      // the wallet's token API: docs/api.md
	mux.Handle("/lost/", n.Tokens.WebHandler()) // the lost-phone page
	return mux
}

// loadListenerSecrets reads the admin token and the public certificate,
// before anything is opened: a bad file stops the start at once.
func (n *Node) loadListenerSecrets() error {
	if n.cfg.AdminTokenFile != "" {
		want, err := loadAdminToken(n.cfg.AdminTokenFile)
		if err != nil {
			return err
		}
		n.adminToken = &want
	}
	if n.cfg.PublicTLSCert != "" {
		cert, err := tls.LoadX509KeyPair(n.cfg.PublicTLSCert, n.cfg.PublicTLSKey)
		if err != nil {
			return fmt.Errorf("public TLS certificate: %w", err)
		}
		n.publicTLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return nil
}

// bindHTTP opens the public and admin listeners and builds their servers.
// On error nothing stays open.
func (n *Node) bindHTTP() (err error) {
	adminHandler := n.adminHandler()
	if n.adminToken != nil {
		adminHandler = n.requireToken(*n.adminToken, adminHandler)
	}
	defer func() {
		if err != nil && n.publicLn != nil {
			n.publicLn.Close()
		}
	}()
	if n.publicLn, err = n.listenHTTP(metrics.ListenerPublic, n.cfg.Public, n.cfg.PublicHTTP); err != nil {
		return err
	}
	if n.publicTLS != nil {
		n.publicLn = tls.NewListener(n.publicLn, n.publicTLS)
	}
	if n.adminLn, err = n.listenHTTP(metrics.ListenerAdmin, n.cfg.Admin, n.cfg.AdminHTTP); err != nil {
		return err
	}
	n.public = n.httpServer(metrics.ListenerPublic, n.publicHandler(), n.cfg.PublicHTTP)
	n.admin = n.httpServer(metrics.ListenerAdmin, adminHandler, n.cfg.AdminHTTP)
	return nil
}

// listenHTTP binds addr behind a Guard with the listener's connection cap.
func (n *Node) listenHTTP(name, addr string, lim HTTPLimits) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s listener: %w", name, err)
	}
	return listener.Guard(l, listener.Config{Name: name, ConnectionsMax: lim.ConnectionsMax,
		Log: n.log, Observer: n.metrics.Listener(name)})
}

// httpServer is an http.Server with every bound of lim; what net/http
// itself logs (a TLS handshake that failed, say) goes to the node's log.
func (n *Node) httpServer(name string, h http.Handler, lim HTTPLimits) *http.Server {
	return &http.Server{
		Handler:           http.MaxBytesHandler(h, requestBodyBytesMax),
		ReadHeaderTimeout: lim.ReadHeaderTimeout, ReadTimeout: lim.ReadTimeout,
		WriteTimeout: lim.WriteTimeout, IdleTimeout: lim.IdleTimeout, MaxHeaderBytes: lim.HeaderBytesMax,
		ErrorLog: stdlog.New(n.log.With().Str("listener", name).Logger(), "", 0),
	}
}

// PublicURL is the base URL of the public listener: https:// with TLS.
func (n *Node) PublicURL() string {
	if n.publicTLS != nil {
		return "https://" + n.PublicAddr()
	}
	return "http://" + n.PublicAddr()
}

// PublicAddr is the bound public listener address.
func (n *Node) PublicAddr() string { return n.publicLn.Addr().String() }

// AdminAddr is the bound admin listener address.
func (n *Node) AdminAddr() string { return n.adminLn.Addr().String() }
