package bindings

import (
	lua "github.com/yuin/gopher-lua"

	"github.com/xascript/xascript/vmi"
)

// Describer is implemented by guests that can say how they were opened and
// where the kernel was found; guest_info() shows it to scripts.
type Describer interface {
	Describe() vmi.KernelInfo
}

// Guests that run are vmi.Pausers (pause, resume, with_paused); for the
// others, dumps, those bindings do nothing.

// Flusher is implemented by guests with caches: Flush drops what was read
// through them (on a live target, by moving its vmi.Generation).
type Flusher interface {
	Flush()
}

func targetArea(env *Env) Area {
	return Area{
		Name:        "target",
		Title:       "The target",
		NeedsTarget: true,
		Doc: "What the script runs against: how the target was opened and the kernel found in it, and control " +
			"over the translation cache.",
		Bindings: []Binding{
			{Name: "guest_info", Signature: "guest_info() -> object",
				Doc: "Returns how the guest was opened and its kernel located, with fields `target` (the dump format), " +
					"`paging` (`\"4-level\"`, `\"5-level\"`, `\"PAE\"`, ...), `root` (page-table root, an address), " +
					"`root_source`, `banner`, `text_phys` (physical address of `_text`), `kaslr_virtual` and " +
					"`kaslr_physical` (the KASLR offsets, addresses that wrap for negative values), `symbol_shift` " +
					"(added to the symbol file's addresses), `symbols` (how many) and `notes` (findings, e.g. a CPU root " +
					"that did not map the kernel). It is a plain table, a copy made for this call: `pairs` lists its fields, and " +
					"changing it changes nothing else.",
				Fn: func(L *lua.LState) int {
					d, ok := needGuest(L, env).(Describer)
					if !ok {
						L.RaiseError("guest_info: this target cannot describe itself")
					}
					L.Push(guestInfoTable(L, env, d.Describe()))
					return 1
				}},
			{Name: "pause", Signature: "pause() -> true | nil, err",
				Doc: "Pauses a live guest so that memory holds still while the script reads it, and drops what was " +
					"cached while it ran. A guest that is already paused (by the script, by `--pause` or by an operator) " +
					"stays paused; xascript resumes at exit only what it paused itself. A dump never changes: there it " +
					"does nothing and returns true.",
				Fn: func(L *lua.LState) int {
					if p, ok := needGuest(L, env).(vmi.Pauser); ok {
						env.BlockingPoint() // a live guest's pause waits for the hypervisor
						if err := p.Pause(); err != nil {
							return fault(L, err)
						}
					}
					L.Push(lua.LTrue)
					return 1
				}},
			{Name: "resume", Signature: "resume() -> true | nil, err",
				Doc: "Lets a live guest that xascript paused (`pause()`, `--pause`) run again, and drops what was cached " +
					"while it was paused (its page tables may change). A pause that xascript did not take, such as an " +
					"operator's, is left alone. Does nothing on a dump.",
				Fn: func(L *lua.LState) int {
					if p, ok := needGuest(L, env).(vmi.Pauser); ok {
						env.BlockingPoint()
						if err := p.Resume(); err != nil {
							return fault(L, err)
						}
					}
					L.Push(lua.LTrue)
					return 1
				}},
			{Name: "with_paused", Signature: "with_paused(fn, ...) -> fn's results",
				Doc: "Calls `fn(...)` with the guest paused and resumes it afterwards, also when `fn` raises an error " +
					"(which is then raised again). A guest that was already paused stays paused.",
				Fn: withPaused(env)},
			{Name: "flush_cache", Signature: "flush_cache()",
				Doc: "Drops everything cached from the guest, so that the next reads see it afresh: virtual-to-physical " +
					"translations (the kernel's and every process's), and on a live target its mapped pages, pages that " +
					"failed to map and a Xen PV guest's frame table. xascript does this by itself whenever it sees the " +
					"guest stop or resume (its own `pause()`/`resume()`, or an operator's on QEMU); call it when the guest " +
					"may have changed otherwise, such as a running guest polled in a loop. A dump never changes.",
				Fn: func(L *lua.LState) int {
					if f, ok := needGuest(L, env).(Flusher); ok {
						f.Flush()
					}
					return 0
				}},
		},
	}
}

func withPaused(env *Env) lua.LGFunction {
	return func(L *lua.LState) int {
		g := needGuest(L, env)
		fn := L.CheckFunction(1)
		args := make([]lua.LValue, 0, L.GetTop()-1)
		for i := 2; i <= L.GetTop(); i++ {
			args = append(args, L.Get(i))
		}
		p, live := g.(vmi.Pauser)
		wasPaused := live && p.Paused()
		if live && !wasPaused {
			env.BlockingPoint()
			if err := p.Pause(); err != nil {
				L.RaiseError("with_paused: %v", err)
			}
		}
		top := L.GetTop()
		L.Push(fn)
		for _, a := range args {
			L.Push(a)
		}
		env.callbacks++ // fn's error, raised again below, stays fn's (named)
		err := L.PCall(len(args), lua.MultRet, nil)
		if err == nil {
			env.callbacks--
		}
		if live && !wasPaused {
			env.BlockingPoint()
			if rerr := p.Resume(); rerr != nil && err == nil {
				L.RaiseError("with_paused: resume: %v", rerr)
			}
		}
		if err != nil {
			if api, ok := err.(*lua.ApiError); ok && api.Object != nil {
				L.Error(api.Object, 0) // re-raise fn's own error value
			}
			L.RaiseError("%v", err)
		}
		return L.GetTop() - top
	}
}

// guestInfoTable is vmi.KernelInfo as scripts see it: a plain table (pairs
// works, an assignment is kept like in any table), 64-bit values as
// addresses (a Lua number would round them).
func guestInfoTable(L *lua.LState, env *Env, i vmi.KernelInfo) *lua.LTable {
	t := L.NewTable()
	set := func(k string, v lua.LValue) { t.RawSetString(k, v) }
	set("target", lua.LString(i.Target))
	set("paging", lua.LString(i.Paging))
	set("root", newAddress(L, env, i.Root))
	set("root_source", lua.LString(i.RootSource))
	set("banner", lua.LString(i.Banner))
	set("text_phys", newAddress(L, env, i.TextPhys))
	set("kaslr_virtual", newAddress(L, env, uint64(i.KASLRVirtual)))
	set("kaslr_physical", newAddress(L, env, uint64(i.KASLRPhysical)))
	set("symbol_shift", newAddress(L, env, uint64(i.SymbolShift)))
	set("symbols", lua.LNumber(i.Symbols))
	notes := L.NewTable()
	for _, n := range i.Notes {
		notes.Append(lua.LString(n))
	}
	set("notes", notes)
	return t
}
