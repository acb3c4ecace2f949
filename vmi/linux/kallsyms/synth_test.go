package kallsyms

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// synth describes a table set as scripts/kallsyms would emit it.
type synth struct {
	order   string // "old" (to v6.1), "oldseqs" (v6.2-v6.3), "new" (v6.4-v6.19), "v7" (v7.0+)
	enc     string // "abs", "rel", "percpu" (base-relative, absolute per-cpu), "place"
	ptr     int    // pointer size, 4 or 8
	markerW int    // 4, or ptr for pre-v4.20 tables
	n       int    // symbols
	pre     int    // junk bytes before the tables (a multiple of 8)
	imageVA uint64 // for "place": the virtual address of image offset 0
}

func (s synth) String() string {
	return fmt.Sprintf("%s/%s/ptr%d/markers%d/n%d", s.order, s.enc, s.ptr, s.markerW, s.n)
}

// symbols makes n sorted symbols with names that use every digit (so that
// the token table has the "0".."9" run) and one name long enough to need a
// two-byte length.
func (s synth) symbols() []Symbol {
	syms := make([]Symbol, s.n)
	base := uint64(0xffff_ffff_8100_0000)
	if s.ptr == 4 {
		base = 0xc100_0000
	}
	percpu := 0
	if s.enc == "percpu" {
		percpu = min(20, s.n/4)
	}
	for i := range syms {
		name := fmt.Sprintf("sym_%d_func", i)
		typ := byte("tTdDrRbBwW"[i%10])
		addr := base + uint64(16*i)
		if i%7 == 3 {
			addr -= 16 // an alias of the symbol before, as kernels have many
		}
		if i < percpu {
			addr, typ = uint64(64*i), 'D'
			name = fmt.Sprintf("per_cpu_var_%d", i)
		}
		if i == s.n/2 {
			name = strings.Repeat("q", 200) // 201 tokens with the type: a "big" length
		}
		syms[i] = Symbol{Addr: addr, Type: typ, Name: name}
	}
	return syms
}

// tokens is a small stand-in for scripts/kallsyms' compression: every byte
// used in names is its own token, unused codes get common substrings.
func tokens(syms []Symbol) [256]string {
	var tok [256]string
	for _, s := range syms {
		tok[s.Type] = string(s.Type)
		for i := 0; i < len(s.Name); i++ {
			tok[s.Name[i]] = string(s.Name[i])
		}
	}
	subs := []string{"sym_", "_func", "per_cpu_", "var_", "fu", "nc", "_1", "_2", "sy", "m_", "Tsym_", "tsym_"}
	k := 0
	for c := 1; c < 256; c++ {
		if tok[c] == "" {
			tok[c] = subs[k%len(subs)]
			if k >= len(subs) {
				tok[c] = fmt.Sprintf("%sz%d", subs[k%len(subs)], k)
			}
			k++
		}
	}
	if tok[0] == "" {
		tok[0] = "zz0"
	}
	return tok
}

func encode(name string, tok *[256]string) []byte {
	var out []byte
	for len(name) > 0 {
		best, bl := -1, 0
		for c, t := range tok {
			if len(t) > bl && strings.HasPrefix(name, t) {
				best, bl = c, len(t)
			}
		}
		out = append(out, byte(best))
		name = name[bl:]
	}
	return out
}

type writer struct {
	b      []byte
	algn   int
	tables map[string]int64
}

func (w *writer) label(name string) {
	for len(w.b)%w.algn != 0 {
		w.b = append(w.b, 0)
	}
	w.tables[name] = int64(len(w.b))
}

func (w *writer) word(v uint64, size int) {
	switch size {
	case 2:
		w.b = binary.LittleEndian.AppendUint16(w.b, uint16(v))
	case 4:
		w.b = binary.LittleEndian.AppendUint32(w.b, uint32(v))
	default:
		w.b = binary.LittleEndian.AppendUint64(w.b, v)
	}
}

// build returns the image, the symbols it holds and the table offsets.
func (s synth) build() ([]byte, []Symbol, map[string]int64) {
	syms := s.symbols()
	tok := tokens(syms)
	w := &writer{algn: s.ptr, tables: map[string]int64{}}
	if s.order == "v7" {
		w.algn = 4
	}
	// Junk that looks nothing like the tables, then a decoy digit run.
	for i := 0; i < s.pre; i++ {
		w.b = append(w.b, byte(i*7+3))
	}
	w.b = append(w.b, "xx\x000\x001\x002\x003\x004\x005\x006\x007\x008\x009\x00yy"...)
	for len(w.b)%8 != 0 {
		w.b = append(w.b, 0)
	}
	markerW := s.markerW
	addrTables := func() {
		switch s.enc {
		case "abs":
			w.label("kallsyms_addresses")
			for _, sy := range syms {
				w.word(sy.Addr, s.ptr)
			}
		case "rel", "percpu":
			w.label("kallsyms_offsets")
			base := syms[0].Addr
			for _, sy := range syms {
				if s.enc != "percpu" || sy.Addr >= 0x1000_0000 {
					base = sy.Addr
					break
				}
			}
			for _, sy := range syms {
				switch {
				case s.enc == "rel":
					w.word(sy.Addr-base, 4)
				case sy.Addr < base:
					w.word(sy.Addr, 4)
				default:
					w.word(uint64(uint32(int32(int64(base)-int64(sy.Addr)-1))), 4)
				}
			}
			w.label("kallsyms_relative_base")
			w.word(base, s.ptr)
		case "place":
			w.label("kallsyms_offsets")
			for _, sy := range syms {
				here := s.imageVA + uint64(len(w.b))
				w.word(uint64(uint32(int32(int64(sy.Addr-here)))), 4)
			}
		}
	}
	seqs := func() {
		w.label("kallsyms_seqs_of_names")
		idx := make([]int, len(syms))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return syms[idx[a]].Name < syms[idx[b]].Name })
		for _, i := range idx {
			w.b = append(w.b, byte(i>>16), byte(i>>8), byte(i))
		}
	}
	old := s.order == "old" || s.order == "oldseqs"
	if old {
		addrTables()
	}
	w.label("kallsyms_num_syms")
	w.word(uint64(len(syms)), max(4, markerW))
	w.label("kallsyms_names")
	start := len(w.b)
	var markers []uint64
	for i, sy := range syms {
		if i%256 == 0 {
			markers = append(markers, uint64(len(w.b)-start))
		}
		enc := encode(string(sy.Type)+sy.Name, &tok)
		if l := len(enc); l >= 0x80 {
			w.b = append(w.b, byte(l&0x7f|0x80), byte(l>>7))
		} else {
			w.b = append(w.b, byte(l))
		}
		w.b = append(w.b, enc...)
	}
	w.label("kallsyms_markers")
	for _, m := range markers {
		w.word(m, markerW)
	}
	if s.order == "oldseqs" {
		seqs()
	}
	w.label("kallsyms_token_table")
	var offs []uint64
	for _, t := range tok {
		offs = append(offs, uint64(len(w.b)-int(w.tables["kallsyms_token_table"])))
		w.b = append(w.b, t...)
		w.b = append(w.b, 0)
	}
	w.label("kallsyms_token_index")
	for _, o := range offs {
		w.word(o, 2)
	}
	if !old {
		addrTables()
		seqs()
	}
	w.b = append(w.b, make([]byte, 64)...)
	return w.b, syms, w.tables
}

// variants are the layouts the kernel has emitted (see doc.go).
func variants(n int) []synth {
	var v []synth
	for _, ptr := range []int{8, 4} {
		for _, order := range []string{"old", "oldseqs", "new"} {
			for _, enc := range []string{"rel", "abs"} {
				v = append(v, synth{order: order, enc: enc, ptr: ptr, markerW: 4, n: n})
			}
		}
		// Pre-v4.20: pointer-sized num_syms and markers. With 512
		// symbols or fewer (two markers) they can be indistinguishable
		// from u32 ones; the symbols decode the same either way.
		v = append(v, synth{order: "old", enc: "rel", ptr: ptr, markerW: ptr, n: n},
			synth{order: "old", enc: "abs", ptr: ptr, markerW: ptr, n: n})
	}
	for _, order := range []string{"old", "oldseqs", "new"} {
		v = append(v, synth{order: order, enc: "percpu", ptr: 8, markerW: 4, n: n})
	}
	v = append(v, synth{order: "v7", enc: "place", ptr: 8, markerW: 4, n: n, imageVA: 0xffff_ffff_8200_0000})
	for i := range v {
		v[i].pre = 4096 + 8*i
		if v[i].markerW == 8 {
			v[i].n = max(v[i].n, 513)
		}
	}
	return slices.Clip(v)
}
