package journal

import "sync"

// lifecycle lets Close wait for the calls in progress and refuse new ones.
// It counts calls rather than holding a read lock across them, so a ScanDay
// callback that calls the Journal cannot deadlock against a pending Close.
type lifecycle struct {
	mu       sync.Mutex
	idle     sync.Cond // signalled when inflight drops to zero after close
	inflight int
	closed   bool
}

// enter registers a call; false once the journal is closed.
func (l *lifecycle) enter() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.inflight++
	return true
}

// leave ends a call registered by enter.
func (l *lifecycle) leave() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inflight--
	if l.inflight == 0 && l.closed {
		l.idle.Broadcast()
	}
}

// close refuses new calls and waits for those in progress; false if it was
// already closed.
func (l *lifecycle) close() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.closed = true
	for l.inflight > 0 {
		l.idle.Wait()
	}
	return true
}
