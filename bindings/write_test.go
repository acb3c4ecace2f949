package bindings_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/xascript/xascript/bindings"
	"github.com/xascript/xascript/internal/fakeguest"
	"github.com/xascript/xascript/runtime"
)

// runWith runs src against g and returns what it printed.
func runWith(t *testing.T, g bindings.Guest, allow bool, src string) (string, error) {
	t.Helper()
	var out strings.Builder
	rt := runtime.New(runtime.Config{Stdout: &out, Env: &bindings.Env{Guest: g, AllowWrite: allow}})
	defer rt.Close()
	err := rt.RunString(src, "w.lua", nil)
	return out.String(), err
}

var writeCalls = []string{
	"write_u8(a, 1)", "write_u16(a, 1)", "write_u32(a, 1)", "write_u64(a, 1)", "write_bytes(a, 'x')",
	"write_u8_pa(p, 1)", "write_u16_pa(p, 1)", "write_u32_pa(p, 1)", "write_u64_pa(p, 1)", "write_bytes_pa(p, 'x')",
}

// Without --allow-write every write raises the same message, naming the
// binding, and memory stays as it was.
func TestWriteOffByDefault(t *testing.T) {
	g := fixtureGuest()
	for _, call := range writeCalls {
		src := "local a, p = addr('0xffff888000001ffc'), addr('0x1ffc')\n" + call
		_, err := runWith(t, g, false, src)
		name, _, _ := strings.Cut(call, "(")
		if err == nil || !strings.Contains(err.Error(), name+": guest memory is read-only; run with --allow-write") ||
			!strings.Contains(err.Error(), "w.lua:2") {
			t.Errorf("%s without --allow-write: %v", call, err)
		}
	}
	if b := g.Pages[1][0xffc:0x1000]; string(b) != "abc\x00" {
		t.Errorf("memory changed to %q", b)
	}
}

func TestWriteReadBack(t *testing.T) {
	g := fixtureGuest()
	g.Write(v+0x2000, make([]byte, 16)) // map the page after a's
	out, err := runWith(t, g, true, `
local a = addr("0xffff888000001ff8")      -- 8 bytes before a page's end
print(write_u32(a, 0xdeadbeef), read_u32(a))
print(write_u16(a + 4, 0xcafe), read_u16(a + 4))
print(write_u8(a + 6, 255), read_u8(a + 6))
print(write_u32(a, -1), read_u32(a))
print(write_u64(a, addr("0x8877665544332211")), read_u64(a))
print(write_bytes(a + 4, "span!"), read_bytes(a + 4, 5))   -- crosses into page 2
print(write_u32_pa(0x3ffc, 0x01020304), read_u32(addr("0xffff888000003ffc")))
print(write_bytes_pa(0x1ff8, "phys"), read_bytes(a, 4))
-- page 3 is not mapped: a fault, and the first page keeps its bytes
print(write_bytes(addr("0xffff888000003ffe"), "abcd"))
print(read_bytes(addr("0xffff888000003ffc"), 4) == "\4\3\2\1")
print(write_u8_pa(0x777000, 1))
`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"true\t3735928559",
		"true\t51966",
		"true\t255",
		"true\t4294967295",
		"true\t0x8877665544332211",
		"true\tspan!",
		"true\t16909060",
		"true\tphys",
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(want)+3 {
		t.Fatalf("output:\n%s", out)
	}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("line %d: %q, want %q", i+1, lines[i], w)
		}
	}
	if !strings.HasPrefix(lines[8], "nil\t") || !strings.Contains(lines[8], "0xffff888000004000") {
		t.Errorf("write into an unmapped page: %q", lines[8])
	}
	if lines[9] != "true" {
		t.Error("a write that faulted changed the mapped page")
	}
	if !strings.HasPrefix(lines[10], "nil\t") || !strings.Contains(lines[10], "0x777000") {
		t.Errorf("physical write into a hole: %q", lines[10])
	}
}

func TestWriteValueChecks(t *testing.T) {
	for call, want := range map[string]string{
		"write_u8(a, 256)":                  "does not fit 8 unsigned bits",
		"write_u8(a, -129)":                 "does not fit 8 unsigned bits",
		"write_u16(a, 1.5)":                 "does not fit 16 unsigned bits",
		"write_u32(a, 2^32)":                "does not fit 32 unsigned bits",
		"write_u32(a, addr('0x100000000'))": "does not fit 32 bits",
		"write_u64(a, 2^53)":                "does not fit 64 unsigned bits",
		"write_u64(a, {})":                  "value expected",
		"write_bytes(a, nil)":               "string expected",
		"write_u32(nil, 1)":                 "address expected",
	} {
		g := fixtureGuest()
		_, err := runWith(t, g, true, "local a = addr('0xffff888000001ffc')\n"+call)
		name, _, _ := strings.Cut(call, "(")
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "'"+name+"'") {
			t.Errorf("%s: %v, want an argument error with %q", call, err, want)
		}
		if b := g.Pages[1][0xffc:0x1000]; string(b) != "abc\x00" {
			t.Errorf("%s changed memory to %q", call, b)
		}
	}
}

// A target that cannot be written raises with its own reason, even with
// --allow-write; a guest with no write support at all says so.
func TestWriteRefusedByTarget(t *testing.T) {
	g := fixtureGuest()
	g.ReadOnly = errors.New("this target cannot be written: mem.raw.zst is compressed")
	_, err := runWith(t, g, true, "write_u32(addr('0xffff888000001ffc'), 1)")
	if err == nil || !strings.Contains(err.Error(), "write_u32: this target cannot be written: mem.raw.zst is compressed") {
		t.Errorf("read-only target: %v", err)
	}
	_, err = runWith(t, readOnlyGuest{fixtureGuest()}, true, "write_bytes_pa(0, 'x')")
	if err == nil || !strings.Contains(err.Error(), "write_bytes_pa: this target cannot be written") {
		t.Errorf("guest without writes: %v", err)
	}
}

// readOnlyGuest hides fakeguest's write methods.
type readOnlyGuest struct{ bindings.Guest }

var _ bindings.GuestWriter = (*fakeguest.Guest)(nil)
