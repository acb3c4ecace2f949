package bindings

import (
	"fmt"

	lua "github.com/yuin/gopher-lua"
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
		// Seen nodes: a corrupt list may loop without coming back to head,
		// and fn must not see an entry twice.
		seen := make(map[uint64]struct{}, 64)
		node, err := readPtr(g, false, env.scratch[:], head)
		if err != nil {
			return fault(L, fmt.Errorf("walk_list: read head %#x: %w", head, err))
		}
		count := 0
		for node != head {
			if err := env.Ctx.Err(); err != nil {
				L.RaiseError("walk_list: interrupted: %v", err)
			}
			if count >= limit {
				return fault(L, fmt.Errorf("walk_list: list at %#x has more than %d entries (stopped at node %#x)", head, limit, node))
			}
			if _, dup := seen[node]; dup {
				return fault(L, fmt.Errorf("walk_list: list at %#x is cyclic: node %#x seen again after %d entries without returning to the head", head, node, count))
			}
			seen[node] = struct{}{}
			next, err := readPtr(g, false, env.scratch[:], node)
			if err != nil {
				return fault(L, fmt.Errorf("walk_list: list at %#x: read next pointer of node %#x (entry %d): %w", head, node, count, err))
			}
			count++
			L.Push(fn)
			pushAddress(L, env, node-offset)
			env.callbacks++ // an error in fn is fn's, not walk_list's (named)
			L.Call(1, 1)
			env.callbacks--
			ret := L.Get(-1)
			L.Pop(1)
			if ret == lua.LFalse {
				break
			}
			node = next
		}
		L.Push(lua.LNumber(count))
		return 1
	}
}
