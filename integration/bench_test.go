package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/xascript/xascript/bindings"
	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/runtime"
	"github.com/xascript/xascript/vmi/linux"
)

// benchKernel opens the committed 4-level image once per benchmark.
func benchKernel(b *testing.B) *linux.Kernel {
	b.Helper()
	img, err := LoadImage("x86_64-4level")
	if err != nil {
		b.Fatal(err)
	}
	t, k, err := img.OpenKernel("mem.elf.zst", unpack.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { t.Close() })
	return k
}

// BenchmarkReadU32Go: a 4-byte kernel-virtual read from Go (cached
// translation plus a copy from the mapped dump).
func BenchmarkReadU32Go(b *testing.B) {
	k := benchKernel(b)
	va, err := k.Symbol("init_task")
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 4)
	b.ResetTimer()
	for b.Loop() {
		if err := k.ReadVirt(buf, va); err != nil {
			b.Fatal(err)
		}
	}
}

// luaLoop runs `for i = 1, N do f(x) end` where f and x are set up by the
// caller, and reports ns per call.
func luaLoop(b *testing.B, L *lua.LState, call string) {
	b.Helper()
	fn, err := L.LoadString("local n, x = ... for i = 1, n do " + call + " end")
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	L.Push(fn)
	L.Push(lua.LNumber(b.N))
	L.Push(L.GetGlobal("x"))
	if err := L.PCall(2, 0, nil); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkLuaBareCall is the yardstick: a Go function that takes one
// argument and returns one number, called from a Lua loop.
func BenchmarkLuaBareCall(b *testing.B) {
	L := lua.NewState()
	defer L.Close()
	L.SetGlobal("bare", L.NewFunction(func(L *lua.LState) int {
		L.Get(1)
		L.Push(lua.LNumber(1))
		return 1
	}))
	L.SetGlobal("x", lua.LNumber(4096))
	luaLoop(b, L, "bare(x)")
}

// BenchmarkLuaReadU32: read_u32(address) from a Lua loop on the real image;
// compare with BenchmarkLuaBareCall (target: at most 1.3x).
func BenchmarkLuaReadU32(b *testing.B) {
	k := benchKernel(b)
	va, err := k.Symbol("init_task")
	if err != nil {
		b.Fatal(err)
	}
	rt := runtime.New(runtime.Config{Env: &bindings.Env{Guest: k}})
	defer rt.Close()
	if err := rt.RunString("x = addr('"+formatHex(va)+"')", "setup", nil); err != nil {
		b.Fatal(err)
	}
	luaLoop(b, rt.L, "read_u32(x)")
}

func formatHex(v uint64) string { return "0x" + strings.TrimLeft(strings.ToLower(hex16(v)), "0") }

func hex16(v uint64) string {
	const digits = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = digits[v&15]
		v >>= 4
	}
	return string(b[:])
}

// BenchmarkLKMInProcess: open the dump, locate the kernel, load the profile
// and run lkm.lua, all in this process (warm decompression cache).
func BenchmarkLKMInProcess(b *testing.B) {
	img, err := LoadImage("x86_64-4level")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		t, k, err := img.OpenKernel("mem.elf.zst", unpack.Options{})
		if err != nil {
			b.Fatal(err)
		}
		out, err := RunScript(k, lkm)
		t.Close()
		if err != nil || strings.Count(out, "\n") != len(img.Truth.Modules) {
			b.Fatalf("lkm.lua: %v (%d lines)", err, strings.Count(out, "\n"))
		}
	}
}

// BenchmarkLKMProcess: the whole `xascript lkm.lua` process as a user runs
// it (exec, open, locate, profile, walk, exit), with the one-time caches
// warm. Reports wall time per run and the peak RSS.
func BenchmarkLKMProcess(b *testing.B) {
	img, err := LoadImage("x86_64-4level")
	if err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(b.TempDir(), "xascript")
	build := exec.Command("go", "build", "-o", bin, "../cmd/xascript")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	syms, btf := img.ProfileFiles()
	args := []string{lkm, "--file", img.Path("mem.elf.zst"), "--symbols", syms, "--btf", btf}
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil { // warm the caches
		b.Fatalf("%v\n%s", err, out)
	}
	var maxRSS int64
	b.ResetTimer()
	for b.Loop() {
		cmd := exec.Command(bin, args...)
		out, err := cmd.Output()
		if err != nil || strings.Count(string(out), "\n") != len(img.Truth.Modules) {
			b.Fatalf("xascript: %v", err)
		}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > maxRSS {
			if ru.Maxrss > 100000 {
				b.Logf("rss %d KB: %s", ru.Maxrss, out)
			}
			maxRSS = ru.Maxrss
		}
	}
	b.ReportMetric(float64(maxRSS)/1024, "MB-maxrss")
}
