package bindings

import (
	"context"
	"fmt"
	"math"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/ast"
	"github.com/yuin/gopher-lua/parse"

	"github.com/xascript/xascript/diskmon"
	"github.com/xascript/xascript/vmi"
)

func TestParseSignature(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want signature
	}{
		{"now() -> number", signature{Name: "now", Returns: [][]string{{"number"}}}},
		{"stop()", signature{Name: "stop"}},
		{"read_cstring(addr [, max]) -> string | nil, err", signature{Name: "read_cstring",
			Params:  []sigParam{{"addr", false}, {"max", true}},
			Returns: [][]string{{"string"}, {"nil", "err"}}}},
		{"walk_list(head, struct, member, fn [, limit]) -> count | nil, err", signature{Name: "walk_list",
			Params:  []sigParam{{"head", false}, {"struct", false}, {"member", false}, {"fn", false}, {"limit", true}},
			Returns: [][]string{{"count"}, {"nil", "err"}}}},
		{"f(a [, b [, c]])", signature{Name: "f", Params: []sigParam{{"a", false}, {"b", true}, {"c", true}}}},
		{"with_paused(fn, ...) -> fn's results", signature{Name: "with_paused",
			Params: []sigParam{{"fn", false}, {"...", false}}, Returns: [][]string{{"fn's results"}}}},
		{"xascript.require_version(version)", signature{Name: "xascript.require_version", Params: []sigParam{{"version", false}}}},
	} {
		got, err := parseSignature(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseSignature(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "f", "(x)", "f(x", "f(x) number", "f(x,)", "f(, x)", "f([x)", "f(x])",
		"f(a b)", "f(x) -> a,", "f(x) -> | nil", "f(1x)"} {
		if got, err := parseSignature(bad); err == nil {
			t.Errorf("parseSignature(%q) = %+v, want an error", bad, got)
		}
	}
}

func TestReturnLines(t *testing.T) {
	for _, tc := range []struct {
		alts [][]string
		want string
	}{
		{[][]string{{"number"}, {"nil", "err"}}, "---@return number?|---@return string? err"},
		{[][]string{{"true"}, {"nil", "err"}}, "---@return true?|---@return string? err"},
		{[][]string{{"address"}}, "---@return address"},
		{[][]string{{"address"}, {"number"}}, "---@return address|number"},
		{[][]string{{"address"}, {"number"}, {"nil"}}, "---@return (address|number)?"},
		{[][]string{{"fn's results"}}, "---@return any ..."},
		{nil, ""},
	} {
		got, err := returnLines("f", tc.alts)
		if err != nil || strings.Join(got, "|") != tc.want {
			t.Errorf("returnLines(%q) = %q, %v; want %q", tc.alts, got, err, tc.want)
		}
	}
	if _, err := returnLines("f", [][]string{{"thing"}}); err == nil || !strings.Contains(err.Error(), "luaReturnTypes") {
		t.Errorf("unknown result word: %v", err)
	}
	if _, err := paramType("f", "nosuchparam"); err == nil || !strings.Contains(err.Error(), "luaParamTypes") {
		t.Errorf("unknown parameter: %v", err)
	}
}

// TestLuaLSIsCurrent fails when scripts/types/xascript.lua no longer matches
// the bindings.
func TestLuaLSIsCurrent(t *testing.T) {
	want, err := Luals()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../" + LuaLSPath)
	if err != nil {
		t.Fatalf("%v: run `make docs`", err)
	}
	if string(got) != want {
		t.Fatalf("%s needs to be regenerated; run `make docs`", LuaLSPath)
	}
}

// luaBuiltinTypes are the LuaLS types that need no declaration.
var luaBuiltinTypes = map[string]bool{"nil": true, "any": true, "boolean": true, "string": true, "number": true,
	"integer": true, "function": true, "table": true, "true": true, "false": true, "userdata": true}

var (
	luaStringLit = regexp.MustCompile(`"[^"]*"`)
	luaFunParam  = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*\s*:`)
	luaTypeName  = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_.]*`)
)

// typeNames lists the named types a LuaLS type expression refers to.
func typeNames(expr string) []string {
	expr = luaStringLit.ReplaceAllString(expr, "")
	expr = strings.ReplaceAll(expr, "fun(", "(")
	expr = luaFunParam.ReplaceAllString(expr, "") // fun(entry: address): the name is not a type
	return luaTypeName.FindAllString(expr, -1)
}

// annotations is what a declaration file says about one function: its
// ---@param names, in order, and the type expressions it uses.
type annotations struct {
	params []string
	types  []string
	doc    bool
}

// readAnnotations reads the ---@ comment block that ends on the line before
// line (1-based).
func readAnnotations(lines []string, line int) annotations {
	var a annotations
	var block []string
	for i := line - 2; i >= 0 && strings.HasPrefix(lines[i], "---"); i-- {
		block = append([]string{lines[i]}, block...)
	}
	for _, l := range block {
		fields := strings.Fields(l)
		switch {
		case strings.HasPrefix(l, "---@param "):
			a.params = append(a.params, strings.TrimSuffix(fields[1], "?"))
			a.types = append(a.types, strings.Join(fields[2:], " "))
		case strings.HasPrefix(l, "---@return "):
			expr := strings.TrimPrefix(l, "---@return ")
			// A result's name follows its type after a space that is not
			// inside the type (types have spaces only after : and ,).
			if i := strings.LastIndexByte(expr, ' '); i > 0 && !strings.ContainsAny(expr[i-1:i], ":,") {
				expr = expr[:i]
			}
			a.types = append(a.types, expr)
		case !strings.HasPrefix(l, "---@"):
			a.doc = true
		}
	}
	return a
}

// TestLuaLSDeclarations checks the generated file as an editor would read
// it, since lua-language-server itself ships in neither Debian nor npm: it
// parses as Lua 5.1, defines every binding as a function, annotates each
// function's parameters in order, and names only types it declares.
func TestLuaLSDeclarations(t *testing.T) {
	src, err := Luals()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(src, "---@meta") {
		t.Error("not a ---@meta file: LuaLS would treat it as code to check, not declarations")
	}
	chunk, err := parse.Parse(strings.NewReader(src), LuaLSPath)
	if err != nil {
		t.Fatalf("%s does not parse: %v", LuaLSPath, err)
	}
	lines := strings.Split(src, "\n")

	known := map[string]bool{}
	for n := range luaBuiltinTypes {
		known[n] = true
	}
	var used []string
	for _, l := range lines {
		f := strings.Fields(l)
		switch {
		case strings.HasPrefix(l, "---@class "), strings.HasPrefix(l, "---@alias "):
			known[f[1]] = true
			if strings.HasPrefix(l, "---@alias ") {
				used = append(used, strings.Join(f[2:], " "))
			}
		case strings.HasPrefix(l, "---@field "):
			if len(f) < 3 {
				t.Errorf("field without a type: %s", l)
				continue
			}
			used = append(used, f[2])
		case strings.HasPrefix(l, "---@operator "):
			op, sig, ok := strings.Cut(strings.TrimPrefix(l, "---@operator "), "(")
			if !ok || !contains([]string{"add", "sub", "mul", "div", "mod", "pow", "unm", "concat", "len", "call"}, op) {
				t.Errorf("bad operator: %s", l)
			}
			used = append(used, sig)
		}
	}

	declared := map[string]bool{}
	for _, st := range chunk {
		def, ok := st.(*ast.FuncDefStmt)
		if !ok {
			continue
		}
		name := funcName(t, def.Name)
		declared[name] = true
		a := readAnnotations(lines, def.Line())
		params := append([]string(nil), def.Func.ParList.Names...)
		if def.Func.ParList.HasVargs {
			params = append(params, "...")
		}
		if !reflect.DeepEqual(a.params, params) && !(len(a.params) == 0 && len(params) == 0) {
			t.Errorf("%s: ---@param %q, function takes %q", name, a.params, params)
		}
		if !a.doc {
			t.Errorf("%s: no description", name)
		}
		used = append(used, a.types...)
	}
	for _, expr := range used {
		for _, n := range typeNames(expr) {
			if !known[n] {
				t.Errorf("type %q (in %q) is neither built in nor declared", n, expr)
			}
		}
	}

	// Every global and table function the API registers is declared, and
	// nothing else is.
	L := lua.NewState()
	defer L.Close()
	Register(L, &Env{})
	var want []string
	for _, n := range Names() {
		want = append(want, n)
		if !declared[n] {
			t.Errorf("binding %s is not declared", n)
		}
	}
	for _, fn := range luaExtraGlobals {
		want = append(want, fn.Name)
	}
	// Every global that Register adds to Lua's own is declared.
	plain := lua.NewState()
	defer plain.Close()
	L.G.Global.ForEach(func(k, v lua.LValue) {
		name := k.String()
		if plain.GetGlobal(name) != lua.LNil {
			return
		}
		if tb, ok := v.(*lua.LTable); ok {
			tb.ForEach(func(k, v lua.LValue) {
				if v.Type() == lua.LTFunction && !declared[name+"."+k.String()] {
					t.Errorf("%s.%s is registered but not declared", name, k)
				}
			})
			if !strings.Contains(src, "\n"+name+" = {}\n") {
				t.Errorf("global table %s is registered but not declared", name)
			}
			return
		}
		if !declared[name] {
			t.Errorf("global %s is registered but not declared", name)
		}
	})
	for _, c := range luaClasses {
		for _, m := range c.Methods {
			want = append(want, luaLocal(c.Name)+":"+m.Name)
		}
	}
	var got []string
	for n := range declared {
		got = append(got, n)
	}
	sort.Strings(want)
	sort.Strings(got)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("declared functions %q, want %q", got, want)
	}

	// Run as code, the file leaves the same globals behind that Register
	// makes (functions, and the xascript table).
	M := lua.NewState()
	defer M.Close()
	if err := M.DoString(src); err != nil {
		t.Fatalf("%s does not run: %v", LuaLSPath, err)
	}
	for _, n := range Names() {
		if _, ok := lookupPath(M, n).(*lua.LFunction); !ok {
			t.Errorf("%s is not a function in the declarations", n)
		}
		if _, ok := lookupPath(L, n).(*lua.LFunction); !ok {
			t.Errorf("%s is not a function in a registered state", n)
		}
	}
}

func funcName(t *testing.T, n *ast.FuncName) string {
	ident := func(e ast.Expr) string {
		switch x := e.(type) {
		case *ast.IdentExpr:
			return x.Value
		case *ast.AttrGetExpr:
			obj, ok1 := x.Object.(*ast.IdentExpr)
			key, ok2 := x.Key.(*ast.StringExpr)
			if ok1 && ok2 {
				return obj.Value + "." + key.Value
			}
		}
		t.Errorf("unexpected function name %T", e)
		return ""
	}
	if n.Receiver != nil {
		return ident(n.Receiver) + ":" + n.Method
	}
	return ident(n.Func)
}

// lookupPath reads a global, or a dotted "table.field".
func lookupPath(L *lua.LState, name string) lua.LValue {
	table, field, dotted := strings.Cut(name, ".")
	if !dotted {
		return L.GetGlobal(name)
	}
	t, ok := L.GetGlobal(table).(*lua.LTable)
	if !ok {
		return lua.LNil
	}
	return t.RawGetString(field)
}

func classByName(t *testing.T, name string) LuaClass {
	for _, c := range luaClasses {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no class %s in luaClasses", name)
	return LuaClass{}
}

// matchesType tells whether v is a value of the declared LuaLS type.
func matchesType(v lua.LValue, typ string) bool {
	switch typ {
	case "string":
		return v.Type() == lua.LTString
	case "number":
		return v.Type() == lua.LTNumber
	case "integer":
		n, ok := v.(lua.LNumber)
		return ok && float64(n) == math.Trunc(float64(n))
	case "boolean":
		return v.Type() == lua.LTBool
	case "true":
		return v == lua.LTrue
	case "address":
		ud, ok := v.(*lua.LUserData)
		if !ok {
			return false
		}
		_, ok = ud.Value.(Address)
		return ok
	case "string[]":
		tb, ok := v.(*lua.LTable)
		if !ok {
			return false
		}
		all := true
		tb.ForEach(func(k, e lua.LValue) { all = all && k.Type() == lua.LTNumber && e.Type() == lua.LTString })
		return all
	case "xascript.disk_op":
		s, ok := v.(lua.LString)
		return ok && contains(opStrings(), string(s))
	}
	return false
}

func opStrings() []string {
	var s []string
	for _, op := range diskOps {
		s = append(s, string(op))
	}
	return s
}

// checkTable compares a table that a binding built with class c: every key
// is a declared field (of its type) or method, and every field that is not
// optional is there (all are when full).
func checkTable(t *testing.T, c LuaClass, v lua.LValue, full bool) {
	t.Helper()
	tb, ok := v.(*lua.LTable)
	if !ok {
		t.Errorf("%s: got a %s, want a table", c.Name, v.Type())
		return
	}
	declared := map[string]bool{}
	for _, f := range c.Fields {
		declared[f.Name] = true
		fv := tb.RawGetString(f.Name)
		if fv == lua.LNil {
			if full || !f.Optional {
				t.Errorf("%s: field %s is missing", c.Name, f.Name)
			}
			continue
		}
		if !matchesType(fv, f.Type) {
			t.Errorf("%s: field %s is %s %v, declared %s", c.Name, f.Name, fv.Type(), fv, f.Type)
		}
	}
	for _, m := range c.Methods {
		declared[m.Name] = true
		if tb.RawGetString(m.Name).Type() != lua.LTFunction {
			t.Errorf("%s: method %s is missing", c.Name, m.Name)
		}
	}
	tb.ForEach(func(k, _ lua.LValue) {
		if !declared[k.String()] {
			t.Errorf("%s: key %s is not declared in luaClasses", c.Name, k)
		}
	})
}

// The declarations of the address type match its metatable: every method
// and operator, and nothing more.
func TestLuaLSAddressClass(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	env := &Env{}
	Register(L, env)
	c := classByName(t, "address")
	methods, ok := env.addressMT.RawGetString("__index").(*lua.LTable)
	if !ok {
		t.Fatal("the address metatable's __index is not a table: update this test and luaClasses")
	}
	var got, want []string
	methods.ForEach(func(k, _ lua.LValue) { got = append(got, k.String()) })
	for _, m := range c.Methods {
		want = append(want, m.Name)
	}
	sort.Strings(got)
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("address methods %q, declared %q", got, want)
	}
	got, want = nil, nil
	for _, op := range []string{"add", "sub", "mul", "div", "mod", "pow", "unm", "concat", "len", "call"} {
		if env.addressMT.RawGetString("__"+op) != lua.LNil {
			got = append(got, op)
		}
	}
	for _, op := range c.Operators {
		want = append(want, op[:strings.IndexByte(op, '(')])
	}
	sort.Strings(got)
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("address operators %q, declared %q", got, want)
	}
	// Every method runs with the argument types declared for it (as needs
	// a target with types: views_test.go runs it).
	for _, m := range c.Methods {
		if m.Name == "as" {
			continue
		}
		sig, err := parseSignature(m.Signature)
		if err != nil {
			t.Fatal(err)
		}
		args := []string{}
		for range sig.Params {
			args = append(args, "1")
		}
		src := fmt.Sprintf("local r = addr(0x1000):%s(%s); assert(r ~= nil)", m.Name, strings.Join(args, ", "))
		if err := L.DoString(src); err != nil {
			t.Errorf("%s: %v", src, err)
		}
	}
}

// The xascript table holds the declared fields and the bindings named
// xascript.*.
func TestLuaLSXascriptTable(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	Register(L, &Env{})
	c := classByName(t, "xascript")
	for _, n := range Names() {
		if strings.HasPrefix(n, "xascript.") {
			c.Methods = append(c.Methods, Binding{Name: strings.TrimPrefix(n, "xascript.")})
		}
	}
	checkTable(t, c, L.GetGlobal("xascript"), true)
}

// infoGuest is a guest that only describes itself.
type infoGuest struct {
	Guest
	info vmi.KernelInfo
}

func (g infoGuest) Describe() vmi.KernelInfo { return g.info }

// guest_info's result has the declared fields, of the declared types.
func TestLuaLSGuestInfoClass(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	Register(L, &Env{Guest: infoGuest{info: vmi.KernelInfo{Target: "raw image", Paging: "4-level", Root: 0x1000,
		RootSource: "CR3", Banner: "Linux version", TextPhys: 0x1000000, KASLRVirtual: -0x200000,
		KASLRPhysical: 0x400000, SymbolShift: 0x200000, Symbols: 3, Notes: []string{"a", "b"}}}})
	c := classByName(t, "xascript.guest_info")
	if err := L.DoString("info = guest_info()"); err != nil {
		t.Fatal(err)
	}
	v := L.GetGlobal("info")
	if v.Type() == lua.LTTable {
		checkTable(t, c, v, true)
		return
	}
	// A userdata cannot list its keys: read each declared field through it.
	for _, f := range c.Fields {
		fv := L.GetField(v, f.Name)
		if !matchesType(fv, f.Type) {
			t.Errorf("guest_info().%s is %s %v, declared %s", f.Name, fv.Type(), fv, f.Type)
		}
	}
}

// A disk event has the declared fields, of the declared types: all of them
// on a full event, the ones not optional on a bare one.
func TestLuaLSDiskEventClass(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	c := classByName(t, "xascript.disk_event")
	now := time.Unix(1700000000, 0)
	full := diskmon.Event{Op: diskmon.OpRename, Path: "/a/b", OldPath: "/a/c", Watch: "/a", Ino: 12, Type: diskmon.TypeSymlink,
		Size: 5, Mode: 0o777, UID: 1, GID: 2, Links: 1, Target: "/x", Hardlink: true, WatchEnded: true, Time: now, Ctime: now, Err: "e"}
	checkTable(t, c, eventTable(L, full), true)
	checkTable(t, c, eventTable(L, diskmon.Event{Op: diskmon.OpLost, Watch: "/a"}), false)
	checkTable(t, c, eventTable(L, diskmon.Event{Op: diskmon.OpMkdir, Path: "/a/d", Watch: "/a"}), false)
}

type fakeWatcher struct{ done chan struct{} }

func (w fakeWatcher) Watch(string, diskmon.WatchOptions, func(diskmon.Event)) (DiskWatch, error) {
	return w, nil
}
func (w fakeWatcher) Close()                {}
func (w fakeWatcher) Done() <-chan struct{} { return w.done }

// on_disk_event's watch has the declared fields and methods; its options
// are the declared ones.
func TestLuaLSWatchClass(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // ends the goroutine that waits for the watch to end
	w := fakeWatcher{done: make(chan struct{})}
	defer close(w.done)
	Register(L, &Env{Ctx: ctx, Disk: w})
	var opts []string
	for _, f := range classByName(t, "xascript.watch_options").Fields {
		v := "1"
		if f.Type == "boolean" {
			v = "true"
		}
		opts = append(opts, f.Name+" = "+v)
	}
	if err := L.DoString(`watch = on_disk_event("/a", function() end, {` + strings.Join(opts, ", ") + `})`); err != nil {
		t.Fatal(err)
	}
	checkTable(t, classByName(t, "xascript.watch"), L.GetGlobal("watch"), true)
	// An option that is not declared does not exist: bad values of the
	// declared ones are refused, which shows on_disk_event reads them.
	for _, f := range classByName(t, "xascript.watch_options").Fields {
		if f.Type != "integer" {
			continue
		}
		if err := L.DoString(`on_disk_event("/a", function() end, {` + f.Name + ` = -1})`); err == nil {
			t.Errorf("option %s = -1 accepted: is it read?", f.Name)
		}
	}
}
