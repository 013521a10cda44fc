package daemon

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/tapswitch/tapswitch/internal/syncbuf"
	"github.com/tapswitch/tapswitch/switch/node"
)

// jsonLogTime is logTimeFormat as a pattern: milliseconds and a zone.
var jsonLogTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$`)

// TestJSONLogLines: switchd's JSON log (not -dev) names each line's
// component once, stamps it with milliseconds, and holds no console colour.
// The token service's lines carried "component" twice.
func TestJSONLogLines(t *testing.T) {
	var logs syncbuf.Buffer
	log, err := newLogger("info", &logs, false)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := node.LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Data = t.TempDir()
	cfg.Listen, cfg.Public, cfg.Admin = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	d, err := StartDev(cfg, 5, log)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	resp, err := http.Post(d.Node.PublicURL()+"/v1/accounts", "application/json",
		strings.NewReader(`{"login":"logs","password":"correct horse battery"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("create account: %d", resp.StatusCode)
	}
	tokensvcLines := 0
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if n := strings.Count(line, `"component"`); n > 1 {
			t.Errorf("\"component\" %d times: %s", n, line)
		}
		if strings.ContainsRune(line, 0x1b) {
			t.Errorf("escape code in a JSON line: %q", line)
		}
		var fields struct {
			Time      string `json:"time"`
			Component string `json:"component"`
		}
		if err := json.Unmarshal([]byte(line), &fields); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		if !jsonLogTime.MatchString(fields.Time) {
			t.Errorf("time %q: want RFC 3339 with milliseconds", fields.Time)
		}
		if fields.Component == "tokensvc" {
			tokensvcLines++
		}
	}
	if tokensvcLines == 0 {
		t.Fatalf("no token service line in the log; the test proves nothing:\n%s", logs.String())
	}
}
