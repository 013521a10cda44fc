package tokensvc_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapswitch/tapswitch/switch/tokensvc"
	"github.com/tapswitch/tapswitch/switch/tokensvc/tokensvctest"
)

// TestAPIDocListsEveryEndpoint: docs/api.md has a section for every route
// the service serves, and no section for one it does not.
func TestAPIDocListsEveryEndpoint(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	w := tokensvctest.Start(t)
	served := map[string]bool{}
	for _, p := range tokensvc.RoutePatterns(w.Service) {
		heading := "### " + strings.ReplaceAll(p, "{action}", "suspend")
		served[heading] = true
		if !strings.Contains(string(doc), heading) {
			t.Errorf("docs/api.md has no section %q", heading)
		}
	}
	for line := range strings.Lines(string(doc)) {
		if strings.HasPrefix(line, "### ") && strings.Contains(line, " /v1/") {
			heading, _, _ := strings.Cut(strings.TrimSpace(line), ",")
			if !served[heading] {
				t.Errorf("docs/api.md documents %q, which the service does not serve", heading)
			}
		}
	}
}
