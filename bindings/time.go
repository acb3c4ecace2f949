package bindings

import (
	"time"

	lua "github.com/yuin/gopher-lua"
)

// maxSleep bounds one sleep() call; a monitor that wants longer loops.
const maxSleep = 24 * time.Hour

func timeArea(env *Env) Area {
	return Area{
		Name:  "time",
		Title: "Time",
		Doc: "Monitors poll: read, compare with what they saw last, sleep, repeat. `sleep` gives the guest time to " +
			"change and is where an interrupt (Ctrl-C) ends a polling script.",
		Bindings: []Binding{
			{Name: "sleep", Signature: "sleep(seconds)",
				Doc: "Waits `seconds` (a number, fractions allowed, from 0 to 86400: at most a day; a negative, infinite or " +
					"NaN number, or a longer wait, raises an error) without holding the guest paused. " +
					"An interrupt (Ctrl-C) while waiting ends the script as an error would, and a guest paused by `--pause` " +
					"is resumed; `pcall` cannot catch it and go on (no Lua code runs after an interrupt). What the script printed so far reaches its reader (a pipe, a file) before " +
					"the wait.",
				Fn: func(L *lua.LState) int {
					n, ok := L.Get(1).(lua.LNumber)
					secs := float64(n)
					// NaN fails both comparisons; +Inf the second (it
					// converts to no sensible Duration).
					if !ok {
						L.RaiseError("sleep: seconds must be a number from 0 to %d (a day), not a %s",
							int(maxSleep.Seconds()), L.Get(1).Type())
					}
					if !(secs >= 0 && secs <= maxSleep.Seconds()) {
						L.RaiseError("sleep: seconds must be a number from 0 to %d (a day), not %s",
							int(maxSleep.Seconds()), n)
					}
					d := time.Duration(secs * float64(time.Second))
					// What the script printed reaches its reader before
					// it waits.
					env.BlockingPoint()
					t := time.NewTimer(d)
					defer t.Stop()
					select {
					case <-t.C:
					case <-env.Ctx.Done():
						L.RaiseError("sleep: interrupted")
					}
					return 0
				}},
			{Name: "now", Signature: "now() -> number",
				Doc: "Returns the time in seconds since the Unix epoch, with fractions (microseconds), for timestamps and " +
					"for timing a script's own work.",
				Fn: func(L *lua.LState) int {
					L.Push(lua.LNumber(float64(time.Now().UnixMicro()) / 1e6))
					return 1
				}},
		},
	}
}
