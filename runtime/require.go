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
