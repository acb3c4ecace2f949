package bindings

import (
	"fmt"
	"strings"
)

// Markdown renders the Lua API reference (docs/lua-api.md) from the doc
// strings next to each binding, so the reference cannot drift from the code.
func Markdown() string {
	var b strings.Builder
	b.WriteString("# xascript Lua API\n\n")
	b.WriteString("<!-- Generated from the doc strings in bindings/*.go by `make docs`; do not edit. -->\n\n")
	b.WriteString("Scripts run with these globals besides Lua 5.1's standard library. Inside a script, " +
		"`help()` lists them and `help(\"name\")` prints one entry. " +
		"`scripts/types/xascript.lua` declares them for editors with lua-language-server (`scripts/.luarc.json` " +
		"points it there), and `docs/lua-libs.md` describes the shared libraries that `require` finds.\n\n")
	areas := Areas(nil)
	for _, a := range areas {
		fmt.Fprintf(&b, "- [%s](#%s)\n", a.Title, anchor(a.Title))
	}
	for _, a := range areas {
		fmt.Fprintf(&b, "\n## %s\n\n%s\n", a.Title, a.Doc)
		if a.NeedsTarget {
			b.WriteString("\nThese functions need a target (`--file`, `--qemu`, `--dom`). A script run without one " +
				"that calls any of them is refused before it runs (exit status 2); the check reads the names the " +
				"script's own code calls, so a library it requires fails at the call instead.\n")
		}
		for _, fn := range a.Bindings {
			fmt.Fprintf(&b, "\n### `%s`\n\n%s\n", fn.Signature, fn.Doc)
		}
	}
	return b.String()
}

func anchor(title string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(title) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}
