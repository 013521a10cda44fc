package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/switch/journal"
	"github.com/tapswitch/tapswitch/switch/node"
	"github.com/tapswitch/tapswitch/switch/vault"
)

// startSwitch opens and starts a real node on loopback, closing days on
// demand as switchd -dev does when devClose is set; its issuer links go
// nowhere (closing a day needs no issuer).
func startSwitch(t *testing.T, devClose bool) *node.Node {
	t.Helper()
	cfg, err := node.LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg.Data = filepath.Join(dir, "data")
	cfg.KeyFile, cfg.KeyEnv = filepath.Join(dir, "vault.keys"), ""
	if err := vault.GenerateKeyringFile(cfg.KeyFile); err != nil {
		t.Fatal(err)
	}
	cfg.Listen, cfg.Public, cfg.Admin = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.CloseDayOnDemand = devClose
	list, _, err := cfg.Network()
	if err != nil {
		t.Fatal(err)
	}
	cfg.AcquirerKeysFile = filepath.Join(dir, "acquirer.keys")
	if _, err := createAcquirerKeys("", cfg.AcquirerKeysFile); err != nil {
		t.Fatal(err)
	}
	nowhere := map[string]string{}
	for _, is := range list {
		nowhere[is.ID] = "127.0.0.1:1"
	}
	n, err := node.Open(cfg, zerolog.Nop(), nowhere)
	if err != nil {
		t.Fatal(err)
	}
	n.Start()
	t.Cleanup(func() { n.Shutdown() })
	return n
}

// TestCloseDay (issue 11, item 5): against a switch closing days on demand
// (switchd -dev), tapctl close-day seals the open business day at once and
// prints the settle command for it; new entries go to the next day. A
// switch without it (every production switch) has no such endpoint, and
// tapctl says so.
func TestCloseDay(t *testing.T) {
	n := startSwitch(t, true)
	open := n.Journal.BusinessDayOf(time.Now())
	var out, errs bytes.Buffer
	if code := run([]string{"close-day", "-admin", n.AdminAddr()}, &out, &errs); code != 0 {
		t.Fatalf("close-day: exit %d, %s", code, errs.String())
	}
	date := open[:4] + "-" + open[4:6] + "-" + open[6:]
	if !strings.Contains(out.String(), "closed and sealed business day "+open) || !strings.Contains(out.String(), "settle -date "+date) {
		t.Fatalf("close-day said %q; want the day %s and the settle command", out.String(), open)
	}
	sealed := filepath.Join(node.SealedDir(filepath.Dir(filepath.Dir(strings.Fields(strings.SplitN(out.String(), "(", 2)[1])[0]))), journal.SealedFileName("node-1", open))
	if _, err := os.Stat(sealed); err != nil {
		t.Fatalf("no sealed file: %v", err)
	}
	if got := n.Journal.BusinessDayOf(time.Now()); got != journal.NextDay(open) {
		t.Fatalf("after the close, now is in day %s; want %s", got, journal.NextDay(open))
	}

	prod := startSwitch(t, false)
	errs.Reset()
	if code := run([]string{"close-day", "-admin", prod.AdminAddr()}, &out, &errs); code != 1 || !strings.Contains(errs.String(), "only switchd -dev does") {
		t.Fatalf("close-day against a production switch: exit %d, %q; want 1, refused", code, errs.String())
	}
	if prod.Journal.IsSealed(prod.Journal.BusinessDayOf(time.Now())) {
		t.Fatal("a production switch closed its day")
	}
}
