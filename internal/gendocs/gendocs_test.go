package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

const root = "../.."

// TestGeneratedFilesAreCurrent fails when a committed generated file
// (docs/lua-api.md, docs/lua-libs.md, scripts/types/xascript.lua) differs from
// what `make docs` writes now.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	files, err := generate(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("%d generated files, want 3", len(files))
	}
	for _, f := range files {
		got, err := os.ReadFile(f.path)
		if err != nil {
			t.Errorf("%v: run `make docs`", err)
			continue
		}
		if string(got) != f.content {
			t.Errorf("%s needs to be regenerated; run `make docs`", f.path)
		}
	}
}

func TestParseLibDoc(t *testing.T) {
	good := "-- @module net.tcp\n-- Reads **TCP** sockets.\n--\n--   indented\n--no space\nlocal M = {}\n-- not doc\n"
	for _, file := range []string{"net/tcp.lua", "net/tcp/init.lua"} {
		d, err := parseLibDoc(file, good)
		if err != nil || d.Module != "net.tcp" || d.Doc != "Reads **TCP** sockets.\n\n  indented\nno space" {
			t.Errorf("%s: %+v, %v", file, d, err)
		}
	}
	// The block ends at the first line that is not a plain comment; a
	// LuaLS annotation (---) ends it too.
	d, err := parseLibDoc("m.lua", "-- @module m\n-- one\n---@class x\n-- two\n")
	if err != nil || d.Doc != "one" {
		t.Errorf("block end: %+v, %v", d, err)
	}
	for name, src := range map[string]string{
		"no header":    "-- Reads things.\nlocal M = {}\n",
		"wrong module": "-- @module other\n-- Reads things.\n",
		"empty doc":    "-- @module m\n--\n--   \nlocal M = {}\n",
		"empty file":   "",
		"three dashes": "--- @module m\n--- Reads things.\n",
	} {
		if d, err := parseLibDoc("m.lua", src); err == nil {
			t.Errorf("%s: accepted as %+v", name, d)
		}
	}
	long := "-- @module m\n" + strings.Repeat("-- x\n", maxDocLines+1)
	if _, err := parseLibDoc("m.lua", long); err == nil || !strings.Contains(err.Error(), "longer") {
		t.Errorf("an endless doc block: %v", err)
	}
}

func TestLibFunctions(t *testing.T) {
	src := `-- @module m
-- The doc.

local m = {}

-- f(x) does f.
-- Second line.
function m.f(x, y)
end

function m:g() end
local function hidden() end
  function m.indented() end
-- orphan comment

function m.h(...) end
`
	got := libFunctions(src)
	want := []libFunc{{"m.f(x, y)", "f(x) does f.\nSecond line."}, {"m:g()", ""}, {"m.h(...)", ""}}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("function %d: %q, want %q", i, got[i], want[i])
		}
	}
	md, err := libsMarkdown(fstest.MapFS{"m.lua": {Data: []byte(src)}})
	if err != nil || !strings.Contains(md, "\n## m\n\nThe doc.\n\n### `m.f(x, y)`\n\nf(x) does f.\nSecond line.\n\n### `m:g()`\n\n### `m.h(...)`\n") {
		t.Errorf("markdown %q, %v", md, err)
	}
}

func TestLibsMarkdown(t *testing.T) {
	libs := fstest.MapFS{
		"b.lua":          {Data: []byte("-- @module b\n-- B's doc.\n")},
		"a/init.lua":     {Data: []byte("-- @module a\n-- A's doc.\n")},
		"a/x.lua":        {Data: []byte("-- @module a.x\n-- A.x's doc.\n")},
		"README.txt":     {Data: []byte("not a library")},
		"c/notes.lua.md": {Data: []byte("not one either")},
	}
	md, err := libsMarkdown(libs)
	if err != nil {
		t.Fatal(err)
	}
	ia, iax, ib := strings.Index(md, "\n## a\n\nA's doc.\n"), strings.Index(md, "\n## a.x\n\nA.x's doc.\n"), strings.Index(md, "\n## b\n\nB's doc.\n")
	if ia < 0 || iax < ia || ib < iax || !strings.Contains(md, "- [a.x](#ax)") {
		t.Errorf("libraries missing or out of order:\n%s", md)
	}
	libs["bad.lua"] = &fstest.MapFile{Data: []byte("local M = {}\n")}
	if _, err := libsMarkdown(libs); err == nil || !strings.Contains(err.Error(), "bad.lua") {
		t.Errorf("a library without a doc block: %v", err)
	}
	if _, err := libsMarkdown(fstest.MapFS{}); err == nil {
		t.Error("no libraries accepted")
	}
}

// scripts/.luarc.json makes LuaLS read the scripts as Lua 5.1 with the
// generated declarations, and resolve require as xascript does for
// scripts/lib.
func TestLuarc(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(root, "scripts", ".luarc.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rc struct {
		Runtime struct {
			Version string
			Path    []string
		}
		Workspace struct{ Library []string }
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if err := dec.Decode(&rc); err != nil {
		t.Fatalf(".luarc.json: %v", err)
	}
	if rc.Runtime.Version != "Lua 5.1" {
		t.Errorf("runtime.version %q: gopher-lua is Lua 5.1", rc.Runtime.Version)
	}
	found := false
	for _, lib := range rc.Workspace.Library {
		if _, err := os.Stat(filepath.Join(root, "scripts", lib, "xascript.lua")); err == nil {
			found = true
		}
	}
	if !found {
		t.Errorf("workspace.library %q has no folder with xascript.lua", rc.Workspace.Library)
	}
	for _, want := range []string{"lib/?.lua", "lib/?/init.lua"} {
		ok := false
		for _, p := range rc.Runtime.Path {
			ok = ok || p == want
		}
		if !ok {
			t.Errorf("runtime.path %q lacks %q: require(\"linux\") would not resolve", rc.Runtime.Path, want)
		}
	}
}
