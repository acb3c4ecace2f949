package repl

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
	luar "layeh.com/gopher-luar"
)

// Limits bound what Format prints of one value: a guest's data can make
// tables of any size and depth, and a cycle is a table that contains itself.
type Limits struct {
	Depth   int // nested tables shown; deeper ones print as {...}
	Entries int // entries shown per table; the rest are counted
	Total   int // entries shown in all; then every table prints as {...}
}

// DefaultLimits fit a terminal.
var DefaultLimits = Limits{Depth: 4, Entries: 40, Total: 400}

// inlineWidth is the widest table printed on one line.
const inlineWidth = 72

// countLimit bounds the counting of entries that are not shown.
const countLimit = 1 << 20

// Format renders v for the REPL: strings at the top level as they are (so
// that help(...) reads as text) unless they hold control characters, nested
// ones quoted; tables and Go objects
// (guest_info()) pretty-printed within lim; addresses through their
// __tostring, in hex.
func Format(L *lua.LState, v lua.LValue, lim Limits) string {
	if s, ok := v.(lua.LString); ok && printable(string(s)) {
		return string(s)
	}
	p := &printer{L: L, lim: lim, open: map[any]bool{}}
	p.value(v, 0, 0)
	return p.b.String()
}

type printer struct {
	L     *lua.LState
	lim   Limits
	b     strings.Builder
	open  map[any]bool // tables and objects being printed: a second visit is a cycle
	shown int
}

// entry is one key = value of a table or field of a Go object. key is nil
// for the array part (printed without its index).
type entry struct {
	key lua.LValue
	val lua.LValue
}

func (p *printer) value(v lua.LValue, indent, depth int) {
	switch v := v.(type) {
	case lua.LString:
		p.b.WriteString(quote(string(v)))
	case *lua.LTable:
		p.table(v, indent, depth)
	case *lua.LUserData:
		if entries, ok := p.goFields(v); ok {
			if depth >= p.lim.Depth || p.shown >= p.lim.Total {
				p.b.WriteString("{...}")
				return
			}
			p.composite(v, entries, 0, indent, depth)
			return
		}
		p.b.WriteString(p.L.ToStringMeta(v).String())
	default:
		p.b.WriteString(p.L.ToStringMeta(v).String())
	}
}

func (p *printer) table(t *lua.LTable, indent, depth int) {
	if p.open[t] {
		p.b.WriteString("<cycle>")
		return
	}
	if depth >= p.lim.Depth || p.shown >= p.lim.Total {
		if k, _ := t.Next(lua.LNil); k == lua.LNil {
			p.b.WriteString("{}")
		} else {
			p.b.WriteString("{...}")
		}
		return
	}
	// The array part 1..n first, in order, then the other keys sorted;
	// entries past the limit are counted (up to countLimit), not kept.
	var entries []entry
	n := 0
	for ; n < p.lim.Entries; n++ {
		v := t.RawGetInt(n + 1)
		if v == lua.LNil {
			break
		}
		entries = append(entries, entry{val: v})
	}
	more := 0
	var hash []entry
	for k, v := t.Next(lua.LNil); k != lua.LNil && more < countLimit; k, v = t.Next(k) {
		if kn, ok := k.(lua.LNumber); ok && float64(kn) == float64(int(kn)) && int(kn) >= 1 && int(kn) <= n {
			continue // shown in the array part
		}
		if len(entries)+len(hash) >= p.lim.Entries {
			more++
			continue
		}
		hash = append(hash, entry{key: k, val: v})
	}
	sort.SliceStable(hash, func(i, j int) bool { return keyLess(hash[i].key, hash[j].key) })
	p.composite(t, append(entries, hash...), more, indent, depth)
}

// composite prints entries as {a, b, k = v}: on one line when they are all
// scalars and short, else one per line, indented.
func (p *printer) composite(id any, entries []entry, more, indent, depth int) {
	if len(entries) == 0 && more == 0 {
		p.b.WriteString("{}")
		return
	}
	p.open[id] = true
	defer delete(p.open, id)
	p.shown += len(entries)
	if line, ok := p.inline(entries, more, indent); ok {
		p.b.WriteString(line)
		return
	}
	pad := strings.Repeat("  ", indent+1)
	p.b.WriteString("{\n")
	for _, e := range entries {
		p.b.WriteString(pad)
		p.key(e.key)
		p.value(e.val, indent+1, depth+1)
		p.b.WriteString(",\n")
	}
	if more > 0 {
		fmt.Fprintf(&p.b, "%s-- %s more\n", pad, countString(more))
	}
	p.b.WriteString(strings.Repeat("  ", indent) + "}")
}

func (p *printer) inline(entries []entry, more, indent int) (string, bool) {
	var b strings.Builder
	b.WriteString("{")
	for i, e := range entries {
		if !p.flat(e.val) {
			return "", false
		}
		if i > 0 {
			b.WriteString(", ")
		}
		sub := &printer{L: p.L, lim: p.lim, open: p.open}
		sub.key(e.key)
		sub.value(e.val, indent, 0)
		b.WriteString(sub.b.String())
		if b.Len()+2*indent > inlineWidth {
			return "", false
		}
	}
	if more > 0 {
		fmt.Fprintf(&b, ", -- %s more", countString(more))
	}
	b.WriteString("}")
	return b.String(), b.Len()+2*indent <= inlineWidth
}

// flat reports whether v prints on one line: not a table or Go object,
// unless empty or already being printed (a cycle).
func (p *printer) flat(v lua.LValue) bool {
	switch v := v.(type) {
	case *lua.LTable:
		k, _ := v.Next(lua.LNil)
		return k == lua.LNil || p.open[v]
	case *lua.LUserData:
		_, obj := p.goFields(v)
		return !obj || p.open[v]
	}
	return true
}

func countString(n int) string {
	if n >= countLimit {
		return "at least " + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}

// key writes "k = " (an identifier), "[k] = " (anything else) or nothing
// (the array part).
func (p *printer) key(k lua.LValue) {
	if k == nil {
		return
	}
	if s, ok := k.(lua.LString); ok && isIdent(string(s)) {
		p.b.WriteString(string(s) + " = ")
		return
	}
	p.b.WriteString("[")
	if s, ok := k.(lua.LString); ok {
		p.b.WriteString(quote(string(s)))
	} else {
		p.b.WriteString(p.L.ToStringMeta(k).String())
	}
	p.b.WriteString("] = ")
}

// goFields lists the exported fields of a Go struct that gopher-luar wraps
// (guest_info() is one), named as Lua sees them.
func (p *printer) goFields(ud *lua.LUserData) ([]entry, bool) {
	// gopher-luar marks its metatables; other userdata (addresses) print
	// through their own __tostring.
	mt, ok := ud.Metatable.(*lua.LTable)
	if !ok || mt.RawGetString("__metatable") != lua.LString("gopher-luar") {
		return nil, false
	}
	rv := reflect.ValueOf(ud.Value)
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return nil, false
		}
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return nil, false
	}
	rt := rv.Type()
	var entries []entry
	for i := range rt.NumField() {
		f := rt.Field(i)
		if !f.IsExported() {
			continue
		}
		name := f.Name
		if tag, ok := f.Tag.Lookup("luar"); ok {
			if tag == "-" {
				continue
			}
			name = tag
		}
		var v lua.LValue
		if lv, ok := rv.Field(i).Interface().(lua.LValue); ok && lv != nil {
			v = lv
		} else {
			v = luar.New(p.L, rv.Field(i).Interface())
		}
		entries = append(entries, entry{key: lua.LString(name), val: v})
	}
	return entries, true
}

// keyLess orders keys: strings alphabetically, then numbers, then the rest
// by their text.
func keyLess(a, b lua.LValue) bool {
	ra, rb := keyRank(a), keyRank(b)
	if ra != rb {
		return ra < rb
	}
	switch a := a.(type) {
	case lua.LString:
		return a < b.(lua.LString)
	case lua.LNumber:
		return a < b.(lua.LNumber)
	}
	return a.String() < b.String()
}

func keyRank(v lua.LValue) int {
	switch v.(type) {
	case lua.LString:
		return 0
	case lua.LNumber:
		return 1
	}
	return 2
}

var keywords = []string{"and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
	"local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while"}

func isKeyword(s string) bool {
	for _, k := range keywords {
		if s == k {
			return true
		}
	}
	return false
}

// isIdent reports whether s can be written as t.s.
func isIdent(s string) bool {
	if s == "" || isKeyword(s) {
		return false
	}
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// printable reports whether s is text a terminal can show as it is.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// quote writes s as a Lua string literal that reads back as s: guest
// strings carry any byte, and a terminal must not receive them raw. Escapes
// have three digits, so that a digit after one is not read into it.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, `\%03d`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
