// Package record writes the records that xascript prints for other tools
// and for people: what a script emits (emit{...}) and the reports of the
// info and bench commands. It is the one encoder behind all of them, so
// that `--json` means the same thing everywhere.
//
// A record is an ordered list of fields (Record). Values are nil, bool,
// string, the integer kinds, float64, Addr (a 64-bit address, written as a
// "0x…" string because JSON numbers lose precision above 2^53), and the
// nested List and Record. Two forms:
//
//   - JSON: one object per line (JSON Lines, jsonlines.org), keys in the
//     record's order. Strings are escaped so that nothing in them can end
//     the line or drive a terminal: control characters (C0, DEL and the C1
//     range) are \u escapes, and invalid UTF-8 becomes U+FFFD, as
//     encoding/json does.
//   - Text: `key=value` pairs separated by spaces, one record a line. A
//     value is written bare when it is plain (printable, no space, quote,
//     backslash or '='), else as a Go-quoted string (so a guest-controlled
//     name cannot forge a second record or hide bytes: "\x1b" stays
//     visible); nested lists and records are compact JSON. Every field but
//     the last is padded to the widest value seen so far under its key (up
//     to MaxPad), so that records of one shape line up in columns.
//
// NaN and infinities have no JSON form; they are an error in both forms,
// so that a script that works without --json works with it. Nesting is
// bounded by MaxDepth.
//
// The package never reads guest memory or Lua values: callers build a
// Record (bindings' emit from a Lua table, cmd/xascript from its report
// structs through FromStruct).
package record
