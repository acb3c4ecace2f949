package main

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/ast"
	"github.com/yuin/gopher-lua/parse"

	"github.com/xascript/xascript/bindings"
)

// freeNames walks a chunk as Lua scopes it and collects the global names it
// reads and writes: what lua-language-server's undefined-global check
// looks at.
type freeNames struct {
	scopes []map[string]bool
	reads  map[string][]int // name -> lines
	writes map[string]bool
}

func newFreeNames() *freeNames {
	return &freeNames{reads: map[string][]int{}, writes: map[string]bool{}}
}

func (f *freeNames) push() { f.scopes = append(f.scopes, map[string]bool{}) }
func (f *freeNames) pop()  { f.scopes = f.scopes[:len(f.scopes)-1] }
func (f *freeNames) declare(names ...string) {
	for _, n := range names {
		f.scopes[len(f.scopes)-1][n] = true
	}
}

func (f *freeNames) local(name string) bool {
	for i := len(f.scopes) - 1; i >= 0; i-- {
		if f.scopes[i][name] {
			return true
		}
	}
	return false
}

func (f *freeNames) block(stmts []ast.Stmt) {
	f.push()
	f.stmts(stmts)
	f.pop()
}

func (f *freeNames) stmts(stmts []ast.Stmt) {
	for _, s := range stmts {
		f.stmt(s)
	}
}

func (f *freeNames) stmt(s ast.Stmt) {
	switch s := s.(type) {
	case *ast.AssignStmt:
		f.exprs(s.Rhs)
		for _, e := range s.Lhs {
			if id, ok := e.(*ast.IdentExpr); ok {
				if !f.local(id.Value) {
					f.writes[id.Value] = true
				}
				continue
			}
			f.expr(e)
		}
	case *ast.LocalAssignStmt:
		// local function f: f is in scope in its own body. gopher-lua's
		// AST is the same for local f = function, where it is not: that
		// case misses a warning, never makes a false one.
		if len(s.Names) == 1 && len(s.Exprs) == 1 {
			if _, ok := s.Exprs[0].(*ast.FunctionExpr); ok {
				f.declare(s.Names[0])
			}
		}
		f.exprs(s.Exprs)
		f.declare(s.Names...)
	case *ast.FuncCallStmt:
		f.expr(s.Expr)
	case *ast.DoBlockStmt:
		f.block(s.Stmts)
	case *ast.WhileStmt:
		f.expr(s.Condition)
		f.block(s.Stmts)
	case *ast.RepeatStmt:
		f.push() // until sees the body's locals
		f.stmts(s.Stmts)
		f.expr(s.Condition)
		f.pop()
	case *ast.IfStmt:
		f.expr(s.Condition)
		f.block(s.Then)
		f.block(s.Else)
	case *ast.NumberForStmt:
		f.exprs([]ast.Expr{s.Init, s.Limit, s.Step})
		f.push()
		f.declare(s.Name)
		f.block(s.Stmts)
		f.pop()
	case *ast.GenericForStmt:
		f.exprs(s.Exprs)
		f.push()
		f.declare(s.Names...)
		f.block(s.Stmts)
		f.pop()
	case *ast.FuncDefStmt:
		if s.Name.Receiver != nil {
			f.expr(s.Name.Receiver)
			f.function(s.Func, true)
			return
		}
		if id, ok := s.Name.Func.(*ast.IdentExpr); ok {
			if !f.local(id.Value) {
				f.writes[id.Value] = true
			}
		} else {
			f.expr(s.Name.Func)
		}
		f.function(s.Func, false)
	case *ast.ReturnStmt:
		f.exprs(s.Exprs)
	}
}

func (f *freeNames) function(fn *ast.FunctionExpr, method bool) {
	f.push()
	if method {
		f.declare("self")
	}
	f.declare(fn.ParList.Names...)
	f.stmts(fn.Stmts)
	f.pop()
}

func (f *freeNames) exprs(es []ast.Expr) {
	for _, e := range es {
		f.expr(e)
	}
}

func (f *freeNames) expr(e ast.Expr) {
	switch e := e.(type) {
	case nil:
	case *ast.IdentExpr:
		if !f.local(e.Value) {
			f.reads[e.Value] = append(f.reads[e.Value], e.Line())
		}
	case *ast.AttrGetExpr:
		f.exprs([]ast.Expr{e.Object, e.Key})
	case *ast.TableExpr:
		for _, fl := range e.Fields {
			f.exprs([]ast.Expr{fl.Key, fl.Value})
		}
	case *ast.FuncCallExpr:
		f.exprs([]ast.Expr{e.Func, e.Receiver})
		f.exprs(e.Args)
	case *ast.LogicalOpExpr:
		f.exprs([]ast.Expr{e.Lhs, e.Rhs})
	case *ast.RelationalOpExpr:
		f.exprs([]ast.Expr{e.Lhs, e.Rhs})
	case *ast.StringConcatOpExpr:
		f.exprs([]ast.Expr{e.Lhs, e.Rhs})
	case *ast.ArithmeticOpExpr:
		f.exprs([]ast.Expr{e.Lhs, e.Rhs})
	case *ast.UnaryMinusOpExpr:
		f.expr(e.Expr)
	case *ast.UnaryNotOpExpr:
		f.expr(e.Expr)
	case *ast.UnaryLenOpExpr:
		f.expr(e.Expr)
	case *ast.FunctionExpr:
		f.function(e, false)
	}
}

func scan(t *testing.T, name, src string) *freeNames {
	t.Helper()
	chunk, err := parse.Parse(strings.NewReader(src), name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	f := newFreeNames()
	f.block(chunk)
	return f
}

func TestFreeNames(t *testing.T) {
	f := scan(t, "t.lua", `
local a = b
local function rec() return rec() end
local g = function() return g end -- counted as local: the AST is that of local function g
for i = 1, n do local x = i + y end
for k, v in pairs(t) do print(k, v) end
repeat local r = 1 until r
function M.f(p) return p, self end
function obj:m(q) return self, q end
glob = 1
print(glob, x, i, k)
`)
	var reads []string
	for n := range f.reads {
		reads = append(reads, n)
	}
	sort.Strings(reads)
	if got := strings.Join(reads, " "); got != "M b glob i k n obj pairs print self t x y" {
		t.Errorf("free reads: %s", got)
	}
	if !f.writes["glob"] || len(f.writes) != 1 {
		t.Errorf("free writes: %v", f.writes)
	}
}

// luaLSBuiltins are globals LuaLS knows for Lua 5.1 and xascript sets, that
// a bare gopher-lua state lacks.
var luaLSBuiltins = []string{"arg"}

// The shipped scripts (and the API's fixture scripts) use only globals that Lua or the generated
// declarations define, so an editor with LuaLS shows them without an
// undefined-global warning, and the declarations cover what real monitors
// call.
func TestScriptsUseDeclaredGlobals(t *testing.T) {
	src, err := bindings.Luals()
	if err != nil {
		t.Fatal(err)
	}
	known := scan(t, bindings.LuaLSPath, src).writes
	if !known["read_u32"] || !known["xascript"] {
		t.Fatalf("declarations define %v", known)
	}
	L := lua.NewState()
	defer L.Close()
	L.G.Global.ForEach(func(k, _ lua.LValue) { known[k.String()] = true })
	for _, n := range luaLSBuiltins {
		known[n] = true
	}
	var files []string
	for _, pattern := range []string{"scripts/examples/*.lua", "scripts/lib/*.lua", "scripts/lib/*/*.lua", "bindings/testdata/*.lua"} {
		m, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 2 {
		t.Fatalf("found only %q", files)
	}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		f := scan(t, file, string(raw))
		for name, lines := range f.reads {
			if !known[name] && !f.writes[name] {
				t.Errorf("%s:%d: global %s is neither Lua's nor declared in %s", file, lines[0], name, bindings.LuaLSPath)
			}
		}
	}
}
