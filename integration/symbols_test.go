package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi/dump"
	"github.com/xascript/xascript/vmi/linux"
	"github.com/xascript/xascript/vmi/linux/symbols"
)

// TestGuestSymbolAt runs testdata/symbols.lua on the 6.1 and 6.12 guests,
// with the profile found in memory and with the guest's own kallsyms given
// as --symbols, and compares what symbol_at, symbol, cpus and percpu give
// with what the guest printed: every module symbol and every 40th kernel
// symbol of its /proc/kallsyms named back as "name+0x0" (an alias at the
// same address will do) with its module, type letter and kind (text or
// not); one byte into a module function as "+0x1"; module symbols found by
// name, alone and as "module:name"; addresses outside the kernel and its
// modules refused as such; and each online CPU's runqueue saying it is
// that CPU's.
func TestGuestSymbolAt(t *testing.T) {
	for _, v := range []string{"x86_64-4level", "x86_64-6.12", "i386-pae", "i386-legacy"} {
		t.Run(v, func(t *testing.T) {
			img, err := LoadImage(v)
			if err != nil {
				t.Fatal(err)
			}
			truth, err := symbols.Load(img.Path("kallsyms.zst"), unpack.Options{CacheDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer truth.Close()
			addrs, names, want := symbolQueries(t, truth)
			dir := t.TempDir()
			addrFile, nameFile := filepath.Join(dir, "addrs"), filepath.Join(dir, "names")
			os.WriteFile(addrFile, []byte(strings.Join(addrs, "\n")+"\n"), 0o644)
			os.WriteFile(nameFile, []byte(strings.Join(names, "\n")+"\n"), 0o644)
			profiles := []string{"memory", "files"}
			if img.Truth.Arch == "i386" {
				// Its kernel has no BTF: struct module's layout comes
				// from the BTF file given with System.map.
				profiles = []string{"files"}
			}
			for _, profile := range profiles {
				t.Run(profile, func(t *testing.T) {
					var k *linux.Kernel
					if profile == "memory" {
						target, err := dump.Open(img.Path("mem.elf.zst"), dumpOptions())
						if err != nil {
							t.Fatal(err)
						}
						defer target.Close()
						if k, err = linux.Open(target, linux.Options{Unpack: cacheOpts(t)}); err != nil {
							t.Fatal(err)
						}
					} else {
						target, kk, err := openKernel(t, img, "mem.elf.zst")
						if err != nil {
							t.Fatal(err)
						}
						defer target.Close()
						k = kk
					}
					out, err := RunScript(k, "testdata/symbols.lua", addrFile, nameFile)
					if err != nil {
						t.Fatal(err)
					}
					checkSymbolOutput(t, out, want, len(addrs), len(names))
				})
			}
		})
	}
}

// symbolWant is what the script must print for one query.
type symbolWant struct {
	aliases []string // names at the address (any one will do)
	module  string
	typ     byte
	text    bool
	offset  uint64
	addr    string // a name's address
	outside bool
}

// symbolQueries picks the addresses and names to ask for, from the guest's
// own kallsyms, and what the answers must be.
func symbolQueries(t *testing.T, truth *symbols.Table) (addrs, names []string, want map[string]symbolWant) {
	want = map[string]symbolWant{}
	text, _ := truth.Lookup("_text")
	stext, _ := truth.Lookup("_stext")
	etext, _ := truth.Lookup("_etext")
	outside := []string{"0xffff888000001000", "0x10"}
	end, ok := truth.Lookup("_end")
	if ok {
		outside = append(outside, fmt.Sprintf("%#x", end+0x1000))
	} else { // text symbols only (i386: no CONFIG_KALLSYMS_ALL)
		end = etext
	}
	type key struct {
		mod  string
		addr uint64
	}
	at := map[key][]symbols.Symbol{}
	count := map[string]int{}
	var kernel, mods []symbols.Symbol
	truth.Each(func(s symbols.Symbol) bool {
		count[s.Name]++
		if s.Module != "" {
			mods = append(mods, s)
		} else if s.Addr >= text && s.Addr < end {
			kernel = append(kernel, s)
		}
		at[key{s.Module, s.Addr}] = append(at[key{s.Module, s.Addr}], s)
		return true
	})
	add := func(s symbols.Symbol, off uint64, isText bool) {
		a := fmt.Sprintf("%#x", s.Addr+off)
		if _, dup := want[a]; dup {
			return
		}
		w := symbolWant{module: s.Module, typ: s.Type, text: isText, offset: off}
		for _, o := range at[key{s.Module, s.Addr}] {
			if s.Module == "" || o.Name[0] != '.' { // a module's labels are skipped
				w.aliases = append(w.aliases, o.Name)
			}
		}
		want[a] = w
		addrs = append(addrs, a)
	}
	for i := 0; i < len(kernel); i += 40 {
		s := kernel[i]
		if s.Name[0] == '_' && strings.HasSuffix(s.Name, "text") {
			continue // section markers: several text/non-text boundaries meet there
		}
		add(s, 0, s.Addr >= stext && s.Addr < etext || isInitText(truth, s.Addr))
	}
	for _, s := range mods {
		if s.Name[0] == '.' {
			continue // local labels, which the kernel's lookup skips too
		}
		isText := s.Type == 't' || s.Type == 'T'
		add(s, 0, isText)
		if isText && len(at[key{s.Module, s.Addr + 1}]) == 0 {
			add(s, 1, true)
		}
		if count[s.Name] == 1 {
			names = append(names, s.Name)
			want["sym "+s.Name] = symbolWant{addr: fmt.Sprintf("%#x", s.Addr)}
		}
		if len(at[key{s.Module, s.Addr}]) == 1 && count[s.Name] > 1 {
			n := s.Module + ":" + s.Name
			if _, dup := want["sym "+n]; !dup && uniqueIn(mods, s) {
				names = append(names, n)
				want["sym "+n] = symbolWant{addr: fmt.Sprintf("%#x", s.Addr)}
			}
		}
	}
	for _, a := range outside {
		addrs = append(addrs, a)
		want[a] = symbolWant{outside: true}
	}
	if len(addrs) < 3000 || len(names) < 1000 {
		t.Fatalf("only %d addresses and %d names to ask for", len(addrs), len(names))
	}
	return addrs, names, want
}

func isInitText(truth *symbols.Table, a uint64) bool {
	s, ok1 := truth.Lookup("_sinittext")
	e, ok2 := truth.Lookup("_einittext")
	return ok1 && ok2 && a >= s && a < e
}

// uniqueIn: no other symbol of s's module has s's name.
func uniqueIn(mods []symbols.Symbol, s symbols.Symbol) bool {
	n := 0
	for _, o := range mods {
		if o.Module == s.Module && o.Name == s.Name {
			n++
		}
	}
	return n == 1
}

func checkSymbolOutput(t *testing.T, out string, want map[string]symbolWant, nAddrs, nNames int) {
	t.Helper()
	var ats, syms, cpus int
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "\t")
		switch f[0] {
		case "at":
			ats++
			w, ok := want[f[1]]
			if !ok {
				t.Fatalf("script asked for %s, which was not asked", f[1])
			}
			if w.outside {
				if f[2] != "ERR" || !strings.Contains(f[3], "outside the kernel image") {
					t.Errorf("symbol_at(%s) = %v; want outside the kernel image", f[1], f[2:])
				}
				continue
			}
			if len(f) != 9 {
				t.Errorf("symbol_at(%s): %v", f[1], f[2:])
				continue
			}
			mod, typ := "-", string(w.typ)
			suffix := ""
			if w.module != "" {
				mod, suffix = w.module, " ["+w.module+"]"
			}
			okName := slices.Contains(w.aliases, f[3])
			if !okName || f[2] != fmt.Sprintf("%s+%#x%s", f[3], w.offset, suffix) || f[4] != mod || f[7] == "" ||
				f[8] != fmt.Sprint(w.offset) || f[6] != fmt.Sprint(w.text) {
				t.Errorf("symbol_at(%s) = %v; the guest's kallsyms has %v+%#x [%s] (text %v)", f[1], f[2:], w.aliases, w.offset, mod, w.text)
				continue
			}
			// The letter of the symbol found (an alias may have another).
			if len(w.aliases) == 1 && f[5] != typ {
				t.Errorf("symbol_at(%s): type %s; kallsyms says %s", f[1], f[5], typ)
			}
		case "sym":
			syms++
			if w := want["sym "+f[1]]; f[2] != w.addr {
				t.Errorf("symbol(%q) = %s; kallsyms says %s", f[1], f[2], w.addr)
			}
		case "cpu":
			cpus++
			if f[1] != f[2] {
				t.Errorf("CPU %s's runqueue says it is CPU %s's", f[1], f[2])
			}
		default:
			t.Fatalf("unexpected line %q", line)
		}
	}
	if ats != nAddrs || syms != nNames || cpus != 1 {
		t.Errorf("script answered %d of %d addresses, %d of %d names, %d CPUs (the guests have 1)", ats, nAddrs, syms, nNames, cpus)
	}
	t.Logf("%d addresses, %d names, %d CPUs checked", ats, syms, cpus)
}
