// Package scripts embeds the shared Lua libraries of scripts/lib so that
// require finds them in an installed binary too.
package scripts

import (
	"embed"
	"io/fs"
)

// All of lib, subfolders too: require "a.b" may be lib/a/b.lua or
// lib/a/b/init.lua.
//
//go:embed lib
var libFS embed.FS

// Libs is scripts/lib as a file system: "linux.lua" at its root.
func Libs() fs.FS {
	sub, err := fs.Sub(libFS, "lib")
	if err != nil {
		panic(err) // the embed pattern above guarantees lib exists
	}
	return sub
}
