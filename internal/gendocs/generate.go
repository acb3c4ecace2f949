package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/xascript/xascript/bindings"
)

// file is one generated file: its path from the repository root and what
// it must hold.
type file struct{ path, content string }

// generate makes every generated file of the repository at root.
func generate(root string) ([]file, error) {
	luals, err := bindings.Luals()
	if err != nil {
		return nil, fmt.Errorf("LuaLS declarations: %w", err)
	}
	libs, err := libsMarkdown(os.DirFS(filepath.Join(root, "scripts", "lib")))
	if err != nil {
		return nil, fmt.Errorf("docs/lua-libs.md: %w", err)
	}
	return []file{
		{filepath.Join(root, "docs", "lua-api.md"), bindings.Markdown()},
		{filepath.Join(root, filepath.FromSlash(bindings.LuaLSPath)), luals},
		{filepath.Join(root, "docs", "lua-libs.md"), libs},
	}, nil
}
