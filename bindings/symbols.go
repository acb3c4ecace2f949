package bindings

import (
	"errors"
	"strconv"

	lua "github.com/yuin/gopher-lua"

	"github.com/xascript/xascript/vmi"
)

func symbolsArea(env *Env) Area {
	return Area{
		Name:        "symbols",
		Title:       "Symbols and struct layouts",
		NeedsTarget: true,
		Doc: "Symbols come from the kernel's own kallsyms tables in memory, or from `--symbols`, with the KASLR slide " +
			"already applied; the loaded modules' symbols come from each module's own symbol table in memory, read " +
			"again once a live guest has run (modules come and go). Struct layouts come from the kernel's own BTF in memory, or from `--btf`. Member paths may be nested (`\"list.next\"`, " +
			"`\"core_layout.size\"`), may index arrays (`\"arr[2]\"`), and see through anonymous unions and structs. " +
			"A struct name may be given with or without the `struct ` prefix.",
		Bindings: []Binding{
			{Name: "symbol", Signature: "symbol(name) -> address | nil, err",
				Doc: "Returns the run-time address of kernel symbol `name`, or `nil, err` when the profile does not know it. " +
					"A name the kernel image lacks is looked up in the loaded modules, in list order, as the kernel's " +
					"`kallsyms_lookup_name` does: `symbol(\"squashfs_fill_super\")`; `\"module:name\"` looks in one " +
					"module only (`symbol(\"squashfs:init_once\")`, for a name that several modules define).",
				Fn: func(L *lua.LState) int {
					g := needGuest(L, env)
					a, err := g.Symbol(L.CheckString(1))
					if err != nil {
						return fault(L, err)
					}
					pushAddress(L, env, a)
					return 1
				}},
			{Name: "symbol_at", Signature: "symbol_at(addr) -> string, symbol_info | nil, err",
				Doc: "Names the symbol that `addr` lies in, as a kernel backtrace does: `\"name+0xoff\"` for the kernel " +
					"image, `\"name+0xoff [module]\"` for a loaded module (`\"dummy_dev_init+0x10 [dummy]\"`). " +
					"The symbol is the nearest one at or below `addr`, in the kernel image (`_text` to `_end`) or in the " +
					"block of memory (text, data, ...) of the module that holds `addr`. The second result is a table: " +
					"`name`, `module` (nil for the kernel), `address` (the symbol's), `offset` (a number), `type` (the " +
					"nm letter, such as `\"T\"`, or nil) and `text` (true when `addr` is code: the kernel's text or a " +
					"module's). An address in neither the kernel image nor any listed module's memory gives `nil, err` " +
					"with `err` saying \"outside the kernel image\": for a pointer that must lead to kernel code (a " +
					"system-call table entry), a sign that it leads elsewhere, such as to a module hidden from the list.",
				Fn: func(L *lua.LState) int {
					g := needGuest(L, env)
					a := checkAddress(L, 1)
					n, ok := g.(SymbolNamer)
					if !ok {
						L.RaiseError("symbol_at: this target cannot name addresses")
					}
					info, err := n.SymbolAt(a)
					if err != nil {
						return fault(L, err)
					}
					L.Push(lua.LString(formatSymbol(info)))
					L.Push(symbolInfoTable(L, env, info))
					return 2
				}},
			{Name: "offsetof", Signature: "offsetof(struct, member) -> number",
				Doc: "Returns the byte offset of `member` (a dotted path) in `struct` (a name, or a view: its type). Structs that only a loaded module defines " +
					"are found in that module's BTF in memory. An unknown struct or member raises an " +
					"error (a script bug, not a guest fault); probe with `has_member` when a member differs between kernels. " +
					"A bitfield (`task_struct.in_execve`) has no byte offset: `offsetof` raises an error that says it is a " +
					"bitfield, with its width and bit offset, while `has_member` is true for it.",
				Fn: func(L *lua.LState) int {
					g := needGuest(L, env)
					if v, ok := viewArg(L, 1); ok {
						L.Push(lua.LNumber(viewOffsetof(L, env, v, L.CheckString(2))))
						return 1
					}
					off, err := g.Offsetof(L.CheckString(1), L.CheckString(2))
					if err != nil {
						L.RaiseError("offsetof: %v", err)
					}
					L.Push(lua.LNumber(off))
					return 1
				}},
			{Name: "has_member", Signature: "has_member(struct, member) -> boolean",
				Doc: "Tells whether `struct` has `member` (a dotted path) in this kernel's layout: true for every member " +
					"the layout has, bitfields included (for which `offsetof` raises, as they have no byte offset).",
				Fn: func(L *lua.LState) int {
					g := needGuest(L, env)
					_, err := g.Offsetof(L.CheckString(1), L.CheckString(2))
					// Every type source answers a member it has but
					// cannot give a byte offset for (a bitfield) with
					// ErrUnsupported, and one it lacks with ErrNotFound.
					L.Push(lua.LBool(err == nil || errors.Is(err, vmi.ErrUnsupported)))
					return 1
				}},
			{Name: "sizeof", Signature: "sizeof(type) -> number",
				Doc: "Returns the size in bytes of `type` (`\"module\"`, `\"struct list_head\"`, a typedef name, or a view: its type's size). An unknown type raises an error.",
				Fn: func(L *lua.LState) int {
					g := needGuest(L, env)
					if v, ok := viewArg(L, 1); ok {
						L.Push(lua.LNumber(v.vt.u.Size))
						return 1
					}
					n, err := g.Sizeof(L.CheckString(1))
					if err != nil {
						L.RaiseError("sizeof: %v", err)
					}
					L.Push(lua.LNumber(n))
					return 1
				}},
			{Name: "container_of", Signature: "container_of(addr, struct, member) -> address",
				Doc: "Returns the address of the `struct` that contains `member` at `addr`, like the kernel's `container_of` macro.",
				Fn: func(L *lua.LState) int {
					g := needGuest(L, env)
					a := checkAddress(L, 1)
					off, err := g.Offsetof(L.CheckString(2), L.CheckString(3))
					if err != nil {
						L.RaiseError("container_of: %v", err)
					}
					pushAddress(L, env, a-off)
					return 1
				}},
		},
	}
}

// SymbolNamer is implemented by guests that can name the symbol an address
// lies in (vmi/linux.Kernel).
type SymbolNamer interface {
	SymbolAt(addr uint64) (vmi.SymbolInfo, error)
}

// formatSymbol writes a symbol as the kernel's %pS does, without the size:
// "name+0xoff", then " [module]" for a module's.
func formatSymbol(s vmi.SymbolInfo) string {
	out := s.Name + "+0x" + strconv.FormatUint(s.Offset, 16)
	if s.Module != "" {
		out += " [" + s.Module + "]"
	}
	return out
}

// symbolInfoTable is symbol_at's second result.
func symbolInfoTable(L *lua.LState, env *Env, s vmi.SymbolInfo) *lua.LTable {
	t := L.NewTable()
	t.RawSetString("name", lua.LString(s.Name))
	if s.Module != "" {
		t.RawSetString("module", lua.LString(s.Module))
	}
	t.RawSetString("address", newAddress(L, env, s.Addr))
	if s.Offset < maxExact {
		t.RawSetString("offset", lua.LNumber(s.Offset))
	} else {
		t.RawSetString("offset", newAddress(L, env, s.Offset))
	}
	if s.Type != 0 {
		t.RawSetString("type", lua.LString(string(rune(s.Type))))
	}
	t.RawSetString("text", lua.LBool(s.Text))
	return t
}
