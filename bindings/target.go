package bindings

import (
	lua "github.com/yuin/gopher-lua"
	luar "layeh.com/gopher-luar"

	"github.com/xascript/xascript/vmi"
)

// Describer is implemented by guests that can say how they were opened and
// where the kernel was found; guest_info() shows it to scripts.
type Describer interface {
	Describe() vmi.KernelInfo
}

// guestInfoView is vmi.KernelInfo as scripts see it: 64-bit values as addresses
// (luar would turn a uint64 into a rounding Lua number).
type guestInfoView struct {
	Target        string     `luar:"target"`
	Paging        string     `luar:"paging"`
	Root          lua.LValue `luar:"root"`
	RootSource    string     `luar:"root_source"`
	Banner        string     `luar:"banner"`
	TextPhys      lua.LValue `luar:"text_phys"`
	KASLRVirtual  lua.LValue `luar:"kaslr_virtual"`
	KASLRPhysical lua.LValue `luar:"kaslr_physical"`
	SymbolShift   lua.LValue `luar:"symbol_shift"`
	Symbols       int        `luar:"symbols"`
	Notes         lua.LValue `luar:"notes"` // a plain table, so # and ipairs work
}

// Flusher is implemented by guests with a translation cache.
type Flusher interface {
	Flush()
}

func targetArea(env *Env) Area {
	return Area{
		Name:  "target",
		Title: "The target",
		Doc: "What the script runs against: how the target was opened and the kernel found in it, and control " +
			"over the translation cache.",
		Bindings: []Binding{
			{Name: "guest_info", Signature: "guest_info() -> object",
				Doc: "Returns how the guest was opened and its kernel located, with fields `target` (the dump format), " +
					"`paging` (`\"4-level\"`, `\"5-level\"`, `\"PAE\"`, ...), `root` (page-table root, an address), " +
					"`root_source`, `banner`, `text_phys` (physical address of `_text`), `kaslr_virtual` and " +
					"`kaslr_physical` (the KASLR offsets, addresses that wrap for negative values), `symbol_shift` " +
					"(added to the symbol file's addresses), `symbols` (how many) and `notes` (findings, e.g. a CPU root " +
					"that did not map the kernel). Fields are read-only.",
				Fn: func(L *lua.LState) int {
					d, ok := needGuest(L, env).(Describer)
					if !ok {
						L.RaiseError("guest_info: this target cannot describe itself")
					}
					i := d.Describe()
					v := &guestInfoView{
						Target: i.Target, Paging: i.Paging, RootSource: i.RootSource, Banner: i.Banner,
						Root: newAddress(L, env, i.Root), TextPhys: newAddress(L, env, i.TextPhys),
						KASLRVirtual: newAddress(L, env, uint64(i.KASLRVirtual)), KASLRPhysical: newAddress(L, env, uint64(i.KASLRPhysical)),
						SymbolShift: newAddress(L, env, uint64(i.SymbolShift)), Symbols: i.Symbols,
					}
					notes := L.NewTable()
					for _, n := range i.Notes {
						notes.Append(lua.LString(n))
					}
					v.Notes = notes
					L.Push(luar.New(L, v))
					return 1
				}},
			{Name: "flush_cache", Signature: "flush_cache()",
				Doc: "Drops every cached virtual-to-physical translation, so the next reads walk the guest's page " +
					"tables again. Needed only when the guest may have changed them (a live guest that ran); a dump never changes.",
				Fn: func(L *lua.LState) int {
					if f, ok := needGuest(L, env).(Flusher); ok {
						f.Flush()
					}
					return 0
				}},
		},
	}
}
