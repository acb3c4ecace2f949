package isf

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
	"github.com/xascript/xascript/internal/unpack/unpacktest"
	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/linux/symbols"
)

// synthBTF builds a small BTF blob with cilium's encoder: nesting,
// anonymous unions and structs (two at one offset), arrays, typedefs,
// qualifiers, bitfields, enums (signed, anonymous, 1-byte) and a per-CPU
// variable.
func synthBTF(tb testing.TB) []byte {
	tb.Helper()
	intT := &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}
	uint := &btf.Int{Name: "unsigned int", Size: 4}
	ulong := &btf.Int{Name: "long unsigned int", Size: 8}
	char := &btf.Int{Name: "char", Size: 1, Encoding: btf.Char}
	uchar := &btf.Int{Name: "unsigned char", Size: 1}
	boolT := &btf.Int{Name: "_Bool", Size: 1, Encoding: btf.Bool}
	u64 := &btf.Typedef{Name: "u64", Type: ulong}
	listHead := &btf.Struct{Name: "list_head", Size: 16}
	listHead.Members = []btf.Member{
		{Name: "next", Type: &btf.Pointer{Target: listHead}, Offset: 0},
		{Name: "prev", Type: &btf.Pointer{Target: listHead}, Offset: 64},
	}
	layout := &btf.Struct{Name: "module_layout", Size: 16, Members: []btf.Member{
		{Name: "base", Type: &btf.Pointer{Target: &btf.Void{}}, Offset: 0},
		{Name: "size", Type: uint, Offset: 64},
		{Name: "text_size", Type: uint, Offset: 96},
	}}
	state := &btf.Enum{Name: "module_state", Size: 4, Values: []btf.EnumValue{{Name: "LIVE", Value: 0}, {Name: "GOING", Value: 2}}}
	signedEnum := &btf.Enum{Name: "sgn", Size: 4, Signed: true, Values: []btf.EnumValue{{Name: "NEG", Value: ^uint64(0)}, {Name: "POS", Value: 1}}}
	anonEnum := &btf.Enum{Size: 4, Values: []btf.EnumValue{{Name: "ANON_A", Value: 1}}}
	tinyEnum := &btf.Enum{Name: "tiny", Size: 1, Values: []btf.EnumValue{{Name: "T0", Value: 0}}}
	anonLo := &btf.Struct{Size: 8, Members: []btf.Member{
		{Name: "lo", Type: uint, Offset: 0},
		{Name: "hi", Type: uint, Offset: 32},
	}}
	anonPtr := &btf.Struct{Size: 8, Members: []btf.Member{
		{Name: "ptr", Type: &btf.Pointer{Target: intT}, Offset: 0},
	}}
	anonUnion := &btf.Union{Size: 8, Members: []btf.Member{
		{Name: "whole", Type: u64, Offset: 0},
		{Name: "", Type: anonLo, Offset: 0},
		{Name: "", Type: anonPtr, Offset: 0}, // a second anonymous member at offset 0
	}}
	matrix := &btf.Array{Index: intT, Type: &btf.Array{Index: intT, Type: intT, Nelems: 3}, Nelems: 2}
	module := &btf.Struct{Name: "module", Size: 160, Members: []btf.Member{
		{Name: "state", Type: state, Offset: 0},
		{Name: "list", Type: listHead, Offset: 64},
		{Name: "name", Type: &btf.Array{Index: intT, Type: char, Nelems: 56}, Offset: 192},
		{Name: "core_layout", Type: layout, Offset: 640},
		{Name: "", Type: anonUnion, Offset: 768},
		{Name: "flags", Type: uint, Offset: 832, BitfieldSize: 3},
		{Name: "more", Type: uint, Offset: 835, BitfieldSize: 5},
		{Name: "", Type: uint, Offset: 840, BitfieldSize: 4}, // padding: no entry
		{Name: "hiflag", Type: uchar, Offset: 860, BitfieldSize: 2},
		{Name: "refs", Type: &btf.Volatile{Type: &btf.Const{Type: u64}}, Offset: 896},
		{Name: "matrix", Type: matrix, Offset: 960},
		{Name: "kind", Type: anonEnum, Offset: 1248},
		{Name: "layouts", Type: &btf.Array{Index: intT, Type: layout, Nelems: 0}, Offset: 1152},
		{Name: "init", Type: &btf.Pointer{Target: &btf.FuncProto{Return: intT}}, Offset: 1152},
	}}
	fwd := &btf.Fwd{Name: "opaque", Kind: btf.FwdStruct}
	task := &btf.Struct{Name: "task_struct", Size: 40, Members: []btf.Member{
		{Name: "comm", Type: &btf.Array{Index: intT, Type: char, Nelems: 16}, Offset: 0},
		{Name: "mod", Type: &btf.Pointer{Target: &btf.Typedef{Name: "module_t", Type: module}}, Offset: 128},
		{Name: "opaque", Type: &btf.Pointer{Target: fwd}, Offset: 192},
		{Name: "s", Type: signedEnum, Offset: 256},
		{Name: "t", Type: tinyEnum, Offset: 288},
		{Name: "on", Type: boolT, Offset: 296},
	}}
	rq := &btf.Struct{Name: "rq", Size: 8, Members: []btf.Member{{Name: "nr_running", Type: uint, Offset: 0}}}
	runqueues := &btf.Var{Name: "runqueues", Type: rq, Linkage: btf.GlobalVar}
	percpu := &btf.Datasec{Name: ".data..percpu", Size: 8, Vars: []btf.VarSecinfo{{Type: runqueues, Offset: 0, Size: 8}}}
	b, err := btf.NewBuilder([]btf.Type{module, task, percpu}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// synthKallsyms is a kallsyms of a boot slid by 0x1000000: a duplicated
// local, an absolute per-CPU symbol and a module symbol.
const synthKallsyms = `0000000000000000 A runqueues
ffffffff82000000 T _text
ffffffff82000100 t dup
ffffffff82000200 T dup
ffffffff82000300 t dup
ffffffff83000000 D linux_banner
ffffffff83000100 D modules
ffffffffc0000000 t mod_fn	[ext4]
`

const synthShift = 0x1000000

func synthISF(tb testing.TB) []byte {
	tb.Helper()
	tab, err := symbols.Parse([]byte(synthKallsyms), "kallsyms")
	if err != nil {
		tb.Fatal(err)
	}
	var out bytes.Buffer
	err = Write(&out, Input{Symbols: tab, BTF: synthBTF(tb), Banner: "Linux version 6.1.0-test (x@y) #1 SMP",
		Producer: "xascript-test", ProducerVersion: "1.2.3", SymbolShift: synthShift})
	if err != nil {
		tb.Fatal(err)
	}
	return out.Bytes()
}

func TestWriteSynthetic(t *testing.T) {
	doc := synthISF(t)
	if err := validateISF(doc); err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	var d struct {
		Metadata  map[string]any                        `json:"metadata"`
		BaseTypes map[string]map[string]any             `json:"base_types"`
		UserTypes map[string]map[string]json.RawMessage `json:"user_types"`
		Enums     map[string]map[string]any             `json:"enums"`
		Symbols   map[string]map[string]any             `json:"symbols"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	field := func(strct, name string) string {
		var fields map[string]json.RawMessage
		json.Unmarshal(d.UserTypes[strct]["fields"], &fields)
		return string(fields[name])
	}
	for _, c := range []struct{ strct, field, want string }{
		{"module", "list", `{"offset":8,"type":{"kind":"struct","name":"list_head"}}`},
		{"module", "refs", `{"offset":112,"type":{"kind":"base","name":"long unsigned int"}}`},
		{"module", "name", `{"offset":24,"type":{"count":56,"kind":"array","subtype":{"kind":"base","name":"char"}}}`},
		{"module", "init", `{"offset":144,"type":{"kind":"pointer","subtype":{"kind":"function"}}}`},
		{"module", "flags", `{"offset":104,"type":{"bit_length":3,"bit_position":0,"kind":"bitfield","type":{"kind":"base","name":"unsigned int"}}}`},
		{"module", "more", `{"offset":104,"type":{"bit_length":5,"bit_position":3,"kind":"bitfield","type":{"kind":"base","name":"unsigned int"}}}`},
		// An unsigned char bitfield at bit 860 lives in the byte at 107, bits 4-5.
		{"module", "hiflag", `{"offset":107,"type":{"bit_length":2,"bit_position":4,"kind":"bitfield","type":{"kind":"base","name":"unsigned char"}}}`},
		{"task_struct", "opaque", `{"offset":24,"type":{"kind":"pointer","subtype":{"kind":"struct","name":"opaque"}}}`},
		// Through a typedef of a named struct: the struct's name.
		{"task_struct", "mod", `{"offset":16,"type":{"kind":"pointer","subtype":{"kind":"struct","name":"module"}}}`},
	} {
		if got := field(c.strct, c.field); got != c.want {
			t.Errorf("%s.%s = %s\nwant %s", c.strct, c.field, got, c.want)
		}
	}
	// Anonymous members: named by offset, the second at 0 kept apart.
	anon := field("module", "unnamed_field_60")
	if !strings.Contains(anon, `"anonymous":true`) || !strings.Contains(anon, `"kind":"union","name":"unnamed_`) {
		t.Errorf("anonymous union member = %s", anon)
	}
	var union map[string]json.RawMessage
	json.Unmarshal([]byte(anon), &union)
	var ut struct {
		Name string `json:"name"`
	}
	json.Unmarshal(union["type"], &ut)
	var ufields map[string]json.RawMessage
	json.Unmarshal(d.UserTypes[ut.Name]["fields"], &ufields)
	if _, ok := ufields["unnamed_field_0"]; !ok || len(ufields) != 3 {
		t.Errorf("anonymous union fields = %v; want whole, unnamed_field_0, unnamed_field_0_1", keys(ufields))
	}
	if _, ok := d.UserTypes["module"]["fields"]; !ok || strings.Contains(string(d.UserTypes["module"]["fields"]), `"unnamed_field_69"`) {
		t.Errorf("a padding bitfield got an entry")
	}
	// Base types and enums.
	if b := d.BaseTypes["pointer"]; b["size"] != float64(8) || b["kind"] != "int" || b["signed"] != false {
		t.Errorf("pointer base type = %v", b)
	}
	if b := d.BaseTypes["char"]; b["kind"] != "char" || b["signed"] != true {
		t.Errorf("char base type = %v", b)
	}
	if b := d.BaseTypes["_Bool"]; b["kind"] != "bool" {
		t.Errorf("_Bool base type = %v", b)
	}
	if d.BaseTypes["void"]["kind"] != "void" {
		t.Errorf("no void base type")
	}
	if e := d.Enums["module_state"]; e["base"] != "unsigned int" || e["size"] != float64(4) {
		t.Errorf("enum module_state = %v", e)
	}
	if e := d.Enums["sgn"]; e["base"] != "int" || e["constants"].(map[string]any)["NEG"] != float64(-1) {
		t.Errorf("enum sgn = %v", e)
	}
	if e := d.Enums["tiny"]; e["base"] != "unsigned char" {
		t.Errorf("enum tiny = %v; want base unsigned char", e)
	}
	unnamedEnums := 0
	for n := range d.Enums {
		if strings.HasPrefix(n, "unnamed_") && len(n) == len("unnamed_")+16 {
			unnamedEnums++
		}
	}
	if unnamedEnums != 1 {
		t.Errorf("enums = %v; want one unnamed_<16 hex>", keys(d.Enums))
	}
	// Symbols: link-time addresses, absolute ones unmoved, the global dup,
	// no module symbols, the banner with its newline and NUL.
	wantSyms := map[string]float64{"_text": 0xffffffff81000000, "dup": 0xffffffff81000200, "runqueues": 0,
		"linux_banner": 0xffffffff82000000, "modules": 0xffffffff82000100}
	if len(d.Symbols) != len(wantSyms) {
		t.Errorf("symbols = %v", keys(d.Symbols))
	}
	for n, a := range wantSyms {
		if d.Symbols[n]["address"] != a {
			t.Errorf("symbol %s = %v; want %#x", n, d.Symbols[n], uint64(a))
		}
	}
	cd, _ := base64.StdEncoding.DecodeString(d.Symbols["linux_banner"]["constant_data"].(string))
	if string(cd) != "Linux version 6.1.0-test (x@y) #1 SMP\n\x00" {
		t.Errorf("linux_banner constant_data = %q", cd)
	}
	if ty := d.Symbols["runqueues"]["type"]; ty == nil || ty.(map[string]any)["name"] != "rq" {
		t.Errorf("runqueues type = %v", ty)
	}
	if p := d.Metadata["producer"].(map[string]any); p["name"] != "xascript-test" || p["version"] != "1.2.3" {
		t.Errorf("producer = %v", p)
	}
}

func keys[V any](m map[string]V) []string { return sortedKeys(m) }

func TestProfileQueries(t *testing.T) {
	p, err := Parse(synthISF(t), "synth.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		strct, member string
		want          uint64
	}{
		{"module", "state", 0},
		{"module", "list", 8},
		{"struct module", "list.next", 8},
		{"module", "list.prev", 16},
		{"module", "name", 24},
		{"module", "name[3]", 27},
		{"module", "core_layout.size", 88},
		{"module", "whole", 96}, // in the anonymous union
		{"module", "hi", 100},   // in an anonymous struct in the anonymous union
		{"module", "ptr", 96},   // in the second anonymous struct at offset 0
		{"module", "refs", 112},
		{"module", "matrix[1]", 132},
		{"module", "matrix[1][2]", 140},
		{"module", "layouts[2].size", 144 + 2*16 + 8}, // flexible array: any index
		{"task_struct", "mod", 16},
		{"list_head", "prev", 8},
		{"module_t", "list", 8}, // a typedef of a struct has its own entry, as in dwarf2json's ISFs
	} {
		got, err := p.Offsetof(c.strct, c.member)
		if err != nil || got != c.want {
			t.Errorf("Offsetof(%q, %q) = %d, %v; want %d", c.strct, c.member, got, err, c.want)
		}
	}
	for _, c := range []struct {
		strct, member string
		is            error
	}{
		{"module", "nope", vmi.ErrNotFound},
		{"nope", "x", vmi.ErrNotFound},
		{"union module", "list", vmi.ErrNotFound},
		{"module", "name[56]", vmi.ErrNotFound},
		{"module", "list[0]", vmi.ErrNotFound},
		{"module", "name.x", vmi.ErrNotFound},
		{"module", "flags", vmi.ErrUnsupported},
		{"module", "", vmi.ErrNotFound},
		{"module", "name[x]", vmi.ErrNotFound},
	} {
		_, err := p.Offsetof(c.strct, c.member)
		if !errors.Is(err, c.is) {
			t.Errorf("Offsetof(%q, %q) = %v; want %v", c.strct, c.member, err, c.is)
		}
	}
	if _, err := p.Offsetof("module", "nope"); err == nil || !strings.Contains(err.Error(), "core_layout") {
		t.Errorf("the not-found error should list members: %v", err)
	}
	for name, want := range map[string]uint64{"struct module": 160, "module": 160, "list_head": 16,
		"long unsigned int": 8, "char": 1, "struct page *": 8, "enum module_state": 4, "tiny": 1, "pointer": 8} {
		if got, err := p.Sizeof(name); err != nil || got != want {
			t.Errorf("Sizeof(%q) = %d, %v; want %d", name, got, err, want)
		}
	}
	if _, err := p.Sizeof("u64"); !errors.Is(err, vmi.ErrNotFound) || !strings.Contains(err.Error(), "typedef") {
		t.Errorf("Sizeof(u64) = %v", err)
	}
	if p.PointerSize() != 8 {
		t.Errorf("PointerSize = %d", p.PointerSize())
	}
	if a, ok := p.Lookup("_text"); !ok || a != 0xffffffff81000000 {
		t.Errorf("Lookup(_text) = %#x, %v", a, ok)
	}
	if _, ok := p.Lookup("mod_fn"); ok {
		t.Errorf("a module symbol was exported")
	}
	syms := p.Symbols()
	tab := symbols.FromList("isf", syms)
	if a, ok := tab.Lookup("linux_banner"); !ok || a != 0xffffffff82000000 {
		t.Errorf("FromList(Symbols()).Lookup(linux_banner) = %#x, %v", a, ok)
	}
	if len(syms) != 5 || syms[0].Name != "runqueues" {
		t.Errorf("Symbols() = %v", syms)
	}
	if p.Banner() != "Linux version 6.1.0-test (x@y) #1 SMP" {
		t.Errorf("Banner = %q", p.Banner())
	}
}

func TestWriteErrors(t *testing.T) {
	tab, _ := symbols.Parse([]byte(synthKallsyms), "kallsyms")
	noBanner, _ := symbols.Parse([]byte("ffffffff81000000 T _text\n"), "sysmap")
	for name, in := range map[string]Input{
		"no symbols":       {BTF: synthBTF(t)},
		"no BTF":           {Symbols: tab},
		"junk BTF":         {Symbols: tab, BTF: []byte("not BTF at all")},
		"bad version":      {Symbols: tab, BTF: synthBTF(t), ProducerVersion: "1.2"},
		"banner, no place": {Symbols: noBanner, BTF: synthBTF(t), Banner: "Linux version x"},
	} {
		if err := Write(io.Discard, in); err == nil {
			t.Errorf("%s: Write succeeded", name)
		}
	}
}

// TestLoadHostile: malformed and hostile documents are refused or answer
// with errors, never panic or loop.
func TestLoadHostile(t *testing.T) {
	const meta = `"metadata":{"format":"6.2.0","linux":{}},"base_types":{"pointer":{"size":8,"signed":false,"kind":"int","endian":"little"}},"enums":{},`
	for name, c := range map[string]struct {
		doc       string
		loadFails bool
		query     func(p *Profile) error
	}{
		"not json":      {doc: "hello", loadFails: true},
		"array":         {doc: "[1]", loadFails: true},
		"no sections":   {doc: `{"metadata":{}}`, loadFails: true},
		"float address": {doc: `{` + meta + `"user_types":{},"symbols":{"a":{"address":1.5}}}`, loadFails: true},
		"self-anonymous": {doc: `{` + meta + `"symbols":{},"user_types":{"a":{"kind":"struct","size":8,"fields":{"x":{"offset":0,"anonymous":true,"type":{"kind":"struct","name":"a"}}}}}}`,
			query: func(p *Profile) error { _, err := p.Offsetof("a", "y"); return err }},
		"negative offset": {doc: `{` + meta + `"symbols":{},"user_types":{"a":{"kind":"struct","size":8,"fields":{"x":{"offset":-8,"type":{"kind":"base","name":"pointer"}}}}}}`,
			query: func(p *Profile) error { _, err := p.Offsetof("a", "x"); return err }},
		"huge array": {doc: `{` + meta + `"symbols":{},"user_types":{"a":{"kind":"struct","size":8,"fields":{"x":{"offset":0,"type":{"kind":"array","count":1099511627776,"subtype":{"kind":"array","count":1099511627776,"subtype":{"kind":"base","name":"pointer"}}}}}}}}`,
			query: func(p *Profile) error { _, err := p.Offsetof("a", "x[5][7]"); return err }},
		"missing subtype": {doc: `{` + meta + `"symbols":{},"user_types":{"a":{"kind":"struct","size":8,"fields":{"x":{"offset":0,"type":{"kind":"array","count":4}}}}}}`,
			query: func(p *Profile) error { _, err := p.Offsetof("a", "x[1]"); return err }},
		"bad size": {doc: `{` + meta + `"symbols":{},"user_types":{"a":{"kind":"struct","size":"big","fields":{}}}}`,
			query: func(p *Profile) error { _, err := p.Sizeof("a"); return err }},
	} {
		p, err := Parse([]byte(c.doc), name)
		if c.loadFails {
			if err == nil || !errors.Is(err, vmi.ErrFormat) {
				t.Errorf("%s: Parse = %v; want a format error", name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: Parse: %v", name, err)
			continue
		}
		if err := c.query(p); err == nil {
			t.Errorf("%s: query succeeded", name)
		}
	}
}

func TestLoadSizeLimit(t *testing.T) {
	old := maxSize
	maxSize = 1 << 20
	defer func() { maxSize = old }()
	// 2 MiB of JSON whitespace, gzip-compressed to a few KB: refused after
	// reading only the cap.
	big := append(bytes.Repeat([]byte(" "), 2<<20), "{}"...)
	path := filepath.Join(t.TempDir(), "bomb.json.gz")
	if err := os.WriteFile(path, unpacktest.Compress(t, "gzip", big), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); !errors.Is(err, vmi.ErrLimit) || !strings.Contains(err.Error(), "512 MiB") {
		t.Errorf("Load(bomb) = %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Errorf("Load(missing) succeeded")
	}
}

func TestLoadCompressions(t *testing.T) {
	doc := synthISF(t)
	dir := t.TempDir()
	for _, kind := range []string{"", "gzip", "xz", "zstd"} {
		data := doc
		if kind != "" {
			data = unpacktest.Compress(t, kind, doc)
		}
		// The name says nothing: compression is sniffed.
		path := filepath.Join(dir, "isf-"+kind)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := Load(path)
		if err != nil {
			t.Errorf("%s: %v", kind, err)
			continue
		}
		if off, err := p.Offsetof("module", "hi"); err != nil || off != 100 {
			t.Errorf("%s: Offsetof(module, hi) = %d, %v", kind, off, err)
		}
	}
	// Corrupt compressed data is a clear error.
	path := filepath.Join(dir, "corrupt.json.xz")
	os.WriteFile(path, append([]byte{0xfd, '7', 'z', 'X', 'Z', 0}, bytes.Repeat([]byte{1}, 64)...), 0o644)
	if _, err := Load(path); err == nil {
		t.Errorf("Load(corrupt xz) succeeded")
	}
}
