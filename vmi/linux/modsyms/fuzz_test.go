package modsyms

import "testing"

// FuzzRead: any memory under the module list (the list, the modules, their
// tables: all the guest's to forge) gives a table or an error, never a
// panic, a hang or unbounded work.
func FuzzRead(f *testing.F) {
	p := pages{}
	const a = 0xffffffffc0010000
	addModule(p, a, "alpha", 0xffffffffc1000000, []fakeSym{{"f", 0xffffffffc1000000, 't', false}, {"g", 0xffffffffc1000010, 'T', false}})
	link(p, a)
	seed := make([]byte, 0x4000)
	for i := range seed {
		if pg, ok := p[(a+uint64(i))>>12]; ok {
			seed[i] = pg[(a+uint64(i))&0xfff]
		}
	}
	f.Add(seed, p[head>>12][:16])
	f.Fuzz(func(t *testing.T, module, list []byte) {
		if len(module) > 0x8000 || len(list) > 64 {
			return
		}
		mem := pages{}
		mem.write(a, module)
		mem.write(head, list)
		tab, err := Read(mem, head, testLayout, Limits{MaxModules: 64, MaxModuleSymbols: 4096, MaxSymbols: 8192, MaxStrtab: 1 << 16})
		if err != nil {
			return
		}
		for _, m := range tab.Modules {
			for _, s := range m.Symbols {
				if len(s.Name) > maxName {
					t.Fatalf("name of %d bytes", len(s.Name))
				}
				tab.At(s.Addr)
				tab.Lookup(s.Name)
			}
		}
	})
}
