// Package runtime hosts a Lua script: it builds the gopher-lua state with
// xascript's API (package bindings), sets up print and the require path, runs
// the script with its arguments, and turns whatever happens into a Go error
// that names the script's file and line.
//
// One goroutine owns the Lua state: a Runtime must not be used concurrently.
// Running a script is a panic firewall: a bug in a binding becomes an error,
// never a crash of the host.
//
// # Output
//
// print (and every binding that writes records, such as a future emit,
// through bindings.Env.Output) writes into one buffer, so that a batch
// script writes in large blocks. The buffer is flushed
//   - before every blocking point: a binding that waits calls
//     bindings.Env.BlockingPoint first, which runs Env.BeforeBlock, which the
//     runtime sets to flush. Today that is sleep, and pause, resume and
//     with_paused of a live guest; the event loop's waits (timers, disk
//     events) must call the same hook before they block;
//   - at the end of every line or record when stdout is a terminal
//     (Config.LineBuffered forces that);
//   - when the script ends, however it ends (return, error, interrupt,
//     panic in a binding).
//
// So a monitor that polls forever is read as it runs through a pipe or a
// file, a signal that ends it loses nothing it printed, and SIGKILL loses at
// most what it printed since it last waited.
//
// # Interrupts
//
// Config.Env.Ctx is the user's interrupt (the CLI cancels it on SIGINT or
// SIGTERM). Bindings that wait (sleep, list walks) watch it themselves; Lua
// code that calls none of them is ended by a second context, checked by
// gopher-lua before every instruction, that the runtime cancels at once
// when the main chunk runs, and, while the event loop delivers the events
// already queued (a disk monitor's last rescan), only for a callback that
// has not returned for CallbackGrace. After it no Lua code runs, so pcall
// cannot swallow an interrupt. The check has a price on code that runs
// many instructions: measured here, about 10 % on a pure Lua loop
// (BenchmarkLuaLoop1M) and up to 20 % on a read_u32 loop
// (BenchmarkReadU32Loop1M, with the binding-name wrapper of package
// bindings), on a loaded machine.
//
// require "a.b" looks for a/b.lua, then a/b/init.lua, in order in: the
// script's own folder, each folder of Config.SearchPath (the CLI's --lib
// folders, then $XASCRIPT_PATH's), then the shared libraries under
// scripts/lib/ that are embedded in the binary (so an installed xascript
// needs no files beside it). One searcher (require.go) does it all, and
// when it finds nothing it lists every place it looked.
package runtime
