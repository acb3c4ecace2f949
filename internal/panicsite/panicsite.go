package panicsite

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
)

// modulePrefix is this module's import path, with the slash.
const modulePrefix = "github.com/xascript/xascript/"

// Where names the code that panicked ("vmi/xen, target.go:123"). Call it
// from the deferred function that recovered, whose stack still holds the
// panicking frames; outside a panic it says "unknown layer".
func Where() string {
	pcs := make([]uintptr, 64)
	n := runtime.Callers(2, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	inPanic := false
	for {
		f, more := frames.Next()
		switch {
		case f.Function == "runtime.gopanic":
			inPanic = true
		case inPanic && (strings.HasPrefix(f.Function, modulePrefix) || strings.HasPrefix(f.Function, "main.")):
			return packageOf(f.Function) + ", " + filepath.Base(f.File) + ":" + fmt.Sprint(f.Line)
		}
		if !more {
			return "unknown layer"
		}
	}
}

// packageOf turns a function's full name into its package path within the
// module: "github.com/xascript/xascript/vmi/dump.(*Dump).Read" is
// "vmi/dump"; main's functions are the CLI's.
func packageOf(fn string) string {
	if strings.HasPrefix(fn, "main.") {
		return "cmd/xascript"
	}
	fn = strings.TrimPrefix(fn, modulePrefix)
	slash := strings.LastIndexByte(fn, '/')
	if dot := strings.IndexByte(fn[slash+1:], '.'); dot >= 0 {
		return fn[:slash+1+dot]
	}
	return fn
}
