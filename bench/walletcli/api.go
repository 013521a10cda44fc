package walletcli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

const (
	// requestTimeout covers the slowest call: a card verification that
	// waits for the issuer.
	requestTimeout = 30 * time.Second
	// replyBytesMax bounds what the wallet reads of one answer.
	replyBytesMax = 1 << 20
)

// api is the token service as the wallet calls it.
type api struct {
	base    string
	session string
	client  *http.Client
}

func newAPI(base, session string) *api {
	return &api{base: strings.TrimRight(base, "/"), session: session, client: &http.Client{Timeout: requestTimeout}}
}

// apiError is an error answer of the service.
type apiError struct {
	Status       int    `json:"-"`
	Message      string `json:"error"`
	Code         string `json:"code"`
	IssuerCode   string `json:"issuer_code"`
	AttemptsLeft *int   `json:"attempts_left"`
	RetryAfter   int    `json:"retry_after_seconds"`
}

func (e *apiError) Error() string {
	var b strings.Builder
	b.WriteString(e.Message)
	if e.IssuerCode != "" {
		fmt.Fprintf(&b, " (issuer code %s)", e.IssuerCode)
	}
	if e.AttemptsLeft != nil {
		fmt.Fprintf(&b, " (%d attempts left)", *e.AttemptsLeft)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry in %ds)", e.RetryAfter)
	}
	fmt.Fprintf(&b, " [%d %s]", e.Status, e.Code)
	switch e.Code {
	case "session_expired", "unknown_session", "no_session":
		b.WriteString("; run 'wallet login' again (a phone turned off on the lost-phone page is logged out)")
	case "device_off":
		b.WriteString("; open the lost-phone page (/lost/ on the switch's API address) to turn it on")
	}
	return b.String()
}

// call sends body as JSON (nil: no body) and decodes a 2xx answer into out.
func (a *api) call(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.session != "" {
		req.Header.Set("Authorization", "Bearer "+a.session)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("token service at %s: %w (is the switch running?)", a.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, replyBytesMax))
	if err != nil {
		return fmt.Errorf("token service: %w", err)
	}
	if resp.StatusCode >= 300 {
		e := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(raw, e) != nil || e.Message == "" {
			e.Message, e.Code = strings.TrimSpace(string(raw)), http.StatusText(resp.StatusCode)
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("token service: answer is not the JSON expected: %w", err)
	}
	return nil
}
