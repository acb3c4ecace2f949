package bindings

import (
	"fmt"

	lua "github.com/yuin/gopher-lua"

	"github.com/xascript/xascript/vmi/linux/kwalk"
)

func listsArea(env *Env) Area {
	return Area{
		Name:        "lists",
		Title:       "Walking kernel lists",
		NeedsTarget: true,
		Doc: "Kernel lists are circular `struct list_head` chains that live inside the structs they link. A list read " +
			"from guest memory may be corrupt or made cyclic by an attacker, so walks are bounded and refuse to visit " +
			"an entry twice.",
		Bindings: []Binding{
			{Name: "walk_list", Signature: "walk_list(head, struct, member, fn [, limit]) -> count | nil, err",
				Doc: "Walks the circular list whose `struct list_head` is at `head` (e.g. `symbol(\"modules\")`), following " +
					"`next` pointers until it is back at `head`. For each node it calls `fn(entry)` with the address of the " +
					"containing `struct` (the node minus `offsetof(struct, member)`); with `struct` nil, `fn` gets the node " +
					"itself. `fn` may return `false` to stop early. Returns the number of entries visited, or `nil, err` " +
					"when a pointer cannot be read, the list revisits a node without returning to `head` (a cycle), or more " +
					fmt.Sprintf("than `limit` entries (default %d) were seen; `err` names the address.", DefaultListLimit),
				Fn: walkList(env)},
		},
	}
}

func walkList(env *Env) lua.LGFunction {
	return func(L *lua.LState) int {
		g := needGuest(L, env)
		head := checkAddress(L, 1)
		var offset uint64
		if L.Get(2) != lua.LNil {
			off, err := g.Offsetof(L.CheckString(2), L.CheckString(3))
			if err != nil {
				L.RaiseError("walk_list: %v", err)
			}
			offset = off
		}
		fn := L.CheckFunction(4)
		limit := L.OptInt(5, env.ListLimit)
		if limit <= 0 {
			L.ArgError(5, "limit must be positive")
		}
		// kwalk.List is bounded and refuses a node twice: a corrupt list may
		// loop without coming back to head, and fn must not see an entry
		// twice. It yields a node only once its next pointer was read.
		it := kwalk.NewList(g, g.PointerSize(), head, limit)
		count := 0
		for it.Next() {
			if err := env.Ctx.Err(); err != nil {
				L.RaiseError("walk_list: interrupted: %v", err)
			}
			count++
			L.Push(fn)
			pushAddress(L, env, it.Node()-offset)
			env.callbacks++ // an error in fn is fn's, not walk_list's (named)
			L.Call(1, 1)
			env.callbacks--
			ret := L.Get(-1)
			L.Pop(1)
			if ret == lua.LFalse {
				break
			}
		}
		if err := it.Err(); err != nil {
			return fault(L, fmt.Errorf("walk_list: %w", err))
		}
		L.Push(lua.LNumber(count))
		return 1
	}
}
