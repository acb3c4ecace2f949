package bindings

import (
	"context"
	"sync"
	"sync/atomic"

	lua "github.com/yuin/gopher-lua"
)

// Loop delivers what other goroutines produce (disk events today; timers
// later) to the one goroutine that owns the Lua state. After a script's main
// chunk returns, the runtime runs the loop for as long as a source holds it
// (an open watch) and the script has not called stop().
type Loop struct {
	queue chan func(*lua.LState) error
	wake  chan struct{}
	// closed ends every Post once the script has ended: a source must never
	// wait for a loop that will not run again.
	closed    chan struct{}
	closeOnce sync.Once

	mu      sync.Mutex
	holds   int
	stopped bool

	// delivered counts the callbacks that returned: the runtime's interrupt
	// watch tells a callback that never returns from a queue being drained.
	delivered atomic.Uint64
}

// Delivered is the number of callbacks Run has called that returned.
func (l *Loop) Delivered() uint64 { return l.delivered.Load() }

// call runs one queued callback and counts it.
func (l *Loop) call(fn func(*lua.LState) error, L *lua.LState) error {
	err := fn(L)
	l.delivered.Add(1)
	return err
}

// loopQueue bounds the callbacks waiting for the Lua goroutine; a source that
// finds it full waits (the disk tracker, never the guest's I/O).
const loopQueue = 1024

// NewLoop makes an empty loop.
func NewLoop() *Loop {
	return &Loop{queue: make(chan func(*lua.LState) error, loopQueue), wake: make(chan struct{}, 1),
		closed: make(chan struct{})}
}

// Close tells sources that nothing will be delivered any more; Post then
// returns false at once. The runtime closes the loop when the script ends.
func (l *Loop) Close() { l.closeOnce.Do(func() { close(l.closed) }) }

// Hold keeps the loop running until release is called (at most once counts).
func (l *Loop) Hold() (release func()) {
	l.mu.Lock()
	l.holds++
	l.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			l.holds--
			l.mu.Unlock()
			l.poke()
		})
	}
}

// Stop makes Run return after the callback now running.
func (l *Loop) Stop() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
	l.poke()
}

func (l *Loop) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Post queues fn for the Lua goroutine, waiting while the queue is full. It
// reports false when ctx ended or the loop was closed first.
func (l *Loop) Post(ctx context.Context, fn func(*lua.LState) error) bool {
	select {
	case <-l.closed:
		return false
	default:
	}
	select {
	case l.queue <- fn:
		return true
	case <-ctx.Done():
		return false
	case <-l.closed:
		return false
	}
}

// Pending tells whether Run has anything to wait for.
func (l *Loop) Pending() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.stopped && (l.holds > 0 || len(l.queue) > 0)
}

// Run calls queued callbacks on L until nothing holds the loop, stop() is
// called, a callback fails (its error is returned) or ctx ends (callbacks
// already queued then still run).
// beforeBlock runs each time the loop is about to wait (the runtime flushes
// output there).
func (l *Loop) Run(ctx context.Context, L *lua.LState, beforeBlock func()) error {
	for {
		l.mu.Lock()
		stopped, holds := l.stopped, l.holds
		l.mu.Unlock()
		if stopped {
			return nil
		}
		select {
		case fn := <-l.queue:
			if err := l.call(fn, L); err != nil {
				return err
			}
			continue
		default:
		}
		if holds == 0 {
			return nil
		}
		if beforeBlock != nil {
			beforeBlock()
		}
		select {
		case fn := <-l.queue:
			if err := l.call(fn, L); err != nil {
				return err
			}
		case <-l.wake:
		case <-ctx.Done():
			// Interrupted: what was already found (a disk monitor's last
			// rescan at shutdown) is delivered before the script ends.
			for {
				select {
				case fn := <-l.queue:
					if err := l.call(fn, L); err != nil {
						return err
					}
				default:
					return ctx.Err()
				}
			}
		}
	}
}
