// Command gendocs writes docs/lua-api.md from the bindings' doc strings.
//
//	go run ./internal/gendocs docs/lua-api.md
package main

import (
	"fmt"
	"os"

	"github.com/xascript/xascript/bindings"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gendocs OUT.md")
		os.Exit(2)
	}
	if err := os.WriteFile(os.Args[1], []byte(bindings.Markdown()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}
