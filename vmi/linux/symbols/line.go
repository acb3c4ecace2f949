package symbols

import "bytes"

// Symbol is one line of a symbol table.
type Symbol struct {
	Addr   uint64
	Type   byte   // nm type letter: 'T' global text, 't' local text, 'D', 'd', ...
	Name   string //
	Module string // the module for kallsyms module lines, else ""
}

// Global reports whether the symbol's type letter is uppercase.
func (s Symbol) Global() bool { return isGlobal(s.Type) }

func isGlobal(t byte) bool { return t >= 'A' && t <= 'Z' }

// line is a parsed line, with byte slices into the table's data.
type line struct {
	addr   uint64
	typ    byte
	name   []byte
	module []byte
	key    []byte // what the hash index is keyed on: name, or "name\t[module]"
}

// parseLine parses "addr type name" with an optional "\t[module]". The line
// excludes its newline.
func parseLine(b []byte) (line, bool) {
	var l line
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	sp := bytes.IndexByte(b, ' ')
	if sp < 1 || sp > 16 || len(b) < sp+4 || b[sp+2] != ' ' {
		return l, false
	}
	for _, c := range b[:sp] {
		v, ok := hexVal(c)
		if !ok {
			return l, false
		}
		l.addr = l.addr<<4 | uint64(v)
	}
	l.typ = b[sp+1]
	if l.typ <= ' ' || l.typ > '~' {
		return l, false
	}
	l.key = b[sp+3:]
	l.name = l.key
	if tab := bytes.IndexByte(l.key, '\t'); tab >= 0 {
		mod := l.key[tab+1:]
		if len(mod) < 3 || mod[0] != '[' || mod[len(mod)-1] != ']' {
			return l, false
		}
		l.name, l.module = l.key[:tab], mod[1:len(mod)-1]
	}
	if len(l.name) == 0 || bytes.IndexAny(l.name, " \t") >= 0 || bytes.IndexAny(l.module, " \t") >= 0 {
		return l, false
	}
	return l, true
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// lineAt returns the line starting at off, without its newline, and the
// offset of the next line.
func lineAt(data []byte, off int) ([]byte, int) {
	rest := data[off:]
	if nl := bytes.IndexByte(rest, '\n'); nl >= 0 {
		return rest[:nl], off + nl + 1
	}
	return rest, len(data)
}

func (l line) symbol() Symbol {
	return Symbol{Addr: l.addr, Type: l.typ, Name: string(l.name), Module: string(l.module)}
}
