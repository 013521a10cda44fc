package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapswitch/tapswitch/bench/termsim"
	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/bench/walletcli"
	"github.com/tapswitch/tapswitch/switch/sms"
)

// TestStolenCardDetailsCannotPay is issue 9's finding 1 on the whole dev
// switch, as the README's four steps run it: alice binds the card the
// banner offers and pays over TCP; mallory, a new account with the card's
// number, expiry and CVN2, adds it too. The code goes to the cardholder's
// phone (the outbox line is addressed to alice's masked number), mallory's
// guesses run out, and she has nothing to pay 299.99 with.
func TestStolenCardDetailsCannotPay(t *testing.T) {
	d, _ := startWorld(t)
	card := d.Bindable
	if !card.Phone.Valid() {
		t.Fatalf("the bindable card has no phone on the issuer's file")
	}
	api, dir := d.Node.PublicURL(), t.TempDir()
	last4 := card.PAN.Clear()[len(card.PAN.Clear())-4:]
	cli := func(who string, args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := walletcli.Run(append(args[:1:1], append([]string{"-wallet", filepath.Join(dir, who+".json")}, args[1:]...)...), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	must := func(who string, args ...string) string {
		t.Helper()
		code, out := cli(who, args...)
		if code != 0 {
			t.Fatalf("%s: wallet %v: exit %d: %s", who, args, code, out)
		}
		return out
	}
	details := []string{"-pan", card.PAN.Clear(), "-expiry", card.Expiry, "-cvn2", card.CVN2().Clear()}

	must("alice", "login", "-api", api, "-login", "alice", "-password", "correct horse", "-create")
	must("alice", append([]string{"add-card"}, details...)...)
	must("alice", "confirm", "-code", strings.TrimSpace(must("alice", "dev-code", "-data", d.Data)))
	if a := pay(t, d, filepath.Join(dir, "alice.json"), "card-"+last4); a.RC != "00" {
		t.Fatalf("alice's own tap: %+v", a)
	}

	must("mallory", "login", "-api", api, "-login", "mallory", "-password", "stolen card spree", "-create")
	out := must("mallory", append([]string{"add-card"}, details...)...)
	if !strings.Contains(out, card.Phone.Masked()) || strings.Contains(out, card.Phone.Clear()) {
		t.Fatalf("mallory's add-card said %q", out)
	}
	mw, err := wallet.Load(filepath.Join(dir, "mallory.json"))
	if err != nil || mw.Pending == nil {
		t.Fatalf("mallory's wallet %+v, %v", mw, err)
	}
	msg, err := sms.Latest(sms.OutboxPath(d.Data), mw.Pending.BindingID)
	if err != nil || msg.ToMasked != card.Phone.Masked() || strings.Contains(msg.ToMasked+msg.Text, "mallory") ||
		!strings.Contains(msg.Text, "ANOTHER wallet account") {
		t.Fatalf("the code SMS %+v, %v: want it on alice's phone, with a warning", msg, err)
	}
	code, err := sms.Code(msg.Text)
	if err != nil {
		t.Fatal(err)
	}
	// Mallory guesses; five wrong codes end the binding.
	for i := range 5 {
		guess := fmt.Sprintf("%06d", (atoiOf(code)+1+i)%1_000_000)
		if c, out := cli("mallory", "confirm", "-code", guess); c == 0 {
			t.Fatalf("guess %d accepted: %s", i, out)
		}
	}
	if c, out := cli("mallory", "confirm", "-code", code); c == 0 || !strings.Contains(out, "no card is waiting") {
		t.Fatalf("after the guesses: exit %d, %s", c, out)
	}
	var errOut bytes.Buffer
	if c := termsim.Run([]string{"pay", "-wallet", filepath.Join(dir, "mallory.json"), "-card", "card-" + last4,
		"-switch", d.Node.TerminalAddr(), "-acquirer-keys", wallet.DevAcquirerKeysPath(d.WalletPath),
		"-amount", "299.99"}, &bytes.Buffer{}, &errOut); c == 0 || !strings.Contains(errOut.String(), "card-"+last4) {
		t.Fatalf("mallory's tap: exit %d, %q: want a refusal naming the card she does not hold", c, errOut.String())
	}
	tokens, err := d.Node.Vault.TokensForPAN(card.PAN.Clear())
	if err != nil || len(tokens) != 1 {
		t.Fatalf("tokens of the card: %v, %v; want alice's alone", tokens, err)
	}
	if tok, err := d.Node.Vault.Get(tokens[0]); err != nil || tok.WalletAccount != "alice" {
		t.Fatalf("the card's token %+v, %v", tok, err)
	}
}

func pay(t *testing.T, d *DevWorld, walletFile, label string) termsim.Answer {
	t.Helper()
	var out, errOut bytes.Buffer
	if c := termsim.Run([]string{"pay", "-wallet", walletFile, "-card", label, "-switch", d.Node.TerminalAddr(),
		"-acquirer-keys", wallet.DevAcquirerKeysPath(d.WalletPath),
		"-amount", "299.99", "-json"}, &out, &errOut); c != 0 {
		t.Fatalf("termsim exit %d: %s", c, errOut.String())
	}
	var a termsim.Answer
	if err := json.Unmarshal(out.Bytes(), &a); err != nil {
		t.Fatalf("termsim -json printed %q: %v", out.String(), err)
	}
	return a
}

func atoiOf(s string) int {
	n := 0
	fmt.Sscan(s, &n)
	return n
}
