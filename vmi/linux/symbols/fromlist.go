package symbols

import (
	"strconv"
	"strings"
)

// FromList builds a Table from symbols held in memory (decoded from the
// guest's own kallsyms tables, say). The symbols are rendered as kallsyms
// lines so that the Table keeps one representation and its fast hash
// index; name is used in messages. A symbol whose name or module is empty
// or holds whitespace cannot be a line and is left out.
func FromList(name string, syms []Symbol) *Table {
	return &Table{data: Render(syms), name: name, cache: map[string]result{}}
}

// Render writes syms as kallsyms lines, the text a Table reads (FromList's
// representation, for callers that cache it in a file and Load it back).
// A symbol whose name or module is empty or holds whitespace cannot be a
// line and is left out.
func Render(syms []Symbol) []byte {
	data := make([]byte, 0, len(syms)*48)
	for _, s := range syms {
		if !lineSafe(s.Name, false) || !lineSafe(s.Module, true) || s.Type <= ' ' || s.Type > '~' {
			continue
		}
		// The same fixed-width hex as /proc/kallsyms on 64-bit.
		var hex [16]byte
		h := strconv.AppendUint(hex[:0], s.Addr, 16)
		for range len(hex) - len(h) {
			data = append(data, '0')
		}
		data = append(data, h...)
		data = append(data, ' ', s.Type, ' ')
		data = append(data, s.Name...)
		if s.Module != "" {
			data = append(data, "\t["...)
			data = append(data, s.Module...)
			data = append(data, ']')
		}
		data = append(data, '\n')
	}
	return data
}

func lineSafe(s string, emptyOK bool) bool {
	if s == "" {
		return emptyOK
	}
	return !strings.ContainsAny(s, " \t\r\n")
}
