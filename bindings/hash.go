package bindings

import (
	"crypto/sha256"
	"encoding/hex"
	"hash/crc32"

	lua "github.com/yuin/gopher-lua"
)

// Hashes of strings (read_bytes gives guest memory as a string), so that a
// monitor can fingerprint a module's text or a table and compare later
// without keeping a copy. Written in Go: a pure-Lua hash over doubles is
// slow and, past 2^53, wrong.

func hashArea(env *Env) Area {
	return Area{
		Name:  "hash",
		Title: "Hashes",
		Doc: "Fingerprints of byte strings, such as `read_bytes` returns: compare a module's text or a table " +
			"with an earlier snapshot without keeping the bytes. Neither needs a target.",
		Bindings: []Binding{
			{Name: "sha256", Signature: "sha256(s) -> string",
				Doc: "Returns the SHA-256 digest (FIPS 180-4) of string `s` as 64 lowercase hex digits, as " +
					"`sha256sum` prints it: `sha256(assert(read_bytes(text, size)))`.",
				Fn: func(L *lua.LState) int {
					sum := sha256.Sum256([]byte(L.CheckString(1)))
					L.Push(lua.LString(hex.EncodeToString(sum[:])))
					return 1
				}},
			{Name: "crc32", Signature: "crc32(s) -> number",
				Doc: "Returns the CRC-32 of string `s` as a number in [0, 2^32): the IEEE 802.3 polynomial, as zlib's " +
					"`crc32`, `cksum -a crc32b` and gzip compute it (`crc32(\"123456789\")` is `0xcbf43926`). A " +
					"checksum against accidents, not against a guest that forges it: use `sha256` for that.",
				Fn: func(L *lua.LState) int {
					L.Push(lua.LNumber(crc32.ChecksumIEEE([]byte(L.CheckString(1)))))
					return 1
				}},
		},
	}
}
