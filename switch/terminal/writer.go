package terminal

import (
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
)

// pendingBytesMax bounds the answers waiting for one connection's writer.
// The requests in flight bound them already (one answer each, at most
// InflightPerConnectionMax); the bound also holds the reader's own answers
// to malformed frames while the terminal does not read. A sender that
// finds it full waits for the writer, so TCP pushes back as before. One
// answer larger than the bound is still taken when nothing is pending.
const pendingBytesMax = 64 << 10

// answerWriter is a connection's one writer. Senders append their framed
// answers to a pending buffer under a mutex and wake the writer; the
// writer swaps that buffer for its spare one and writes everything pending
// in one write, under the write time-out. So answers that are ready
// together leave in one system call, an answer costs no allocation and no
// channel hand-off, and the only timer is the write deadline, moved once
// per write, not per answer.
type answerWriter struct {
	conn         net.Conn
	writeTimeout time.Duration

	mu      sync.Mutex
	space   sync.Cond // signalled when pending is taken or the writer stops
	pending []byte
	stopped bool // Close was called or a write failed: Send refuses

	wake      chan struct{} // capacity 1: pending has bytes
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	err       error // set before done is closed
}

func newAnswerWriter(conn net.Conn, writeTimeout time.Duration) *answerWriter {
	w := &answerWriter{
		conn:         conn,
		writeTimeout: writeTimeout,
		pending:      make([]byte, 0, 4096),
		wake:         make(chan struct{}, 1),
		stop:         make(chan struct{}),
		done:         make(chan struct{}),
	}
	w.space.L = &w.mu
	go w.run()
	return w
}

// Send queues payload with its length header; payload may be reused as
// soon as Send returns. It fails once the writer has stopped.
func (w *answerWriter) Send(payload []byte) error {
	if len(payload) == 0 || len(payload) > 65535 {
		return fmt.Errorf("payload of %d bytes cannot be framed", len(payload))
	}
	w.mu.Lock()
	for !w.stopped && len(w.pending) > 0 && len(w.pending)+2+len(payload) > pendingBytesMax {
		w.space.Wait()
	}
	if w.stopped {
		w.mu.Unlock()
		return iso8583.ErrWriterClosed
	}
	w.pending = binary.BigEndian.AppendUint16(w.pending, uint16(len(payload)))
	w.pending = append(w.pending, payload...)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default: // the writer is already woken; it will take these bytes too
	}
	return nil
}

// Close writes what is pending, then stops. It does not close the
// connection. It returns the first write error, if any.
func (w *answerWriter) Close() error {
	w.closeOnce.Do(func() { close(w.stop) })
	<-w.done
	return w.err
}

// failed reports whether the writer stopped on a failed write; valid once
// Done is closed.
func (w *answerWriter) failed() bool { return w.err != nil }

// Done is closed when the writer has stopped.
func (w *answerWriter) Done() <-chan struct{} { return w.done }

func (w *answerWriter) run() {
	defer close(w.done)
	spare := make([]byte, 0, 4096)
	for {
		final := false
		select {
		case <-w.wake:
		case <-w.stop:
			final = true
		}
		w.mu.Lock()
		batch := w.pending
		w.pending = spare[:0]
		w.stopped = w.stopped || final
		w.space.Broadcast()
		w.mu.Unlock()
		if len(batch) > 0 {
			if err := w.write(batch); err != nil {
				w.err = err
				final = true
			}
		}
		if final {
			w.mu.Lock()
			w.stopped = true
			w.space.Broadcast()
			w.mu.Unlock()
			return
		}
		spare = batch
	}
}

func (w *answerWriter) write(buf []byte) error {
	if err := w.conn.SetWriteDeadline(time.Now().Add(w.writeTimeout)); err != nil {
		return err
	}
	_, err := w.conn.Write(buf)
	return err
}
