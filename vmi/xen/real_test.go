package xen

import (
	"os"
	"slices"
	"testing"

	"github.com/xascript/xascript/integration"
	"github.com/xascript/xascript/vmi/dump"
	"github.com/xascript/xascript/vmi/linux"
)

// A real kernel read through this target: the committed guest images are
// served as an HVM domain by the fake hypervisor, so everything above the
// privcmd ioctls (domctl encoding, the CPU record, batch mapping, the frame
// cache) runs against a real Debian kernel's memory, with no profile files,
// and lkm.lua must print exactly the modules the guest listed. The same
// code on real Xen is the e2e-xen suite.
func TestRealKernelThroughXenTarget(t *testing.T) {
	if os.Getenv("XASCRIPT_IMAGES") == "" { // integration's default is relative to its own folder
		t.Setenv("XASCRIPT_IMAGES", "../../testdata/images")
	}
	for _, variant := range []string{"x86_64-4level", "x86_64-5level", "x86_64-6.12"} {
		t.Run(variant, func(t *testing.T) {
			img, err := integration.LoadImage(variant)
			if err != nil {
				t.Fatal(err)
			}
			d, err := dump.Open(img.Path("mem.elf.zst"), dump.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			hv := &fakeHV{domain: 3, version: 4<<16 | 17, mem: d, ranges: d.MemoryMap(), hvm: true,
				cpu: d.CPU(), pages: d.MemoryMap()[len(d.MemoryMap())-1].End / pageSize}
			tg, err := open(hv, 3, Options{MaxMappedChunks: 16})
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			if !slices.Equal(tg.MemoryMap(), d.MemoryMap()) {
				t.Errorf("probed memory map %v, the dump's is %v", tg.MemoryMap(), d.MemoryMap())
			}
			if tg.CPU() != d.CPU() {
				t.Fatalf("CPU %+v, dump says %+v", tg.CPU(), d.CPU())
			}
			k, err := linux.Open(tg, linux.Options{NoProfileCache: true})
			if err != nil {
				t.Fatal(err)
			}
			out, err := integration.RunScript(k, "../../scripts/examples/lkm.lua")
			if err != nil {
				t.Fatal(err)
			}
			got, err := integration.RecordStrings(out, "name")
			if err != nil {
				t.Fatalf("lkm.lua: %v", err)
			}
			if !slices.Equal(got, img.Truth.Modules) {
				t.Fatalf("lkm.lua printed %v, the guest listed %v", got, img.Truth.Modules)
			}
			s := tg.Stats()
			t.Logf("%s: %d modules; frame cache: %d hits, %d misses (%.1f%%), %d frames mapped, %d unmaps",
				variant, len(got), s.Hits, s.Misses, 100*s.HitRate(), s.FramesMapped, s.Unmaps)
			if s.Unmaps == 0 {
				t.Error("a 16-chunk cache never evicted while deriving a profile: LRU not exercised")
			}
		})
	}
}
