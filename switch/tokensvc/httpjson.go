package tokensvc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// requestBodyBytesMax bounds a request body: the largest is a card's
// details, well under a kilobyte.
const requestBodyBytesMax = 4096

// apiError is an answer other than success: an HTTP status and a JSON body
// {"error": message, "code": code, ...extra}. Messages are for people and
// never carry a card number, code, password or session.
type apiError struct {
	status  int
	code    string
	message string
	extra   map[string]any
	// retryAfter, when positive, is sent as Retry-After (whole seconds).
	retryAfter time.Duration
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func (e *apiError) with(key string, v any) *apiError {
	if e.extra == nil {
		e.extra = map[string]any{}
	}
	e.extra[key] = v
	return e
}

func newError(status int, code, message string) *apiError {
	return &apiError{status: status, code: code, message: message}
}

func errBadRequest(code, message string) *apiError {
	return newError(http.StatusBadRequest, code, message)
}

// errNotFound is the one answer for a token, device or binding that does
// not exist or is not the caller's: the two are not told apart.
func errNotFound(what string) *apiError {
	return newError(http.StatusNotFound, "not_found", what+" not found")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, e *apiError) {
	markConflict(w, e)
	body := map[string]any{}
	for k, v := range e.extra {
		body[k] = v
	}
	body["error"], body["code"] = e.message, e.code
	if e.retryAfter > 0 {
		secs := int64((e.retryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		body["retry_after_seconds"] = secs
	}
	writeJSON(w, e.status, body)
}

// decodeBody reads one JSON object into v: at most requestBodyBytesMax
// bytes, no unknown fields, nothing after it. Its errors never quote the
// body, which may hold a card number.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) *apiError {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, requestBodyBytesMax))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("more than one JSON value")
	}
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooBig):
		return newError(http.StatusRequestEntityTooLarge, "body_too_large",
			fmt.Sprintf("request body over %d bytes", requestBodyBytesMax))
	default:
		return errBadRequest("bad_json", "request body is not the JSON object this endpoint takes: "+jsonProblem(err))
	}
}

// jsonProblem describes a decoding error by kind only: json's own messages
// can quote the offending value.
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "malformed JSON"
	case errors.As(err, &typ):
		return "field " + strconv.Quote(typ.Field) + " has the wrong type"
	default:
		// "json: unknown field \"x\"" names the field, not its value.
		if msg := err.Error(); len(msg) < 80 && !containsDigitRun(msg) {
			return msg
		}
		return "unexpected content"
	}
}

// containsDigitRun reports a run of 3 or more digits: a message with one
// might be quoting a CVN2 or a card number.
func containsDigitRun(s string) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			run++
			if run >= 3 {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}
