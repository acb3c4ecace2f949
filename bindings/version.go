package bindings

import (
	"fmt"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// APIVersion is the version of the Lua API that scripts see, "MAJOR.MINOR".
// It is the only place that says it: xascript.api_version, the
// require_version check, docs/lua-api.md and the LuaLS declarations read it
// from here.
//
// The rule (also in the reference, see versionArea):
//   - MINOR goes up when the API grows and every script that ran before
//     still runs: a new global, a new optional argument, a new field or
//     method on a returned object. apiHistory records under which version
//     each global arrived, and a test fails when a binding is missing there.
//   - MAJOR goes up (and MINOR back to 0) when a script that ran before may
//     now fail or mean something else: a global removed or renamed, an
//     argument or result changed.
//
// It is not xascript's release version (cmd/xascript's --version): a release
// that only fixes bugs or speeds things up leaves the API version alone.
const APIVersion = "1.8"

// apiHistory says in which API version each global appeared, oldest first;
// its last entry is APIVersion. When a binding is added: bump APIVersion's
// MINOR and add an entry for it (TestAPIHistory enforces both).
var apiHistory = []struct {
	Version string
	Added   []string
}{
	{"1.0", []string{
		"addr", "is_address",
		"read_u8", "read_u16", "read_u32", "read_u64", "read_addr", "read_cstring", "read_bytes",
		"read_u8_pa", "read_u16_pa", "read_u32_pa", "read_u64_pa", "read_addr_pa", "read_cstring_pa", "read_bytes_pa",
		"translate",
		"symbol", "offsetof", "has_member", "sizeof", "container_of",
		"walk_list",
		"guest_info", "pause", "resume", "with_paused", "flush_cache",
		"sleep", "now",
		"on_disk_event", "stop",
		"xascript.require_version",
	}},
	{"1.1", []string{"emit"}},
	{"1.2", []string{"every"}},
	{"1.3", []string{
		"write_u8", "write_u16", "write_u32", "write_u64", "write_bytes",
		"write_u8_pa", "write_u16_pa", "write_u32_pa", "write_u64_pa", "write_bytes_pa",
	}},
	{"1.4", []string{"symbol_at", "percpu", "cpus", "sha256", "crc32",
		"bit.band", "bit.bor", "bit.bxor", "bit.bnot", "bit.shl", "bit.shr", "bit.arshift", "bit.test"}},
	{"1.5", []string{"process", "process_of"}},
	{"1.6", []string{"view", "field", "enum", "list", "hlist", "hlist_nulls", "rbtree", "xarray", "idr"}},
	{"1.7", []string{"maple"}}, // and task:space() on views of task_struct
	{"1.8", []string{"chain"}},
}

// maxVersionPart bounds each number of a version string, so that a script
// cannot make the comparison overflow (and no real version gets near it).
const maxVersionPart = 1 << 20

// parseVersion reads "MAJOR" or "MAJOR.MINOR" (each a decimal number).
func parseVersion(s string) (major, minor int, err error) {
	majorS, minorS, hasMinor := strings.Cut(s, ".")
	if major, err = versionPart(majorS); err != nil {
		return 0, 0, fmt.Errorf("version %q: %w", s, err)
	}
	if hasMinor {
		if minor, err = versionPart(minorS); err != nil {
			return 0, 0, fmt.Errorf("version %q: %w", s, err)
		}
	}
	return major, minor, nil
}

func versionPart(s string) (int, error) {
	if s == "" || len(s) > 7 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("want MAJOR.MINOR, each a whole number")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > maxVersionPart {
		return 0, fmt.Errorf("number %s is too large", s)
	}
	return n, nil
}

// versionAtLeast tells whether API version have satisfies a script's
// minimum want: MAJOR.MINOR compared as numbers (1.10 is newer than 1.9).
func versionAtLeast(have, want string) (bool, error) {
	hMaj, hMin, err := parseVersion(have)
	if err != nil {
		return false, err
	}
	wMaj, wMin, err := parseVersion(want)
	if err != nil {
		return false, err
	}
	return hMaj > wMaj || hMaj == wMaj && hMin >= wMin, nil
}

func versionArea(env *Env) Area {
	return Area{
		Name:  "version",
		Title: "API version",
		Doc: "The global table `xascript` holds `xascript.api_version`, the version of this Lua API as a " +
			"`\"MAJOR.MINOR\"` string (now `\"" + APIVersion + "\"`). MINOR goes up when the API grows and every " +
			"script that ran before still runs (a new function, a new optional argument, a new field on a returned " +
			"object); MAJOR goes up when a script that ran before may fail or mean something else (a function removed " +
			"or renamed, an argument or result changed). The API version is not the release version that " +
			"`xascript --version` prints.",
		Bindings: []Binding{
			{Name: "xascript.require_version", Signature: "xascript.require_version(version)",
				Doc: "Raises an error unless this xascript's API is at least `version` (`\"MAJOR.MINOR\"` or " +
					"`\"MAJOR\"`, a string: the number `1.10` would read as 1.1), compared number by number, so a script " +
					"that needs a newer function fails at its first line with a message that says which version it " +
					"needs instead of at a call to a function that does not exist. Call it at the top of a script or " +
					"library: `xascript.require_version(\"1.0\")`.",
				Fn: requireVersion},
		},
	}
}

func requireVersion(L *lua.LState) int {
	v, ok := L.Get(1).(lua.LString)
	if !ok {
		// A number would lose its trailing zeros (1.10 is 1.1) before it
		// reached us, so only a string says what the script meant.
		L.ArgError(1, fmt.Sprintf("version must be a string such as \"%s\", not %s", APIVersion, L.Get(1).Type()))
	}
	ok2, err := versionAtLeast(APIVersion, string(v))
	if err != nil {
		L.ArgError(1, err.Error())
	}
	if !ok2 {
		L.RaiseError("this script needs xascript Lua API %s or newer; this xascript has API %s: upgrade xascript",
			string(v), APIVersion)
	}
	return 0
}

// setGlobalPath sets a global, or with a dotted name ("xascript.x") a field
// of the global table before the dot, made on first use.
func setGlobalPath(L *lua.LState, name string, v lua.LValue) {
	table, field, dotted := strings.Cut(name, ".")
	if !dotted {
		L.SetGlobal(name, v)
		return
	}
	t, ok := L.GetGlobal(table).(*lua.LTable)
	if !ok {
		t = L.NewTable()
		L.SetGlobal(table, t)
	}
	t.RawSetString(field, v)
}

// registerVersion sets the values (not functions) of the xascript table.
func registerVersion(L *lua.LState) {
	setGlobalPath(L, "xascript.api_version", lua.LString(APIVersion))
}
