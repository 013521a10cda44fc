package terminal

import "sync/atomic"

// idleWorkersMax bounds the goroutines kept parked between requests.
const idleWorkersMax = 256

// workers runs each request on a goroutine that outlives it. A new
// goroutine starts on a small stack, and a request grows it by copying
// several times on its way down into Pebble's look-ups and commits
// (runtime.newstack and copystack were 5 % of switchd's CPU under bench); a
// goroutine that has served a request keeps its grown stack for the next:
// in five interleaved bench runs (bench/scripts/profile.sh, 10 s), median
// switch CPU per authorization 125 µs against 141 with a goroutine per
// request (lower in four of the five). Up to idleWorkersMax wait for work;
// beyond that a worker ends when its request does, and when no worker is
// idle a request starts a new one, so requests never queue here. Workers
// end once stop is closed.
type workers struct {
	tasks   chan func() // unbuffered: a send succeeds only to a waiting worker
	stop    <-chan struct{}
	idle    atomic.Int32
	started atomic.Int64 // goroutines started, for tests
}

func newWorkers(stop <-chan struct{}) *workers {
	return &workers{tasks: make(chan func()), stop: stop}
}

// run runs task on an idle worker, or on a new one.
func (w *workers) run(task func()) {
	select {
	case w.tasks <- task:
	default:
		w.started.Add(1)
		go w.work(task)
	}
}

func (w *workers) work(task func()) {
	for {
		task()
		if w.idle.Add(1) > idleWorkersMax {
			w.idle.Add(-1)
			return
		}
		select {
		case task = <-w.tasks:
			w.idle.Add(-1)
		case <-w.stop:
			w.idle.Add(-1)
			return
		}
	}
}
