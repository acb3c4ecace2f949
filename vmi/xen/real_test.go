package xen

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xascript/xascript/integration"
	"github.com/xascript/xascript/vmi"
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
			hv := hvmFake(d)
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

// hvmFake serves a dump as HVM domain 3.
func hvmFake(d vmi.Target) *fakeHV {
	return &fakeHV{domain: 3, version: 4<<16 | 17, mem: d, ranges: d.MemoryMap(), hvm: true,
		cpu: d.CPU(), pages: d.MemoryMap()[len(d.MemoryMap())-1].End / pageSize}
}

// A domain destroyed under a polling script, the way `xl destroy` goes
// about it: the toolstack pauses the domain, Xen later marks it dying (its
// frames stay mapped, and readable, while we hold them), then it is gone.
// The loop of e2e-xen's multi-one-gone check (with_paused(linux.modules),
// sleep, again) over a real kernel must end with an error naming the
// domain within a few rounds of the end, never read on or hang (issue 12).
func TestDestroyedUnderPollingScript(t *testing.T) {
	if os.Getenv("XASCRIPT_IMAGES") == "" {
		t.Setenv("XASCRIPT_IMAGES", "../../testdata/images")
	}
	img, err := integration.LoadImage("x86_64-4level")
	if err != nil {
		t.Fatal(err)
	}
	d, err := dump.Open(img.Path("mem.elf.zst"), dump.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	script := filepath.Join(t.TempDir(), "rounds.lua")
	if err := os.WriteFile(script, []byte(`local linux = require("linux")
local n = 0
while true do
  n = n + 1
  print("round " .. n .. " " .. #with_paused(linux.modules))
  sleep(0.01)
end
`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, end := range []string{"dying", "destroyed"} {
		t.Run(end, func(t *testing.T) {
			hv := hvmFake(d)
			tg, err := open(hv, 3, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			k, err := linux.Open(tg, linux.Options{NoProfileCache: true})
			if err != nil {
				t.Fatal(err)
			}
			// The domctls are the clock: a few rounds in, the toolstack's
			// pause; some rounds later, the end.
			calls, pausedAt, endAt := 0, 0, 0
			hv.onDomctl = func(f *fakeHV) {
				calls++
				switch {
				case calls == 40:
					f.paused++ // xl destroy: xc_domain_pause first
					pausedAt = calls
				case calls == 80:
					endAt = calls
					if end == "dying" {
						f.dying = true
					} else {
						f.domain = 99 // getdomaininfo of 3 now finds no domain
					}
				}
			}
			type result struct {
				out string
				err error
			}
			done := make(chan result, 1)
			go func() {
				out, err := integration.RunScript(k, script)
				done <- result{out, err}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(2 * time.Minute):
				t.Fatal("the script still runs 2 minutes on, the domain long gone")
			}
			if r.err == nil || !strings.Contains(r.err.Error(), "domain 3: domain is gone ("+end+")") {
				t.Fatalf("the script ended with %v, want an error naming domain 3 and why; it printed:\n%s", r.err, r.out)
			}
			rounds := strings.Count(r.out, "round ")
			if pausedAt == 0 || endAt == 0 || !strings.Contains(r.out, fmt.Sprintf(" %d\n", len(img.Truth.Modules))) {
				t.Fatalf("the domain was never paused and ended under the script (domctls %d), or no round saw the guest's %d modules:\n%s",
					calls, len(img.Truth.Modules), r.out)
			}
			if after := calls - endAt; after > 4 {
				t.Errorf("%d domctls after the domain's end before the script stopped (%d rounds in all)", after, rounds)
			}
			t.Logf("%d rounds; the error: %v", rounds, strings.SplitN(r.err.Error(), "\n", 2)[0])
		})
	}
}
