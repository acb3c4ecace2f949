// Package runtime hosts a Lua script: it builds the gopher-lua state with
// xascript's API (package bindings), sets up print and the require path, runs
// the script with its arguments, and turns whatever happens into a Go error
// that names the script's file and line.
//
// One goroutine owns the Lua state: a Runtime must not be used concurrently.
// Running a script is a panic firewall: a bug in a binding becomes an error,
// never a crash of the host.
//
// require searches, in order: the script's own folder, each folder in
// $XASCRIPT_PATH (colon-separated), then the shared libraries under
// scripts/lib/ that are embedded in the binary (so an installed xascript
// needs no files beside it).
package runtime
