package runtime

import (
	"path"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// wrapRequire makes a failed require say, on one line, every file it
// looked for. gopher-lua's message puts them on the lines after "module X
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
			L.RaiseError("module %s not found: looked for %s", name, strings.Join(r.requireCandidates(L, name), ", "))
		}
		L.Error(api.Object, 0) // the module's own error, as it was
		return 0
	}))
}

// requireCandidates lists the files require tried for name: package.path's
// templates, then the embedded library.
func (r *Runtime) requireCandidates(L *lua.LState, name string) []string {
	file := strings.ReplaceAll(name, ".", "/")
	var out []string
	if pkg, ok := L.GetGlobal("package").(*lua.LTable); ok {
		if p, ok := L.GetField(pkg, "path").(lua.LString); ok {
			for _, tmpl := range strings.Split(string(p), ";") {
				if tmpl != "" {
					out = append(out, strings.ReplaceAll(tmpl, "?", file))
				}
			}
		}
	}
	if r.cfg.Libs != nil {
		out = append(out, "the embedded scripts/lib/"+path.Clean(file)+".lua")
	}
	return out
}
