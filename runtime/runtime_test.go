package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	lua "github.com/yuin/gopher-lua"

	"github.com/xascript/xascript/bindings"
	"github.com/xascript/xascript/scripts"
)

func write(t *testing.T, dir, name, src string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runFile(t *testing.T, cfg Config, script string, args ...string) (string, error) {
	t.Helper()
	var out strings.Builder
	cfg.Stdout = &out
	rt := New(cfg)
	defer rt.Close()
	err := rt.RunFile(script, args)
	return out.String(), err
}

// require searches the script's folder, then SearchPath, then the embedded
// libraries; the first hit wins.
func TestRequireOrder(t *testing.T) {
	scriptDir, extra := t.TempDir(), t.TempDir()
	write(t, scriptDir, "near.lua", `return "script folder"`)
	write(t, extra, "near.lua", `return "search path"`)
	write(t, extra, "far.lua", `return "search path"`)
	write(t, extra, "pkg/init.lua", `return "package init"`)
	libs := fstest.MapFS{
		"far.lua":    {Data: []byte(`return "embedded"`)},
		"only.lua":   {Data: []byte(`return "embedded"`)},
		"sub/m.lua":  {Data: []byte(`return "embedded sub"`)},
		"broken.lua": {Data: []byte(`return (`)},
	}
	script := write(t, scriptDir, "main.lua", `
print(require("near"), require("far"), require("only"), require("sub.m"), require("pkg"))
print(pcall(require, "missing"))
`)
	out, err := runFile(t, Config{SearchPath: []string{extra}, Libs: libs}, script)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out, "\n")
	if lines[0] != "script folder\tsearch path\tembedded\tembedded sub\tpackage init" {
		t.Errorf("require results: %q", lines[0])
	}
	// The message lists every place searched, on its one line.
	if !strings.HasPrefix(lines[1], "false") || !strings.Contains(lines[1], "module missing not found: ") ||
		!strings.Contains(lines[1], extra) || !strings.Contains(lines[1], "the built-in scripts/lib") {
		t.Errorf("missing module: %q", out)
	}
}

// The shared libraries in scripts/lib are embedded and load.
func TestEmbeddedLibrariesCompile(t *testing.T) {
	script := write(t, t.TempDir(), "m.lua", `local l = require("linux"); print(type(l.modules), type(l.tasks))`)
	out, err := runFile(t, Config{Libs: scripts.Libs()}, script)
	if err != nil || out != "function\tfunction\n" {
		t.Fatalf("out %q err %v", out, err)
	}
}

func TestArgsAndVarargs(t *testing.T) {
	script := write(t, t.TempDir(), "a.lua", `print(arg[0]:match("a.lua$"), #arg, arg[1], arg[2], select("#", ...), ...)`)
	out, err := runFile(t, Config{}, script, "x", "y z")
	if err != nil || out != "a.lua\t2\tx\ty z\t2\tx\ty z\n" {
		t.Fatalf("out %q err %v", out, err)
	}
}

func TestErrorsCarryFileAndLine(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ src, want string }{
		"runtime": {"local t = nil\nprint(t.x)", "rt.lua:2: attempt to index a non-table object(nil) with key 'x'"},
		"error":   {"\n\nerror('boom')", "rt.lua:3: boom"},
		"syntax":  {"print(", "rt.lua"},
		"binding": {"read_u32()", "rt.lua:1: no target"},
	} {
		t.Run(name, func(t *testing.T) {
			script := write(t, dir, "rt.lua", tc.src)
			_, err := runFile(t, Config{}, script)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// A panic inside a binding becomes a script error, not a crash.
func TestPanicFirewall(t *testing.T) {
	var out strings.Builder
	rt := New(Config{Stdout: &out})
	defer rt.Close()
	rt.L.SetGlobal("explode", rt.L.NewFunction(func(L *lua.LState) int {
		var m map[string]int
		m["x"] = 1 // a binding bug
		return 0
	}))
	err := rt.RunString("print('before')\nexplode()", "p.lua", nil)
	if err == nil || !strings.Contains(err.Error(), "assignment to entry in nil map") {
		t.Fatalf("err = %v", err)
	}
	if out.String() != "before\n" {
		t.Fatalf("output before the panic was lost: %q", out.String())
	}
	// The state is still usable afterwards.
	if err := rt.RunString("print(1 + 1)", "after.lua", nil); err != nil {
		t.Fatal(err)
	}
}

// print honours __tostring (addresses print as hex) and separates with tabs.
func TestPrint(t *testing.T) {
	var out strings.Builder
	rt := New(Config{Stdout: &out, Env: &bindings.Env{}})
	defer rt.Close()
	if err := rt.RunString(`print(addr("0xffffffff81000000"), 1, nil, true, "s")`, "p.lua", nil); err != nil {
		t.Fatal(err)
	}
	if out.String() != "0xffffffff81000000\t1\tnil\ttrue\ts\n" {
		t.Fatalf("print wrote %q", out.String())
	}
}
