package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapswitch/tapswitch/bench/pos"
	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/bench/walletcli"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/authorize"
	"github.com/tapswitch/tapswitch/switch/cluster"
	"github.com/tapswitch/tapswitch/switch/cluster/natstest"
	"github.com/tapswitch/tapswitch/switch/node"
	"github.com/tapswitch/tapswitch/switch/pebblelog"
	"github.com/tapswitch/tapswitch/switch/replica"
	"github.com/tapswitch/tapswitch/switch/sms"
	"github.com/tapswitch/tapswitch/switch/tokensvc"
	"github.com/tapswitch/tapswitch/switch/vault"
)

// The guarantee of the tokens slice: a write on one node is seen on every
// node within this.
const replicationMax = time.Second

const stateStream = "state"

// startReplicatedWorld starts three NATS servers and the dev world as node
// A in cluster mode: its vault and token service write through the state
// stream (its demo tokens included).
func startReplicatedWorld(t *testing.T) (world, *natstest.Cluster) {
	t.Helper()
	nc := natstest.Start(t, 3)
	w := startWorldWith(t, func(c *node.Config) {
		c.Cluster.URLs = []string{nc.URL(0)}
		c.Cluster.CountersBucket = "counters"
		c.Cluster.StateStream = stateStream
		c.Cluster.STANBlock = 1
		c.Cluster.OpTimeout = opTimeout
	})
	return w, nc
}

// replicaNode is node B: its own vault and token-service store in its own
// Pebble directories, fed from the state stream through one NATS server;
// a pipeline over that vault with its own journal; its token API on a
// loopback listener.
type replicaNode struct {
	dir       string
	vault     *vault.Vault
	tokens    *tokensvc.Service
	pipe      *authorize.Pipeline
	api       *httptest.Server
	closeOnce sync.Once
}

func (w world) openReplica(t *testing.T, nc *natstest.Cluster, server int, dir string) *replicaNode {
	t.Helper()
	js, err := jetstream.New(nc.Connect(server))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := cluster.OpenState(ctx, js, cluster.StateConfig{Stream: stateStream, Replicas: 3, BytesMax: 1 << 30,
		OpTimeout: opTimeout, CatchUpTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r := &replicaNode{dir: dir}
	if r.vault, err = vault.OpenReplica(filepath.Join(dir, "vault"), w.d.Node.Keys, st.Store("vault")); err != nil {
		t.Fatal(err)
	}
	cfg, err := node.LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	r.tokens, err = tokensvc.New(tokensvc.Config{DataDir: filepath.Join(dir, "tokensvc"), Vault: r.vault,
		Keys: w.d.Node.Keys, Table: w.d.Node.Table, Issuers: map[string]tokensvc.Issuer{},
		TokenBIN: cfg.TokenBINs[0], Institution: cfg.Institution, RequestorID: cfg.RequestorID,
		SMS: sms.NewOutbox(filepath.Join(dir, "sms-outbox.log")), Replica: st.Store("tokens")})
	if err != nil {
		r.vault.Close()
		t.Fatal(err)
	}
	r.api = httptest.NewServer(r.tokens.Handler())
	deps := w.clusterNode(t, nc, server, "node-b").Deps()
	deps.Vault = r.vault
	r.pipe = authorize.New(deps)
	t.Cleanup(r.close)
	return r
}

func (r *replicaNode) close() {
	r.closeOnce.Do(func() {
		r.api.Close()
		r.tokens.Close()
		r.vault.Close()
	})
}

// wallet runs the wallet command line on the phone's wallet file.
func runWallet(file string, args ...string) (int, string) {
	var out, errOut bytes.Buffer
	code := walletcli.Run(append(args[:1:1], append([]string{"-wallet", file}, args[1:]...)...), &out, &errOut)
	return code, out.String() + errOut.String()
}

func mustWallet(t *testing.T, file string, args ...string) string {
	t.Helper()
	code, out := runWallet(file, args...)
	if code != 0 {
		t.Fatalf("wallet %v: exit %d: %s", args, code, out)
	}
	return out
}

const (
	phoneLogin    = "pauline"
	phonePassword = "correct horse battery"
	phoneDevice   = "PHONE-CLUSTER"
)

// bindOnA binds the dev world's bindable card to a new account's phone
// through node A's token API (login, card details, the SMS code, confirm)
// and returns the phone's wallet file and when the confirmation returned.
func (w world) bindOnA(t *testing.T) (string, time.Time) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "phone.json")
	card := w.d.Bindable
	mustWallet(t, file, "login", "-api", w.d.Node.PublicURL(), "-login", phoneLogin, "-password", phonePassword,
		"-create", "-device", phoneDevice)
	mustWallet(t, file, "add-card", "-pan", card.PAN.Clear(), "-expiry", card.Expiry, "-cvn2", card.CVN2().Clear())
	code := strings.TrimSpace(mustWallet(t, file, "dev-code", "-data", w.d.Data))
	mustWallet(t, file, "confirm", "-code", code)
	return file, time.Now()
}

func loadPhone(t *testing.T, file string) wallet.File {
	t.Helper()
	f, err := wallet.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Cards) != 1 {
		t.Fatalf("phone wallet holds %d cards, want 1", len(f.Cards))
	}
	return f
}

// within polls seen until it holds and fails the test unless it held
// within replicationMax of since; it returns how long it took.
func within(t *testing.T, since time.Time, what string, seen func() bool) time.Duration {
	t.Helper()
	for !seen() {
		if time.Since(since) > 5*replicationMax {
			t.Fatalf("%s: not seen after %v", what, 5*replicationMax)
		}
		time.Sleep(time.Millisecond)
	}
	took := time.Since(since)
	if took > replicationMax {
		t.Fatalf("%s: seen after %v, more than %v", what, took, replicationMax)
	}
	t.Logf("%s: seen after %v", what, took)
	return took
}

func tokenStatus(v *vault.Vault, token string) vault.Status {
	tok, err := v.Get(token)
	if err != nil {
		return ""
	}
	return tok.Status
}

// tap is a purchase of card through p, DE39.
func (w world) tap(t *testing.T, p *authorize.Pipeline, card wallet.Card) string {
	t.Helper()
	msg := pos.Tap{Terminal: pos.DemoTerminal, ProcessingCode: iso8583.ProcPurchase, Amount: 100,
		STAN: fmt.Sprintf("%06d", stans.Add(1)%999999+1), Time: time.Now()}.WithCard(card).Message()
	return w.handle(t, p, msg)
}

// TestBindOnATapsOnB: node B starts empty and has A's demo tokens once
// open; a card bound through A's token API is in B's vault within a
// second and a tap of it on B is approved; the account and device are in
// B's token service (the phone logs in on B and lists its token).
func TestBindOnATapsOnB(t *testing.T) {
	w, nc := startReplicatedWorld(t)
	b := w.openReplica(t, nc, 1, t.TempDir())
	if _, err := b.vault.Get(w.card.Token); err != nil {
		t.Fatalf("A's demo token on the new node B: %v", err)
	}

	file, confirmed := w.bindOnA(t)
	phone := loadPhone(t, file)
	card := phone.Cards[0]
	within(t, confirmed, "token bound on A, in B's vault", func() bool { return tokenStatus(b.vault, card.Token) == vault.StatusActive })
	if rc := w.tap(t, b.pipe, card); rc != iso8583.RCApproved {
		t.Fatalf("tap on B of the token bound on A: rc %s", rc)
	}
	if n := stateWrites(t, w, "vault", "committed"); n < 1 {
		t.Fatalf("node A: tapswitch_state_writes_total{store=vault,outcome=committed} %v", n)
	}
	if rc := w.tap(t, w.d.Node.Pipeline, card); rc != iso8583.RCApproved {
		t.Fatalf("tap on A: rc %s", rc)
	}

	onB := filepath.Join(t.TempDir(), "phone-on-b.json")
	mustWallet(t, onB, "login", "-api", b.api.URL, "-login", phoneLogin, "-password", phonePassword, "-device", phoneDevice)
	if out := mustWallet(t, onB, "tokens"); !strings.Contains(out, card.Token[len(card.Token)-4:]) {
		t.Fatalf("the phone's tokens on B do not list the token bound on A:\n%s", out)
	}
	// Another account adds the same card on A: its binding.create and the
	// first account's card.bound_elsewhere go in one batch, numbered one
	// after the other (not both with the last number in the store); B has
	// both trails.
	other := filepath.Join(t.TempDir(), "other.json")
	mustWallet(t, other, "login", "-api", w.d.Node.PublicURL(), "-login", "oscar", "-password", phonePassword,
		"-create", "-device", "PHONE-OTHER")
	bc := w.d.Bindable
	mustWallet(t, other, "add-card", "-pan", bc.PAN.Clear(), "-expiry", bc.Expiry, "-cvn2", bc.CVN2().Clear())
	otherSession := loadSession(t, other)
	within(t, time.Now(), "the second binding's audit records on B", func() bool {
		return strings.Contains(apiGet(t, b.api.URL+"/v1/audit", phone.Session), "card.bound_elsewhere") &&
			strings.Contains(apiGet(t, b.api.URL+"/v1/audit", otherSession), "binding.create")
	})
}

func loadSession(t *testing.T, file string) string {
	t.Helper()
	f, err := wallet.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	return f.Session
}

// apiGet is one GET of the token API with a bearer session: its body.
func apiGet(t *testing.T, target, session string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+session)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// TestDeviceOffOnAIs62OnB: the phone turned off through A's token API; B's
// vault has its token suspended within a second, a tap on B is 62, and
// the phone cannot log in on B (its device is off in B's token service).
func TestDeviceOffOnAIs62OnB(t *testing.T) {
	w, nc := startReplicatedWorld(t)
	b := w.openReplica(t, nc, 2, t.TempDir())
	file, _ := w.bindOnA(t)
	phone := loadPhone(t, file)
	card := phone.Cards[0]
	within(t, time.Now(), "token bound on A, in B's vault", func() bool { return tokenStatus(b.vault, card.Token) == vault.StatusActive })
	if rc := w.tap(t, b.pipe, card); rc != iso8583.RCApproved {
		t.Fatalf("tap on B before the phone is off: rc %s", rc)
	}

	status, body := apiPost(t, w.d.Node.PublicURL()+"/v1/devices/"+phoneDevice+"/suspend", phone.Session, "")
	off := time.Now()
	if status != 200 {
		t.Fatalf("device suspend on A: %d %s", status, body)
	}
	within(t, off, "device off on A, token suspended in B's vault", func() bool { return tokenStatus(b.vault, card.Token) == vault.StatusSuspended })
	if rc := w.tap(t, b.pipe, card); rc != iso8583.RCRestrictedCard {
		t.Fatalf("tap on B with the phone off on A: rc %s, want 62", rc)
	}
	onB := filepath.Join(t.TempDir(), "phone-on-b.json")
	if code, out := runWallet(onB, "login", "-api", b.api.URL, "-login", phoneLogin, "-password", phonePassword,
		"-device", phoneDevice); code == 0 || !strings.Contains(out, "device_off") {
		t.Fatalf("login on B from the phone turned off on A: exit %d: %s", code, out)
	}
}

// TestReplicaCatchesUp: node B stopped while A turns the phone off, then
// restarted on its files, has the token suspended as soon as it is open;
// so has node C, started on empty directories.
func TestReplicaCatchesUp(t *testing.T) {
	w, nc := startReplicatedWorld(t)
	dirB := t.TempDir()
	b := w.openReplica(t, nc, 1, dirB)
	file, confirmed := w.bindOnA(t)
	phone := loadPhone(t, file)
	token := phone.Cards[0].Token
	within(t, confirmed, "token bound on A, in B's vault", func() bool { return tokenStatus(b.vault, token) == vault.StatusActive })
	b.close()

	if status, body := apiPost(t, w.d.Node.PublicURL()+"/v1/devices/"+phoneDevice+"/suspend", phone.Session, ""); status != 200 {
		t.Fatalf("device suspend on A: %d %s", status, body)
	}
	b = w.openReplica(t, nc, 1, dirB)
	if s := tokenStatus(b.vault, token); s != vault.StatusSuspended {
		t.Fatalf("B restarted: token %q, want suspended", s)
	}
	if rc := w.tap(t, b.pipe, phone.Cards[0]); rc != iso8583.RCRestrictedCard {
		t.Fatalf("tap on B restarted: rc %s, want 62", rc)
	}
	c := w.openReplica(t, nc, 2, t.TempDir())
	if s := tokenStatus(c.vault, token); s != vault.StatusSuspended {
		t.Fatalf("new node C: token %q, want suspended", s)
	}
	if _, err := c.vault.Get(w.card.Token); err != nil {
		t.Fatalf("new node C: A's demo token: %v", err)
	}
}

// TestConcurrentWritesConverge: both nodes write at once. Vault: devices
// filled to one short of their limit of 256 tokens by both nodes at once,
// then one more token put on each from both nodes at the same moment:
// exactly one of the two succeeds (each node's check reads what the other
// wrote before it). Token service: accounts created on both nodes at once
// are each counted and audited once. Then both nodes' Pebble files hold
// the same records, byte for byte.
func TestConcurrentWritesConverge(t *testing.T) {
	w, nc := startReplicatedWorld(t)
	b := w.openReplica(t, nc, 1, t.TempDir())
	approve, err := w.d.Node.Vault.Get(w.card.Token)
	if err != nil {
		t.Fatal(err)
	}
	nodes := []*vault.Vault{w.d.Node.Vault, b.vault}
	const devices, deviceMax = 3, 256
	next := 0
	for d := range devices {
		device := fmt.Sprintf("PHONE-LIMIT-%d", d)
		var tokens [2][]vault.Token
		for n := range deviceMax - 1 {
			tok := approve
			tok.Token, tok.DeviceID = testToken(approve.Token.Clear()[:6], next), device
			next++
			tokens[n%2] = append(tokens[n%2], tok)
		}
		var wg sync.WaitGroup
		for i, v := range nodes {
			wg.Go(func() {
				for _, tok := range tokens[i] {
					if err := v.Put(tok); err != nil {
						t.Errorf("filling %s from node %d: %v", device, i, err)
					}
				}
			})
		}
		wg.Wait()
		var ok, full atomic.Int64
		start := make(chan struct{})
		last := []vault.Token{approve, approve}
		for i := range last {
			last[i].Token, last[i].DeviceID = testToken(approve.Token.Clear()[:6], next), device
			next++
		}
		for i, v := range nodes {
			wg.Go(func() {
				<-start
				switch err := v.Put(last[i]); {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, vault.ErrInvalid) && strings.Contains(err.Error(), "limit"):
					full.Add(1)
				default:
					t.Errorf("last token on %s from node %d: %v", device, i, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if ok.Load() != 1 || full.Load() != 1 {
			t.Fatalf("%s, one short of its limit: one token put from each node at once: %d accepted, %d refused; want 1 and 1",
				device, ok.Load(), full.Load())
		}
		for i, v := range nodes {
			if have, err := v.TokensForDevice(device); err != nil || len(have) != deviceMax {
				t.Fatalf("%s on node %d: %d tokens (%v), want %d", device, i, len(have), err, deviceMax)
			}
		}
	}

	const accountsPerNode = 4
	createAccounts(t, map[string]string{"a": w.d.Node.PublicURL(), "b": b.api.URL}, accountsPerNode)

	b.close()
	if err := w.d.Node.Shutdown(); err != nil {
		t.Fatal(err)
	}
	for _, store := range []string{"vault", "tokensvc"} {
		onA, onB := storeContents(t, filepath.Join(w.d.Data, store)), storeContents(t, filepath.Join(b.dir, store))
		if len(onA) != len(onB) {
			t.Errorf("%s: %d records on A, %d on B", store, len(onA), len(onB))
		}
		for k, v := range onA {
			if other, found := onB[k]; !found || !bytes.Equal(v, other) {
				t.Errorf("%s: record %q differs between A and B (on B: %v)", store, k, found)
			}
		}
		t.Logf("%s: %d records, the same on both nodes", store, len(onA))
	}
	checkAccounts(t, storeContents(t, filepath.Join(b.dir, "tokensvc")), 2*accountsPerNode)
}

// testToken is a Luhn-valid token number of the token BIN, distinct per n.
func testToken(bin string, n int) iso8583.PAN {
	body := fmt.Sprintf("%s%09d", bin, n)
	return iso8583.PAN(body + string(iso8583.LuhnCheckDigit(body)))
}

// createAccounts creates perNode accounts through each node's token API,
// all at once; each must succeed at the first call (a write that loses to
// another node's is run again by the node, not by the client).
func createAccounts(t *testing.T, apis map[string]string, perNode int) {
	t.Helper()
	var wg sync.WaitGroup
	for name, api := range apis {
		for i := range perNode {
			wg.Go(func() {
				file := filepath.Join(t.TempDir(), "w.json")
				login := fmt.Sprintf("user-%s-%d", name, i)
				if code, out := runWallet(file, "login", "-api", api, "-login", login, "-password", phonePassword, "-create"); code != 0 {
					t.Errorf("create %s on %s: exit %d: %s", login, name, code, out)
				}
			})
		}
	}
	wg.Wait()
}

// nodeLocalKeys are the records each node writes for itself, never
// through the log: the applied position and the vault's keyring checks
// (sealed with a random nonce).
var nodeLocalKeys = map[string]bool{"m/replica/applied": true, "m/keycheck": true, "m/keyversions": true, "m/tokenmaster": true}

// storeContents reads every record of the closed Pebble store in dir but
// the node-local ones.
func storeContents(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{ReadOnly: true, Logger: pebblelog.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for ok := it.First(); ok; ok = it.Next() {
		if !nodeLocalKeys[string(it.Key())] {
			out[string(it.Key())] = bytes.Clone(it.Value())
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkAccounts: the token service counts want accounts, holds that many,
// and its audit trail has one account.create record for each: no update
// lost between the nodes, no audit number used twice.
func checkAccounts(t *testing.T, records map[string][]byte, want int) {
	t.Helper()
	accounts, creates := 0, map[string]int{}
	for k, v := range records {
		switch {
		case strings.HasPrefix(k, "a/"):
			accounts++
		case strings.HasPrefix(k, "g/"):
			var rec tokensvc.AuditRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				t.Fatal(err)
			}
			if rec.Action == "account.create" {
				creates[rec.Account]++
			}
		}
	}
	if got := string(records["m/accounts"]); got != fmt.Sprint(want) || accounts != want || len(creates) != want {
		t.Fatalf("token service: count %s, %d accounts, account.create audited for %d; want %d", got, accounts, len(creates), want)
	}
	for login, n := range creates {
		if n != 1 {
			t.Fatalf("account %s: %d account.create records", login, n)
		}
	}
}

// stateWrites is node A's tapswitch_state_writes_total of store and
// outcome.
func stateWrites(t *testing.T, w world, store, outcome string) float64 {
	t.Helper()
	families, err := w.d.Node.Metrics().Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "tapswitch_state_writes_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["store"] == store && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no tapswitch_state_writes_total{store=%q,outcome=%q}", store, outcome)
	return 0
}

// apiPost sends one POST to the token API with a bearer session.
func apiPost(t *testing.T, target, session, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+session)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(raw)
}

// TestStateWithoutQuorum: two of the three NATS servers down. A write
// fails within the operation timeout (the token API answers 503
// cluster_unavailable) and changes nothing; both nodes keep reading their
// copies. With a server back, writes resume and reach the other node.
func TestStateWithoutQuorum(t *testing.T) {
	w, nc := startReplicatedWorld(t)
	b := w.openReplica(t, nc, 0, t.TempDir())
	approve, err := b.vault.Get(w.card.Token)
	if err != nil {
		t.Fatal(err)
	}
	nc.Kill(1)
	nc.Kill(2)

	tok := approve
	tok.Token, tok.DeviceID = testToken(approve.Token.Clear()[:6], 1), "PHONE-QUORUM"
	began := time.Now()
	if err := w.d.Node.Vault.Put(tok); !errors.Is(err, replica.ErrUnavailable) {
		t.Fatalf("put without quorum: %v, want replica.ErrUnavailable", err)
	}
	if took := time.Since(began); took > 3*opTimeout {
		t.Fatalf("put without quorum failed after %v", took)
	}
	status, body := apiPost(t, w.d.Node.PublicURL()+"/v1/accounts", "", `{"login":"nobody","password":"`+phonePassword+`"}`)
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "cluster_unavailable") {
		t.Fatalf("account creation without quorum: %d %s", status, body)
	}
	for i, v := range []*vault.Vault{w.d.Node.Vault, b.vault} {
		if s := tokenStatus(v, w.card.Token); s != vault.StatusActive {
			t.Fatalf("node %d without quorum: the demo token reads %q", i, s)
		}
		if _, err := v.Get(tok.Token.Clear()); !errors.Is(err, vault.ErrNotFound) {
			t.Fatalf("node %d: the put refused without quorum is there: %v", i, err)
		}
	}

	if n := stateWrites(t, w, "vault", "unavailable"); n < 1 {
		t.Fatalf("tapswitch_state_writes_total{store=vault,outcome=unavailable} %v after a refused put", n)
	}

	nc.Restart(1)
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := w.d.Node.Vault.Put(tok)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("put with the quorum back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The 1 s guarantee is a healthy cluster's: B's follower may have been
	// on a server that was down and resubscribes on its reconnect, so a
	// recovering cluster is given recoveryMax (seen: 3 s under load).
	since := time.Now()
	for tokenStatus(b.vault, tok.Token.Clear()) != vault.StatusActive {
		if time.Since(since) > recoveryMax {
			t.Fatalf("put on A with the quorum back: not on B after %v", recoveryMax)
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("put on A with the quorum back, on B: seen after %v", time.Since(since))
}

// recoveryMax bounds how long a node takes to see another's write once the
// quorum is back after an outage.
const recoveryMax = 10 * time.Second
