package cluster

import (
	"bytes"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/bench/walletcli"
	"github.com/tapswitch/tapswitch/configs"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/switch/acquirer"
	"github.com/tapswitch/tapswitch/switch/daemon"
)

// bindOnNode binds the dev world's bindable card to a new wallet account
// through n's token API alone (the wallet's four steps: account, card
// details, the issuer's check, the SMS code n sent), and returns a phone
// tapping the token n issued.
func (w *world) bindOnNode(t *testing.T, n *node, keys acquirer.Keys) *phone {
	t.Helper()
	table, err := bintable.Parse(configs.Bins)
	if err != nil {
		t.Fatal(err)
	}
	card := daemon.DevBindableCard(table, 1, time.Now()) // issuersim's world: -seed 1
	path := filepath.Join(w.dir, "bound-phone.json")
	run := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if code := walletcli.Run(append(args[:1:1], append([]string{"-wallet", path}, args[1:]...)...), &out, &out); code != 0 {
			t.Fatalf("wallet %v against %s: exit %d: %s", args, n.id, code, out.String())
		}
		return out.String()
	}
	run("login", "-api", "http://"+n.public, "-login", "lin", "-password", "correct horse", "-create")
	run("add-card", "-pan", card.PAN.Clear(), "-expiry", card.Expiry, "-cvn2", card.CVN2().Clear())
	run("confirm", "-code", strings.TrimSpace(run("dev-code", "-data", n.data)))
	return phoneOf(t, path, "card-"+card.PAN.Clear()[len(card.PAN.Clear())-4:], keys)
}

// turnOff is the lost phone, reported through n's token API: the wallet's
// own session turns its device off (docs/api.md, POST
// /v1/devices/{device}/suspend).
func (w *world) turnOff(t *testing.T, n *node, walletPath string) {
	t.Helper()
	wf, err := wallet.Load(walletPath)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("http://%s/v1/devices/%s/suspend", n.public, wf.DeviceID), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+wf.Session)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("turning the device off through %s: %s", n.id, resp.Status)
	}
}

// within polls ok until it holds, failing the test if that takes longer
// than limit from the call (each poll is a real tap, so the check itself
// takes a round trip; what it measures is the time from the write's
// answer to another node acting on it).
func within(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%s: after %v", what, time.Since(start).Round(time.Microsecond))
}
