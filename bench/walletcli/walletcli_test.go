package walletcli

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/switch/tokensvc/tokensvctest"
	"github.com/tapswitch/tapswitch/switch/vault"
)

// run runs the wallet CLI and returns its exit code and output.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := run(t, args...)
	if code != 0 {
		t.Fatalf("wallet %v: exit %d\n%s%s", args, code, out, errOut)
	}
	return out
}

func wantFail(t *testing.T, exit int, contains string, args ...string) string {
	t.Helper()
	code, out, errOut := run(t, args...)
	if code != exit || !strings.Contains(errOut, contains) {
		t.Fatalf("wallet %v: exit %d, stderr %q; want exit %d and %q (stdout %q)", args, code, errOut, exit, contains, out)
	}
	return errOut
}

// TestFourStepsWithTheCLI walks the binding as a user does, against the
// token service over HTTP and the issuer over TCP.
func TestFourStepsWithTheCLI(t *testing.T) {
	w := tokensvctest.Start(t)
	file := filepath.Join(t.TempDir(), "phone.json")
	data := filepath.Dir(w.Outbox)
	card := w.Cards[tokensvctest.CardGood]

	wantFail(t, 1, "run 'wallet login' first", "add-card", "-wallet", file, "-pan", card.PAN.Clear(), "-expiry", card.Expiry, "-cvn2", "123")
	out := mustRun(t, "login", "-wallet", file, "-api", w.URL, "-login", "ann", "-password", "secret password", "-create")
	if !strings.Contains(out, "account ann created") || !strings.Contains(out, "logged in as ann on device PHONE-") {
		t.Fatalf("login said %q", out)
	}
	out = mustRun(t, "add-card", "-wallet", file, "-pan", card.PAN.Clear(), "-expiry", card.Expiry, "-cvn2", card.CVN2().Clear())
	if !strings.Contains(out, "ICBC approved card "+card.PAN.String()) || !strings.Contains(out, "cardholder's phone "+card.Phone.Masked()) {
		t.Fatalf("add-card said %q", out)
	}
	code := strings.TrimSpace(mustRun(t, "dev-code", "-wallet", file, "-data", data))
	if len(code) != 6 {
		t.Fatalf("dev-code printed %q", code)
	}
	out = mustRun(t, "confirm", "-wallet", file, "-code", code)
	label := "card-" + card.PAN.Clear()[len(card.PAN.Clear())-4:]
	if !strings.Contains(out, fmt.Sprintf("card %q added", label)) {
		t.Fatalf("confirm said %q", out)
	}

	f, err := wallet.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Cards) != 1 || f.Pending != nil || f.Session == "" || f.Login != "ann" || f.API != w.URL {
		t.Fatalf("wallet file %+v", f)
	}
	c := f.Cards[0]
	if c.Label != label || c.DeviceID != f.DeviceID || c.ATC != 0 || c.Key != hex.EncodeToString(w.Keys.TokenKey(c.Token)) ||
		c.Issuer != "ICBC" || len(c.TokenExpiry) != 4 {
		t.Fatalf("card in the wallet %+v", c)
	}
	if tok, err := w.Vault.Get(c.Token); err != nil || tok.Status != vault.StatusActive || tok.DeviceID != f.DeviceID {
		t.Fatalf("vault %+v, %v", tok, err)
	}
	info, err := os.Stat(file)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("wallet file mode %v, %v", info.Mode(), err)
	}
	raw, _ := os.ReadFile(file)
	if strings.Contains(string(raw), card.PAN.Clear()) {
		t.Fatal("the wallet file holds the card number")
	}

	out = mustRun(t, "tokens", "-wallet", file)
	if !strings.Contains(out, label) || !strings.Contains(out, card.PAN.String()) || !strings.Contains(out, "active") {
		t.Fatalf("tokens said %q", out)
	}
	// A second card gets its own label; the first stays.
	card2 := w.Cards[tokensvctest.CardGood2]
	mustRun(t, "add-card", "-wallet", file, "-pan", card2.PAN.Clear(), "-expiry", card2.Expiry, "-cvn2", card2.CVN2().Clear(), "-label", "credit")
	mustRun(t, "confirm", "-wallet", file, "-code", strings.TrimSpace(mustRun(t, "dev-code", "-wallet", file, "-data", data)))
	if f, _ := wallet.Load(file); len(f.Cards) != 2 || f.Cards[1].Label != "credit" {
		t.Fatalf("after the second card: %+v", f.Cards)
	}
}

func TestCLIBadInput(t *testing.T) {
	w := tokensvctest.Start(t)
	file := filepath.Join(t.TempDir(), "phone.json")
	data := filepath.Dir(w.Outbox)
	card := w.Cards[tokensvctest.CardGood]

	wantFail(t, 2, "unknown command", "frobnicate")
	wantFail(t, 2, "-login and -password are required", "login", "-wallet", file)
	mustRun(t, "login", "-wallet", file, "-api", w.URL, "-login", "ben", "-password", "secret password", "-create", "-device", "PHONE-BEN")
	wantFail(t, 1, "wrong login or password [401 wrong_credentials]", "login", "-wallet", file, "-api", w.URL, "-login", "ben", "-password", "nope nope")
	wantFail(t, 1, "Luhn", "add-card", "-wallet", file, "-pan", "6222028000000019", "-expiry", card.Expiry, "-cvn2", "123")
	wrong := fmt.Sprintf("%03d", (atoi(card.CVN2().Clear())+1)%1000)
	errOut := wantFail(t, 1, "could not be verified: check its number, expiry and CVN2 [402 card_declined]", "add-card", "-wallet", file, "-pan", card.PAN.Clear(), "-expiry", card.Expiry, "-cvn2", wrong)
	if strings.Contains(errOut, card.PAN.Clear()) {
		t.Fatal("the error shows the card number")
	}
	wantFail(t, 1, "no card is waiting", "confirm", "-wallet", file, "-code", "123456")

	mustRun(t, "add-card", "-wallet", file, "-pan", card.PAN.Clear(), "-expiry", card.Expiry, "-cvn2", card.CVN2().Clear())
	code := strings.TrimSpace(mustRun(t, "dev-code", "-wallet", file, "-data", data))
	wrongCode := fmt.Sprintf("%06d", (atoi(code)+1)%1_000_000)
	wantFail(t, 1, "wrong code (4 attempts left)", "confirm", "-wallet", file, "-code", wrongCode)
	// The session expires; the code is still good, but the wallet must log in again.
	w.Clock.Advance(15*time.Minute + time.Second)
	wantFail(t, 1, "run 'wallet login' again", "confirm", "-wallet", file, "-code", code)
	wantFail(t, 1, "run 'wallet login' again", "tokens", "-wallet", file)
	mustRun(t, "login", "-wallet", file, "-login", "ben", "-password", "secret password") // -api kept in the wallet
	// By now the code has expired too: 410, and the pending card is dropped.
	wantFail(t, 1, "code_expired", "confirm", "-wallet", file, "-code", code)
	wantFail(t, 1, "no card is waiting", "confirm", "-wallet", file, "-code", code)
	if f, _ := wallet.Load(file); len(f.Cards) != 0 || f.DeviceID != "PHONE-BEN" {
		t.Fatalf("wallet %+v", f)
	}
}

func atoi(s string) int {
	n := 0
	fmt.Sscan(s, &n)
	return n
}

// post sends a JSON body to the token service as another client of the
// account (a browser) and returns the status and decoded answer.
func post(t *testing.T, base, path, session string, body any) (int, map[string]any) {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if session != "" {
		req.Header.Set("Authorization", "Bearer "+session)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

// TestCLIPhoneTurnedOff: the wallet logs in as its device, so turning the
// phone off from elsewhere logs the wallet out, and it cannot log in
// again until the phone is turned on with the password.
func TestCLIPhoneTurnedOff(t *testing.T) {
	w := tokensvctest.Start(t)
	file := filepath.Join(t.TempDir(), "phone.json")
	mustRun(t, "login", "-wallet", file, "-api", w.URL, "-login", "Cleo", "-password", "secret password", "-create", "-device", "PHONE-CLEO")
	card := w.Cards[tokensvctest.CardGood]
	mustRun(t, "add-card", "-wallet", file, "-pan", card.PAN.Clear(), "-expiry", card.Expiry, "-cvn2", card.CVN2().Clear())
	mustRun(t, "confirm", "-wallet", file, "-code", strings.TrimSpace(mustRun(t, "dev-code", "-wallet", file, "-data", filepath.Dir(w.Outbox))))
	mustRun(t, "tokens", "-wallet", file)
	if f, _ := wallet.Load(file); f.Login != "cleo" {
		t.Fatalf("wallet login %q, want the folded cleo", f.Login)
	}
	status, sess := post(t, w.URL, "/v1/sessions", "", map[string]string{"login": "cleo", "password": "secret password"})
	if status != http.StatusCreated {
		t.Fatalf("browser login %d %v", status, sess)
	}
	browser := sess["session"].(string)
	if status, out := post(t, w.URL, "/v1/devices/PHONE-CLEO/suspend", browser, nil); status != http.StatusOK || out["sessions_ended"] != 1.0 {
		t.Fatalf("suspend %d %v", status, out)
	}
	wantFail(t, 1, "unknown_session", "tokens", "-wallet", file)
	wantFail(t, 1, "device_off", "login", "-wallet", file, "-login", "cleo", "-password", "secret password")
	if status, out := post(t, w.URL, "/v1/devices/PHONE-CLEO/resume", browser, map[string]string{"password": "secret password"}); status != http.StatusOK {
		t.Fatalf("resume %d %v", status, out)
	}
	mustRun(t, "login", "-wallet", file, "-login", "cleo", "-password", "secret password")
	mustRun(t, "tokens", "-wallet", file)
}
