package bindings

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"unsafe"

	lua "github.com/yuin/gopher-lua"

	"github.com/xascript/xascript/vmi/types"
)

const (
	viewTypeName  = "view"
	arrayTypeName = "view array"
	// maxViewString bounds a char array read as a string: a guest's type
	// graph may claim any length.
	maxViewString = 64 << 10
)

func viewsArea(env *Env) Area {
	return Area{
		Name:        "views",
		Title:       "Typed views of kernel structs",
		NeedsTarget: true,
		Doc: "A view is a kernel struct (or union) at an address, read through the kernel's own type information " +
			"(BTF in memory, `--btf`, `--dwarf`, `--isf`): `local m = view(\"module\", a)` or " +
			"`symbol(\"init_task\"):as(\"task_struct\")`, then `m.name`, `m.list.next`, `t.mm.pgd`, `m.mem[0].size` " +
			"read as C does. What a member gives depends on its type:\n\n" +
			"| member type | value |\n|---|---|\n" +
			"| integer, enum of up to 4 bytes, bitfield | a number (negative where the type is signed) |\n" +
			"| 8-byte unsigned integer | an address value (64 bits do not fit a Lua number), as `read_u64` gives |\n" +
			"| 8-byte signed integer | a number when it is exact in a double (below 2^53 in size), else an address value of its bits |\n" +
			"| `_Bool`/`bool` | a boolean |\n" +
			"| `float`, `double` | a number |\n" +
			"| `char` array | a string, up to the first NUL |\n" +
			"| other array | an array view: `a[i]` (0-based, bounds-checked), `#a` its length (0 for a flexible array, whose index is not bounded) |\n" +
			"| embedded struct or union | a view of it, at its offset |\n" +
			"| pointer to a struct or union | a view of the struct it points to (no read happens until one of its members is read); `nil` when the pointer is NULL |\n" +
			"| any other pointer (`char *`, `void *`, function pointers, pointers to pointers) | an address value, NULL included |\n\n" +
			"A view is also an address: every function that takes an address takes a view (its address), `v + n` and " +
			"`v - n` give addresses, `==`, `<`, `<=` compare it with addresses and views by address " +
			"(`m.list.next == head`), `addr(v)` is its address, and `tostring(v)` gives `(struct module *)0x…`. " +
			"A view has no methods (its names are the struct's members): take `addr(v)` for an address's methods; " +
			"the one exception is a `task_struct`'s `t:space()`, which returns what `process_of(t)` does (the task's " +
			"user address space, see `process_of`) unless the kernel's `task_struct` has a member named `space`. " +
			"`sizeof(v)` is its type's size, `offsetof(v, \"member\")` a member's offset.\n\n" +
			"**Errors.** A member the struct does not have raises an error that names the struct and lists near names " +
			"(a script bug; probe with `has_member`). Indexing (`t.mm`) cannot return two values, so a read that " +
			"faults in the guest gives `nil` there; `field(v, \"mm.pgd\")` walks the same path and gives `nil, err` " +
			"saying which member was NULL or which read failed. Member lookups are resolved once per type and name, " +
			"then cached: a view costs about what `read_u32` at a precomputed offset costs.",
		Bindings: []Binding{
			{Name: "view", Signature: "view(type, addr) -> view | nil, err",
				Doc: "Returns a view of the struct or union `type` (`\"module\"`, `\"struct task_struct\"`, a typedef " +
					"name) at `addr`, or `nil, err` when `addr` is NULL or cannot be read. An unknown type raises an " +
					"error. `addr:as(type)` is the same.",
				Fn: func(L *lua.LState) int {
					needGuest(L, env)
					return newViewAt(L, env, L.CheckString(1), checkAddress(L, 2))
				}},
			{Name: "field", Signature: "field(v, path) -> value | nil, err",
				Doc: "Reads member `path` of view `v` (`\"name\"`, `\"mm.pgd\"`, `\"mem[0].size\"`), following pointers " +
					"to structs as indexing does, and returns what `v.a.b` would, or `nil, err` when a pointer on the " +
					"way is NULL (the error names the member) or a read faults. A member the type does not have " +
					"raises an error, as indexing does.",
				Fn: func(L *lua.LState) int { return fieldPath(L, env) }},
			{Name: "enum", Signature: "enum(enum, name) -> number",
				Doc: "Returns the value of constant `name` of enum `enum` (`enum(\"mod_mem_type\", \"MOD_TEXT\")`); " +
					"with `enum` nil or `\"\"`, of any enum. An unknown enum or constant raises an error.",
				Fn: func(L *lua.LState) int {
					g := needTypes(L, env)
					v, err := g.EnumValue(L.OptString(1, ""), L.CheckString(2))
					if err != nil {
						L.RaiseError("enum: %v", err)
					}
					L.Push(lua.LNumber(v))
					return 1
				}},
		},
	}
}

// viewState is what the views of one Lua state share: the type graph and
// what has been resolved in it.
type viewState struct {
	graph   types.Graph
	byType  map[*types.Type]*viewType
	byName  map[string]*viewType
	viewMT  *lua.LTable
	arrayMT *lua.LTable
	walkMT  *lua.LTable
	spaceFn *lua.LFunction // task:space(), which is process_of(task)
	buf     []byte
}

// spaceMethod is the one method a view has: a task_struct's space() (when
// the struct has no member of that name) opens the task's address space as
// process_of does. process_of takes the view as an address, so the method
// is process_of itself.
const spaceMethod = "space"

// viewType is a type as views use it, with its member accesses resolved
// on first use and kept: a member costs one map lookup after that.
type viewType struct {
	t       *types.Type // as named (may be a typedef)
	u       *types.Type // typedefs stripped
	name    string      // "struct module", for messages
	members map[string]*access
	// hot caches the last member names looked up by where their bytes
	// are: a script's member names are constants of its compiled code, so
	// the same access comes with the same string data every time, and a
	// pointer compare is cheaper than hashing the name.
	hot     [8]hotMember
	hotNext int
	// arrays only
	elem   *access
	n      uint64 // elements; 0 = flexible
	stride uint64 // bytes per element
}

type hotMember struct {
	p *byte
	n int
	a *access
}

// memberFast is member with the pointer-keyed cache in front.
func (vs *viewState) memberFast(L *lua.LState, vt *viewType, name string) *access {
	p, n := unsafe.StringData(name), len(name)
	for i := range vt.hot {
		if h := &vt.hot[i]; h.p == p && h.n == n {
			return h.a
		}
	}
	a := vs.member(L, vt, name)
	vt.hot[vt.hotNext] = hotMember{p: p, n: n, a: a}
	vt.hotNext = (vt.hotNext + 1) % len(vt.hot)
	return a
}

type accessKind uint8

const (
	accUint accessKind = iota
	accInt
	accBool
	accFloat
	accBits
	accChars
	accArray
	accEmbed
	accStructPtr
	accPtr
	accOpaque // void, functions: no value to read
	accSpace  // task_struct's space method (see spaceMethod)
)

// access is how to read one member: its offset and what to make of it.
type access struct {
	kind    accessKind
	off     uint64
	size    int
	bitOff  uint32
	bitSize uint32
	signed  bool      // accBits
	n       uint64    // accChars: the array's length
	vt      *viewType // accEmbed, accStructPtr, accArray: the type it gives
	name    string    // the member path, for messages
	owner   *viewType
}

func (env *Env) views(L *lua.LState) *viewState {
	if env.viewState != nil {
		return env.viewState
	}
	g := needTypes(L, env)
	vs := &viewState{graph: g, byType: map[*types.Type]*viewType{}, byName: map[string]*viewType{}}
	vs.viewMT = newViewMetatable(L, env)
	vs.arrayMT = newArrayMetatable(L, env)
	vs.walkMT = newWalkMetatable(L, env)
	vs.spaceFn = L.NewFunction(openProcess(env, true))
	env.viewState = vs
	return vs
}

// needTypes returns the target's type graph or raises: without struct
// layouts a typed view cannot mean anything.
func needTypes(L *lua.LState, env *Env) types.Graph {
	g := needGuest(L, env)
	if env.viewState != nil {
		return env.viewState.graph
	}
	tg, ok := g.(TypedGuest)
	if !ok {
		L.RaiseError("typed views need the kernel's types; this target has none")
	}
	graph, err := tg.Types()
	if err != nil {
		L.RaiseError("typed views need the kernel's types: %v", err)
	}
	return graph
}

// lookupView finds the named type for a view, raising when it is unknown.
func (vs *viewState) lookupView(L *lua.LState, name string) *viewType {
	if vt, ok := vs.byName[name]; ok {
		return vt
	}
	t, err := vs.graph.Lookup(name)
	if err != nil {
		L.RaiseError("%v", err)
	}
	vt := vs.typeOf(t)
	vs.byName[name] = vt
	return vt
}

// typeOf returns the viewType of t, made once per type.
func (vs *viewState) typeOf(t *types.Type) *viewType {
	if vt, ok := vs.byType[t]; ok {
		return vt
	}
	u := types.Underlying(t)
	vt := &viewType{t: t, u: u, name: t.String()}
	// Registered before its element is resolved: a (hostile) array type
	// that contains itself then ends here instead of recursing forever.
	vs.byType[t] = vt
	if u != nil && u.Kind == types.Array {
		vt.n = u.Len
		elem := vs.accessFor(u.Target, 0, 0, 0, "[]", vt)
		vt.elem = &elem
		if eu := types.Underlying(u.Target); eu != nil {
			vt.stride = eu.Size
		}
	}
	return vt
}

// member resolves (once) how to read member path name of vt.
func (vs *viewState) member(L *lua.LState, vt *viewType, name string) *access {
	if a, ok := vt.members[name]; ok {
		return a
	}
	if vt.u == nil || !vt.u.IsComposite() {
		L.RaiseError("%s is not a struct or union: it has no member %q", vt.name, name)
	}
	var a access
	f, err := types.Resolve(vt.t, name)
	switch {
	case err == nil:
		a = vs.accessFor(f.Type, f.Offset, f.BitOffset, f.BitSize, name, vt)
	case name == spaceMethod && vt.u.Kind == types.Struct && vt.u.Name == "task_struct":
		a = access{kind: accSpace, name: name, owner: vt}
	default:
		L.RaiseError("%v", err)
	}
	if vt.members == nil {
		vt.members = map[string]*access{}
	}
	vt.members[name] = &a
	return &a
}

// accessFor decides how a member of type t at off is read.
func (vs *viewState) accessFor(t *types.Type, off uint64, bitOff, bitSize uint32, name string, owner *viewType) access {
	a := access{off: off, name: name, owner: owner, bitOff: bitOff, bitSize: bitSize}
	u := types.Underlying(t)
	if u == nil {
		a.kind = accOpaque
		return a
	}
	a.size = int(u.Size)
	if bitSize != 0 {
		a.kind, a.size = accBits, 0
		a.signed = (u.Kind == types.Int || u.Kind == types.Enum) && u.Signed
		return a
	}
	switch u.Kind {
	case types.Int, types.Enum:
		switch {
		case u.Kind == types.Int && (u.Name == "_Bool" || u.Name == "bool"):
			a.kind = accBool
		case u.Signed:
			a.kind = accInt
		default:
			a.kind = accUint
		}
		if a.size != 1 && a.size != 2 && a.size != 4 && a.size != 8 {
			a.kind = accOpaque
		}
	case types.Float:
		a.kind = accFloat
		if a.size != 4 && a.size != 8 {
			a.kind = accOpaque
		}
	case types.Pointer:
		a.kind, a.size = accPtr, 0 // the guest's pointer width
		if tu := types.Underlying(u.Target); tu != nil && tu.IsComposite() {
			a.kind, a.vt = accStructPtr, vs.typeOf(u.Target)
		}
	case types.Array:
		eu := types.Underlying(u.Target)
		if eu != nil && eu.Kind == types.Int && eu.Size == 1 && strings.Contains(eu.Name, "char") {
			a.kind, a.n = accChars, u.Len
		} else {
			a.kind, a.vt = accArray, vs.typeOf(t)
		}
	case types.Struct, types.Union:
		a.kind, a.vt = accEmbed, vs.typeOf(t)
	default:
		a.kind = accOpaque
	}
	return a
}

// view is the value of a view userdata.
type view struct {
	vt   *viewType
	addr uint64
	// embedded keeps the views of embedded structs and arrays read from
	// this one (their address never changes, unlike a pointer's target),
	// so that m.refcnt.counter in a loop makes no new view each time.
	embedded [2]struct {
		a  *access
		ud *lua.LUserData
	}
}

func (vs *viewState) newView(L *lua.LState, vt *viewType, a uint64) *lua.LUserData {
	ud := L.NewUserData()
	ud.Value = &view{vt: vt, addr: a}
	if vt.u != nil && vt.u.Kind == types.Array {
		ud.Metatable = vs.arrayMT
	} else {
		ud.Metatable = vs.viewMT
	}
	return ud
}

// embeddedView is the view of embedded member a of v, made once.
func (v *view) embeddedView(L *lua.LState, vs *viewState, a *access) *lua.LUserData {
	for i := range v.embedded {
		if e := &v.embedded[i]; e.a == a {
			return e.ud
		}
	}
	ud := vs.newView(L, a.vt, v.addr+a.off)
	for i := range v.embedded {
		if e := &v.embedded[i]; e.a == nil {
			e.a, e.ud = a, ud
			break
		}
	}
	return ud
}

// newViewAt is view(type, addr) and addr:as(type).
func newViewAt(L *lua.LState, env *Env, typeName string, a uint64) int {
	vs := env.views(L)
	vt := vs.lookupView(L, typeName)
	if vt.u == nil || !vt.u.IsComposite() {
		L.RaiseError("view: %s is not a struct or union", vt.name)
	}
	if a == 0 {
		return fault(L, fmt.Errorf("view of %s at NULL", vt.name))
	}
	// One byte, so that a view of an unmapped address is an error here
	// rather than a nil at its first member.
	if _, err := env.Guest.ReadUintVirt(a, 1); err != nil {
		return fault(L, fmt.Errorf("view of %s at %#x: %w", vt.name, a, err))
	}
	L.Push(vs.newView(L, vt, a))
	return 1
}

func checkView(L *lua.LState, n int) *view {
	if ud, ok := L.Get(n).(*lua.LUserData); ok {
		if v, ok := ud.Value.(*view); ok {
			return v
		}
	}
	L.ArgError(n, "view expected, got "+L.Get(n).Type().String())
	return nil
}

// read reads member a of the struct at base and returns its Lua value, or
// an error for a guest fault. A NULL pointer to a struct is (nil, nil).
func (vs *viewState) read(L *lua.LState, env *Env, base uint64, a *access) (lua.LValue, error) {
	g := env.Guest
	at := base + a.off
	switch a.kind {
	case accUint, accInt, accBool:
		v, err := g.ReadUintVirt(at, a.size)
		if err != nil {
			return nil, vs.readError(a, base, err)
		}
		return intValue(L, env, a, v), nil
	case accStructPtr, accPtr:
		v, err := g.ReadUintVirt(at, g.PointerSize())
		if err != nil {
			return nil, vs.readError(a, base, err)
		}
		if a.kind == accPtr {
			return newAddress(L, env, v), nil
		}
		if v == 0 {
			return lua.LNil, nil
		}
		return vs.newView(L, a.vt, v), nil
	case accChars:
		s, err := vs.chars(g, at, a.n)
		if err != nil {
			return nil, vs.readError(a, base, err)
		}
		return lua.LString(s), nil
	case accEmbed, accArray:
		return vs.newView(L, a.vt, at), nil
	case accSpace:
		return vs.spaceFn, nil
	case accBits:
		v, err := readBits(g, at, a.bitOff, a.bitSize, a.signed)
		if err != nil {
			return nil, vs.readError(a, base, err)
		}
		return v, nil
	case accFloat:
		v, err := g.ReadUintVirt(at, a.size)
		if err != nil {
			return nil, vs.readError(a, base, err)
		}
		if a.size == 4 {
			return lua.LNumber(math.Float32frombits(uint32(v))), nil
		}
		return lua.LNumber(math.Float64frombits(v)), nil
	}
	return nil, fmt.Errorf("%s.%s: a value of this type cannot be read", a.owner.name, a.name)
}

func (vs *viewState) readError(a *access, base uint64, err error) error {
	return fmt.Errorf("read %s.%s of %#x: %w", a.owner.name, a.name, base, err)
}

// intValue makes a Lua value of an integer member read as v.
func intValue(L *lua.LState, env *Env, a *access, v uint64) lua.LValue {
	switch a.kind {
	case accBool:
		return lua.LBool(v != 0)
	case accInt:
		var s int64
		switch a.size {
		case 1:
			s = int64(int8(v))
		case 2:
			s = int64(int16(v))
		case 4:
			s = int64(int32(v))
		default:
			s = int64(v)
			if s <= -maxExact || s >= maxExact {
				return newAddress(L, env, v)
			}
		}
		if s >= 0 && s <= math.MaxUint32 {
			return env.numbers.value(uint32(s))
		}
		return lua.LNumber(s)
	}
	if a.size == 8 {
		return newAddress(L, env, v)
	}
	return env.numbers.value(uint32(v))
}

// chars reads a char array of n bytes (0: flexible, read as a C string) up
// to its first NUL. The whole array is read at once; an array that ends on
// a page the guest does not map is read up to the NUL.
func (vs *viewState) chars(g Guest, at, n uint64) (string, error) {
	if n == 0 || n > maxViewString {
		return cstring(g, false, at, maxViewString)
	}
	if uint64(cap(vs.buf)) < n {
		vs.buf = make([]byte, n)
	}
	buf := vs.buf[:n]
	if err := g.ReadVirt(buf, at); err != nil {
		return cstring(g, false, at, int(n))
	}
	if i := bytes.IndexByte(buf, 0); i >= 0 {
		buf = buf[:i]
	}
	return string(buf), nil
}

// readBits reads a bitfield of size bits starting bitOff bits into the byte
// at at (at most 64 bits, so at most 9 bytes).
func readBits(g Guest, at uint64, bitOff, size uint32, signed bool) (lua.LValue, error) {
	if size > 64 || bitOff > 7 {
		return nil, fmt.Errorf("bitfield of %d bits at bit %d: %w", size, bitOff, errors.ErrUnsupported)
	}
	var b [16]byte
	nbytes := (bitOff + size + 7) / 8
	if err := g.ReadVirt(b[:nbytes], at); err != nil {
		return nil, err
	}
	lo := binary.LittleEndian.Uint64(b[:8])
	v := lo >> bitOff
	if bitOff != 0 {
		v |= uint64(b[8]) << (64 - bitOff)
	}
	if size < 64 {
		v &= 1<<size - 1
	}
	if signed && size < 64 && v>>(size-1)&1 == 1 {
		return lua.LNumber(int64(v | ^uint64(0)<<size)), nil
	}
	if v >= maxExact {
		return nil, fmt.Errorf("bitfield of %d bits holds %#x, beyond a Lua number: %w", size, v, errors.ErrUnsupported)
	}
	return lua.LNumber(v), nil
}

// newViewMetatable builds the metatable of struct views: __index reads a
// member; comparison and arithmetic are the address type's own functions,
// so that views and addresses compare with each other (Lua calls __eq and
// __lt only when both sides have the same function).
func newViewMetatable(L *lua.LState, env *Env) *lua.LTable {
	mt := L.NewTable()
	L.SetField(mt, "__index", L.NewFunction(func(L *lua.LState) int {
		ud, _ := L.Get(1).(*lua.LUserData)
		v, _ := ud.Value.(*view)
		key, ok := L.Get(2).(lua.LString)
		if !ok {
			L.RaiseError("%s: index a view by a member name, not a %s", v.vt.name, L.Get(2).Type())
		}
		vs := env.viewState
		a := vs.memberFast(L, v.vt, string(key))
		if a.size == 4 && (a.kind == accUint || a.kind == accInt) {
			// The commonest members, without read's switch.
			x, err := env.Guest.ReadUintVirt(v.addr+a.off, 4)
			switch {
			case err != nil:
				L.Push(lua.LNil)
			case a.kind == accInt && int32(x) < 0:
				L.Push(lua.LNumber(int32(x)))
			default:
				L.Push(env.numbers.value(uint32(x)))
			}
			return 1
		}
		if a.kind == accEmbed || a.kind == accArray {
			L.Push(v.embeddedView(L, vs, a))
			return 1
		}
		val, err := vs.read(L, env, v.addr, a)
		if err != nil {
			L.Push(lua.LNil)
			return 1
		}
		L.Push(val)
		return 1
	}))
	shareAddressOps(L, env, mt)
	L.SetField(mt, "__newindex", L.NewFunction(func(L *lua.LState) int {
		L.RaiseError("views are read-only: cannot set %v", L.Get(2))
		return 0
	}))
	return mt
}

// shareAddressOps gives mt the address type's comparison, arithmetic and
// concatenation, and a tostring that names the type.
func shareAddressOps(L *lua.LState, env *Env, mt *lua.LTable) {
	for _, op := range []string{"__eq", "__lt", "__le", "__add", "__sub", "__concat"} {
		mt.RawSetString(op, env.addressMT.RawGetString(op))
	}
	L.SetField(mt, "__tostring", L.NewFunction(func(L *lua.LState) int {
		v := checkView(L, 1)
		L.Push(lua.LString("(" + v.vt.name + " *)" + formatAddress(v.addr)))
		return 1
	}))
}

// newArrayMetatable builds the metatable of array views: a[i] (0-based,
// bounds-checked) and #a.
func newArrayMetatable(L *lua.LState, env *Env) *lua.LTable {
	mt := L.NewTable()
	L.SetField(mt, "__index", L.NewFunction(func(L *lua.LState) int {
		v := checkView(L, 1)
		a, err := arrayElem(L, v, L.Get(2))
		if err != "" {
			L.RaiseError("%s", err)
		}
		val, rerr := env.viewState.read(L, env, v.addr, &a)
		if rerr != nil {
			L.Push(lua.LNil)
			return 1
		}
		L.Push(val)
		return 1
	}))
	L.SetField(mt, "__len", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LNumber(checkView(L, 1).vt.n))
		return 1
	}))
	shareAddressOps(L, env, mt)
	return mt
}

// arrayElem is the access of element key of array view v, or a message.
func arrayElem(L *lua.LState, v *view, key lua.LValue) (access, string) {
	num, ok := key.(lua.LNumber)
	f := float64(num)
	if !ok || f != math.Trunc(f) || f < 0 || f >= maxExact {
		return access{}, fmt.Sprintf("%s: index an array by a whole number from 0, not %v", v.vt.name, key)
	}
	i := uint64(f)
	if v.vt.n != 0 && i >= v.vt.n {
		return access{}, fmt.Sprintf("%s: index %d out of range [0, %d)", v.vt.name, i, v.vt.n)
	}
	a := *v.vt.elem
	stride := v.vt.stride
	if stride != 0 && i > math.MaxUint64/stride {
		return access{}, fmt.Sprintf("%s: index %d overflows", v.vt.name, i)
	}
	a.off = i * stride
	a.name = fmt.Sprintf("[%d]", i)
	return a, ""
}

// fieldPath is field(v, path): the path's components are read one by one,
// following pointers, with errors instead of nils.
func fieldPath(L *lua.LState, env *Env) int {
	needGuest(L, env)
	v := checkView(L, 1)
	path := L.CheckString(2)
	vs := env.views(L)
	parts, err := splitPath(path)
	if err != nil {
		L.ArgError(2, err.Error())
	}
	var cur lua.LValue = L.Get(1)
	var walked string
	for i, p := range parts {
		ud, ok := cur.(*lua.LUserData)
		if !ok {
			L.RaiseError("field: %s is a %s, it has no member %q", walked, cur.Type(), p)
		}
		cv, ok := ud.Value.(*view)
		if !ok {
			L.RaiseError("field: %s is an address, not a view: it has no member %q", walked, p)
		}
		a := vs.member(L, cv.vt, p)
		val, rerr := vs.read(L, env, cv.addr, a)
		if rerr != nil {
			return fault(L, rerr)
		}
		if walked == "" {
			walked = v.vt.name + "." + p
		} else {
			walked += "." + p
		}
		if val == lua.LNil {
			if i == len(parts)-1 {
				return fault(L, fmt.Errorf("%s is NULL (at %#x)", walked, cv.addr+a.off))
			}
			return fault(L, fmt.Errorf("%s is NULL (at %#x), so %s cannot be read", walked, cv.addr+a.off, path))
		}
		cur = val
	}
	L.Push(cur)
	return 1
}

// splitPath splits a member path at its dots: "mm.pgd" -> [mm pgd],
// "mem[0].size" -> [mem[0] size].
func splitPath(path string) ([]string, error) {
	parts := strings.Split(path, ".")
	for _, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("member path %q has an empty component", path)
		}
	}
	return parts, nil
}

// viewArg returns argument n when it is a view.
func viewArg(L *lua.LState, n int) (*view, bool) {
	if ud, ok := L.Get(n).(*lua.LUserData); ok {
		v, ok := ud.Value.(*view)
		return v, ok
	}
	return nil, false
}

// viewOffsetof is offsetof(v, member): raises for an unknown member or a
// bitfield (no byte offset), as offsetof(struct, member) does.
func viewOffsetof(L *lua.LState, env *Env, v *view, member string) uint64 {
	f, err := types.Resolve(v.vt.t, member)
	if err != nil {
		L.RaiseError("offsetof: %v", err)
	}
	if f.IsBitfield() {
		L.RaiseError("offsetof: %s.%s is a bitfield of %d bits at bit %d of byte %d: it has no byte offset", v.vt.name, member, f.BitSize, f.BitOffset, f.Offset)
	}
	return f.Offset
}
