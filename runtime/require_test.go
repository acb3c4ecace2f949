package runtime

import (
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// require "a.b" finds a/b.lua, then a/b/init.lua, in every search folder
// and in the built-in libraries; the first folder in order wins, and a
// file wins over a folder's init.lua in the same place.
func TestRequireDottedNames(t *testing.T) {
	scriptDir, lib1, lib2 := t.TempDir(), t.TempDir(), t.TempDir()
	write(t, lib1, "net/tcp.lua", `return "lib1 net/tcp.lua"`)
	write(t, lib1, "net/tcp/init.lua", `return "lib1 net/tcp/init.lua"`)
	write(t, lib2, "net/tcp.lua", `return "lib2 net/tcp.lua"`)
	write(t, lib2, "net/udp/init.lua", `return "lib2 net/udp/init.lua"`)
	write(t, lib2, "shadow.lua", `return "lib2 shadow"`)
	write(t, lib1, "dir.lua/x", ``) // a folder named like a module is not one
	libs := fstest.MapFS{
		"net/udp.lua":      {Data: []byte(`return "built-in net/udp.lua"`)},
		"net/ip/init.lua":  {Data: []byte(`return "built-in net/ip/init.lua"`)},
		"shadow.lua":       {Data: []byte(`return "built-in shadow"`)},
		"broken/init.lua":  {Data: []byte(`return (`)},
		"dir.lua":          {Data: []byte(`return "built-in dir"`)},
		"deep/a/b/c.lua":   {Data: []byte(`return "built-in deep.a.b.c"`)},
		"deep/a/init.lua":  {Data: []byte(`return "built-in deep.a"`)},
		"deep/a/b/c/x.lua": {Data: []byte(`return "unused"`)},
	}
	script := write(t, scriptDir, "main.lua", `
for _, m in ipairs{"net.tcp", "net.udp", "net.ip", "shadow", "dir", "deep.a.b.c", "deep.a"} do print(require(m)) end
print(pcall(require, "broken"))
`)
	out, err := runFile(t, Config{SearchPath: []string{lib1, lib2}, Libs: libs}, script)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"lib1 net/tcp.lua", "lib2 net/udp/init.lua", "built-in net/ip/init.lua", "lib2 shadow",
		"built-in dir", "built-in deep.a.b.c", "built-in deep.a"}
	lines := strings.Split(out, "\n")
	if len(lines) < len(want)+1 || strings.Join(lines[:len(want)], "|") != strings.Join(want, "|") {
		t.Fatalf("require results:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}
	// A library that does not compile is an error that names it, not a
	// module that was not found.
	if b := lines[len(want)]; !strings.HasPrefix(b, "false") || !strings.Contains(b, "scripts/lib/broken/init.lua") ||
		strings.Contains(b, "not found") {
		t.Errorf("broken library: %q", b)
	}
}

// A module found nowhere lists every folder searched, in order, on one line
// (the searcher gives one line per file; require folds them).
func TestRequireNotFoundListsWhereItLooked(t *testing.T) {
	scriptDir, lib := t.TempDir(), t.TempDir()
	script := write(t, scriptDir, "main.lua", `require("a.b")`)
	_, err := runFile(t, Config{SearchPath: []string{lib}, Libs: fstest.MapFS{"x.lua": {}}}, script)
	if err == nil {
		t.Fatal("missing module loaded")
	}
	msg := err.Error()
	var at []int
	for _, place := range []string{
		"module a.b not found: looked for a/b.lua and a/b/init.lua in ",
		scriptDir + ", ",
		lib + ", ",
		"the built-in scripts/lib",
	} {
		i := strings.Index(msg, place)
		if i < 0 || len(at) > 0 && i < at[len(at)-1] {
			t.Errorf("%q missing or out of order in:\n%s", place, msg)
		}
		at = append(at, i)
	}
	if !strings.HasPrefix(msg, filepath.Join(scriptDir, "main.lua")+":1:") {
		t.Errorf("error does not name the script's line: %s", msg)
	}
}
