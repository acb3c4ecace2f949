package isf

import (
	"bytes"
	"cmp"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf/btf"
	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/internal/unpack/unpacktest"
	"github.com/xascript/xascript/vmi/linux/btfsrc"
	"github.com/xascript/xascript/vmi/linux/kernelimage"
	"github.com/xascript/xascript/vmi/linux/symbols"
	"github.com/xascript/xascript/vmi/types"
)

// The real kernel: Debian's 6.1 cloud vmlinuz and a /proc/kallsyms of it
// captured from a KASLR boot (testdata/build-guest.sh), plus its System.map.
const (
	realVmlinuz  = "../../../testdata/kernels/6.1.0-56-cloud-amd64/vmlinuz"
	realSysMap   = "../../../testdata/kernels/6.1.0-56-cloud-amd64/System.map.zst"
	realKallsyms = "../../../testdata/images/x86_64-4level/kallsyms.zst"
	realBanner   = "Linux version 6.1.0-56-cloud-amd64"
)

var real struct {
	once     sync.Once
	btf      []byte
	syms     *symbols.Table
	sysmap   *symbols.Table
	isf      []byte
	writeDur time.Duration
	err      error
}

// realISF extracts the vmlinuz's BTF (~1 s) and writes the ISF once per
// test binary.
func realISF(tb testing.TB) ([]byte, *symbols.Table, *symbols.Table, []byte) {
	tb.Helper()
	real.once.Do(func() {
		image, err := os.ReadFile(realVmlinuz)
		if err != nil {
			real.err = err
			return
		}
		var vmlinux bytes.Buffer
		if err := kernelimage.ExtractVmlinux(bytes.NewReader(image), int64(len(image)), &vmlinux); err != nil {
			real.err = err
			return
		}
		sec, _, err := btfsrc.ELFSection(vmlinux.Bytes())
		if err != nil {
			real.err = err
			return
		}
		real.btf = bytes.Clone(sec)
		opt := unpack.Options{NoCache: true}
		if real.syms, real.err = symbols.Load(realKallsyms, opt); real.err != nil {
			return
		}
		if real.sysmap, real.err = symbols.Load(realSysMap, opt); real.err != nil {
			return
		}
		var out bytes.Buffer
		start := time.Now()
		real.err = Write(&out, Input{Symbols: real.syms, BTF: real.btf, Banner: realBannerText(), SymbolShift: kaslrShift()})
		real.writeDur = time.Since(start)
		real.isf = out.Bytes()
	})
	if real.err != nil {
		tb.Fatal(real.err)
	}
	return real.btf, real.syms, real.sysmap, real.isf
}

// kaslrShift is the kallsyms _text minus System.map's.
func kaslrShift() int64 {
	a, _ := real.syms.Lookup("_text")
	b, _ := real.sysmap.Lookup("_text")
	return int64(a - b)
}

// realBannerText is the banner as the locator reads it (up to "\n"); the
// exact build string does not matter to these tests.
func realBannerText() string {
	return realBanner + " (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.0-56"
}

func TestRealRoundTrip(t *testing.T) {
	raw, syms, sysmap, doc := realISF(t)
	t.Logf("ISF: %.1f MB, written in %v", float64(len(doc))/1e6, real.writeDur)
	p, err := Parse(doc, "real.json")
	if err != nil {
		t.Fatal(err)
	}
	ty, err := btfsrc.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}

	// The 20 largest named structs, every member (anonymous ones flattened)
	// compared with btfsrc.
	var structs []*btf.Struct
	for typ, err := range spec.All() {
		if err != nil {
			t.Fatal(err)
		}
		if s, ok := typ.(*btf.Struct); ok && s.Name != "" {
			structs = append(structs, s)
		}
	}
	slices.SortStableFunc(structs, func(a, b *btf.Struct) int { return cmp.Compare(b.Size, a.Size) })
	seen := map[string]bool{}
	checked := 0
	for _, s := range structs {
		if len(seen) == 20 {
			break
		}
		if seen[s.Name] {
			continue
		}
		seen[s.Name] = true
		want, err := ty.Sizeof("struct " + s.Name)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := p.Sizeof("struct " + s.Name); err != nil || got != want {
			t.Errorf("Sizeof(struct %s) = %d, %v; btfsrc says %d", s.Name, got, err, want)
		}
		for _, path := range memberPaths(s.Members) {
			mi, err := types.FieldOf(ty.Graph(), s.Name, path)
			if err != nil {
				t.Fatalf("btfsrc Member(%s, %s): %v", s.Name, path, err)
			}
			if mi.IsBitfield() {
				continue
			}
			checked++
			if got, err := p.Offsetof(s.Name, path); err != nil || got != mi.Offset {
				t.Errorf("Offsetof(%s, %s) = %d, %v; btfsrc says %d", s.Name, path, got, err, mi.Offset)
			}
		}
	}
	if checked < 500 {
		t.Errorf("only %d members checked", checked)
	}
	t.Logf("%d members of the 20 largest structs agree with btfsrc", checked)

	for _, q := range [][2]string{{"module", "name"}, {"module", "list"}, {"task_struct", "comm"},
		{"task_struct", "tasks"}, {"task_struct", "tasks.next"}, {"module", "core_layout.size"},
		{"module", "name[3]"}, {"mm_struct", "pgd"}, {"task_struct", "__state"}, {"page", "lru"}} {
		want, err := ty.Offsetof(q[0], q[1])
		if err != nil {
			t.Fatal(err)
		}
		if got, err := p.Offsetof(q[0], q[1]); err != nil || got != want {
			t.Errorf("Offsetof(%s, %s) = %d, %v; btfsrc says %d", q[0], q[1], got, err, want)
		}
	}
	for _, n := range []string{"struct module", "list_head", "task_struct", "long unsigned int", "char", "struct page *", "enum pid_type"} {
		want, err := ty.Sizeof(n)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := p.Sizeof(n); err != nil || got != want {
			t.Errorf("Sizeof(%s) = %d, %v; btfsrc says %d", n, got, err, want)
		}
	}
	if p.PointerSize() != 8 {
		t.Errorf("PointerSize = %d", p.PointerSize())
	}
	// Direct bitfields: Volatility reads the base type at offset and takes
	// bits from bit_position, so offset*8+bit_position is the C bit offset.
	bitfields := 0
	for _, strct := range []string{"task_struct", "sk_buff", "inode", "page"} {
		u, err := p.userType(strct)
		if err != nil {
			t.Fatal(err)
		}
		for name, f := range u.fields {
			if f.Type == nil || f.Type.Kind != "bitfield" {
				continue
			}
			mf, err := types.FieldOf(ty.Graph(), strct, name)
			if err != nil {
				t.Fatal(err)
			}
			mi := struct {
				BitOffset uint64
				BitSize   uint32
			}{mf.Offset*8 + uint64(mf.BitOffset), mf.BitSize}
			off, _ := num(f.Offset, "")
			pos, _ := num(f.Type.BitPosition, "")
			n, _ := num(f.Type.BitLength, "")
			size, _ := p.descSize(f.Type.Type, 0)
			if off*8+pos != mi.BitOffset || uint32(n) != mi.BitSize || pos+n > 8*size {
				t.Errorf("%s.%s: offset %d bit %d+%d; btfsrc says bit %d+%d", strct, name, off, pos, n, mi.BitOffset, mi.BitSize)
			}
			bitfields++
		}
	}
	if bitfields < 10 {
		t.Errorf("only %d bitfields checked", bitfields)
	}

	// Symbols: 1000 sampled kernel symbols come back at their link-time
	// address, which for relocatable symbols is System.map's.
	shift := uint64(kaslrShift())
	var all []symbols.Symbol
	syms.Each(func(s symbols.Symbol) bool {
		if s.Module == "" {
			all = append(all, s)
		}
		return true
	})
	sampled, viaSysMap := 0, 0
	for i := 0; i < len(all) && sampled < 1000; i += max(1, len(all)/1000) {
		s := all[i]
		addr, _ := syms.Lookup(s.Name) // the one the ISF keeps when names repeat
		want := addr - shift
		if s.Type == 'A' || s.Type == 'a' {
			want = addr
		}
		got, ok := p.Lookup(s.Name)
		if !ok || got != want {
			t.Errorf("Lookup(%s) = %#x, %v; want %#x", s.Name, got, ok, want)
		}
		if m, ok := sysmap.Lookup(s.Name); ok && m == want {
			viaSysMap++
		}
		sampled++
	}
	if viaSysMap < sampled*9/10 {
		t.Errorf("only %d of %d sampled symbols have System.map's address", viaSysMap, sampled)
	}
	t.Logf("%d sampled symbols round-trip; %d match System.map exactly", sampled, viaSysMap)
	if n := len(p.Symbols()); n < 80000 {
		t.Errorf("Symbols() has %d entries", n)
	}
	if got := p.Banner(); got != realBannerText() {
		t.Errorf("Banner = %q", got)
	}
	// A per-CPU variable is typed from BTF's DATASEC.
	var d struct {
		Symbols map[string]struct {
			Type *typeDesc `json:"type"`
		} `json:"symbols"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	if ty := d.Symbols["runqueues"].Type; ty == nil || ty.Kind != "struct" || ty.Name != "rq" {
		t.Errorf("runqueues type = %+v; want struct rq", ty)
	}
}

// memberPaths lists the member paths of a struct as C names them, with
// anonymous members flattened (as btfsrc's test does) and one level of
// named nested structs spelled out ("core_layout.size").
func memberPaths(ms []btf.Member) []string {
	var out []string
	var walk func(ms []btf.Member, prefix string, depth int)
	walk = func(ms []btf.Member, prefix string, depth int) {
		for _, m := range ms {
			under := btf.UnderlyingType(m.Type)
			if m.Name == "" {
				switch in := under.(type) {
				case *btf.Struct:
					walk(in.Members, prefix, depth)
				case *btf.Union:
					walk(in.Members, prefix, depth)
				}
				continue
			}
			out = append(out, prefix+m.Name)
			if depth == 0 {
				switch in := under.(type) {
				case *btf.Struct:
					walk(in.Members, prefix+m.Name+".", depth+1)
				case *btf.Array:
					if in.Nelems > 1 {
						out = append(out, prefix+m.Name+"[1]")
					}
				}
			}
		}
	}
	walk(ms, "", 0)
	return out
}

// TestRealSchema checks the real ISF against the schema's structure.
func TestRealSchema(t *testing.T) {
	_, _, _, doc := realISF(t)
	if err := validateISF(doc); err != nil {
		t.Fatal(err)
	}
}

// TestRealCompressed loads the ISF back through every compression.
func TestRealCompressed(t *testing.T) {
	_, _, _, doc := realISF(t)
	dir := t.TempDir()
	for _, kind := range []string{"", "gzip", "xz", "zstd"} {
		path := filepath.Join(dir, "isf.json"+map[string]string{"": "", "gzip": ".gz", "xz": ".xz", "zstd": ".zst"}[kind])
		data := doc
		if kind != "" {
			data = unpacktest.Compress(t, kind, doc)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		p, err := Load(path)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if off, err := p.Offsetof("module", "name"); err != nil || off != 24 {
			t.Errorf("%s: Offsetof(module, name) = %d, %v", kind, off, err)
		}
		t.Logf("Load %-5s %6.1f MB: %v", kind, float64(len(data))/1e6, time.Since(start))
	}
}

func BenchmarkWrite(b *testing.B) {
	raw, syms, _, doc := realISF(b)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		var out bytes.Buffer
		out.Grow(len(doc))
		if err := Write(&out, Input{Symbols: syms, BTF: raw, Banner: realBannerText(), SymbolShift: kaslrShift()}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoad is Load of the plain ISF plus the questions a script run
// asks.
func BenchmarkLoad(b *testing.B) {
	_, _, _, doc := realISF(b)
	path := filepath.Join(b.TempDir(), "isf.json")
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		p, err := Load(path)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Offsetof("module", "name"); err != nil {
			b.Fatal(err)
		}
		if _, ok := p.Lookup("modules"); !ok {
			b.Fatal("no modules symbol")
		}
	}
}

// TestReal32Bit writes the ISF of Debian's i386 PAE kernel: 4-byte
// pointers and longs, and System.map addresses (no shift).
func TestReal32Bit(t *testing.T) {
	dir := "../../../testdata/kernels/6.1.0-50-686-pae/"
	f, err := unpack.Open(dir+"vmlinux.btf.zst", unpack.Options{NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sm, err := symbols.Load(dir+"System.map.zst", unpack.Options{NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	var out bytes.Buffer
	if err := Write(&out, Input{Symbols: sm, BTF: f.Data}); err != nil {
		t.Fatal(err)
	}
	if err := validateISF(out.Bytes()); err != nil {
		t.Fatal(err)
	}
	p, err := Parse(out.Bytes(), "i386.json")
	if err != nil {
		t.Fatal(err)
	}
	ty, err := btfsrc.Parse(f.Data)
	if err != nil {
		t.Fatal(err)
	}
	if p.PointerSize() != 4 {
		t.Errorf("PointerSize = %d; want 4", p.PointerSize())
	}
	for _, q := range [][2]string{{"module", "name"}, {"module", "list"}, {"task_struct", "comm"}, {"task_struct", "tasks"}, {"mm_struct", "pgd"}} {
		want, err := ty.Offsetof(q[0], q[1])
		if err != nil {
			t.Fatal(err)
		}
		if got, err := p.Offsetof(q[0], q[1]); err != nil || got != want {
			t.Errorf("Offsetof(%s, %s) = %d, %v; btfsrc says %d", q[0], q[1], got, err, want)
		}
	}
	want, _ := sm.Lookup("linux_banner")
	if got, ok := p.Lookup("linux_banner"); !ok || got != want {
		t.Errorf("Lookup(linux_banner) = %#x; System.map says %#x", got, want)
	}
}
