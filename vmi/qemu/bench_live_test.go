//go:build guests

package qemu

import (
	"fmt"
	"io"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/xascript/xascript/bindings"
	"github.com/xascript/xascript/internal/liveguest"
	"github.com/xascript/xascript/runtime"
	"github.com/xascript/xascript/vmi/linux"
)

// BenchmarkLiveQEMU compares the two ways to reach a live guest's RAM on
// one guest (RAM in a shared file): the mapped file, and QEMU's process
// memory through process_vm_readv (a second Target on the control socket).
//
//	go test -tags guests -run '^$' -bench LiveQEMU -benchtime 2s ./vmi/qemu/
//
// read-64MiB-*: guest-physical throughput, 64 MiB in 4 KiB or 1 MiB reads.
// ReadPhys-4B: one 4-byte physical read. u32-virt: a 4-byte read of
// jiffies through the kernel's page tables (translation cached), the way
// the read_u32 binding reads. lua-read_u32: the binding from a Lua loop.
// "paused" and "running" say what the guest does meanwhile: the shared
// file hands out host pages only while it is paused (see PhysPage).
func BenchmarkLiveQEMU(b *testing.B) {
	g := startGuest(b, liveguest.FileRAM)
	targets := []struct {
		name string
		t    *Target
	}{
		{"file", openLive(b, g.Socket, RAMAuto)},
		{"process", openLive(b, g.CtlSocket, RAMProcess)},
	}
	if targets[0].t.nProc != 0 || targets[1].t.nFile != 0 {
		b.Fatalf("targets: %s, %s", targets[0].t.Kind(), targets[1].t.Kind())
	}
	kernels := make([]*linux.Kernel, len(targets))
	for i, tg := range targets {
		k, err := linux.Open(tg.t, linux.Options{})
		if err != nil {
			b.Fatal(err)
		}
		kernels[i] = k
	}
	jiffies, err := kernels[0].Symbol("jiffies")
	if err != nil {
		b.Fatal(err)
	}
	pause := func(b *testing.B, paused bool) {
		tg := targets[0].t
		if paused {
			if err := tg.Pause(); err != nil {
				b.Fatal(err)
			}
		} else if err := tg.Resume(); err != nil {
			b.Fatal(err)
		}
		for _, k := range kernels {
			k.Flush() // translations cached while paused hold host pages
		}
	}
	for _, state := range []string{"paused", "running"} {
		pause(b, state == "paused")
		for i, tg := range targets {
			tg, k := tg, kernels[i]
			for _, chunk := range []int{4 << 10, 1 << 20} {
				b.Run(fmt.Sprintf("%s/%s/read-64MiB-%s", tg.name, state, size(chunk)), func(b *testing.B) {
					buf := make([]byte, chunk)
					b.SetBytes(64 << 20)
					for b.Loop() {
						for pa := uint64(0); pa < 64<<20; pa += uint64(chunk) {
							if err := tg.t.ReadPhys(buf, 16<<20+pa); err != nil {
								b.Fatal(err)
							}
						}
					}
				})
			}
			b.Run(tg.name+"/"+state+"/ReadPhys-4B", func(b *testing.B) {
				var buf [4]byte
				for b.Loop() {
					if err := tg.t.ReadPhys(buf[:], 0x1000); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(tg.name+"/"+state+"/u32-virt", func(b *testing.B) {
				k.Flush()
				for b.Loop() {
					if _, err := k.ReadUintVirt(jiffies, 4); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(tg.name+"/"+state+"/lua-read_u32", func(b *testing.B) {
				k.Flush()
				rt := runtime.New(runtime.Config{Stdout: io.Discard, Env: &bindings.Env{Guest: k}})
				defer rt.Close()
				if err := rt.RunString(`j = symbol("jiffies")
function loop(n) for i = 1, n do if not read_u32(j) then error("read failed") end end end`, "bench", nil); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				if err := rt.L.CallByParam(lua.P{Fn: rt.L.GetGlobal("loop"), Protect: true}, lua.LNumber(b.N)); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

func size(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}
