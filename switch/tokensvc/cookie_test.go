package tokensvc_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/tapswitch/tapswitch/switch/tokensvc"
	"github.com/tapswitch/tapswitch/switch/tokensvc/tokensvctest"
)

// TestSecureCookiesFromConfig: with Config.SecureCookies (the switch sets
// it when its public listener serves TLS, or a TLS proxy fronts it) the
// session cookie is Secure even on a request that reached the service as
// plain HTTP; without it, and without TLS, it is not.
func TestSecureCookiesFromConfig(t *testing.T) {
	for _, secure := range []bool{true, false} {
		w := tokensvctest.StartWith(t, func(c *tokensvc.Config) { c.SecureCookies = secure })
		newUser(t, w, "erin")
		v := newVisitor(t, startWeb(t, w))
		p := v.post("/lost/login", url.Values{"login": {"erin"}, "password": {password}})
		p.seeOther(t, "/lost/devices")
		cookie := p.header.Get("Set-Cookie")
		if got := strings.Contains(cookie, "; Secure"); got != secure {
			t.Errorf("SecureCookies %v: cookie %q", secure, cookie)
		}
	}
}
