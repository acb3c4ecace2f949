// Command gendocs writes the files generated from doc strings: the Lua API
// reference (docs/lua-api.md), the LuaLS declarations for editors
// (scripts/types/xascript.lua) and the shared libraries' reference
// (docs/lua-libs.md, from the doc block atop each scripts/lib/*.lua). Run it
// from the repository root:
//
//	go run ./internal/gendocs
//
// TestGeneratedFilesAreCurrent fails when a committed file differs from what
// this would write.
package main

import (
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	if len(os.Args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: go run ./internal/gendocs   (from the repository root)")
		os.Exit(2)
	}
	files, err := generate(".")
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "gendocs:", err)
			os.Exit(1)
		}
		if err := os.WriteFile(f.path, []byte(f.content), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "gendocs:", err)
			os.Exit(1)
		}
	}
}
