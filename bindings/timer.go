package bindings

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// minInterval keeps every() from flooding the one Lua goroutine (and the
// guest with reads): a monitor that wants more than 1,000 polls a second
// loops with no sleep.
const minInterval = time.Millisecond

func timerArea(env *Env) Area {
	return Area{
		Name:  "timers",
		Title: "Timers",
		Doc: "A monitor that both polls memory and receives disk events cannot `sleep` in a loop: events are delivered " +
			"only while the script waits in its event loop. A timer runs a function periodically from that same loop, " +
			"between event callbacks, so a poll and a disk event never run at the same time.",
		Bindings: []Binding{
			{Name: "every", Signature: "every(seconds, fn) -> timer",
				Doc: "Calls `fn()` every `seconds` (fractions allowed, at least 0.001, at most a day) on the script's event " +
					"loop, which runs once the script's last line is done, for as long as a timer or a watch holds it. " +
					"Ticks missed while `fn` or another callback ran are dropped, not queued. `fn` may return `false` to " +
					"stop its timer; an error in `fn` ends the script as an error in an event callback does. Returns a " +
					"timer with `t:cancel()` and `t.interval`.",
				Fn: every(env)},
		},
	}
}

func every(env *Env) lua.LGFunction {
	return func(L *lua.LState) int {
		n, ok := L.Get(1).(lua.LNumber)
		secs := float64(n)
		if !ok || math.IsNaN(secs) || secs < minInterval.Seconds() || secs > maxSleep.Seconds() {
			L.RaiseError("every: seconds must be a number from 0.001 to 86400, not %s", L.Get(1).String())
		}
		fn := L.CheckFunction(2)
		interval := time.Duration(secs * float64(time.Second))
		loop := env.loop()
		release := loop.Hold()
		done := make(chan struct{})
		var once sync.Once
		cancel := func() { once.Do(func() { close(done) }) }
		// queued is set while a tick waits in the loop's queue: a slow
		// callback skips ticks instead of filling the queue that disk
		// events share.
		var queued atomic.Bool
		tick := func(L *lua.LState) error {
			queued.Store(false)
			select {
			case <-done:
				return nil
			default:
			}
			if err := L.CallByParam(lua.P{Fn: fn, NRet: 1, Protect: true}); err != nil {
				cancel()
				return err
			}
			if ret := L.Get(-1); ret == lua.LFalse {
				cancel()
			}
			L.Pop(1)
			return nil
		}
		go func() {
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					if queued.CompareAndSwap(false, true) && !loop.Post(env.Ctx, tick) {
						cancel()
					}
				case <-done:
					// Released from the loop, after callbacks queued before it.
					if !loop.Post(env.Ctx, func(*lua.LState) error { release(); return nil }) {
						release()
					}
					return
				case <-env.Ctx.Done():
					release()
					return
				}
			}
		}()
		h := L.NewTable()
		h.RawSetString("interval", lua.LNumber(secs))
		h.RawSetString("cancel", L.NewFunction(func(L *lua.LState) int {
			cancel()
			return 0
		}))
		L.Push(h)
		return 1
	}
}
