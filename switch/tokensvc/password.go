package tokensvc

// Logins and passwords follow NIST SP 800-63B (memorized secrets, 5.1.1):
//
//   - at least passwordRunesMin (8) characters, at most passwordRunesMax
//     (128); SP 800-63B rev. 3 asks for 8 with rate limiting, which the
//     throttle is (throttle.go). Rev. 4 asks for 15 where a password is
//     the only factor; here it is not the only guard of what matters: a
//     card is bound only with the issuer's SMS code to the cardholder,
//     and a phone turned off comes back on only with the password again.
//   - every printable character and the space are allowed, Unicode too
//     (normalised NFKC before it is checked and hashed, so a password
//     typed on another keyboard still matches); control characters and
//     invalid UTF-8 are refused, and so is a password of spaces alone.
//   - refused: the common passwords of passwords/common.txt (John the
//     Ripper's list, public domain, shipped in the repository), compared
//     lower-cased; one character repeated or a run such as "12345678";
//     and context words: the login itself, or "tapswitch".
//   - no other composition rule (no "one digit, one capital"), no expiry.
//
// Logins are case-folded: "Alice" and "alice" are one account. The
// alphabet is ASCII (A-Z a-z 0-9 . _ @ + -), so lower-casing is the whole
// folding and no Unicode normalisation is needed; the stored login is the
// lower-case one. Stores made before folding may hold a login with
// capitals, which no log-in reaches any more; there is no production data,
// so none is converted (docs/api.md says so).

import (
	"bufio"
	"bytes"
	_ "embed"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Password and login rules.
const (
	passwordRunesMin = 8
	passwordRunesMax = 128
	// passwordBytesMax is passwordRunesMax characters of 4 bytes: a longer
	// string is refused before anything else looks at it.
	passwordBytesMax = 4 * passwordRunesMax
	// contextLoginRunesMin: a login this long or longer is refused
	// anywhere in a password; a shorter one only as the whole of it (a
	// 3-letter login is too likely inside a good passphrase).
	contextLoginRunesMin = 4
)

// serviceWords are the context words of this service (SP 800-63B: "the
// name of the service").
var serviceWords = []string{"tapswitch"}

// loginPattern is what a login may be as typed: fit for store keys ('/'
// separates key parts) and for the vault's wallet account field
// (printable ASCII, 64 bytes).
var loginPattern = regexp.MustCompile(`^[A-Za-z0-9._@+-]{3,64}$`)

// foldLogin returns the account's login for a login as typed: lower-case.
// ok is false for one outside loginPattern. The pattern is checked before
// folding, so no non-ASCII letter folds into an ASCII login.
func foldLogin(typed string) (login string, ok bool) {
	if !loginPattern.MatchString(typed) {
		return "", false
	}
	return strings.ToLower(typed), true
}

//go:embed passwords/common.txt
var commonPasswordsFile []byte

// commonPasswords is passwords/common.txt, lower-cased.
var commonPasswords = parseCommonPasswords(commonPasswordsFile)

func parseCommonPasswords(file []byte) map[string]struct{} {
	out := make(map[string]struct{}, 4096)
	sc := bufio.NewScanner(bytes.NewReader(file))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out[strings.ToLower(norm.NFKC.String(line))] = struct{}{}
	}
	if sc.Err() != nil || len(out) < 1000 {
		panic(fmt.Sprintf("tokensvc: passwords/common.txt unreadable (%d entries, %v)", len(out), sc.Err()))
	}
	return out
}

// normalizePassword is the form a password is checked and hashed in.
func normalizePassword(password string) string { return norm.NFKC.String(password) }

// passwordProblem says why a new password for login is refused, "" if it
// is not. login is folded.
func passwordProblem(login, password string) string {
	if len(password) > passwordBytesMax || !utf8.ValidString(password) {
		return fmt.Sprintf("password must be %d-%d characters", passwordRunesMin, passwordRunesMax)
	}
	for _, r := range password {
		if unicode.IsControl(r) {
			return "password must be printable characters and spaces, without control characters"
		}
	}
	p := normalizePassword(password)
	if n := utf8.RuneCountInString(p); n < passwordRunesMin || n > passwordRunesMax {
		return fmt.Sprintf("password must be %d-%d characters", passwordRunesMin, passwordRunesMax)
	}
	if strings.TrimSpace(p) == "" {
		return "password must not be spaces alone"
	}
	folded := strings.ToLower(p)
	if _, common := commonPasswords[folded]; common {
		return "password is one of the most common passwords; choose another (a few words make a good one)"
	}
	if _, common := commonPasswords[strings.TrimSpace(folded)]; common {
		return "password is one of the most common passwords; choose another (a few words make a good one)"
	}
	if monotonous(folded) {
		return "password must not be one character repeated or a run such as 12345678 or abcdefgh"
	}
	if containsContextWord(login, folded) {
		return "password must not contain your login or the service's name"
	}
	return ""
}

// monotonous reports a password that is one character repeated or a run
// counting up or down by one ("aaaaaaaa", "12345678", "hgfedcba").
func monotonous(p string) bool {
	runes := []rune(p)
	for _, step := range []rune{0, 1, -1} {
		run := true
		for i := 1; i < len(runes) && run; i++ {
			run = runes[i]-runes[i-1] == step
		}
		if run {
			return true
		}
	}
	return false
}

func containsContextWord(login, folded string) bool {
	for _, w := range serviceWords {
		if strings.Contains(folded, w) {
			return true
		}
	}
	if utf8.RuneCountInString(login) >= contextLoginRunesMin {
		return strings.Contains(folded, login)
	}
	return strings.TrimSpace(folded) == login
}
