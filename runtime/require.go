package runtime

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// maxModuleName bounds a require name; real ones are a few words.
const maxModuleName = 256

// installSearcher puts xascript's module searcher in package.loaders in
// place of gopher-lua's file searcher (after package.preload): one function
// that knows every place a module may be, in order, and says where it
// looked when it finds nothing.
func (r *Runtime) installSearcher() {
	pkg, ok := r.L.GetGlobal("package").(*lua.LTable)
	if !ok {
		return
	}
	loaders, ok := r.L.GetField(pkg, "loaders").(*lua.LTable)
	if !ok {
		return
	}
	loaders.RawSetInt(2, r.L.NewFunction(r.searchModule))
	for i := loaders.Len(); i > 2; i-- { // nothing after it: it is the last word
		loaders.RawSetInt(i, lua.LNil)
	}
}

// searchModule is a package.loaders searcher. require "a.b" looks for
// a/b.lua, then a/b/init.lua, in each folder of package.path's patterns
// (the script's folder, each --lib folder, each $XASCRIPT_PATH folder: see
// setSearchPath), then in the embedded scripts/lib. It returns the chunk
// of the first file found, or the list of places it looked, one
// "no file '…'" per line, which require shows after the module's name.
func (r *Runtime) searchModule(L *lua.LState) int {
	name := L.CheckString(1)
	if len(name) > maxModuleName {
		L.Push(lua.LString(fmt.Sprintf("no module name longer than %d bytes is searched", maxModuleName)))
		return 1
	}
	rel := strings.ReplaceAll(name, ".", "/")
	var tried []string
	if p, ok := L.GetField(L.GetGlobal("package"), "path").(lua.LString); ok {
		for _, pattern := range strings.Split(string(p), ";") {
			if pattern == "" {
				continue
			}
			file := strings.ReplaceAll(pattern, "?", rel)
			if st, err := os.Stat(file); err != nil || st.IsDir() {
				tried = append(tried, "no file '"+file+"'")
				continue
			}
			fn, err := L.LoadFile(file)
			if err != nil {
				L.RaiseError("load module %s: %v", name, err)
			}
			L.Push(fn)
			return 1
		}
	}
	if r.cfg.Libs != nil {
		for _, file := range []string{rel + ".lua", rel + "/init.lua"} {
			src, err := fs.ReadFile(r.cfg.Libs, path.Clean(file))
			if err != nil {
				tried = append(tried, "no built-in library 'scripts/lib/"+file+"'")
				continue
			}
			fn, err := L.Load(strings.NewReader(string(src)), "scripts/lib/"+file)
			if err != nil {
				L.RaiseError("load built-in library %s: %v", file, err)
			}
			L.Push(fn)
			return 1
		}
	}
	// require joins the searchers' messages with "\n\t".
	L.Push(lua.LString(strings.Join(tried, "\n\t")))
	return 1
}

// wrapRequire makes a failed require say, on one line, every place it
// looked. gopher-lua's message puts the searcher's lines after "module X
// not found:", and a script's error is shown by its first line only, so a
// user saw the name and nothing of where it was searched.
func (r *Runtime) wrapRequire() {
	orig := r.L.GetGlobal("require")
	if orig == lua.LNil {
		return
	}
	r.L.SetGlobal("require", r.L.NewFunction(func(L *lua.LState) int {
		name := L.CheckString(1)
		L.Push(orig)
		L.Push(lua.LString(name))
		err := L.PCall(1, 1, nil)
		if err == nil {
			return 1
		}
		api, ok := err.(*lua.ApiError)
		if !ok {
			L.RaiseError("%v", err)
		}
		if msg, ok := api.Object.(lua.LString); ok && strings.Contains(string(msg), "module "+name+" not found") {
			L.RaiseError("%s", requireFailure(name, string(msg)))
		}
		L.Error(api.Object, 0) // the module's own error, as it was
		return 0
	}))
}

// requireFailure folds the searcher's lines ("no file 'DIR/a/b.lua'", one
// per place) into one short line that names the folders searched, so that
// it fits the one line a script error is shown as.
func requireFailure(name, msg string) string {
	file := strings.ReplaceAll(name, ".", "/")
	var dirs []string
	seen := map[string]bool{}
	add := func(d string) {
		if !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	for _, line := range strings.Split(msg, "\n")[1:] {
		line = strings.Trim(line, " \t,")
		switch {
		case strings.HasPrefix(line, "no file '"):
			p := strings.TrimSuffix(strings.TrimPrefix(line, "no file '"), "'")
			for _, suffix := range []string{file + "/init.lua", file + ".lua"} {
				if d, ok := strings.CutSuffix(p, suffix); ok {
					p = strings.TrimSuffix(d, "/")
					break
				}
			}
			if p == "" {
				p = "."
			}
			add(p)
		case strings.HasPrefix(line, "no built-in library"):
			add("the built-in scripts/lib")
		}
	}
	return fmt.Sprintf("module %s not found: looked for %s.lua and %s/init.lua in %s", name, file, file, strings.Join(dirs, ", "))
}
