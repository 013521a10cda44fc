//go:build unix

package tokensvc_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/switch/tokensvc/tokensvctest"
	"github.com/tapswitch/tapswitch/switch/vault"
)

// Bounds of the browser test.
const (
	cdpCallTimeout     = 10 * time.Second
	cdpWaitTimeout     = 10 * time.Second
	cdpMessageBytesMax = 8 << 20
	chromiumExitWait   = 5 * time.Second
	chromiumStderrMax  = 64 << 10
)

// TestWebInChromium drives the lost-phone page in a real headless
// Chromium: log in (a wrong password first), see the phone's cards
// masked, click "Turn off", then "Turn on" with a wrong password and with
// the right one, and watch the vault follow, log out. Chromium is controlled over the DevTools protocol on a pipe
// (--remote-debugging-pipe: NUL-separated JSON on fds 3 and 4), so it
// opens no port of its own; the page is served on 127.0.0.1.
func TestWebInChromium(t *testing.T) {
	path := chromiumPath()
	if path == "" {
		t.Skip("chromium not found (neither /usr/bin/chromium nor chromium in PATH): the lost-phone page is not tested " +
			"in a real browser here; install it (apt-get install chromium) to run this test")
	}
	w := tokensvctest.Start(t)
	api := newUser(t, w, "alice")
	token := api.bind("PHONE-C", tokensvctest.CardGood).str("token")
	card := w.Cards[tokensvctest.CardGood]
	base := startWeb(t, w)
	b := startChromium(t, path)
	vaultStatus := func(want vault.Status) {
		t.Helper()
		tok, err := w.Vault.Get(token)
		if err != nil || tok.Status != want {
			t.Fatalf("the vault has the token %s (%v), want %s", tok.Status, err, want)
		}
	}

	b.navigate(base + "/lost/")
	b.waitFor(`!!document.querySelector("form.login")`, "the log-in form")
	b.run(`document.querySelector("#login").value = "alice";
		document.querySelector("#password").value = "not the password";
		document.querySelector("form.login button[type=submit]").click()`)
	b.waitFor(`document.querySelector(".problem")?.innerText === "Wrong login or password."`, "the wrong-password message")
	b.run(`document.querySelector("#password").value = ` + strconv.Quote(password) + `;
		document.querySelector("form.login button[type=submit]").click()`)
	device := `document.querySelector('section[data-device="PHONE-C"]')`
	b.waitFor(`location.pathname === "/lost/devices" && !!`+device, "the phones page")

	if text := b.text(); !strings.Contains(text, card.PAN.String()) || strings.Contains(text, card.PAN.Clear()) ||
		strings.Contains(text, token) {
		t.Fatalf("the phones page shows the card wrong:\n%s", text)
	}
	// The session cookie is out of the page's reach; the stylesheet loaded
	// under the page's Content-Security-Policy.
	b.waitFor(`document.cookie === ""`, "an HttpOnly session cookie")
	b.waitFor(`getComputedStyle(document.querySelector("header")).backgroundColor === "rgb(31, 58, 95)"`, "the stylesheet")

	button := device + `.querySelector("button")`
	b.waitFor(button+`.innerText === "Turn off"`, `the "Turn off" button`)
	b.run(button + `.click()`)
	b.waitFor(`document.readyState === "complete" && `+button+`?.innerText === "Turn on"`, `the "Turn on" button`)
	vaultStatus(vault.StatusSuspended)
	b.waitFor(device+`.querySelector("td.status").innerText === "suspended"`, "the card shown suspended")

	// Turning on takes the password typed on the page: a wrong one is
	// refused and the phone stays off.
	passwordField := device + `.querySelector("input[type=password]")`
	b.run(passwordField + `.value = "not the password"; ` + button + `.click()`)
	b.waitFor(`document.querySelector(".problem")?.innerText.startsWith("Wrong password")`, "the wrong-password page")
	vaultStatus(vault.StatusSuspended)
	b.navigate(base + "/lost/devices")
	b.waitFor(`document.readyState === "complete" && `+button+`?.innerText === "Turn on"`, `the "Turn on" button again`)
	b.run(passwordField + `.value = ` + strconv.Quote(password) + `; ` + button + `.click()`)
	b.waitFor(`document.readyState === "complete" && `+button+`?.innerText === "Turn off"`, `the "Turn off" button again`)
	vaultStatus(vault.StatusActive)

	b.run(`document.querySelector("form.logout button").click()`)
	b.waitFor(`location.pathname === "/lost/" && document.querySelector(".notice")?.innerText === "You are logged out."`, "the logged-out form")
	b.navigate(base + "/lost/devices")
	b.waitFor(`location.search === "?m=nosession" && !!document.querySelector("form.login")`, "the form after logging out")
	assertNoSecrets(t, w, card.PAN.Clear(), password)
}

func chromiumPath() string {
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	return ""
}

// browser is a headless Chromium with one page, driven over the DevTools
// protocol.
type browser struct {
	t        *testing.T
	cmd      *exec.Cmd
	toChrome *os.File
	session  string // the page's flat-mode session
	mu       sync.Mutex
	nextID   int
	waiting  map[int]chan cdpReply
	readErr  error
}

type cdpReply struct {
	ID     int             `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// startChromium starts Chromium in its own process group (so the whole
// group is killed at the end) and opens a page; t.Cleanup closes it.
func startChromium(t *testing.T, path string) *browser {
	t.Helper()
	cmdIn, toChrome, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	fromChrome, cmdOut, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &limitedBuffer{max: chromiumStderrMax}
	cmd := exec.Command(path, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--no-default-browser-check", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--user-data-dir="+t.TempDir(), "--remote-debugging-pipe", "about:blank")
	cmd.ExtraFiles = []*os.File{cmdIn, cmdOut} // fds 3 and 4
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	cmdIn.Close()
	cmdOut.Close()
	b := &browser{t: t, cmd: cmd, toChrome: toChrome, waiting: map[int]chan cdpReply{}}
	exited := make(chan struct{})
	go func() {
		b.readLoop(fromChrome)
		fromChrome.Close()
	}()
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		b.session = "" // Browser.close is the browser's, not the page's
		b.call("Browser.close", nil, nil)
		toChrome.Close()
		select {
		case <-exited:
		case <-time.After(chromiumExitWait):
			t.Log("chromium did not close; killing it")
		}
		// Its helpers too: the group is the one Start made.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			t.Logf("chromium stderr:\n%s", stderr.String())
		}
	})

	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := b.call("Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.call("Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached); err != nil {
		t.Fatal(err)
	}
	b.session = attached.SessionID
	return b
}

// readLoop hands each reply to its caller; events are not used.
func (b *browser) readLoop(from *os.File) {
	sc := bufio.NewScanner(from)
	sc.Buffer(make([]byte, 64<<10), cdpMessageBytesMax)
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		if i := bytes.IndexByte(data, 0); i >= 0 {
			return i + 1, data[:i], nil
		}
		if atEOF && len(data) > 0 {
			return 0, nil, errors.New("a message without its NUL")
		}
		return 0, nil, nil
	})
	for sc.Scan() {
		var r cdpReply
		if json.Unmarshal(sc.Bytes(), &r) != nil || r.ID == 0 {
			continue
		}
		b.mu.Lock()
		ch := b.waiting[r.ID]
		delete(b.waiting, r.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- r
		}
	}
	b.mu.Lock()
	b.readErr = errors.Join(errors.New("chromium closed the pipe"), sc.Err())
	for id, ch := range b.waiting {
		close(ch)
		delete(b.waiting, id)
	}
	b.mu.Unlock()
}

// call sends one command, on the page's session once there is one, and
// decodes its result into out.
func (b *browser) call(method string, params, out any) error {
	b.mu.Lock()
	if b.readErr != nil {
		b.mu.Unlock()
		return b.readErr
	}
	b.nextID++
	id := b.nextID
	ch := make(chan cdpReply, 1)
	b.waiting[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if b.session != "" {
		msg["sessionId"] = b.session
	}
	raw, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	if _, err := b.toChrome.Write(append(raw, 0)); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case r, ok := <-ch:
		switch {
		case !ok:
			return fmt.Errorf("%s: chromium closed the pipe", method)
		case r.Error != nil:
			return fmt.Errorf("%s: %s", method, r.Error.Message)
		case out != nil:
			return json.Unmarshal(r.Result, out)
		}
		return nil
	case <-time.After(cdpCallTimeout):
		b.mu.Lock()
		delete(b.waiting, id)
		b.mu.Unlock()
		return fmt.Errorf("%s: no answer in %v", method, cdpCallTimeout)
	}
}

func (b *browser) navigate(url string) {
	b.t.Helper()
	var res struct {
		ErrorText string `json:"errorText"`
	}
	if err := b.call("Page.navigate", map[string]any{"url": url}, &res); err != nil || res.ErrorText != "" {
		b.t.Fatalf("navigate to %s: %v %s", url, err, res.ErrorText)
	}
}

// eval evaluates a JavaScript expression in the page and returns its value.
func (b *browser) eval(expr string) (json.RawMessage, error) {
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := b.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res); err != nil {
		return nil, err
	}
	if res.Exception != nil {
		return nil, fmt.Errorf("%s: %s", expr, res.Exception.Text)
	}
	return res.Result.Value, nil
}

// run evaluates statements that act on the page, such as a click.
func (b *browser) run(js string) {
	b.t.Helper()
	if _, err := b.eval("(() => {" + js + "})()"); err != nil {
		b.t.Fatal(err)
	}
}

// waitFor polls until expr is true: after a click the old page stays
// until the new one replaces it, and evaluations fail in between.
func (b *browser) waitFor(expr, what string) {
	b.t.Helper()
	deadline := time.Now().Add(cdpWaitTimeout)
	var last error
	for time.Now().Before(deadline) {
		v, err := b.eval(expr)
		if err == nil && string(v) == "true" {
			return
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	loc, _ := b.eval("location.href")
	b.t.Fatalf("no %s after %v (last error %v) at %s; the page says:\n%s", what, cdpWaitTimeout, last, loc, b.text())
}

func (b *browser) text() string {
	v, err := b.eval("document.body ? document.body.innerText : ''")
	var s string
	if err != nil || json.Unmarshal(v, &s) != nil {
		return fmt.Sprintf("(no text: %v)", err)
	}
	return s
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
