package repl

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/xascript/xascript/runtime"
)

// fakeTypes stands in for a kernel's BTF: completion's own logic is tested
// here; cmd/xascript's REPL test completes against a real guest's.
type fakeTypes struct {
	structs []string
	members map[string][]string // "struct" or "struct/path" -> names
	listed  int
}

func (f *fakeTypes) StructNames() ([]string, error) {
	f.listed++
	return f.structs, nil
}

func (f *fakeTypes) MemberNames(s, path string) ([]string, error) {
	key := s
	if path != "" {
		key += "/" + path
	}
	m, ok := f.members[key]
	if !ok {
		return nil, errors.New("no such struct")
	}
	return m, nil
}

func newCompleter(t *testing.T) (*Completer, *fakeTypes) {
	t.Helper()
	rt := runtime.New(runtime.Config{Stdout: &strings.Builder{}})
	t.Cleanup(func() { rt.Close() })
	fn, err := rt.Compile(`
		config = {verbose = true, depth = 3, ["not ident"] = 1, nested = {leaf = 1}}
		obj = setmetatable({}, {__index = {method = function() end, value = 1}})
		trap_called = false
		trap = setmetatable({}, {__index = function() trap_called = true return {} end})
		a = addr(0x1000)`, "setup")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Eval(t.Context(), fn); err != nil {
		t.Fatal(err)
	}
	ft := &fakeTypes{
		// Sorted, as the kernel returns them.
		structs: []string{"list_head", "module", "module_layout", "task_struct", "task_struct_ext"},
		members: map[string][]string{
			"task_struct":    {"comm", "compat_robust_list", "pid", "se", "tasks"},
			"task_struct/se": {"vruntime", "exec_start"},
			"module":         {"list", "name"},
		},
	}
	return &Completer{L: rt.L, Types: ft}, ft
}

func TestComplete(t *testing.T) {
	c, ft := newCompleter(t)
	for _, tc := range []struct {
		line       string
		head       string
		candidates []string
	}{
		// Globals and keywords.
		{`guest_in`, ``, []string{"guest_info"}},
		{`x = read_u3`, `x = `, []string{"read_u32", "read_u32_pa"}},
		{`whi`, ``, []string{"while"}},
		// Fields of tables, through dotted paths; only identifiers.
		{`config.`, `config.`, []string{"depth", "nested", "verbose"}},
		{`print(config.ver`, `print(config.`, []string{"verbose"}},
		{`config.nested.l`, `config.nested.`, []string{"leaf"}},
		{`string.fo`, `string.`, []string{"format"}},
		// An object's methods come from its metatable's __index table; after
		// ":" only functions.
		{`obj.`, `obj.`, []string{"method", "value"}},
		{`obj:`, `obj:`, []string{"method"}},
		{`a:sh`, `a:`, []string{"shl", "shr"}},
		// Struct names in the type argument, closed by a quote.
		{`offsetof("task`, `offsetof("`, []string{`task_struct"`, `task_struct_ext"`}},
		{`sizeof("struct mod`, `sizeof("`, []string{`struct module"`, `struct module_layout"`}},
		{`has_member( "list`, `has_member( "`, []string{`list_head"`}},
		{`view("mod`, `view("`, []string{`module"`, `module_layout"`}},
		{`walk_list(symbol("modules"), "mod`, `walk_list(symbol("modules"), "`, []string{`module"`, `module_layout"`}},
		{`walk_list(head, "mod`, `walk_list(head, "`, []string{`module"`, `module_layout"`}},
		{`container_of(p, "task_s`, `container_of(p, "`, []string{`task_struct"`, `task_struct_ext"`}},
		// Member names in the member argument, nested paths included.
		{`has_member("task_struct", "com`, `has_member("task_struct", "`, []string{`comm"`, `compat_robust_list"`}},
		{`offsetof("task_struct", "se.v`, `offsetof("task_struct", "`, []string{`se.vruntime"`}},
		{`walk_list(head, "module", "l`, `walk_list(head, "module", "`, []string{`list"`}},
		{`walk_list(symbol("modules"), "module", "n`, `walk_list(symbol("modules"), "module", "`, []string{`name"`}},
		{`offsetof("nosuch", "`, `offsetof("nosuch", "`, nil},
		// Inside other strings and comments, nothing.
		{`print("guest_in`, `print("guest_in`, nil},
		{`x = 1 -- guest_in`, `x = 1 -- guest_in`, nil},
		// A number is not a table.
		{`x = 1.`, `x = 1.`, nil},
	} {
		head, got, tail := c.Complete(tc.line, len([]rune(tc.line)))
		if head != tc.head || !slices.Equal(got, tc.candidates) || tail != "" {
			t.Errorf("Complete(%q) = %q %q %q; want %q %q", tc.line, head, got, tail, tc.head, tc.candidates)
		}
	}
	if ft.listed != 1 {
		t.Errorf("StructNames called %d times; the list is read once", ft.listed)
	}
}

// The closing quote is not added when one follows the cursor, and what
// follows the cursor is kept.
func TestCompleteMidLine(t *testing.T) {
	c, _ := newCompleter(t)
	line := `sizeof("task_s")`
	head, got, tail := c.Complete(line, len(`sizeof("task_s`))
	if head != `sizeof("` || !slices.Equal(got, []string{"task_struct", "task_struct_ext"}) || tail != `")` {
		t.Errorf("Complete(%q) = %q %q %q", line, head, got, tail)
	}
	// Cursor positions count runes, not bytes.
	line = `x = "é" .. guest_in`
	head, got, _ = c.Complete(line, len([]rune(line)))
	if head != `x = "é" .. ` || !slices.Equal(got, []string{"guest_info"}) {
		t.Errorf("Complete(%q) = %q %q", line, head, got)
	}
}

// Completing never runs Lua code: an __index function is not called.
func TestCompleteRunsNoCode(t *testing.T) {
	c, _ := newCompleter(t)
	c.Complete(`trap.x.`, len(`trap.x.`))
	c.Complete(`trap.`, len(`trap.`))
	if v := c.L.GetGlobal("trap_called"); v.String() != "false" {
		t.Errorf("completion ran trap's __index function (trap_called = %v)", v)
	}
}

// With no target there are no struct names, and nothing fails.
func TestCompleteNoTarget(t *testing.T) {
	c, _ := newCompleter(t)
	c.Types = nil
	if _, got, _ := c.Complete(`sizeof("ta`, len(`sizeof("ta`)); got != nil {
		t.Errorf("no target: %q", got)
	}
}

func TestCompleteLoadPath(t *testing.T) {
	c, _ := newCompleter(t)
	dir := t.TempDir()
	for _, f := range []string{"mon.lua", "more.lua", "other.lua"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "mods"), 0o755); err != nil {
		t.Fatal(err)
	}
	line := ":load " + filepath.Join(dir, "mo")
	head, got, _ := c.Complete(line, len([]rune(line)))
	want := []string{filepath.Join(dir, "mods") + "/", filepath.Join(dir, "mon.lua"), filepath.Join(dir, "more.lua")}
	if head != ":load " || !slices.Equal(got, want) {
		t.Errorf("Complete(%q) = %q %q; want %q", line, head, got, want)
	}
}
