package tokensvc_test

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/tokensvc"
	"github.com/tapswitch/tapswitch/switch/tokensvc/tokensvctest"
)

// TestStolenCardDetailsReachOnlyTheCardholder is issue 9's finding 1 as
// filed: mallory, a new account, adds a card alice has bound, with its
// number, expiry and CVN2. The code goes to the cardholder's phone that the
// issuer named, never to mallory; her guesses run out; no token is made.
func TestStolenCardDetailsReachOnlyTheCardholder(t *testing.T) {
	w := tokensvctest.Start(t)
	card := w.Cards[tokensvctest.CardGood]
	alice := newUser(t, w, "alice")
	aliceToken := alice.bind("ALICE-PHONE", tokensvctest.CardGood).str("token")

	mallory := newUser(t, w, "mallory")
	r := mallory.want(mallory.addCard("MALLORY-PHONE", card.PAN.Clear(), card.Expiry, card.CVN2().Clear()), 202, "")
	id := r.str("binding_id")
	if r.str("code_sent_to") != card.Phone.Masked() {
		t.Fatalf("add-card answer %s: want the code sent to %s", r.raw, card.Phone.Masked())
	}
	if strings.Contains(r.raw, card.Phone.Clear()) || strings.Contains(r.raw, card.Phone.Clear()[3:]) {
		t.Fatalf("the answer to mallory holds the cardholder's number: %s", r.raw)
	}
	// The SMS went to alice's phone, with a warning, and names no account.
	msg := w.SMS(t, id)
	if msg.ToMasked != card.Phone.Masked() || strings.Contains(msg.Text, "mallory") ||
		!strings.Contains(msg.Text, "ANOTHER wallet account") || !strings.Contains(msg.Text, card.PAN.Clear()[12:]) {
		t.Fatalf("the code SMS: %+v", msg)
	}
	code := w.Code(t, id)

	// Mallory does not have the code: five guesses and the binding is gone,
	// and then not even the right code works.
	for i := range 5 {
		guess := fmt.Sprintf("%06d", (atoi(code)+1+i)%1_000_000)
		want, wantCode := 400, "wrong_code"
		if i == 4 {
			want, wantCode = 410, "too_many_attempts"
		}
		mallory.want(mallory.do("POST", "/v1/bindings/"+id+"/confirm", map[string]string{"code": guess}), want, wantCode)
	}
	mallory.want(mallory.do("POST", "/v1/bindings/"+id+"/confirm", map[string]string{"code": code}), 410, "too_many_attempts")

	// Nothing to pay with: the vault holds alice's token only.
	tokens, err := w.Vault.TokensForPAN(card.PAN.Clear())
	if err != nil || len(tokens) != 1 || tokens[0] != aliceToken {
		t.Fatalf("tokens of the card %v, %v; want alice's alone", tokens, err)
	}
	if onDevice, err := w.Vault.TokensForDevice("MALLORY-PHONE"); err != nil || len(onDevice) != 0 {
		t.Fatalf("mallory's phone holds %v, %v", onDevice, err)
	}
	assertNothingCreated(t, w, "mallory", "MALLORY-PHONE")

	// Both trails say what happened; alice's does without mallory's name.
	aliceAudit := alice.want(alice.do("GET", "/v1/audit", nil), 200, "").raw
	if !strings.Contains(aliceAudit, `"card.bound_elsewhere"`) || strings.Contains(aliceAudit, "mallory") {
		t.Fatalf("alice's audit %s", aliceAudit)
	}
	malloryAudit := mallory.want(mallory.do("GET", "/v1/audit", nil), 200, "").raw
	if !strings.Contains(malloryAudit, "1 other wallet account") {
		t.Fatalf("mallory's audit %s", malloryAudit)
	}
	// The number is nowhere in clear but the outbox, the cardholder's phone.
	assertNoSecrets(t, w, card.Phone.Clear(), code)
	assertNotInFiles(t, w.DataDir, card.Phone.Clear())
	for _, ans := range []string{aliceAudit, malloryAudit} {
		if strings.Contains(ans, card.Phone.Clear()) {
			t.Fatal("an audit answer holds the cardholder's number")
		}
	}
}

// TestCardholderAddingTheirOwnCardGetsNoWarning: a card in no other
// account is bound with the plain code SMS.
func TestCardholderAddingTheirOwnCardGetsNoWarning(t *testing.T) {
	w := tokensvctest.Start(t)
	card := w.Cards[tokensvctest.CardGood2]
	c := newUser(t, w, "carol")
	c.bind("CAROL-1", tokensvctest.CardGood2)
	r := c.want(c.addCard("CAROL-2", card.PAN.Clear(), card.Expiry, card.CVN2().Clear()), 202, "")
	if msg := w.SMS(t, r.str("binding_id")); strings.Contains(msg.Text, "ANOTHER") || msg.ToMasked != card.Phone.Masked() {
		t.Fatalf("SMS %+v", msg)
	}
}

// TestCardTesterWithFreshAccountsIsStoppedPerCard: a thief with a stolen
// card number opens a new account, on a new device, for every CVN2 guess.
// The per-card bound stops the sixth try whatever account asks, the right
// CVN2 included, and a restart does not reset it.
func TestCardTesterWithFreshAccountsIsStoppedPerCard(t *testing.T) {
	w := tokensvctest.Start(t)
	card := w.Cards[tokensvctest.CardGood]
	wrong := func(i int) string { return fmt.Sprintf("%03d", (atoi(card.CVN2().Clear())+1+i)%1000) }
	thief := func(i int) *client { return newUser(t, w, fmt.Sprintf("thief%d", i)) }
	for i := range 5 {
		c := thief(i)
		c.want(c.addCard(fmt.Sprintf("BURNER-%d", i), card.PAN.Clear(), card.Expiry, wrong(i)), 402, "card_declined")
	}
	c := thief(5)
	r := c.want(c.addCard("BURNER-5", card.PAN.Clear(), card.Expiry, card.CVN2().Clear()), 429, "too_many_verifications")
	retry, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || retry <= 0 || retry > int((48*time.Hour).Seconds()) {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	// The issuer was asked five times, not six.
	if n := verificationsOf(w, card.IssuerID, card.PAN); n != 5 {
		t.Fatalf("the issuer got %d verifications of the card, want 5", n)
	}
	w.Restart(t)
	c = thief(6)
	c.want(c.addCard("BURNER-6", card.PAN.Clear(), card.Expiry, card.CVN2().Clear()), 429, "too_many_verifications")
	// Another card is not held up by it.
	other := w.Cards[tokensvctest.CardGood2]
	c.want(c.addCard("BURNER-6", other.PAN.Clear(), other.Expiry, other.CVN2().Clear()), 202, "")

	// Retry-After is true: a second early it is still refused, then not.
	w.Clock.Advance(time.Duration(retry-1) * time.Second)
	c = thief(7)
	c.want(c.addCard("BURNER-7", card.PAN.Clear(), card.Expiry, card.CVN2().Clear()), 429, "too_many_verifications")
	w.Clock.Advance(time.Second)
	c = thief(8)
	c.want(c.addCard("BURNER-8", card.PAN.Clear(), card.Expiry, card.CVN2().Clear()), 202, "")
}

func verificationsOf(w *tokensvctest.World, issuer string, pan iso8583.PAN) int {
	n := 0
	for _, req := range w.Fleet.Issuer(issuer).Received() {
		if req.PAN == pan && req.MTI == "0100" {
			n++
		}
	}
	return n
}

// TestCardSprayIsStoppedPerAddress: a thief spraying card numbers from one
// address, over several accounts and a new device per try, is stopped at
// the address's bound, under concurrency too; X-Forwarded-For does not
// move him to another address; a client at another address is not held up.
func TestCardSprayIsStoppedPerAddress(t *testing.T) {
	w := tokensvctest.Start(t)
	good := w.Cards[tokensvctest.CardGood]
	const accounts, triesEach = 5, 5 // 25 tries, 20 allowed
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for a := range accounts {
		c := newUser(t, w, fmt.Sprintf("spray%d", a))
		c.header = http.Header{}
		wg.Go(func() {
			for i := range triesEach {
				n := a*triesEach + i
				c.header.Set("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", n))
				// Numbers of ICBC's BIN that ICBC does not hold.
				pan := luhn(fmt.Sprintf("62220297%07d", n))
				r := c.do("POST", fmt.Sprintf("/v1/devices/SPRAY-%d/cards", n), map[string]string{"pan": pan, "expiry": good.Expiry, "cvn2": "123"})
				mu.Lock()
				counts[r.status]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if counts[402] != 20 || counts[429] != 5 {
		t.Fatalf("answers %v, want 20 x 402 and 5 x 429", counts)
	}
	// Another address: its own bound.
	other := newUser(t, w, "neighbour")
	other.hc = fromLoopback(t, "127.0.0.2")
	other.want(other.addCard("NEIGHBOUR-1", good.PAN.Clear(), good.Expiry, good.CVN2().Clear()), 202, "")
}

// fromLoopback is an HTTP client that dials from ip, another address of
// the loopback network.
func fromLoopback(t *testing.T, ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// TestOneDeviceIsStoppedAcrossAccounts: one device ID trying card after
// card, from account after account, stops at the device's bound.
func TestOneDeviceIsStoppedAcrossAccounts(t *testing.T) {
	w := tokensvctest.Start(t)
	good := w.Cards[tokensvctest.CardGood]
	var c *client
	for i := range 10 {
		if i%4 == 0 {
			c = newUser(t, w, fmt.Sprintf("device%d", i))
		}
		c.want(c.addCard("SHARED-PHONE", luhn(fmt.Sprintf("62220297%07d", i)), good.Expiry, "123"), 402, "card_declined")
	}
	c = newUser(t, w, "device-late")
	c.want(c.addCard("SHARED-PHONE", good.PAN.Clear(), good.Expiry, good.CVN2().Clear()), 429, "too_many_verifications")
	c.want(c.addCard("OWN-PHONE", good.PAN.Clear(), good.Expiry, good.CVN2().Clear()), 202, "")
	audit := c.want(c.do("GET", "/v1/audit", nil), 200, "").raw
	if !strings.Contains(audit, "too many verifications per device") {
		t.Fatalf("the audit does not name the bound: %s", audit)
	}
}

// TestLimitCountsAreSwept: the counts of windows past use are deleted as
// time moves on, so they take the room of two windows' traffic.
func TestLimitCountsAreSwept(t *testing.T) {
	w := tokensvctest.Start(t)
	good := w.Cards[tokensvctest.CardGood]
	c := newUser(t, w, "sweep")
	for i := range 3 {
		c.want(c.addCard(fmt.Sprintf("SWEEP-%d", i), luhn(fmt.Sprintf("62220297%07d", i)), good.Expiry, "123"), 402, "card_declined")
	}
	// 3 cards, 3 devices, 1 address.
	if n, err := tokensvc.LimitRecords(w.Service); err != nil || n != 7 {
		t.Fatalf("%d limit records, %v; want 7", n, err)
	}
	w.Clock.Advance(49 * time.Hour)
	c = &client{t: t, w: w}
	c.session = c.want(c.do("POST", "/v1/sessions", map[string]string{"login": "sweep", "password": password}), 201, "").str("session")
	c.want(c.addCard("SWEEP-9", luhn("622202979999999"), good.Expiry, "123"), 402, "card_declined")
	if n, err := tokensvc.LimitRecords(w.Service); err != nil || n != 3 {
		t.Fatalf("%d limit records after two days, %v; want the new 3", n, err)
	}
}
