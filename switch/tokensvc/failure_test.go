package tokensvc_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/sms"
	"github.com/tapswitch/tapswitch/switch/tokensvc"
	"github.com/tapswitch/tapswitch/switch/tokensvc/tokensvctest"
	"github.com/tapswitch/tapswitch/switch/vault"
)

type brokenSMS struct{}

func (brokenSMS) Send(context.Context, sms.Message) error { return errors.New("gateway down") }

// TestSMSFailureLeavesNoBinding: a code that cannot be sent fails its
// binding at once.
func TestSMSFailureLeavesNoBinding(t *testing.T) {
	w := tokensvctest.StartWith(t, func(c *tokensvc.Config) { c.SMS = brokenSMS{} })
	c := newUser(t, w, "leo")
	good := w.Cards[tokensvctest.CardGood]
	c.want(c.addCard("PHONE-L", good.PAN.Clear(), good.Expiry, good.CVN2().Clear()), 502, "sms_failed")
	assertNothingCreated(t, w, "leo", "PHONE-L")
	a := c.want(c.do("GET", "/v1/audit", nil), 200, "")
	if !strings.Contains(a.raw, `"sms_failed"`) {
		t.Fatalf("audit %s", a.raw)
	}
}

// TestIssueFailuresLeaveNoToken: the vault refusing the token, or the
// confirmation failing after it, leaves no live token and a failed binding.
func TestIssueFailuresLeaveNoToken(t *testing.T) {
	for _, step := range []string{"vault put", "finish"} {
		t.Run(step, func(t *testing.T) {
			w := tokensvctest.Start(t)
			c := newUser(t, w, "mia")
			good := w.Cards[tokensvctest.CardGood]
			id := c.want(c.addCard("PHONE-M", good.PAN.Clear(), good.Expiry, good.CVN2().Clear()), 202, "").str("binding_id")
			tokensvc.FailAt(w.Service, func(s string) error {
				if s == step {
					return errors.New("disk full")
				}
				return nil
			})
			code := w.Code(t, id)
			r := c.want(c.do("POST", "/v1/bindings/"+id+"/confirm", map[string]string{"code": code}), 500, "internal")
			if strings.Contains(r.raw, "key") {
				t.Fatalf("a failed confirmation carries a key: %s", r.raw)
			}
			assertNoLiveToken(t, w, "PHONE-M")
			tokensvc.FailAt(w.Service, nil)
			c.want(c.do("POST", "/v1/bindings/"+id+"/confirm", map[string]string{"code": code}), 410, "binding_failed")
			assertNoLiveToken(t, w, "PHONE-M")
			// The card can be added again from the start.
			c.bind("PHONE-M", tokensvctest.CardGood)
		})
	}
}

// TestCrashDuringIssueIsRolledBack: a binding a crash left "issuing", with
// its token already in the vault, is undone at the next start.
func TestCrashDuringIssueIsRolledBack(t *testing.T) {
	w := tokensvctest.Start(t)
	c := newUser(t, w, "noah")
	good := w.Cards[tokensvctest.CardGood]
	id := c.want(c.addCard("PHONE-N", good.PAN.Clear(), good.Expiry, good.CVN2().Clear()), 202, "").str("binding_id")
	token := luhn("629990555555555")
	if err := tokensvc.MarkIssuing(w.Service, id, token); err != nil {
		t.Fatal(err)
	}
	if err := w.Vault.Put(vault.Token{Token: iso8583.PAN(token), PAN: good.PAN, CardExpiry: good.Expiry, TokenExpiry: good.Expiry,
		Status: vault.StatusActive, DeviceID: "PHONE-N", WalletAccount: "noah", RequestorID: tokensvctest.RequestorID,
		Domain: vault.Domain{ContactlessOnly: true}}); err != nil {
		t.Fatal(err)
	}
	w.Restart(t)
	if tok, err := w.Vault.Get(token); err != nil || tok.Status != vault.StatusDeleted {
		t.Fatalf("after recovery the token is %+v, %v; want deleted", tok.Status, err)
	}
	c.want(c.do("POST", "/v1/bindings/"+id+"/confirm", map[string]string{"code": w.Code(t, id)}), 410, "binding_failed")
	a := c.want(c.do("GET", "/v1/audit", nil), 200, "")
	if !strings.Contains(a.raw, `"token.rollback"`) || !strings.Contains(a.raw, `"actor": "system"`) {
		t.Fatalf("audit %s", a.raw)
	}
	// A second restart finds nothing more to do; sessions survive restarts.
	w.Restart(t)
	c.want(c.do("GET", "/v1/devices", nil), 200, "")
}

// assertNoLiveToken: every token on the device is deleted.
func assertNoLiveToken(t *testing.T, w *tokensvctest.World, device string) {
	t.Helper()
	tokens, err := w.Vault.TokensForDevice(device)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range tokens {
		tok, err := w.Vault.Get(n)
		if err != nil || tok.Status != vault.StatusDeleted {
			t.Fatalf("token %s on %s is %s, %v", tok.Token, device, tok.Status, err)
		}
	}
}
