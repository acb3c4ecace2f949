package linux

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/xascript/xascript/internal/testimages"
	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/dump"
	"github.com/xascript/xascript/vmi/linux/symbols"
)

// guestKallsyms is the guest's own /proc/kallsyms, captured at the dump.
func guestKallsyms(t *testing.T, variant string) *symbols.Table {
	t.Helper()
	tab, err := symbols.Load(testimages.Path(t, variant, "kallsyms.zst"), unpack.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tab.Close() })
	return tab
}

// realSymbolVariants: the two module layouts (6.1's core_layout, 6.12's
// mem[]) and 5-level paging.
var realSymbolVariants = []string{"x86_64-4level", "x86_64-6.12", "x86_64-5level"}

// TestRealModuleSymbols: the module symbols read from each module's own
// table in memory are exactly the module lines of the guest's
// /proc/kallsyms (name, address, type letter and module, as a multiset),
// and every one of them is found back by name and by address.
func TestRealModuleSymbols(t *testing.T) {
	for _, variant := range realSymbolVariants {
		t.Run(variant, func(t *testing.T) {
			tg, _, _ := openImage(t, variant, "mem.elf.zst")
			k, err := Open(tg, Options{Unpack: unpack.Options{CacheDir: t.TempDir()}})
			if err != nil {
				t.Fatal(err)
			}
			truth := guestKallsyms(t, variant)
			var want []string
			byAddr := map[string][]string{} // "module addr" -> names there
			count := map[string]int{}       // "module name" -> how many
			truth.Each(func(s symbols.Symbol) bool {
				if s.Module != "" {
					want = append(want, fmt.Sprintf("%s %#x %c %s", s.Module, s.Addr, s.Type, s.Name))
					key := fmt.Sprintf("%s %#x", s.Module, s.Addr)
					byAddr[key] = append(byAddr[key], s.Name)
					count[s.Module+" "+s.Name]++
				}
				return true
			})
			if len(want) < 1000 {
				t.Fatalf("the guest's kallsyms has only %d module lines", len(want))
			}
			tab, err := k.ModuleSymbols()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range tab.Modules {
				if m.Err != nil {
					t.Errorf("module %s: %v", m.Name, m.Err)
				}
				for _, s := range m.Symbols {
					got = append(got, fmt.Sprintf("%s %#x %c %s", m.Name, s.Addr, s.Type, s.Name))
				}
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("module symbols differ from the guest's kallsyms: %d read, %d in kallsyms; first difference %s",
					len(got), len(want), firstDiff(got, want))
			}
			t.Logf("%d modules, %d module symbols, all as the guest's /proc/kallsyms lists them", len(tab.Modules), len(got))

			checked, named := 0, 0
			for _, m := range tab.Modules {
				for _, s := range m.Symbols {
					// By name: unique names through symbol(), every one
					// through "module:name" (the first in its table).
					if count[m.Name+" "+s.Name] == 1 {
						if a, err := k.Symbol(m.Name + ":" + s.Name); err != nil || a != s.Addr {
							t.Errorf("Symbol(%s:%s) = %#x, %v; kallsyms says %#x", m.Name, s.Name, a, err, s.Addr)
						}
						if _, kernel := k.Syms.Lookup(s.Name); !kernel {
							if a, err := k.Symbol(s.Name); err != nil || (a != s.Addr && firstModuleWith(tab, s.Name) == m.Name) {
								t.Errorf("Symbol(%s) = %#x, %v; kallsyms says %#x in %s", s.Name, a, err, s.Addr, m.Name)
							}
							named++
						}
					}
					if s.Name[0] == '.' || s.Name[0] == '$' {
						continue // labels that the kernel's lookup skips too
					}
					// By address: the symbol itself, or an alias at its
					// address, at offset 0; one byte on, offset 1.
					info, err := k.SymbolAt(s.Addr)
					aliases := byAddr[fmt.Sprintf("%s %#x", m.Name, s.Addr)]
					if err != nil || info.Module != m.Name || info.Addr != s.Addr || info.Offset != 0 || !slices.Contains(aliases, info.Name) {
						t.Errorf("SymbolAt(%#x) = %+v, %v; kallsyms has %v [%s] there", s.Addr, info, err, aliases, m.Name)
						continue
					}
					isText := s.Type == 't' || s.Type == 'T'
					if info.Text != isText {
						t.Errorf("SymbolAt(%#x) (%s, type %c): text %v", s.Addr, s.Name, s.Type, info.Text)
					}
					if s.Size > 1 {
						if in, err := k.SymbolAt(s.Addr + 1); err != nil || in.Addr != s.Addr || in.Offset != 1 {
							t.Errorf("SymbolAt(%#x+1) = %+v, %v", s.Addr, in, err)
						}
					}
					checked++
				}
			}
			t.Logf("%d module symbols found back by address, %d by their name alone", checked, named)
			if checked < 1000 || named < 500 {
				t.Errorf("only %d symbols checked by address, %d by name", checked, named)
			}
		})
	}
}

func firstModuleWith(tab interface {
	Lookup(string) (uint64, string, bool)
}, name string) string {
	_, m, _ := tab.Lookup(name)
	return m
}

func firstDiff(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("read %q, kallsyms %q", got[i], want[i])
		}
	}
	return "one list is a prefix of the other"
}

// TestRealKernelSymbolAt: kernel addresses are named as the guest's own
// /proc/kallsyms names them (every 37th symbol of the image, and one byte
// on), code is told from data, and an address in neither the image nor a
// module is refused as outside.
func TestRealKernelSymbolAt(t *testing.T) {
	for _, variant := range realSymbolVariants {
		t.Run(variant, func(t *testing.T) {
			tg, _, _ := openImage(t, variant, "mem.elf.zst")
			k, err := Open(tg, Options{Unpack: unpack.Options{CacheDir: t.TempDir()}})
			if err != nil {
				t.Fatal(err)
			}
			truth := guestKallsyms(t, variant)
			text, _ := truth.Lookup("_text")
			end, _ := truth.Lookup("_end")
			stext, _ := truth.Lookup("_stext")
			etext, _ := truth.Lookup("_etext")
			sinit, _ := truth.Lookup("_sinittext")
			einit, _ := truth.Lookup("_einittext")
			var lines []symbols.Symbol
			names := map[uint64][]string{}
			truth.Each(func(s symbols.Symbol) bool {
				if s.Module == "" && s.Addr >= text && s.Addr < end {
					lines = append(lines, s)
					names[s.Addr] = append(names[s.Addr], s.Name)
				}
				return true
			})
			checked, texts, datas := 0, 0, 0
			for i := 0; i < len(lines); i += 37 {
				s := lines[i]
				info, err := k.SymbolAt(s.Addr)
				if err != nil || info.Module != "" || info.Addr != s.Addr || info.Offset != 0 || !slices.Contains(names[s.Addr], info.Name) {
					t.Errorf("SymbolAt(%#x) = %+v, %v; kallsyms has %v there", s.Addr, info, err, names[s.Addr])
					continue
				}
				if next := s.Addr + 1; len(names[next]) == 0 {
					if in, err := k.SymbolAt(next); err != nil || in.Addr != s.Addr || in.Offset != 1 {
						t.Errorf("SymbolAt(%#x) = %+v, %v; want %s+0x1", next, in, err, info.Name)
					}
				}
				// Text: .text (_stext to _etext) and .init.text
				// (_sinittext to _einittext), where the guest's own
				// kallsyms places them; what lies elsewhere is not
				// (.exit.text is not kernel text once booted, as the
				// kernel's core_kernel_text has it).
				inText := s.Addr >= stext && s.Addr < etext || s.Addr >= sinit && s.Addr < einit
				if info.Text != inText {
					t.Errorf("SymbolAt(%#x) (%s, %c): text %v", s.Addr, s.Name, s.Type, info.Text)
				}
				switch s.Type {
				case 't', 'T':
					texts++
				case 'd', 'D', 'b', 'B', 'r', 'R':
					if info.Text {
						t.Errorf("SymbolAt(%#x) (%s, %c): data named text", s.Addr, s.Name, s.Type)
					}
					datas++
				}
				checked++
			}
			t.Logf("%d kernel symbols found back by address (%d text, %d data)", checked, texts, datas)
			if checked < 1000 || texts < 500 || datas < 100 {
				t.Errorf("only %d checked (%d text, %d data)", checked, texts, datas)
			}
			for _, a := range []uint64{0xffff888000001000, end + 0x1000, 0x1000, 0xffffffffc0000000 - 0x1000} {
				if info, err := k.SymbolAt(a); !errors.Is(err, ErrOutsideCode) || !errors.Is(err, vmi.ErrNotFound) {
					t.Errorf("SymbolAt(%#x) = %+v, %v; want outside the kernel and its modules", a, info, err)
				}
			}
		})
	}
}

// BenchmarkSymbolAt names a kernel function's address and a module
// function's (the module tables already read), as a system-call table
// monitor does for each entry it reports.
func BenchmarkSymbolAt(b *testing.B) {
	tg, err := dump.Open(testimages.Path(b, "x86_64-4level", "mem.elf.zst"), dump.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer tg.Close()
	k, err := Open(tg, Options{Unpack: unpack.Options{CacheDir: b.TempDir()}})
	if err != nil {
		b.Fatal(err)
	}
	kernel, err := k.Symbol("schedule")
	if err != nil {
		b.Fatal(err)
	}
	module, err := k.Symbol("squashfs_fill_super")
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		addr uint64
	}{{"kernel", kernel + 5}, {"module", module + 5}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := k.SymbolAt(c.addr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
