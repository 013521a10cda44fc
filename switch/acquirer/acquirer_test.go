package acquirer

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapswitch/tapswitch/configs"
	"github.com/tapswitch/tapswitch/iso8583/mac"
)

var members = map[string]bool{"01020000": true, "01050000": true, "03080000": true, "00010000": true,
	"01030000": true, "01040000": true, "03010000": true,
	"31000001": true, "31000002": true, "31000003": true, "31000004": true, "31000005": true, "31000006": true}

const good = `
acquirers:
  - {institution: "01020000", name: ICBC}
  - {institution: "01050000", name: CCB}
merchants:
  - {id: "104110054110001", acquirer: "01020000", name: Demo, mccs: ["5411"]}
  - {id: "105110058120001", acquirer: "01050000", name: Noodles, mccs: ["5812", "5814"],
     refunds_without_original: {enabled: true, amount_max: 5000}}
terminals:
  - {id: TSIM0001, merchant: "104110054110001"}
  - {range: CCBT0001-CCBT0003, merchant: "105110058120001"}
`

func TestParse(t *testing.T) {
	r, err := Parse([]byte(good), members, "00010000")
	if err != nil {
		t.Fatal(err)
	}
	if r.Terminals() != 4 {
		t.Fatalf("%d terminals, want 4", r.Terminals())
	}
	m, ok := r.Terminal("CCBT0003")
	if !ok || m.Acquirer != "01050000" || !m.AllowsMCC("5814") || m.AllowsMCC("5411") || !m.RefundsWithoutOriginal.Enabled {
		t.Fatalf("CCBT0003: %+v %v", m, ok)
	}
	if _, ok := r.Terminal("CCBT0004"); ok {
		t.Fatal("a terminal past the range is registered")
	}
}

func TestParseRefuses(t *testing.T) {
	for name, tt := range map[string]struct{ from, to, why string }{
		"switch's own institution":  {`"01050000", name: CCB`, `"00010000", name: CCB`, "own institution"},
		"not a settlement member":   {`"01050000", name: CCB`, `"09990000", name: X`, "not a member"},
		"acquirer listed twice":     {`"01050000", name: CCB`, `"01020000", name: CCB`, "twice"},
		"merchant of no acquirer":   {`acquirer: "01050000", name: Noodles`, `acquirer: "01070000", name: Noodles`, "not listed"},
		"bad MCC":                   {`"5812", "5814"`, `"58120"`, "4 digits"},
		"no MCC":                    {`mccs: ["5812", "5814"]`, `mccs: []`, "no MCC"},
		"refund cap over the bound": {`amount_max: 5000`, `amount_max: 100001`, "amount_max"},
		"refunds on without a cap":  {`amount_max: 5000`, `amount_max: 0`, "amount_max"},
		"terminal of no merchant":   {`{id: TSIM0001, merchant: "104110054110001"}`, `{id: TSIM0001, merchant: "999"}`, "not listed"},
		"terminal ID of 7":          {`{id: TSIM0001,`, `{id: TSIM001,`, "8 printable"},
		"range backwards":           {`CCBT0001-CCBT0003`, `CCBT0003-CCBT0001`, "FROM first"},
		"range of two prefixes":     {`CCBT0001-CCBT0003`, `CCBT0001-CCBU0003`, "prefix"},
		"terminal twice (in range)": {`{id: TSIM0001, merchant: "104110054110001"}`, `{id: CCBT0002, merchant: "104110054110001"}`, "twice"},
		"unknown field":             {`name: Demo,`, `name: Demo, colour: red,`, "colour"},
	} {
		t.Run(name, func(t *testing.T) {
			doc := strings.Replace(good, tt.from, tt.to, 1)
			if doc == good {
				t.Fatalf("the case changes nothing: %q", tt.from)
			}
			_, err := Parse([]byte(doc), members, "00010000")
			if err == nil || !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("err %v, want one saying %q", err, tt.why)
			}
		})
	}
}

// The built-in registry parses against the built-in issuer directory's
// members (switch/node checks the real directory at start).
func TestBuiltInRegistry(t *testing.T) {
	r, err := Parse(configs.Acquirers, members, "00010000")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"TSIM0001", "B0000000", "B0004096", "TERM0001", "CCBT0001", "CMBT0001", "TOPU0010", "TOPU0757"} {
		if _, ok := r.Terminal(id); !ok {
			t.Errorf("%s is not registered", id)
		}
	}
}

func writeKeys(t *testing.T, text string, mode os.FileMode) string {
	path := filepath.Join(t.TempDir(), "acquirer.keys")
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestKeys(t *testing.T) {
	k32 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	k16 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 16))
	keys, err := LoadKeysFile(writeKeys(t, "# comment\n\n01020000: "+k32+"\n", 0o600))
	if err != nil || len(keys["01020000"]) != 32 {
		t.Fatalf("%v %v", keys, err)
	}
	for name, tt := range map[string]struct {
		text string
		mode os.FileMode
		why  string
	}{
		"readable by others": {"01020000: " + k32 + "\n", 0o644, "0600"},
		"short key":          {"01020000: " + k16 + "\n", 0o600, "32 bytes"},
		"not base64":         {"01020000: !!!\n", 0o600, "32 bytes"},
		"bad institution":    {"0102: " + k32 + "\n", 0o600, "INSTITUTION"},
		"twice":              {"01020000: " + k32 + "\n01020000: " + k32 + "\n", 0o600, "twice"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := LoadKeysFile(writeKeys(t, tt.text, tt.mode))
			if err == nil || !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("err %v, want one saying %q", err, tt.why)
			}
			if err != nil && strings.Contains(err.Error(), k32) {
				t.Fatal("the error shows a key")
			}
		})
	}
}

func TestGenerateKeysFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	if err := GenerateKeysFile(path, []string{"01020000", "01050000"}); err != nil {
		t.Fatal(err)
	}
	keys, err := LoadKeysFile(path)
	if err != nil || len(keys) != 2 || bytes.Equal(keys["01020000"], keys["01050000"]) {
		t.Fatalf("%d keys, %v", len(keys), err)
	}
}

func TestChecker(t *testing.T) {
	r, err := Parse([]byte(good), members, "00010000")
	if err != nil {
		t.Fatal(err)
	}
	keys := Keys{"01020000": bytes.Repeat([]byte{1}, 32), "01050000": bytes.Repeat([]byte{2}, 32)}
	if _, err := NewChecker(r, Keys{"01020000": keys["01020000"]}); err == nil {
		t.Fatal("a checker without CCB's key")
	}
	c, err := NewChecker(r, keys)
	if err != nil {
		t.Fatal(err)
	}
	// An 0800 from the given terminal with DE41 only, and a DE64 slot.
	msg := func(tid string) []byte {
		return append(append([]byte("0800\x00\x00\x00\x00\x00\x80\x00\x01"), tid...), make([]byte, mac.Size)...)
	}
	signed := func(tid string, key []byte) []byte {
		p := msg(tid)
		if err := mac.Sign(key, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tsimKey, _ := keys.TerminalKey("01020000", "TSIM0001")
	ccbKey, _ := keys.TerminalKey("01050000", "CCBT0001")
	for name, tt := range map[string]struct {
		payload []byte
		tid     string
		want    Status
	}{
		"own key":                 {signed("TSIM0001", tsimKey), "TSIM0001", Authenticated},
		"no MAC field":            {append([]byte("0800\x00\x00\x00\x00\x00\x80\x00\x00"), "TSIM0001"...), "TSIM0001", MACMissing},
		"unregistered":            {signed("XXXX0001", tsimKey), "XXXX0001", Unregistered},
		"another terminal's key":  {signed("TSIM0001", ccbKey), "TSIM0001", MACBad},
		"the acquirer key itself": {signed("TSIM0001", keys["01020000"]), "TSIM0001", MACBad},
		"zero MAC":                {msg("TSIM0001"), "TSIM0001", MACBad},
		"CCB terminal, its key":   {signed("CCBT0001", ccbKey), "CCBT0001", Authenticated},
	} {
		t.Run(name, func(t *testing.T) {
			id := c.Check(tt.payload, tt.tid)
			if id.Status != tt.want || (id.AnswerKey() != nil) != (tt.want == Authenticated) {
				t.Fatalf("status %v answer key %v, want %v", id.Status, id.AnswerKey() != nil, tt.want)
			}
		})
	}
}

// FuzzParseKeys: a key file never panics the parser, and what it accepts
// holds only 32-byte keys under 8-digit institutions.
func FuzzParseKeys(f *testing.F) {
	f.Add([]byte("# c\n01020000: " + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)) + "\n"))
	f.Add([]byte("01020000:\n:\n\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		keys, err := ParseKeys(text)
		if err != nil {
			return
		}
		for id, k := range keys {
			if !institutionPattern.MatchString(id) || len(k) != mac.KeySize {
				t.Fatalf("accepted %q with a key of %d bytes", id, len(k))
			}
		}
	})
}

// A request the switch originates for a registered terminal is
// authenticated as that terminal's; an unregistered one gets nothing.
func TestOriginated(t *testing.T) {
	r, err := Parse(configs.Acquirers, members, "00010000")
	if err != nil {
		t.Fatal(err)
	}
	keys := Keys{}
	for _, id := range r.Acquirers() {
		keys[id] = make([]byte, 32)
	}
	c, err := NewChecker(r, keys)
	if err != nil {
		t.Fatal(err)
	}
	id, ok := c.Originated("TOPU0010")
	if !ok || id.Status != Authenticated || id.Merchant.Acquirer != "31000001" || id.AnswerKey() != nil {
		t.Fatalf("TOPU0010: %+v %v", id, ok)
	}
	if _, ok := c.Originated("NOPE0001"); ok {
		t.Fatal("an unregistered terminal originated")
	}
}
