package tokensvc

import (
	"bytes"
	"io"
	"maps"
	"net/http"

	"github.com/tapswitch/tapswitch/switch/replica"
)

// In a cluster every node writes to the one replicated store, and a write
// whose reads another node's write overtook is refused (replica.ErrConflict:
// the store runs the read-check-write again only through its caller). The
// API's handlers answer such a write 503 "conflict"; in cluster mode open
// runs the handler again instead, up to conflictTriesMax times, and the
// client sees only the last run. Running a handler again is what a client
// retrying the 503 would do, which every handler already allows (a write
// cut off half-way is healed by asking again); the runs before the last
// are dropped unanswered, having answered nothing but the 503. The
// lost-phone page runs the API's handlers through it too (webcall.go).

// errConflictCode is the API code of a write that lost to another node's.
const errConflictCode = "conflict"

// conflictWriter holds one run's answer until it is known not to be a lost
// write.
type conflictWriter struct {
	header   http.Header
	status   int
	body     bytes.Buffer
	conflict bool
}

func (c *conflictWriter) Header() http.Header { return c.header }

func (c *conflictWriter) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}

func (c *conflictWriter) Write(p []byte) (int, error) {
	c.WriteHeader(http.StatusOK)
	return c.body.Write(p)
}

func (c *conflictWriter) sendTo(w http.ResponseWriter) {
	maps.Copy(w.Header(), c.header)
	c.WriteHeader(http.StatusOK)
	w.WriteHeader(c.status)
	w.Write(c.body.Bytes())
}

// markConflict notes, from writeError, that the run lost to another node.
func markConflict(w http.ResponseWriter, e *apiError) {
	if c, ok := w.(*conflictWriter); ok && e.code == errConflictCode {
		c.conflict = true
	}
}

// retryConflicts runs h until its run is not a lost write (cluster mode
// only; on one node h runs as it is). The request body, at most
// requestBodyBytesMax (decodeBody refuses more), is read once and handed to
// each run.
func (s *Service) retryConflicts(h http.HandlerFunc) http.HandlerFunc {
	if s.st.log == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, requestBodyBytesMax+1))
		if err != nil {
			writeError(w, errBadRequest("bad_body", "the request body could not be read"))
			return
		}
		for try := 1; ; try++ {
			run := &conflictWriter{header: http.Header{}}
			r.Body = io.NopCloser(bytes.NewReader(body))
			h(run, r)
			if !run.conflict || try == conflictTriesMax {
				run.sendTo(w)
				return
			}
			replica.Backoff(try)
		}
	}
}
