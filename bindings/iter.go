package bindings

import (
	"fmt"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/xascript/xascript/vmi/linux/kwalk"
	"github.com/xascript/xascript/vmi/linux/maple"
	"github.com/xascript/xascript/vmi/types"
)

func iterArea(env *Env) Area {
	limit := fmt.Sprintf("%d", DefaultListLimit)
	container := func(name, what, example string, nulls bool) Binding {
		return Binding{Name: name, Signature: name + "(head, type, member [, limit]) -> walk",
			Doc: "Iterates " + what + " (`for e in " + example + " do … end`), yielding a view of `type` for each entry: the " +
				"node's address less `offsetof(type, member)` (`member` may be a path, `\"node.node[0]\"`); with `type` nil, the " +
				"node's own address. `head` is an address or a view of the head. The walk is bounded (`limit`, default the " +
				"run's list limit, " + limit + "), refuses to visit a node twice, and yields only nodes whose link it could " +
				"read. It ends early when the guest's links are corrupt: `walk:err()` then says why (the address and what " +
				"was wrong), `nil` when it reached the end; `walk:count()` is the number of entries yielded.",
			Fn: func(L *lua.LState) int { return containerWalk(L, env, name, nulls) }}
	}
	return Area{
		Name:        "iter",
		Title:       "Iterating kernel containers",
		NeedsTarget: true,
		Doc: "The kernel's linked containers, walked in Go and yielding typed views (see `view`). Each function returns " +
			"a walk, for a generic `for`: `local w = list(symbol(\"modules\"), \"module\", \"list\")`, " +
			"`for m in w do print(m.name) end`, then `w:err()` is `nil` when the walk reached the end, or why it " +
			"stopped: a generic `for` cannot receive `nil, err`, so a walk that meets a fault, a cycle or too many " +
			"entries ends there and keeps the error. Every walk is bounded and refuses to visit a node twice: the " +
			"guest writes these links, and a hostile one can make them loop.",
		Bindings: []Binding{
			container("list", "a circular `struct list_head` list from its head, which is not an entry, in list order",
				`list(symbol("modules"), "module", "list")`, false),
			container("hlist", "a `struct hlist_head` chain (`first`, then each node's `next` until NULL)",
				`hlist(head, "pid", "...")`, false),
			container("hlist_nulls", "a `struct hlist_nulls_head` chain, which ends at an odd \"nulls\" marker; "+
				"`walk:nulls()` is the marker's value once the walk ended (a hash bucket's index, where the kernel puts it)",
				`hlist_nulls(bucket, "sock_common", "skc_nulls_node")`, true),
			container("rbtree", "a red-black tree in order (leftmost first, as `rb_first`/`rb_next`) from its `struct rb_root` "+
				"(or `rb_root_cached`); a path deeper than a red-black tree of `limit` nodes can be ends the walk",
				`rbtree(root, "vmap_area", "rb_node")`, false),
			{Name: "chain", Signature: "chain(first, type, member [, limit]) -> walk",
				Doc: "Iterates a NULL-terminated chain of structs of `type` linked through `member`, a pointer to the next " +
					"struct's start (not to a list node), yielding a view of each: before Linux 6.1 a process's mappings, " +
					"`for vma in chain(t.mm.mmap, \"vm_area_struct\", \"vm_next\") do … end`. `first` is the first struct " +
					"(an address or a view; `nil` or NULL for an empty chain). Bounded (`limit`, default the run's list limit), " +
					"cycle-safe, and yields only structs whose link it could read; `walk:err()` as for `list`.",
				Fn: func(L *lua.LState) int { return chainWalk(L, env) }},
			{Name: "xarray", Signature: "xarray(xa [, type [, limit]]) -> walk",
				Doc: "Iterates the present entries of the `struct xarray` at `xa` in index order, yielding `index, entry`: " +
					"with `type`, entries (pointers) as views of `type`; without, as addresses. Value entries (odd: " +
					"tagged integers, such as the page cache's shadow entries) are yielded as numbers. Bounded, " +
					"cycle-safe and checked (each node's shift must fit its depth); `walk:err()` as for `list`.",
				Fn: func(L *lua.LState) int { return xarrayWalk(L, env, false) }},
			{Name: "idr", Signature: "idr(idr [, type [, limit]]) -> walk",
				Doc: "Iterates a `struct idr` (the XArray inside it, `idr_rt`) in id order, yielding `id, entry` as " +
					"`xarray` does, ids counted from the IDR's `idr_base`: " +
					"`for nr, pid in idr(symbol(\"init_pid_ns\"):as(\"pid_namespace\").idr, \"pid\") do … end`.",
				Fn: func(L *lua.LState) int { return xarrayWalk(L, env, true) }},
			{Name: "maple", Signature: "maple(tree [, type [, limit]]) -> walk",
				Doc: "Iterates the entries of the `struct maple_tree` at `tree` (Linux 6.1 and later) in index order, " +
					"yielding `entry, first, last`: with `type`, the entry (a pointer) as a view of `type`; without, as an " +
					"address; `first` and `last` (addresses) are the range of indexes the entry is stored at, both " +
					"included. A process's mappings: `for vma, first, last in maple(t.mm.mm_mt, \"vm_area_struct\") do … end` " +
					"(each VMA at `vm_start` through `vm_end - 1`; before 6.1 the mappings are the list `mm->mmap` through " +
					"`vm_next`, walked by `chain`; `p:vmas()` reads either). " +
					"Reserved internal entries are skipped. Bounded (`limit` entries, " + fmt.Sprint(maple.DefaultMaxNodes) +
					" nodes, " + fmt.Sprint(maple.MaxHeight) + " levels), cycle-safe and checked (node types, pivots within " +
					"their parent's range, ascending ranges): `walk:err()` as for `list`, naming the node. The tree is read " +
					"when the walk starts, up to `limit` entries.",
				Fn: func(L *lua.LState) int { return mapleWalk(L, env) }},
		},
	}
}

// walk is the value of a walk userdata: step pushes the next results and
// tells how many, 0 at the end.
type walk struct {
	step  func(L *lua.LState) int
	err   func() error
	count int
	nulls func() uint64
}

func (vs *viewState) newWalk(L *lua.LState, w *walk) *lua.LUserData {
	ud := L.NewUserData()
	ud.Value = w
	ud.Metatable = vs.walkMT
	return ud
}

func checkWalk(L *lua.LState, n int) *walk {
	if ud, ok := L.Get(n).(*lua.LUserData); ok {
		if w, ok := ud.Value.(*walk); ok {
			return w
		}
	}
	L.ArgError(n, "walk expected, got "+L.Get(n).Type().String())
	return nil
}

// newWalkMetatable: a walk is called by the generic for (__call) and has
// the methods err, count and nulls.
func newWalkMetatable(L *lua.LState, env *Env) *lua.LTable {
	mt := L.NewTable()
	methods := L.NewTable()
	L.SetField(methods, "err", L.NewFunction(func(L *lua.LState) int {
		if err := checkWalk(L, 1).err(); err != nil {
			L.Push(lua.LString(err.Error()))
		} else {
			L.Push(lua.LNil)
		}
		return 1
	}))
	L.SetField(methods, "count", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LNumber(checkWalk(L, 1).count))
		return 1
	}))
	L.SetField(methods, "nulls", L.NewFunction(func(L *lua.LState) int {
		w := checkWalk(L, 1)
		if w.nulls == nil {
			L.RaiseError("nulls: only an hlist_nulls walk ends at a nulls marker")
		}
		L.Push(lua.LNumber(w.nulls()))
		return 1
	}))
	L.SetField(mt, "__index", methods)
	L.SetField(mt, "__call", L.NewFunction(func(L *lua.LState) int {
		w := checkWalk(L, 1)
		if err := env.Ctx.Err(); err != nil {
			L.RaiseError("walk interrupted: %v", err)
		}
		n := w.step(L)
		if n == 0 {
			L.Push(lua.LNil)
			return 1
		}
		w.count++
		return n
	}))
	L.SetField(mt, "__tostring", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString(fmt.Sprintf("walk (%d entries so far)", checkWalk(L, 1).count)))
		return 1
	}))
	return mt
}

// walkLimit reads the optional limit argument n.
func walkLimit(L *lua.LState, env *Env, n int) int {
	limit := L.OptInt(n, env.ListLimit)
	if limit <= 0 {
		L.ArgError(n, "limit must be positive")
	}
	return limit
}

// containerOf resolves the entry type and the node's offset in it for
// list, hlist and rbtree; a nil type yields nodes as they are.
func containerOf(L *lua.LState, vs *viewState, name string) (*viewType, uint64) {
	if L.Get(2) == lua.LNil {
		return nil, 0
	}
	vt := vs.lookupView(L, L.CheckString(2))
	member := L.CheckString(3)
	f, err := types.Resolve(vt.t, member)
	if err != nil {
		L.RaiseError("%s: %v", name, err)
	}
	if f.IsBitfield() {
		L.RaiseError("%s: %s.%s is a bitfield, not a list node", name, vt.name, member)
	}
	return vt, f.Offset
}

// containerWalk is list, hlist, hlist_nulls and rbtree.
func containerWalk(L *lua.LState, env *Env, name string, nulls bool) int {
	g := needGuest(L, env)
	vs := env.views(L)
	head := checkAddress(L, 1)
	vt, off := containerOf(L, vs, name)
	limit := walkLimit(L, env, 4)
	ptr := g.PointerSize()
	var next func() bool
	var node func() uint64
	w := &walk{}
	switch name {
	case "list":
		it := kwalk.NewList(g, ptr, head, limit)
		next, node, w.err = it.Next, it.Node, it.Err
	case "rbtree":
		it := kwalk.NewRBTree(g, ptr, head, limit)
		next, node, w.err = it.Next, it.Node, it.Err
	default:
		it := kwalk.NewHList(g, ptr, head, nulls, limit)
		next, node, w.err = it.Next, it.Node, it.Err
		if nulls {
			w.nulls = it.End
		}
	}
	w.step = func(L *lua.LState) int {
		if !next() {
			return 0
		}
		if vt == nil {
			pushAddress(L, env, node())
		} else {
			L.Push(vs.newView(L, vt, node()-off))
		}
		return 1
	}
	L.Push(vs.newWalk(L, w))
	return 1
}

// chainWalk is chain: structs linked through a pointer member to the next
// struct's start.
func chainWalk(L *lua.LState, env *Env) int {
	g := needGuest(L, env)
	vs := env.views(L)
	var first uint64
	if L.Get(1) != lua.LNil {
		first = checkAddress(L, 1)
	}
	vt := vs.lookupView(L, L.CheckString(2))
	member := L.CheckString(3)
	f, err := types.Resolve(vt.t, member)
	if err != nil {
		L.RaiseError("chain: %v", err)
	}
	if u := types.Underlying(f.Type); f.IsBitfield() || u == nil || u.Kind != types.Pointer {
		L.RaiseError("chain: %s.%s is not a pointer, so it cannot link the chain", vt.name, member)
	}
	it := kwalk.NewChain(g, g.PointerSize(), first, f.Offset, walkLimit(L, env, 4))
	w := &walk{err: it.Err}
	w.step = func(L *lua.LState) int {
		if !it.Next() {
			return 0
		}
		L.Push(vs.newView(L, vt, it.Node()))
		return 1
	}
	L.Push(vs.newWalk(L, w))
	return 1
}

// memberField resolves typeName.member in the kernel's types for binding
// who, raising an error naming it when the kernel has no such member.
func (vs *viewState) memberField(L *lua.LState, who, typeName, member string) types.Field {
	t, err := vs.graph.Lookup(typeName)
	if err != nil {
		L.RaiseError("%s: %v", who, err)
	}
	f, err := types.Resolve(t, member)
	if err != nil {
		L.RaiseError("%s: %v", who, err)
	}
	return f
}

// xaLayout reads struct xarray's and struct xa_node's layout from the
// kernel's types.
func xaLayout(L *lua.LState, vs *viewState, name string) kwalk.XALayout {
	field := func(typeName, member string) types.Field { return vs.memberField(L, name, typeName, member) }
	slots := field("xa_node", "slots")
	st := types.Underlying(slots.Type)
	if st == nil || st.Kind != types.Array {
		L.RaiseError("%s: xa_node.slots is not an array in this kernel's types", name)
	}
	return kwalk.XALayout{
		Head:      field("xarray", "xa_head").Offset,
		NodeShift: field("xa_node", "shift").Offset,
		NodeSlots: slots.Offset,
		Chunk:     int(min(st.Len, 1<<20)),
	}
}

// xarrayWalk is xarray and idr.
func xarrayWalk(L *lua.LState, env *Env, isIDR bool) int {
	g := needGuest(L, env)
	vs := env.views(L)
	name := "xarray"
	if isIDR {
		name = "idr"
	}
	xa := checkAddress(L, 1)
	var vt *viewType
	if L.Get(2) != lua.LNil {
		vt = vs.lookupView(L, L.CheckString(2))
	}
	limit := walkLimit(L, env, 3)
	lay := xaLayout(L, vs, name)
	var base uint64
	if isIDR {
		rt := vs.memberField(L, "idr", "idr", "idr_rt")
		b := vs.memberField(L, "idr", "idr", "idr_base")
		v, rerr := g.ReadUintVirt(xa+b.Offset, 4)
		if rerr != nil {
			return fault(L, fmt.Errorf("idr at %#x: read idr_base: %w", xa, rerr))
		}
		base = v
		xa += rt.Offset
	}
	it := kwalk.NewXArray(g, g.PointerSize(), xa, lay, limit)
	w := &walk{err: it.Err}
	w.step = func(L *lua.LState) int {
		if !it.Next() {
			return 0
		}
		idx := it.Index() + base
		if idx < maxExact {
			L.Push(lua.LNumber(idx))
		} else {
			pushAddress(L, env, idx)
		}
		e := it.Entry()
		switch {
		case e&1 == 1:
			if e>>1 < maxExact {
				L.Push(lua.LNumber(e >> 1))
			} else {
				pushAddress(L, env, e>>1)
			}
		case vt != nil:
			L.Push(vs.newView(L, vt, e))
		default:
			pushAddress(L, env, e)
		}
		return 2
	}
	L.Push(vs.newWalk(L, w))
	return 1
}

// guestReader reads kernel virtual memory for vmi/linux/maple.
type guestReader struct{ g Guest }

func (r guestReader) Read(buf []byte, va uint64) error { return r.g.ReadVirt(buf, va) }

// mapleEntry is one entry of a maple walk, with its index range.
type mapleEntry struct{ value, first, last uint64 }

// mapleWalk is maple. vmi/linux/maple walks with a callback, so the entries
// (at most limit) are read when the walk starts and handed out one by one;
// an error ends the list and is what walk:err() says once they are out.
func mapleWalk(L *lua.LState, env *Env) int {
	g := needGuest(L, env)
	vs := env.views(L)
	tree := checkAddress(L, 1)
	var vt *viewType
	if L.Get(2) != lua.LNil {
		vt = vs.lookupView(L, L.CheckString(2))
	}
	limit := walkLimit(L, env, 3)
	rf := vs.memberField(L, "maple", "maple_tree", "ma_root")
	var entries []mapleEntry
	var werr error
	root, err := g.ReadUintVirt(tree+rf.Offset, g.PointerSize())
	if err != nil {
		werr = fmt.Errorf("maple tree at %#x: read ma_root: %w", tree, err)
	} else {
		werr = maple.Walk(guestReader{g}, root, maple.Options{PointerSize: g.PointerSize(), MaxEntries: limit},
			func(e maple.Entry) error {
				if err := env.Ctx.Err(); err != nil {
					return fmt.Errorf("walk interrupted: %w", err)
				}
				entries = append(entries, mapleEntry{e.Value, e.First, e.Last})
				return nil
			})
		if werr != nil {
			// Its errors start "maple tree: "; a script sees the string only.
			werr = fmt.Errorf("maple tree at %#x: %s", tree, strings.TrimPrefix(werr.Error(), "maple tree: "))
		}
	}
	next := 0
	w := &walk{err: func() error {
		if next < len(entries) {
			return nil
		}
		return werr
	}}
	w.step = func(L *lua.LState) int {
		if next >= len(entries) {
			return 0
		}
		e := entries[next]
		next++
		if vt != nil {
			L.Push(vs.newView(L, vt, e.value))
		} else {
			pushAddress(L, env, e.value)
		}
		pushAddress(L, env, e.first)
		pushAddress(L, env, e.last)
		return 3
	}
	L.Push(vs.newWalk(L, w))
	return 1
}
