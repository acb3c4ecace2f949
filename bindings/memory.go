package bindings

import (
	"bytes"
	"encoding/binary"
	"fmt"

	lua "github.com/yuin/gopher-lua"
)

// Bounds on reads whose length the script (or guest data it read) chooses.
const (
	maxReadBytes   = 16 << 20
	maxCString     = 1 << 20
	defaultCString = 256
)

func memoryArea(env *Env) Area {
	area := Area{
		Name:        "memory",
		Title:       "Reading guest memory",
		NeedsTarget: true,
		Doc: "Reads are little-endian and read-only. Plain names take kernel virtual addresses (translated through " +
			"the kernel's page tables); the `_pa` variants take guest-physical addresses. A read that faults (page " +
			"not present, physical hole) returns `nil, err` where `err` names the address and the layer that failed.",
	}
	for _, space := range []struct {
		suffix, what string
		physical     bool
	}{{"", "kernel virtual", false}, {"_pa", "guest-physical", true}} {
		s := space
		area.Bindings = append(area.Bindings,
			Binding{Name: "read_u8" + s.suffix, Signature: "read_u8" + s.suffix + "(addr) -> number | nil, err",
				Doc: "Reads an unsigned byte at " + s.what + " address `addr`.",
				Fn:  readUint(env, s.physical, 1)},
			Binding{Name: "read_u16" + s.suffix, Signature: "read_u16" + s.suffix + "(addr) -> number | nil, err",
				Doc: "Reads an unsigned 16-bit integer at " + s.what + " address `addr`.",
				Fn:  readUint(env, s.physical, 2)},
			Binding{Name: "read_u32" + s.suffix, Signature: "read_u32" + s.suffix + "(addr) -> number | nil, err",
				Doc: "Reads an unsigned 32-bit integer at " + s.what + " address `addr`.",
				Fn:  readUint(env, s.physical, 4)},
			Binding{Name: "read_u64" + s.suffix, Signature: "read_u64" + s.suffix + "(addr) -> address | nil, err",
				Doc: "Reads a 64-bit value at " + s.what + " address `addr`, as an address value (64 bits do not fit a Lua number).",
				Fn:  readUint(env, s.physical, 8)},
			Binding{Name: "read_addr" + s.suffix, Signature: "read_addr" + s.suffix + "(addr) -> address | nil, err",
				Doc: "Reads a guest pointer (4 or 8 bytes, as the guest's mode says) at " + s.what + " address `addr`.",
				Fn:  readPointer(env, s.physical)},
			Binding{Name: "read_cstring" + s.suffix, Signature: "read_cstring" + s.suffix + "(addr [, max]) -> string | nil, err",
				Doc: fmt.Sprintf("Reads a NUL-terminated string at %s address `addr`, at most `max` bytes (default %d, "+
					"at most %d); the string stops at the first NUL or at `max`.", s.what, defaultCString, maxCString),
				Fn: readCString(env, s.physical)},
			Binding{Name: "read_bytes" + s.suffix, Signature: "read_bytes" + s.suffix + "(addr, n) -> string | nil, err",
				Doc: fmt.Sprintf("Reads `n` bytes (at most %d) at %s address `addr` as a Lua string.", maxReadBytes, s.what),
				Fn:  readBytes(env, s.physical)},
		)
	}
	area.Bindings = append(area.Bindings, Binding{
		Name: "translate", Signature: "translate(va) -> address | nil, err",
		Doc: "Translates kernel virtual address `va` to its guest-physical address through the kernel's page tables.",
		Fn: func(L *lua.LState) int {
			g := needGuest(L, env)
			pa, err := g.Translate(checkAddress(L, 1))
			if err != nil {
				return fault(L, err)
			}
			pushAddress(L, env, pa)
			return 1
		}})
	return area
}

// readAt reads from the virtual or the physical address space. A bool, not a
// method value, keeps the hot path free of closure allocations.
func readAt(g Guest, physical bool, buf []byte, addr uint64) error {
	if physical {
		return g.ReadPhys(buf, addr)
	}
	return g.ReadVirt(buf, addr)
}

// needGuest returns the target or raises: a script that reads memory
// without a target is misused, not faulted.
func needGuest(L *lua.LState, env *Env) Guest {
	if env.Guest == nil {
		L.RaiseError("no target: run with --file DUMP (or another target flag)")
	}
	return env.Guest
}

// fault returns nil, err to the script: the expected-failure channel.
func fault(L *lua.LState, err error) int {
	L.Push(lua.LNil)
	L.Push(lua.LString(err.Error()))
	return 2
}

func readUint(env *Env, physical bool, size int) lua.LGFunction {
	if !physical && (size == 2 || size == 4) {
		// The hot path of most scripts (read_u32 on kernel addresses),
		// kept to one interface call and no branches on the way.
		return func(L *lua.LState) int {
			v, err := needGuest(L, env).ReadUintVirt(checkAddress(L, 1), size)
			if err != nil {
				return fault(L, err)
			}
			L.Push(env.numbers.value(uint32(v)))
			return 1
		}
	}
	return func(L *lua.LState) int {
		g := needGuest(L, env)
		v, err := readUintAt(g, physical, env.scratch[:size], checkAddress(L, 1))
		if err != nil {
			return fault(L, err)
		}
		pushUint(L, env, size, v)
		return 1
	}
}

// pushUint pushes an integer read as size bytes: a number up to 32 bits,
// an address for 64.
func pushUint(L *lua.LState, env *Env, size int, v uint64) {
	switch size {
	case 1:
		L.Push(small[v])
	case 2, 4:
		L.Push(env.numbers.value(uint32(v)))
	default:
		pushAddress(L, env, v)
	}
}

// readUintAt reads a little-endian integer of len(scratch) bytes.
func readUintAt(g Guest, physical bool, scratch []byte, addr uint64) (uint64, error) {
	if !physical {
		return g.ReadUintVirt(addr, len(scratch))
	}
	if err := g.ReadPhys(scratch, addr); err != nil {
		return 0, err
	}
	var full [8]byte
	copy(full[:], scratch)
	return binary.LittleEndian.Uint64(full[:]), nil
}

func readPointer(env *Env, physical bool) lua.LGFunction {
	return func(L *lua.LState) int {
		g := needGuest(L, env)
		v, err := readPtr(g, physical, env.scratch[:], checkAddress(L, 1))
		if err != nil {
			return fault(L, err)
		}
		pushAddress(L, env, v)
		return 1
	}
}

// readPtr reads a guest pointer with read.
func readPtr(g Guest, physical bool, scratch []byte, addr uint64) (uint64, error) {
	return readUintAt(g, physical, scratch[:g.PointerSize()], addr)
}

func readCString(env *Env, physical bool) lua.LGFunction {
	return func(L *lua.LState) int {
		g := needGuest(L, env)
		addr := checkAddress(L, 1)
		max := L.OptInt(2, defaultCString)
		if max < 0 || max > maxCString {
			L.ArgError(2, fmt.Sprintf("max must be in [0, %d]", maxCString))
		}
		s, err := cstring(g, physical, addr, max)
		if err != nil {
			return fault(L, err)
		}
		L.Push(lua.LString(s))
		return 1
	}
}

// cstring reads up to max bytes page by page, stopping at the first NUL, so
// a string near the end of a mapped page does not fault on the next page.
func cstring(g Guest, physical bool, addr uint64, max int) (string, error) {
	var out []byte
	var chunk [256]byte
	for len(out) < max {
		n := min(len(chunk), max-len(out), int(0x1000-(addr+uint64(len(out)))&0xfff))
		p := chunk[:n]
		if err := readAt(g, physical, p, addr+uint64(len(out))); err != nil {
			return "", fmt.Errorf("read string at %#x: %w", addr, err)
		}
		if i := bytes.IndexByte(p, 0); i >= 0 {
			return string(append(out, p[:i]...)), nil
		}
		out = append(out, p...)
	}
	return string(out), nil
}

func readBytes(env *Env, physical bool) lua.LGFunction {
	return func(L *lua.LState) int {
		g := needGuest(L, env)
		addr := checkAddress(L, 1)
		n := L.CheckInt(2)
		if n < 0 || n > maxReadBytes {
			L.ArgError(2, fmt.Sprintf("n must be in [0, %d]", maxReadBytes))
		}
		buf := make([]byte, n)
		if err := readAt(g, physical, buf, addr); err != nil {
			return fault(L, err)
		}
		L.Push(lua.LString(buf))
		return 1
	}
}
