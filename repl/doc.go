// Package repl is xascript's interactive prompt: `xascript repl [target]`.
// Statements run in the same runtime as scripts (runtime.Runtime with the
// xascript API bound through bindings.Env to the target the command line
// opened), one at a time in one Lua state, so that a user can poke at a
// guest, define functions, and `:load` a monitor they are editing.
//
// What it owns: reading input (line editing, history, completion), telling
// a complete statement from one that continues on the next line, printing
// values (pretty.go), and Ctrl-C: at the prompt it clears the line, while a
// statement runs it cancels that statement's context (bindings that wait and
// Lua loops both watch it) and the session goes on. It never runs Lua code
// to complete a name (completion reads tables raw, and struct names from the
// type source), and it bounds what it prints of any value, since a guest's
// data can be as big, deep or cyclic as the guest likes.
//
// Line editing is github.com/peterh/liner (pinned at v1.2.3), chosen over
// github.com/chzyer/readline because liner reads the terminal only while a
// prompt is up: between prompts the terminal sends SIGINT as usual, which is
// how Ctrl-C reaches a running statement, and nothing else reads stdin
// behind the statement's back. chzyer/readline keeps a goroutine reading
// stdin for the whole session and handles Ctrl-C as a key, so a busy
// statement could not be interrupted without more plumbing. liner is pure Go
// (no cgo), small, and has a bash-like completion style (TabPrints: the
// common prefix first, the list on a second Tab).
//
// When stdin is not a terminal the session reads lines without editing,
// prompts or banner, so that `xascript repl --file DUMP < cmds.lua` can be
// scripted and its output compared.
package repl
