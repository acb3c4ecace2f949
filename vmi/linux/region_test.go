package linux

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

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

func hexval(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// FindKernel offers the region that holds the kernel, first when the CPU
// state says where it is, after a banner scan otherwise.
func TestFindKernelRealImages(t *testing.T) {
	for _, v := range []string{"x86_64-4level", "x86_64-5level", "x86_64-highmem", "i386-pae"} {
		dir := filepath.Join("..", "..", "testdata", "images", v)
		raw, err := os.ReadFile(filepath.Join(dir, "truth.json"))
		if err != nil {
			t.Fatal(err)
		}
		var truth regionTruth
		if err := json.Unmarshal(raw, &truth); err != nil {
			t.Fatal(err)
		}
		textPA := hexval(t, truth.KASLR.KernelPhys["Kernel code"].Start)
		bannerPA := hexval(t, truth.Symbols["linux_banner"]) - hexval(t, truth.Symbols["_text"]) + textPA
		for _, d := range []string{"mem.elf.zst", "mem.raw.zst"} {
			path := filepath.Join(dir, d)
			if _, err := os.Stat(path); err != nil {
				continue // highmem has no raw image
			}
			t.Run(v+"/"+d, func(t *testing.T) {
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
				if tg.CPU().Known && v != "i386-pae" && (len(tried) != 1 || got.Start != textPA) {
					t.Errorf("with CPU state the page tables should give the kernel at %#x first: %+v", textPA, tried)
				}
			})
		}
	}
}
