// Package bindings is xascript's Lua API: the global functions a monitor
// script calls (read_u32, symbol, walk_list, ...), the address type, and the
// doc strings from which docs/lua-api.md, the REPL's help and the editors'
// LuaLS declarations (luals.go, with the types of luatypes.go) are generated,
// and the API version (version.go).
//
// One file per API area (address.go, memory.go, write.go, symbols.go,
// lists.go, output.go); each area is a table of Binding values, each with its name,
// signature, doc string and function, wired in by Register.
//
// Two error channels, as in Lua's own io library:
//   - expected faults in the guest (a page not present, a physical hole, an
//     unknown symbol, a corrupt list) come back as nil plus a message that
//     names the address and the reason, so a script can test for them;
//   - misuse of the API (a wrong argument type, an unknown struct member,
//     a write without --allow-write or to a target that cannot be written)
//     raises a Lua error carrying the script's file:line.
//
// Kernel addresses are 64-bit and Lua numbers are float64, which round them
// (0xffff888003a4b129 would come back as ...b000). So addresses and other
// 64-bit values are a userdata type, Address, with arithmetic, comparison and
// hex formatting; functions that take an address also accept a Lua number
// that is an exact integer below 2^53, and a hex string.
//
// Bindings must never trust guest data: loops over guest structures are
// bounded and check the context for cancellation.
package bindings
