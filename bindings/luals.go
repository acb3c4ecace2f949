package bindings

import (
	"fmt"
	"strings"
)

// LuaLSPath is where `make docs` writes Luals's output, from the repository
// root; scripts/.luarc.json points editors there.
const LuaLSPath = "scripts/types/xascript.lua"

// sigParam is one parameter of a signature.
type sigParam struct {
	Name     string
	Optional bool // written in brackets: "read_cstring(addr [, max])"
}

// signature is a Binding.Signature taken apart:
// "walk_list(head, struct, member, fn [, limit]) -> count | nil, err".
type signature struct {
	Name    string
	Params  []sigParam
	Returns [][]string // alternatives separated by |, each a list of result words
}

// parseSignature reads NAME(PARAMS) or NAME(PARAMS) -> RESULTS. PARAMS are
// comma-separated names, optional ones in brackets, "..." for varargs;
// RESULTS are alternatives separated by "|", each comma-separated words.
func parseSignature(s string) (signature, error) {
	var sig signature
	open := strings.IndexByte(s, '(')
	closing := strings.LastIndexByte(s, ')')
	if open <= 0 || closing < open {
		return sig, fmt.Errorf("signature %q: want name(params) [-> results]", s)
	}
	sig.Name = s[:open]
	rest := strings.TrimSpace(s[closing+1:])
	switch {
	case rest == "":
	case strings.HasPrefix(rest, "->"):
		for _, alt := range strings.Split(strings.TrimPrefix(rest, "->"), "|") {
			var words []string
			for _, w := range strings.Split(alt, ",") {
				if w = strings.TrimSpace(w); w == "" {
					return sig, fmt.Errorf("signature %q: empty result", s)
				}
				words = append(words, w)
			}
			sig.Returns = append(sig.Returns, words)
		}
	default:
		return sig, fmt.Errorf("signature %q: %q after the parameters, want -> results", s, rest)
	}
	depth, cur, curOpt := 0, "", false
	flush := func() error {
		name := strings.TrimSpace(cur)
		if name == "" {
			return fmt.Errorf("signature %q: empty parameter", s)
		}
		sig.Params = append(sig.Params, sigParam{Name: name, Optional: curOpt})
		cur = ""
		return nil
	}
	params := s[open+1 : closing]
	// prev is the last character that was not a space; expect is set
	// after a comma, until the next parameter begins.
	prev, expect := '(', false
	for _, r := range params {
		switch r {
		case '[':
			depth++
		case ']':
			if depth--; depth < 0 {
				return sig, fmt.Errorf("signature %q: unbalanced ]", s)
			}
		case ',':
			if strings.TrimSpace(cur) == "" {
				if prev != '[' || len(sig.Params) == 0 {
					return sig, fmt.Errorf("signature %q: empty parameter", s)
				}
				expect = true // "[, max]": the comma that opens an optional part
				break
			}
			if err := flush(); err != nil {
				return sig, err
			}
			expect = true
		case ' ':
			cur += " "
		default:
			if strings.TrimSpace(cur) == "" {
				curOpt = depth > 0
			}
			cur += string(r)
			expect = false
		}
		if r != ' ' {
			prev = r
		}
	}
	if depth != 0 {
		return sig, fmt.Errorf("signature %q: unbalanced [", s)
	}
	if expect && strings.TrimSpace(cur) == "" {
		return sig, fmt.Errorf("signature %q: a comma with no parameter after it", s)
	}
	if strings.TrimSpace(cur) != "" {
		if err := flush(); err != nil {
			return sig, err
		}
	}
	for _, p := range sig.Params {
		if p.Name != "..." && !isLuaName(p.Name) {
			return sig, fmt.Errorf("signature %q: parameter %q is not a Lua name", s, p.Name)
		}
	}
	return sig, nil
}

func isLuaName(s string) bool {
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

// paramType is the LuaLS type of parameter p of binding fn.
func paramType(fn, p string) (string, error) {
	if t, ok := luaParamTypes[fn+"."+p]; ok {
		return t, nil
	}
	if t, ok := luaParamTypes[p]; ok {
		return t, nil
	}
	return "", fmt.Errorf("%s: parameter %q has no LuaLS type: add it to luaParamTypes in bindings/luatypes.go", fn, p)
}

// returnLines renders the results as LuaLS ---@return lines: result i is
// the union of the i-th word of every alternative, optional (?) when an
// alternative is nil there or has fewer results.
func returnLines(fn string, alts [][]string) ([]string, error) {
	n := 0
	for _, a := range alts {
		n = max(n, len(a))
	}
	var lines []string
	for i := 0; i < n; i++ {
		var types []string
		name, optional := "", false
		for _, a := range alts {
			if i >= len(a) {
				optional = true
				continue
			}
			r, ok := luaReturnTypes[a[i]]
			if !ok {
				return nil, fmt.Errorf("%s: result %q has no LuaLS type: add it to luaReturnTypes in bindings/luatypes.go", fn, a[i])
			}
			if r.Type == "nil" {
				optional = true
				continue
			}
			if r.Name != "" {
				name = r.Name
			}
			if !contains(types, r.Type) {
				types = append(types, r.Type)
			}
		}
		t := strings.Join(types, "|")
		switch {
		case t == "":
			t = "nil"
		case optional && len(types) > 1:
			t = "(" + t + ")?"
		case optional:
			t += "?"
		}
		line := "---@return " + t
		if name != "" {
			line += " " + name
		}
		lines = append(lines, line)
	}
	return lines, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// writeDoc writes Markdown doc as LuaLS description lines.
func writeDoc(b *strings.Builder, doc string) {
	for _, line := range strings.Split(strings.TrimSpace(doc), "\n") {
		b.WriteString("---" + line + "\n")
	}
}

// writeFunction declares one function: its doc, parameters and results.
// owner is "address:" for a method of class address (declared on a local of
// that name), else "" (fn.Name is the global or "table.name" it is set as).
func writeFunction(b *strings.Builder, owner string, fn Binding) error {
	sig, err := parseSignature(fn.Signature)
	if err != nil {
		return err
	}
	if sig.Name != fn.Name {
		return fmt.Errorf("%s: signature %q names another function", fn.Name, fn.Signature)
	}
	writeDoc(b, fn.Doc)
	typeKey := fn.Name
	if i := strings.LastIndexAny(typeKey, ".:"); i >= 0 {
		typeKey = typeKey[i+1:]
	}
	var names []string
	for _, p := range sig.Params {
		t, err := paramType(typeKey, p.Name)
		if err != nil {
			return err
		}
		name := p.Name
		if p.Optional {
			name += "?"
		}
		fmt.Fprintf(b, "---@param %s %s\n", name, t)
		names = append(names, p.Name)
	}
	lines, err := returnLines(fn.Name, sig.Returns)
	if err != nil {
		return err
	}
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	fmt.Fprintf(b, "function %s%s(%s) end\n", owner, fn.Name, strings.Join(names, ", "))
	return nil
}

// luaLocal is the local variable a class's methods are declared on.
func luaLocal(class string) string { return strings.ReplaceAll(class, ".", "_") }

// Luals renders the LuaLS declarations of the whole API (LuaLSPath): every
// global with its doc, parameter and result types, and the types bindings
// return. An editor with lua-language-server completes and checks a monitor
// with it. It fails when a signature uses a word luatypes.go does not know.
func Luals() (string, error) {
	var b strings.Builder
	b.WriteString("---@meta xascript\n\n")
	b.WriteString("-- xascript's Lua API " + APIVersion + " for lua-language-server (LuaLS): completion, hover docs and type checks\n" +
		"-- of monitor scripts. Generated from the doc strings in bindings/*.go by `make docs`; do not edit.\n" +
		"-- scripts/.luarc.json points LuaLS here; for scripts elsewhere, add this folder to your\n" +
		"-- .luarc.json's \"workspace.library\". The reference is docs/lua-api.md.\n")
	for _, a := range luaAliases() {
		b.WriteString("\n")
		writeDoc(&b, luaAliasDocs[a[0]])
		fmt.Fprintf(&b, "---@alias %s %s\n", a[0], a[1])
	}
	globals := map[string]bool{}
	for _, c := range luaClasses {
		b.WriteString("\n")
		writeDoc(&b, c.Doc)
		fmt.Fprintf(&b, "---@class %s\n", c.Name)
		for _, op := range c.Operators {
			fmt.Fprintf(&b, "---@operator %s\n", op)
		}
		for _, f := range c.Fields {
			opt := ""
			if f.Optional {
				opt = "?"
			}
			fmt.Fprintf(&b, "---@field %s%s %s %s\n", f.Name, opt, f.Type, f.Doc)
		}
		switch {
		case c.Global:
			globals[c.Name] = true
			fmt.Fprintf(&b, "%s = {}\n", c.Name)
		case len(c.Methods) > 0:
			fmt.Fprintf(&b, "local %s = {}\n", luaLocal(c.Name))
		}
		for _, m := range c.Methods {
			b.WriteString("\n")
			if err := writeFunction(&b, luaLocal(c.Name)+":", m); err != nil {
				return "", fmt.Errorf("class %s: %w", c.Name, err)
			}
		}
	}
	for _, a := range Areas(nil) {
		fmt.Fprintf(&b, "\n-- %s\n", a.Title)
		for _, fn := range a.Bindings {
			if table, _, dotted := strings.Cut(fn.Name, "."); dotted && !globals[table] {
				return "", fmt.Errorf("%s: no global class %s in luaClasses", fn.Name, table)
			}
			b.WriteString("\n")
			if err := writeFunction(&b, "", fn); err != nil {
				return "", err
			}
		}
	}
	b.WriteString("\n-- Other globals\n")
	for _, fn := range luaExtraGlobals {
		b.WriteString("\n")
		if err := writeFunction(&b, "", fn); err != nil {
			return "", err
		}
	}
	return b.String(), nil
}
