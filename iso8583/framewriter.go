package iso8583

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// ErrWriterClosed is returned by Send once the writer has stopped, because
// Close was called or a write failed.
var ErrWriterClosed = errors.New("frame writer closed")

// writeBatchBytesMax bounds how many bytes one coalesced write carries.
const writeBatchBytesMax = 64 << 10

// FrameWriter is the one writer of a connection: senders queue framed
// messages, and its goroutine coalesces everything pending into one write per
// wakeup (one syscall for many replies under load), each under a deadline.
type FrameWriter struct {
	conn         net.Conn
	queue        chan []byte
	writeTimeout time.Duration
	stop         chan struct{}
	done         chan struct{}
	closeOnce    sync.Once
	err          error // set before done is closed
}

// NewFrameWriter starts a writer on conn. queueMax bounds the frames waiting
// to be written; Send blocks while the queue is full.
func NewFrameWriter(conn net.Conn, queueMax int, writeTimeout time.Duration) *FrameWriter {
	w := &FrameWriter{
		conn:         conn,
		queue:        make(chan []byte, queueMax),
		writeTimeout: writeTimeout,
		stop:         make(chan struct{}),
		done:         make(chan struct{}),
	}
	go w.run()
	return w
}

// Send queues payload; the writer adds the length header as it copies the
// payload into its batch, so payload must not change after Send. It fails
// once the writer has stopped.
func (w *FrameWriter) Send(payload []byte) error {
	if len(payload) == 0 || len(payload) > 65535 {
		return fmt.Errorf("payload of %d bytes cannot be framed", len(payload))
	}
	select {
	case <-w.done:
		return ErrWriterClosed
	case <-w.stop:
		return ErrWriterClosed
	default:
	}
	select {
	case w.queue <- payload:
		return nil
	case <-w.done:
		return ErrWriterClosed
	}
}

// Close writes what is queued, then stops. It does not close the connection.
// It returns the first write error, if any.
func (w *FrameWriter) Close() error {
	w.closeOnce.Do(func() { close(w.stop) })
	<-w.done
	return w.err
}

// Done is closed when the writer has stopped.
func (w *FrameWriter) Done() <-chan struct{} { return w.done }

func (w *FrameWriter) run() {
	defer close(w.done)
	buf := make([]byte, 0, 4096)
	for {
		var payload []byte
		select {
		case payload = <-w.queue:
		case <-w.stop:
			w.err = w.flushQueued(buf)
			return
		}
		buf, _ = AppendFrame(buf[:0], payload)
		buf = w.drainInto(buf)
		if err := w.write(buf); err != nil {
			w.err = err
			return
		}
	}
}

// drainInto appends frames already queued, up to the batch bound.
func (w *FrameWriter) drainInto(buf []byte) []byte {
	for len(buf) < writeBatchBytesMax {
		select {
		case payload := <-w.queue:
			buf, _ = AppendFrame(buf, payload)
		default:
			return buf
		}
	}
	return buf
}

func (w *FrameWriter) flushQueued(buf []byte) error {
	for {
		buf = w.drainInto(buf[:0])
		if len(buf) == 0 {
			return nil
		}
		if err := w.write(buf); err != nil {
			return err
		}
	}
}

func (w *FrameWriter) write(buf []byte) error {
	if err := w.conn.SetWriteDeadline(time.Now().Add(w.writeTimeout)); err != nil {
		return err
	}
	_, err := w.conn.Write(buf)
	return err
}
