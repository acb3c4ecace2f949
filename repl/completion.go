package repl

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// TypeLister lists the names of the guest's struct layouts
// (vmi/linux.Kernel).
type TypeLister interface {
	// StructNames lists the named structs and unions.
	StructNames() ([]string, error)
	// MemberNames lists the members of a struct, or of the struct at a
	// dotted member path in it ("" for the struct itself).
	MemberNames(structName, path string) ([]string, error)
}

// Completer completes what is typed at the prompt: global names, fields of
// Lua tables after "t." or "t:", struct names inside the quotes of the
// bindings that take a type, member names in their member argument, and file
// names after ":load ".
type Completer struct {
	L     *lua.LState
	Types TypeLister // nil: no target, no struct names

	structs []string // loaded on first use: listing reads every BTF type
	listed  bool
}

// Bindings whose first argument, or second (after an address), is a type
// name, and whose next argument is a member path. view is issue 10's typed
// view, completed once it exists.
var (
	typeFirst    = regexp.MustCompile(`\b(?:view|offsetof|sizeof|has_member)\(\s*"([\w ]*)$`)
	typeSecond   = regexp.MustCompile(`\b(?:container_of|walk_list|view)\(.*?,\s*"([\w ]*)$`)
	memberFirst  = regexp.MustCompile(`\b(?:offsetof|has_member)\(\s*"([\w ]+)"\s*,\s*"([\w.\[\]]*)$`)
	memberSecond = regexp.MustCompile(`\b(?:container_of|walk_list)\(.*?,\s*"([\w ]+)"\s*,\s*"([\w.\[\]]*)$`)
	// fieldPath is a dotted name followed by "." or ":" and a partial name.
	fieldPath = regexp.MustCompile(`(?:^|[^\w.:])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)([.:])(\w*)$`)
	partial   = regexp.MustCompile(`(?:^|[^\w.:])([A-Za-z_]\w*)$`)
)

// maxCandidates bounds the candidates of one completion (a guest's BTF has
// tens of thousands of structs; a table may have any number of keys).
const maxCandidates = 5000

// Complete is a liner.WordCompleter: line is what is typed, pos the cursor
// in runes. The line becomes head + one of completions + tail.
func (c *Completer) Complete(line string, pos int) (head string, completions []string, tail string) {
	r := []rune(line)
	if pos < 0 || pos > len(r) {
		return line, nil, ""
	}
	before, tail := string(r[:pos]), string(r[pos:])
	word, cands := c.candidates(before, tail)
	return before[:len(before)-len(word)], cands, tail
}

// candidates returns the partial word at the end of before and what it may
// become.
func (c *Completer) candidates(before, tail string) (string, []string) {
	if rest, ok := strings.CutPrefix(before, ":load "); ok {
		return rest, files(rest)
	}
	switch lexState(before) {
	case inComment:
		return "", nil
	case inQuotes:
		quote := `"`
		if strings.HasPrefix(tail, `"`) {
			quote = ""
		}
		if m := memberFirst.FindStringSubmatch(before); m != nil {
			return m[2], c.members(m[1], m[2], quote)
		}
		if m := memberSecond.FindStringSubmatch(before); m != nil {
			return m[2], c.members(m[1], m[2], quote)
		}
		if m := typeFirst.FindStringSubmatch(before); m != nil {
			return m[1], c.structNames(m[1], quote)
		}
		if m := typeSecond.FindStringSubmatch(before); m != nil {
			return m[1], c.structNames(m[1], quote)
		}
		return "", nil
	}
	if m := fieldPath.FindStringSubmatch(before); m != nil {
		return m[3], c.fields(m[1], m[2] == ":", m[3])
	}
	if m := partial.FindStringSubmatch(before); m != nil {
		return m[1], c.globals(m[1])
	}
	return "", nil
}

func (c *Completer) structNames(prefix, quote string) []string {
	if c.Types == nil {
		return nil
	}
	if !c.listed {
		c.listed = true
		c.structs, _ = c.Types.StructNames() // no names: nothing to complete
	}
	tag := ""
	for _, t := range []string{"struct ", "union "} {
		if strings.HasPrefix(prefix, t) {
			tag, prefix = t, prefix[len(t):]
		}
	}
	i := sort.SearchStrings(c.structs, prefix)
	var out []string
	for ; i < len(c.structs) && strings.HasPrefix(c.structs[i], prefix) && len(out) < maxCandidates; i++ {
		out = append(out, tag+c.structs[i]+quote)
	}
	return out
}

// members completes a member path: "se.vr" lists the members of the struct
// that member se is.
func (c *Completer) members(strct, path, quote string) []string {
	if c.Types == nil {
		return nil
	}
	parent, prefix := "", path
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		parent, prefix = path[:i], path[i+1:]
	}
	names, err := c.Types.MemberNames(strings.TrimSpace(strct), parent)
	if err != nil {
		return nil
	}
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, prefix) && len(out) < maxCandidates {
			if parent != "" {
				n = parent + "." + n
			}
			out = append(out, n+quote)
		}
	}
	sort.Strings(out)
	return dedup(out)
}

// fields completes t.x and t:x, where t is a dotted path of globals and
// table fields. Only raw table lookups are made: completing must never run
// Lua code (an __index function could read the guest or loop).
func (c *Completer) fields(path string, method bool, prefix string) []string {
	var v lua.LValue = c.L.G.Global
	for _, name := range strings.Split(path, ".") {
		v = c.rawField(v, name)
		if v == lua.LNil {
			return nil
		}
	}
	var out []string
	add := func(t *lua.LTable) {
		for k, val := t.Next(lua.LNil); k != lua.LNil && len(out) < maxCandidates; k, val = t.Next(k) {
			s, ok := k.(lua.LString)
			if !ok || !isIdent(string(s)) || !strings.HasPrefix(string(s), prefix) {
				continue
			}
			if _, fn := val.(*lua.LFunction); method && !fn {
				continue
			}
			out = append(out, string(s))
		}
	}
	if t, ok := v.(*lua.LTable); ok {
		add(t)
	}
	if idx, ok := c.index(v).(*lua.LTable); ok {
		add(idx)
	}
	sort.Strings(out)
	return dedup(out)
}

// rawField is v[name] through raw gets: the table itself, then its
// metatable's __index when that is a table (objects' methods).
func (c *Completer) rawField(v lua.LValue, name string) lua.LValue {
	if t, ok := v.(*lua.LTable); ok {
		if f := t.RawGetString(name); f != lua.LNil {
			return f
		}
	}
	if idx, ok := c.index(v).(*lua.LTable); ok {
		return idx.RawGetString(name)
	}
	return lua.LNil
}

// index is v's metatable's __index, or nil.
func (c *Completer) index(v lua.LValue) lua.LValue {
	mt, ok := c.L.GetMetatable(v).(*lua.LTable)
	if !ok {
		return lua.LNil
	}
	return mt.RawGetString("__index")
}

func (c *Completer) globals(prefix string) []string {
	out := c.fields("_G", false, prefix)
	for _, k := range keywords {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return dedup(out)
}

// files completes a file name for :load.
func files(prefix string) []string {
	matches, _ := filepath.Glob(globEscape(prefix) + "*")
	var out []string
	for _, m := range matches {
		if len(out) == maxCandidates {
			break
		}
		if fi, err := os.Stat(m); err == nil && fi.IsDir() {
			m += string(filepath.Separator)
		}
		out = append(out, m)
	}
	return out
}

func globEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`)
	return r.Replace(s)
}

// Where the end of a line is, lexically.
const (
	inCode = iota
	inQuotes
	inComment
)

// lexState tells whether the end of before is in code, inside a quoted
// string, or in a comment.
func lexState(before string) int {
	var q byte
	for i := 0; i < len(before); i++ {
		c := before[i]
		switch {
		case q != 0 && c == '\\':
			i++
		case q != 0 && c == q:
			q = 0
		case q == 0 && (c == '"' || c == '\''):
			q = c
		case q == 0 && strings.HasPrefix(before[i:], "--"):
			return inComment
		}
	}
	if q != 0 {
		return inQuotes
	}
	return inCode
}

func dedup(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
