package symbols

import "testing"

// FuzzParseSymbols: Parse and every query on arbitrary text must not panic,
// and the index must find what Each lists.
func FuzzParseSymbols(f *testing.F) {
	f.Add([]byte(sampleKallsyms))
	f.Add([]byte(sampleSystemMap))
	f.Add([]byte("0000000000000000 T a\n"))
	f.Add([]byte("ffffffff81000000 T a\r\nffffffff81000000 t a\t[m]\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := Parse(data, "fuzz")
		if err != nil {
			return
		}
		tab.Len()
		tab.Kind()
		tab.Nearest(0xffffffff81000010)
		n := 0
		tab.Each(func(s Symbol) bool {
			var ok bool
			if s.Module == "" {
				_, ok = tab.Lookup(s.Name)
			} else {
				_, ok = tab.LookupModule(s.Module, s.Name)
			}
			if !ok {
				t.Fatalf("Each lists %+v but lookup misses it", s)
			}
			n++
			return n < 100
		})
	})
}
