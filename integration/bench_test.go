package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/xascript/xascript/bindings"
	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/runtime"
	"github.com/xascript/xascript/vmi/dump"
	"github.com/xascript/xascript/vmi/linux"
)

// benchKernel opens the committed 4-level image once per benchmark.
func benchKernel(b *testing.B) *linux.Kernel {
	b.Helper()
	_, k := openCore(b, "x86_64-4level")
	return k
}

// BenchmarkReadU32Go: a 4-byte kernel-virtual read from Go, the path under
// read_u32 (cached translation, then a load from the mapped dump).
func BenchmarkReadU32Go(b *testing.B) {
	k := benchKernel(b)
	va, err := k.Symbol("init_task")
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := k.ReadUintVirt(va, 4); err != nil {
			b.Fatal(err)
		}
	}
}

// luaLoop times `for i = 1, b.N do <call> end`, where call uses the global
// x, as the benchmark's measurement.
func luaLoop(b *testing.B, L *lua.LState, call string) {
	b.Helper()
	fn := compileLoop(b, L, call)
	b.ResetTimer()
	runLoop(b, L, fn, b.N)
}

func compileLoop(b *testing.B, L *lua.LState, call string) *lua.LFunction {
	b.Helper()
	fn, err := L.LoadString("local n, x = ... for i = 1, n do " + call + " end")
	if err != nil {
		b.Fatal(err)
	}
	return fn
}

func runLoop(b *testing.B, L *lua.LState, fn *lua.LFunction, n int) {
	b.Helper()
	L.Push(fn)
	L.Push(lua.LNumber(n))
	L.Push(L.GetGlobal("x"))
	if err := L.PCall(2, 0, nil); err != nil {
		b.Fatal(err)
	}
}

// luaState is a runtime with the API bound to the committed image and a
// global x holding the address of init_task.
func luaState(b *testing.B) *runtime.Runtime {
	k := benchKernel(b)
	va, err := k.Symbol("init_task")
	if err != nil {
		b.Fatal(err)
	}
	rt := runtime.New(runtime.Config{Env: &bindings.Env{Guest: k}})
	b.Cleanup(func() { rt.Close() })
	if err := rt.RunString("x = addr('"+formatHex(va)+"')", "setup", nil); err != nil {
		b.Fatal(err)
	}
	return rt
}

// bareCall is the yardstick: a Go function that takes one argument and
// returns one number.
func bareCall(L *lua.LState) int {
	L.Get(1)
	L.Push(lua.LNumber(1))
	return 1
}

// BenchmarkLuaBareCall: bareCall from a Lua loop, in the same state and
// with the same argument as BenchmarkLuaReadU32.
func BenchmarkLuaBareCall(b *testing.B) {
	rt := luaState(b)
	rt.L.SetGlobal("bare", rt.L.NewFunction(bareCall))
	luaLoop(b, rt.L, "bare(x)")
}

// BenchmarkLuaReadU32: read_u32(address) from a Lua loop on the real image.
// It also times the same number of bare calls right after and reports the
// ratio (x-bare; target at most 1.3), which drifts less than two separate
// benchmarks on a shared machine.
func BenchmarkLuaReadU32(b *testing.B) {
	rt := luaState(b)
	rt.L.SetGlobal("bare", rt.L.NewFunction(bareCall))
	read, bare := compileLoop(b, rt.L, "read_u32(x)"), compileLoop(b, rt.L, "bare(x)")
	b.ResetTimer()
	start := time.Now()
	runLoop(b, rt.L, read, b.N)
	readTime := time.Since(start)
	b.StopTimer()
	start = time.Now()
	runLoop(b, rt.L, bare, b.N)
	bareTime := time.Since(start)
	b.ReportMetric(float64(readTime)/float64(bareTime), "x-bare")
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
	cache := cacheOpts(b) // warm after the first run, as for a user
	for b.Loop() {
		t, k, err := img.OpenKernel("mem.elf.zst", dumpOptions().Options, cache)
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
// warm. Reports wall time per run and the peak RSS of the xascript process.
//
// The RSS comes from a launcher (this test binary re-executed, see
// TestMain): Linux charges a child the parent's RSS when it execs from a
// vfork-style clone, and this test process maps whole guest images.
func BenchmarkLKMProcess(b *testing.B) {
	img, err := LoadImage("x86_64-4level")
	if err != nil {
		b.Fatal(err)
	}
	syms, btf := img.ProfileFiles()
	b.Run("profile-files", func(b *testing.B) {
		benchProcess(b, img, "--file", img.Path("mem.elf.zst"), "--symbols", syms, "--btf", btf)
	})
	b.Run("no-flags", func(b *testing.B) {
		benchProcess(b, img, "--file", img.Path("mem.elf.zst"))
	})
}

func benchProcess(b *testing.B, img *Image, flags ...string) {
	bin := filepath.Join(b.TempDir(), "xascript")
	build := exec.Command("go", "build", "-o", bin, "../cmd/xascript")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	args := append([]string{bin, lkm}, flags...)
	env := cacheEnv(b) // the benchmark's own cache, warmed here
	warm := exec.Command(args[0], args[1:]...)
	warm.Env = env
	if out, err := warm.CombinedOutput(); err != nil {
		b.Fatalf("%v\n%s", err, out)
	}
	launcher := exec.Command(os.Args[0], append([]string{"-test.run=^$"}, args...)...)
	launcher.Env = append(env, launchEnv+"="+strconv.Itoa(b.N))
	b.ResetTimer()
	out, err := launcher.Output()
	b.StopTimer()
	if err != nil {
		b.Fatalf("launcher: %v", err)
	}
	var lines, maxRSS int64
	if _, err := fmt.Sscanf(string(out), "%d %d", &lines, &maxRSS); err != nil || lines != int64(len(img.Truth.Modules)) {
		b.Fatalf("launcher said %q (%v)", out, err)
	}
	b.ReportMetric(float64(maxRSS)/1024, "MB-maxrss")
}

const launchEnv = "XASCRIPT_BENCH_LAUNCH"

func TestMain(m *testing.M) {
	if n, err := strconv.Atoi(os.Getenv(launchEnv)); err == nil {
		os.Exit(launch(n, flagArgs()))
	}
	check, err := setupCaches()
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration: caches:", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := check(); err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// flagArgs drops the -test.* flags the launcher was given.
func flagArgs() []string {
	args := os.Args[1:]
	for len(args) > 0 && strings.HasPrefix(args[0], "-test.") {
		args = args[1:]
	}
	return args
}

// launch runs argv n times and prints the lines of the last output and the
// largest ru_maxrss (KiB) of the runs.
func launch(n int, argv []string) int {
	var maxRSS int64
	var lines int
	for i := 0; i < n; i++ {
		cmd := exec.Command(argv[0], argv[1:]...)
		out, err := cmd.Output()
		if err != nil {
			fmt.Fprintln(os.Stderr, "launch:", err)
			return 1
		}
		lines = strings.Count(string(out), "\n")
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > maxRSS {
			maxRSS = ru.Maxrss
		}
	}
	fmt.Println(lines, maxRSS)
	return 0
}

// BenchmarkProfileCold: locate the kernel and derive its profile from memory
// alone (decode kallsyms, find BTF), with no profile cache; the dump's
// decompression cache is warm.
func BenchmarkProfileCold(b *testing.B) {
	img, err := LoadImage("x86_64-4level")
	if err != nil {
		b.Fatal(err)
	}
	t, err := dump.Open(img.Path("mem.elf.zst"), dumpOptions())
	if err != nil {
		b.Fatal(err)
	}
	defer t.Close()
	cache := unpack.Options{CacheDir: b.TempDir()}
	for b.Loop() {
		k, err := linux.Open(t, linux.Options{Unpack: cache, NoProfileCache: true})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := k.Offsetof("module", "name"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProfileWarm: the same with the profile cached on disk.
func BenchmarkProfileWarm(b *testing.B) {
	img, err := LoadImage("x86_64-4level")
	if err != nil {
		b.Fatal(err)
	}
	t, err := dump.Open(img.Path("mem.elf.zst"), dumpOptions())
	if err != nil {
		b.Fatal(err)
	}
	defer t.Close()
	cache := unpack.Options{CacheDir: b.TempDir()}
	if _, err := linux.Open(t, linux.Options{Unpack: cache}); err != nil { // fill the cache
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		k, err := linux.Open(t, linux.Options{Unpack: cache})
		if err != nil {
			b.Fatal(err)
		}
		if !strings.HasPrefix(k.SymbolsFrom, "profile cache") {
			b.Fatalf("not from the cache: %s", k.SymbolsFrom)
		}
		if _, err := k.Offsetof("module", "name"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBindingReadU32 calls read_u32's Go function directly, without
// the Lua VM: what the binding itself costs on top of BenchmarkBindingBare.
func BenchmarkBindingReadU32(b *testing.B) {
	rt := luaState(b)
	callBinding(b, rt.L, rt.L.GetGlobal("read_u32").(*lua.LFunction).GFunction)
}

// BenchmarkBindingBare is bareCall called the same way.
func BenchmarkBindingBare(b *testing.B) {
	rt := luaState(b)
	callBinding(b, rt.L, bareCall)
}

func callBinding(b *testing.B, L *lua.LState, fn lua.LGFunction) {
	x := L.GetGlobal("x")
	for b.Loop() {
		L.SetTop(0)
		L.Push(x)
		if fn(L) != 1 || L.Get(-1).Type() != lua.LTNumber {
			b.Fatalf("call returned %v", L.Get(-1))
		}
	}
}
