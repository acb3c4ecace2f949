package linux

import (
	"errors"
	"strings"
	"testing"

	"github.com/xascript/xascript/internal/testimages"
	"github.com/xascript/xascript/vmi/dump"
)

type regionTruth struct {
	Banner  string            `json:"banner"`
	Symbols map[string]string `json:"symbols"`
	KASLR   struct {
		KernelPhys map[string]struct {
			Start string `json:"start"`
		} `json:"kernel_phys"`
	} `json:"kaslr"`
}

// FindKernel offers the region that holds the kernel, first when the CPU
// state says where it is, after a banner scan otherwise.
func TestFindKernelRealImages(t *testing.T) {
	for _, c := range testimages.All {
		t.Run(c.String(), func(t *testing.T) {
			var truth regionTruth
			testimages.LoadTruth(t, c.Variant, &truth)
			hex := func(s string) uint64 { return testimages.Hex(t, "address", s) }
			textPA := hex(truth.KASLR.KernelPhys["Kernel code"].Start)
			bannerPA := hex(truth.Symbols["linux_banner"]) - hex(truth.Symbols["_text"]) + textPA
			path := testimages.Path(t, c.Variant, c.File)
			tg, err := dump.Open(path, dump.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			var tried []Region
			err = FindKernel(tg, func(r Region) error {
				tried = append(tried, r)
				// Accept the region that holds the real linux_banner, as
				// decoding its symbols would.
				if r.Start <= bannerPA && bannerPA < r.Start+r.Size {
					return nil
				}
				return errors.New("not this one")
			})
			if err != nil {
				t.Fatalf("%v (tried %+v)", err, tried)
			}
			got := tried[len(tried)-1]
			if err := got.FindBanner(tg); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(got.Banner, "Linux version ") || got.Start > textPA {
				t.Errorf("region %+v: banner or bounds wrong (text at %#x)", got, textPA)
			}
			if tg.CPU().Known && !strings.HasPrefix(c.Variant, "i386") && (len(tried) != 1 || got.Start != textPA) {
				t.Errorf("with CPU state the page tables should give the kernel at %#x first: %+v", textPA, tried)
			}
		})
	}
}
