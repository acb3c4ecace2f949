package runtime

import (
	"context"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/xascript/xascript/bindings"
)

// CallbackGrace is how long a callback of the event loop may go on running
// after an interrupt before it is cut short. When a disk monitor is
// interrupted, its tap is stopped first and the events its last rescan
// found are delivered to the callbacks (what reached the disk is reported);
// each of those callbacks runs normally, and only one that has not returned
// within CallbackGrace is interrupted.
const CallbackGrace = time.Second

// interruptWatch turns the user's interrupt (Config.Env.Ctx ending) into the
// end of the Lua code that is running. Bindings that wait (sleep, list
// walks) see Env.Ctx themselves, but Lua code that calls none of them
// (`while true do end`, a walk_list callback that never returns) would not:
// so the state runs under a second context, the kill context, that
// gopher-lua checks before every instruction (LState.SetContext). Once it
// is cancelled no Lua code runs any more: an error raised by it can be
// caught by pcall, but the instruction after pcall raises again, so a
// script cannot swallow an interrupt and go on.
//
// When the kill context is cancelled depends on what runs:
//   - the main chunk (and everything it calls): at once;
//   - the event loop: not while it delivers what is queued (a disk monitor's
//     last events), only when a callback has not returned for CallbackGrace.
type interruptWatch struct {
	kill context.CancelFunc
	done chan struct{}

	mu   sync.Mutex
	loop *bindings.Loop // non-nil while the event loop runs
}

// watchInterrupts sets L's kill context and watches ctx (the user's
// interrupt). stop undoes both; call it when the run ends.
func watchInterrupts(L *lua.LState, ctx context.Context) (w *interruptWatch, stop func()) {
	killCtx, kill := context.WithCancel(context.Background())
	L.SetContext(killCtx)
	w = &interruptWatch{kill: kill, done: make(chan struct{})}
	if ctx.Err() != nil {
		kill() // interrupted before it began: nothing runs (not a race with watch)
	}
	go w.watch(ctx)
	return w, func() {
		close(w.done)
		kill()
		L.RemoveContext()
	}
}

// inLoop says that the event loop now runs (loop non-nil) or has returned.
func (w *interruptWatch) inLoop(loop *bindings.Loop) {
	w.mu.Lock()
	w.loop = loop
	w.mu.Unlock()
}

func (w *interruptWatch) watch(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-w.done:
		return
	}
	w.mu.Lock()
	loop := w.loop
	w.mu.Unlock()
	if loop == nil {
		w.kill()
		return
	}
	// The loop drains its queue: cut short only a callback that makes no
	// progress for a whole CallbackGrace.
	last := loop.Delivered()
	t := time.NewTicker(CallbackGrace)
	defer t.Stop()
	for {
		select {
		case <-w.done:
			return
		case <-t.C:
			n := loop.Delivered()
			w.mu.Lock()
			running := w.loop != nil
			w.mu.Unlock()
			if n == last || !running {
				w.kill()
				return
			}
			last = n
		}
	}
}
