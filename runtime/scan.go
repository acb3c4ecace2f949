package runtime

import (
	"fmt"
	"os"
	"sort"
	"strings"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// GlobalUse is a global name a script reads, with the first line that reads
// it.
type GlobalUse struct {
	Name string
	Line int
}

// GlobalsRead compiles the script at path (without running it) and lists
// the global names its code reads, each with its first line, sorted by
// line; names the script assigns itself anywhere are left out (a script
// may define its own `symbol`). It is how the CLI knows, before a script
// runs, that it calls bindings that need a target. It sees the names the
// code spells out (read_u32(x), local f = symbol); a name built at run time
// (_G["read_" .. n]) or used in a library the script requires is not
// seen, and fails at its call instead.
func GlobalsRead(path string) ([]GlobalUse, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read script: %w", err)
	}
	chunk, err := parse.Parse(strings.NewReader(string(src)), path)
	if err != nil {
		return nil, err
	}
	proto, err := lua.Compile(chunk, path)
	if err != nil {
		return nil, err
	}
	read := map[string]int{}
	set := map[string]bool{}
	scanProto(proto, read, set, 0)
	var out []GlobalUse
	for name, line := range read {
		if !set[name] {
			out = append(out, GlobalUse{Name: name, Line: line})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Line != out[j].Line {
			return out[i].Line < out[j].Line
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// maxProtoDepth bounds the recursion over nested functions (the parser
// already bounds nesting; this keeps the scan safe on its own).
const maxProtoDepth = 200

func scanProto(p *lua.FunctionProto, read map[string]int, set map[string]bool, depth int) {
	if depth > maxProtoDepth {
		return
	}
	for pc, inst := range p.Code {
		op := int(inst >> 26)
		if op != lua.OP_GETGLOBAL && op != lua.OP_SETGLOBAL {
			continue
		}
		bx := int(inst & 0x3ffff)
		if bx >= len(p.Constants) {
			continue
		}
		name, ok := p.Constants[bx].(lua.LString)
		if !ok {
			continue
		}
		if op == lua.OP_SETGLOBAL {
			set[string(name)] = true
			continue
		}
		line := 0
		if pc < len(p.DbgSourcePositions) {
			line = p.DbgSourcePositions[pc]
		}
		if first, ok := read[string(name)]; !ok || line < first {
			read[string(name)] = line
		}
	}
	for _, f := range p.FunctionPrototypes {
		scanProto(f, read, set, depth+1)
	}
}
