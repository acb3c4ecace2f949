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
				Doc: "Waits `seconds` (a number, fractions allowed, at most a day) without holding the guest paused. " +
					"An interrupt (Ctrl-C) while waiting raises an error, so the script ends as it would on a fault and " +
					"a guest paused by `--pause` is resumed. What the script printed so far reaches its reader (a pipe, a file) before " +
					"the wait.",
				Fn: func(L *lua.LState) int {
					n, ok := L.Get(1).(lua.LNumber)
					secs := float64(n)
					if !ok || secs < 0 || secs != secs {
						L.RaiseError("sleep: seconds must be a number >= 0, not %s", L.Get(1).String())
					}
					d := min(time.Duration(secs*float64(time.Second)), maxSleep)
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
