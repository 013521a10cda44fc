package node

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/switch/acquirer"
)

// startNode opens and starts a node on free loopback ports with its
// configuration changed by mutate first; its issuer links point at a port
// nothing listens on (these tests need no issuer). It fails the test if
// Open fails.
func startNode(t *testing.T, mutate func(*Config)) *Node {
	t.Helper()
	n, err := openNode(t, mutate)
	if err != nil {
		t.Fatal(err)
	}
	n.Start()
	t.Cleanup(func() { n.Shutdown() })
	return n
}

func openNode(t *testing.T, mutate func(*Config)) (*Node, error) {
	t.Helper()
	cfg, err := LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	defaults := cfg
	dir := t.TempDir()
	cfg.Data = filepath.Join(dir, "data")
	cfg.KeyFile, cfg.KeyEnv = filepath.Join(dir, "vault.keys"), ""
	writeKeys(t, cfg.KeyFile, 1)
	cfg.Listen, cfg.Public, cfg.Admin = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.AdminPprof = true
	if mutate != nil {
		mutate(&cfg)
	}
	list, _, err := cfg.Network()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AcquirerKeysFile == "" || cfg.AcquirerKeysFile == defaults.AcquirerKeysFile {
		reg, err := cfg.Registry(list)
		if err != nil {
			t.Fatal(err)
		}
		cfg.AcquirerKeysFile = filepath.Join(dir, "acquirer.keys")
		if err := acquirer.GenerateKeysFile(cfg.AcquirerKeysFile, reg.Acquirers()); err != nil {
			t.Fatal(err)
		}
	}
	nowhere := deadAddr(t)
	override := make(map[string]string, len(list))
	for _, is := range list {
		override[is.ID] = nowhere
	}
	return Open(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), override)
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func status(t *testing.T, c *http.Client, method, url, token string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestRoutesStayOnTheirListener: the operator endpoints are not found on
// the public listener, and the token API and lost-phone page are not found
// on the admin listener; each is found on its own.
func TestRoutesStayOnTheirListener(t *testing.T) {
	n := startNode(t, nil)
	c := &http.Client{Timeout: 10 * time.Second}
	public, admin := "http://"+n.PublicAddr(), "http://"+n.AdminAddr()
	for _, r := range []struct{ method, path string }{
		{"GET", "/healthz"}, {"GET", "/readyz"}, {"GET", "/metrics"}, {"GET", "/debug/pprof/"},
		{"GET", "/debug/pprof/trace"}, {"POST", "/admin/rotate"}, {"GET", "/admin/rotate"},
	} {
		if got := status(t, c, r.method, public+r.path, ""); got != http.StatusNotFound {
			t.Errorf("public listener: %s %s answered %d, want 404", r.method, r.path, got)
		}
	}
	for _, r := range []struct{ method, path string }{
		{"POST", "/v1/accounts"}, {"POST", "/v1/sessions"}, {"GET", "/v1/devices"},
		{"GET", "/lost/"}, {"POST", "/lost/login"}, {"GET", "/lost/devices"},
	} {
		if got := status(t, c, r.method, admin+r.path, ""); got != http.StatusNotFound {
			t.Errorf("admin listener: %s %s answered %d, want 404", r.method, r.path, got)
		}
	}
	// Each is served where it belongs.
	for url, want := range map[string]int{
		admin + "/healthz": 200, admin + "/metrics": 200, admin + "/debug/pprof/": 200, admin + "/admin/rotate": 200,
		public + "/lost/": 200, public + "/v1/devices": 401,
	} {
		if got := status(t, c, "GET", url, ""); got != want {
			t.Errorf("GET %s answered %d, want %d", url, got, want)
		}
	}
}

func writeToken(t *testing.T, dir, token string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(path, []byte(token+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return path
}

// TestAdminOffLoopbackNeedsToken: an admin listener on every interface is
// refused at start without a token file, with a token file others can read
// or a short token; with a good one, requests without the token or with
// another are 401 and the right token is let in.
func TestAdminOffLoopbackNeedsToken(t *testing.T) {
	dir := t.TempDir()
	const token = "0123456789abcdef0123456789abcdef-operator"
	for name, c := range map[string]struct {
		file string
		want string
	}{
		"no token file":      {"", "admin_token_file"},
		"readable by others": {writeToken(t, t.TempDir(), token, 0o644), "chmod 600"},
		"short token":        {writeToken(t, t.TempDir(), "short", 0o600), "at least 32"},
		"missing file":       {filepath.Join(dir, "none"), "no such file"},
	} {
		_, err := openNode(t, func(cfg *Config) { cfg.Admin, cfg.AdminTokenFile = "0.0.0.0:0", c.file })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Open gave %v, want an error saying %q", name, err, c.want)
		}
	}
	n := startNode(t, func(cfg *Config) { cfg.Admin, cfg.AdminTokenFile = "0.0.0.0:0", writeToken(t, dir, token, 0o600) })
	_, port, _ := net.SplitHostPort(n.AdminAddr())
	admin := "http://127.0.0.1:" + port
	c := &http.Client{Timeout: 10 * time.Second}
	for _, path := range []string{"/healthz", "/metrics", "/admin/rotate", "/debug/pprof/"} {
		for _, given := range []string{"", "wrong-token-of-the-same-length-000000000", token + "x", token[:32]} {
			if got := status(t, c, "GET", admin+path, given); got != http.StatusUnauthorized {
				t.Errorf("GET %s with token %q: %d, want 401", path, given, got)
			}
		}
		if got := status(t, c, "GET", admin+path, token); got != http.StatusOK {
			t.Errorf("GET %s with the token: %d, want 200", path, got)
		}
	}
	if got := status(t, c, "POST", admin+"/admin/rotate", ""); got != http.StatusUnauthorized {
		t.Errorf("POST /admin/rotate without the token: %d", got)
	}
	// Loopback needs no token, but one configured is enforced there too.
	n2 := startNode(t, func(cfg *Config) { cfg.AdminTokenFile = writeToken(t, t.TempDir(), token, 0o600) })
	if got := status(t, c, "GET", "http://"+n2.AdminAddr()+"/healthz", ""); got != http.StatusUnauthorized {
		t.Errorf("loopback admin with a token file, no token sent: %d, want 401", got)
	}
}

// TestPublicOffLoopbackNeedsTLS: a public listener on every interface
// without a certificate is refused at start, as is a certificate without
// its key.
func TestPublicOffLoopbackNeedsTLS(t *testing.T) {
	_, err := openNode(t, func(cfg *Config) { cfg.Public = "0.0.0.0:0" })
	if err == nil || !strings.Contains(err.Error(), "public_tls_cert") {
		t.Fatalf("public off loopback without TLS: %v", err)
	}
	_, err = openNode(t, func(cfg *Config) { cfg.PublicTLSCert = "cert.pem" })
	if err == nil || !strings.Contains(err.Error(), "go together") {
		t.Fatalf("certificate without key: %v", err)
	}
}

// testCert writes a self-signed certificate for 127.0.0.1 and its key, and
// returns their paths and a pool that trusts it.
func testCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tapswitch test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestPublicTLSSecureCookie starts the public listener with a certificate
// on every interface (allowed with TLS), creates an account over TLS and
// logs in to the lost-phone page: the session cookie is Secure. Plain HTTP
// to the same port gets no page.
func TestPublicTLSSecureCookie(t *testing.T) {
	certFile, keyFile, pool := testCert(t)
	n := startNode(t, func(cfg *Config) {
		cfg.Public, cfg.PublicTLSCert, cfg.PublicTLSKey = "0.0.0.0:0", certFile, keyFile
	})
	_, port, _ := net.SplitHostPort(n.PublicAddr())
	base := "https://127.0.0.1:" + port
	if !strings.HasPrefix(n.PublicURL(), "https://") {
		t.Fatalf("PublicURL %s", n.PublicURL())
	}
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Post(base+"/v1/accounts", "application/json",
		strings.NewReader(`{"login":"alice","password":"correct horse battery"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		t.Fatalf("create account over TLS: %d", resp.StatusCode)
	}
	resp, err = c.PostForm(base+"/lost/login", url.Values{"login": {"alice"}, "password": {"correct horse battery"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if resp.StatusCode != http.StatusSeeOther || len(cookies) != 1 || cookies[0].Value == "" {
		t.Fatalf("log-in over TLS: %d, cookies %v", resp.StatusCode, cookies)
	}
	if !cookies[0].Secure || !cookies[0].HttpOnly {
		t.Fatalf("session cookie over TLS: %q, want Secure and HttpOnly", resp.Header.Get("Set-Cookie"))
	}
	plain, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://127.0.0.1:" + port + "/lost/")
	if err == nil {
		plain.Body.Close()
		if plain.StatusCode == http.StatusOK {
			t.Fatal("the TLS listener served the page over plain HTTP")
		}
	}
}

// rawConn dials addr and returns the connection and a reader on it.
func rawConn(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc, bufio.NewReader(nc)
}

// getHealthz sends GET /healthz on a kept-alive connection and reads the
// answer.
func getHealthz(t *testing.T, nc net.Conn, rd *bufio.Reader) int {
	t.Helper()
	if _, err := io.WriteString(nc, "GET /healthz HTTP/1.1\r\nHost: switch\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// closedWithin reports whether the server closes nc within d.
func closedWithin(nc net.Conn, rd *bufio.Reader, d time.Duration) bool {
	nc.SetReadDeadline(time.Now().Add(d))
	_, err := rd.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// TestIdleKeepAliveClosed: a client that keeps its connection open after
// an answer and sends nothing more is cut at admin_http.idle_timeout.
func TestIdleKeepAliveClosed(t *testing.T) {
	n := startNode(t, func(cfg *Config) { cfg.AdminHTTP.IdleTimeout = 300 * time.Millisecond })
	nc, rd := rawConn(t, n.AdminAddr())
	if got := getHealthz(t, nc, rd); got != http.StatusOK {
		t.Fatalf("healthz %d", got)
	}
	start := time.Now()
	if !closedWithin(nc, rd, 5*time.Second) {
		t.Fatal("an idle keep-alive connection was still open after 5s")
	}
	t.Logf("idle connection closed after %v", time.Since(start))
}

// TestSlowBodyCut: a client that sends its headers and then its body a
// byte at a time (slowloris) is cut at public_http.read_timeout instead of
// holding the connection and a handler for as long as it likes.
func TestSlowBodyCut(t *testing.T) {
	n := startNode(t, func(cfg *Config) {
		cfg.PublicHTTP.ReadHeaderTimeout, cfg.PublicHTTP.ReadTimeout = 300*time.Millisecond, 600*time.Millisecond
	})
	nc, rd := rawConn(t, n.PublicAddr())
	const bodyBytes = 60
	io.WriteString(nc, "POST /v1/sessions HTTP/1.1\r\nHost: switch\r\nContent-Type: application/json\r\nContent-Length: 60\r\n\r\n")
	start := time.Now()
	cut := make(chan time.Duration, 1)
	go func() {
		nc.SetReadDeadline(time.Now().Add(20 * time.Second))
		io.Copy(io.Discard, rd) // the answer, if any, then the close
		cut <- time.Since(start)
	}()
	for i := 0; i < bodyBytes; i++ {
		select {
		case took := <-cut:
			t.Logf("cut after %v and %d of %d body bytes", took, i, bodyBytes)
			if took > 5*time.Second {
				t.Fatalf("cut only after %v", took)
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := nc.Write([]byte{' '}); err != nil {
			t.Logf("write failed after %v: %v", time.Since(start), err)
			return
		}
	}
	t.Fatalf("the whole slow body (%d bytes over %v) was read without a cut", bodyBytes, time.Since(start))
}

// TestConnectionCap: with admin_http.connections_max 2, a third connection
// is closed at once while the two admitted ones keep being answered; when
// one of them closes, a new connection is served.
func TestConnectionCap(t *testing.T) {
	n := startNode(t, func(cfg *Config) { cfg.AdminHTTP.ConnectionsMax = 2 })
	a, ra := rawConn(t, n.AdminAddr())
	b, rb := rawConn(t, n.AdminAddr())
	if getHealthz(t, a, ra) != 200 || getHealthz(t, b, rb) != 200 {
		t.Fatal("healthz on the admitted connections")
	}
	third, r3 := rawConn(t, n.AdminAddr())
	io.WriteString(third, "GET /healthz HTTP/1.1\r\nHost: switch\r\n\r\n")
	if !closedWithin(third, r3, 5*time.Second) {
		t.Fatal("a connection over the cap was left open")
	}
	if getHealthz(t, a, ra) != 200 {
		t.Fatal("an admitted connection stopped being served at the cap")
	}
	b.Close()
	time.Sleep(50 * time.Millisecond) // the server sees the close
	c, rc := rawConn(t, n.AdminAddr())
	if got := getHealthz(t, c, rc); got != 200 {
		t.Fatalf("healthz on a connection after one closed: %d", got)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8584": true, "127.0.0.2:1": true, "[::1]:8584": true, "localhost:8584": true,
		"0.0.0.0:8584": false, ":8584": false, "[::]:8584": false, "10.0.0.5:8584": false,
		"switch.example:8584": false, "127.0.0.1": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v", addr, got)
		}
	}
}

// TestHTTPLimitsConfig: a config file written before the HTTP listeners had
// bounds gets the defaults; a bound of 0 is refused.
func TestHTTPLimitsConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switch.yaml")
	doc := "node_id: n\nadmin: 127.0.0.1:8584\npublic_http:\n  idle_timeout: 7s\n"
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	want := PublicHTTPDefault
	want.IdleTimeout = 7 * time.Second
	if c.PublicHTTP != want || c.AdminHTTP != AdminHTTPDefault || c.Public != PublicDefault {
		t.Fatalf("public_http %+v admin_http %+v public %q", c.PublicHTTP, c.AdminHTTP, c.Public)
	}
	c.AdminHTTP.ConnectionsMax = 0
	if err := c.validateListeners(); err == nil || !strings.Contains(err.Error(), "admin_http.connections_max") {
		t.Fatalf("connections_max 0: %v", err)
	}
	c.AdminHTTP = AdminHTTPDefault
	c.PublicHTTP.WriteTimeout = 0
	if err := c.validateListeners(); err == nil || !strings.Contains(err.Error(), "public_http.write_timeout") {
		t.Fatalf("write_timeout 0: %v", err)
	}
}

// TestDataDirTightened: a data directory left open to other users (by an
// earlier switch, or by hand) is made 0700 at start.
func TestDataDirTightened(t *testing.T) {
	var data string
	startNode(t, func(cfg *Config) {
		data = cfg.Data
		if err := os.MkdirAll(data, 0o755); err != nil {
			t.Fatal(err)
		}
		os.Chmod(data, 0o755)
	})
	fi, err := os.Stat(data)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("data directory mode %v after start, want 0700", fi.Mode().Perm())
	}
}

// TestAdminTokenFileCreate: a missing admin_token_file is reported with the
// command that makes it; the file that command writes is accepted, and is
// never replaced.
func TestAdminTokenFileCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin.token")
	if _, err := loadAdminToken(path); err == nil || !strings.HasSuffix(err.Error(), "; create one with: tapctl keys init-admin-token "+path) {
		t.Fatalf("missing file: %v", err)
	}
	if err := CreateAdminTokenFile(path); err != nil {
		t.Fatal(err)
	}
	first, err := loadAdminToken(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := CreateAdminTokenFile(path); err == nil {
		t.Fatal("an existing token file was replaced")
	}
	if again, _ := loadAdminToken(path); again != first {
		t.Fatal("the token changed")
	}
}
