package kallsyms

import (
	"bytes"
	"testing"
)

// FuzzFind: Find on arbitrary memory never panics, and what it returns is
// consistent. Seeds: one small table set of every layout variant.
func FuzzFind(f *testing.F) {
	for _, s := range variants(300) {
		s.pre = 64
		img, _, _ := s.build()
		f.Add(img)
	}
	f.Add([]byte(digitRun))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Find(bytes.NewReader(data), int64(len(data)), Options{MaxSymbols: 1 << 16})
		if err != nil {
			return
		}
		for i, s := range res.Symbols {
			if s.Name == "" || len(s.Name) >= ksymNameLen {
				t.Fatalf("symbol %d: name %q", i, s.Name)
			}
			if i > 0 && s.Addr < res.Symbols[i-1].Addr {
				t.Fatalf("symbol %d below its predecessor", i)
			}
		}
		for name, off := range res.Tables {
			if off < 0 || off >= int64(len(data)) {
				t.Fatalf("%s at %#x outside %#x bytes", name, off, len(data))
			}
		}
	})
}

// FuzzDecodeNames: the names walker and decoder on arbitrary names and
// tokens never panic and agree with each other.
func FuzzDecodeNames(f *testing.F) {
	s := synth{order: "new", enc: "rel", ptr: 8, markerW: 4, n: 300}
	img, _, tables := s.build()
	names := img[tables["kallsyms_names"]:tables["kallsyms_markers"]]
	tt := img[tables["kallsyms_token_table"]:tables["kallsyms_token_index"]]
	f.Add(names, tt, uint16(300))
	f.Add([]byte{0x81, 0x01, 'a', 'b'}, []byte("a\x00b\x00"), uint16(1))
	f.Add([]byte{0xff, 0xff}, []byte{}, uint16(2))
	f.Fuzz(func(t *testing.T, names, table []byte, n uint16) {
		var tok [256][]byte
		for i, p := range bytes.SplitN(table, []byte{0}, 256) {
			tok[i] = p
		}
		end, werr := walkNames(names, int(n), nil)
		out, types, derr := decodeNames(names, int(n), &tok)
		if derr == nil {
			if werr != nil {
				t.Fatalf("decode ok, walk failed: %v", werr)
			}
			if len(out) != int(n) || len(types) != int(n) || end > len(names) {
				t.Fatalf("%d names, %d types, end %d", len(out), len(types), end)
			}
			for _, s := range out {
				if len(s)+1 > ksymNameLen {
					t.Fatalf("name of %d bytes", len(s))
				}
			}
		}
	})
}
