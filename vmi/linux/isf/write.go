package isf

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/cilium/ebpf/btf"

	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/linux/symbols"
)

// Input is what Write exports.
type Input struct {
	// Symbols is the kernel's symbol table (System.map or kallsyms); module
	// symbols in it are left out, as dwarf2json has none.
	Symbols *symbols.Table
	// BTF is the kernel's raw BTF blob (the .BTF section of vmlinux).
	BTF []byte
	// Banner is the kernel banner (linux_banner as read from memory, up to
	// its newline or NUL). It becomes linux_banner's constant_data.
	Banner string
	// Producer and ProducerVersion name the tool in metadata.producer;
	// the defaults are "xascript" and "0.0.0". The version must be N.N.N
	// (the schema says so).
	Producer, ProducerVersion string
	// SymbolShift is subtracted from every relocatable symbol address to
	// get link-time addresses, as a System.map (and so dwarf2json) has
	// them: the KASLR slide for a kallsyms captured from a running kernel,
	// 0 for a System.map. Absolute symbols (type A, the per-CPU offsets)
	// do not move with KASLR and are written as they are.
	SymbolShift int64
	// GlobalTypes gives the C types of further global symbols (e.g. read
	// from DWARF), spelled as in wellKnownGlobals (globals.go); they win over
	// that table.
	GlobalTypes map[string]string
}

var versionRE = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)

// Write writes the ISF of in to w. The document is streamed, one entry a
// line, with keys sorted as encoding/json (and so dwarf2json) sorts them.
func Write(w io.Writer, in Input) error {
	if in.Symbols == nil {
		return errors.New("isf: no symbol table given")
	}
	if len(in.BTF) < 4 {
		return fmt.Errorf("isf: BTF blob of %d bytes: %w", len(in.BTF), vmi.ErrFormat)
	}
	producer, version := in.Producer, in.ProducerVersion
	if producer == "" {
		producer = "xascript"
	}
	if version == "" {
		version = "0.0.0"
	}
	if !versionRE.MatchString(version) {
		return fmt.Errorf("isf: producer version %q is not N.N.N as the ISF schema requires", version)
	}
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(in.BTF))
	if err != nil {
		return fmt.Errorf("isf: parse BTF: %w", err)
	}
	c := newConverter(in.BTF)
	if err := c.collect(spec); err != nil {
		return fmt.Errorf("isf: %w", err)
	}
	if c.globals, err = c.globalTypes(spec, in.GlobalTypes); err != nil {
		return fmt.Errorf("isf: %w", err)
	}
	syms, err := collectSymbols(in, c.ptrSize)
	if err != nil {
		return fmt.Errorf("isf: %w", err)
	}

	bw := bufio.NewWriterSize(w, 1<<20)
	var buf []byte
	sum := sha256.Sum256(in.BTF)
	buf = append(buf, `{"metadata":{"format":`...)
	buf = appendString(buf, FormatVersion)
	// The schema's metadata_nix_item.kind admits only dwarf, symtab and
	// system-map; BTF is none of them, so the types item has no kind.
	// kallsyms has System.map's line format, hence "system-map".
	buf = append(buf, `,"linux":{"symbols":[{"kind":"system-map","name":`...)
	buf = appendString(buf, filepath.Base(in.Symbols.Name()))
	buf = append(buf, `}],"types":[{"hash_type":"sha256","hash_value":"`...)
	buf = hex.AppendEncode(buf, sum[:])
	buf = append(buf, `","name":".BTF"}]},"producer":{"name":`...)
	buf = appendString(buf, producer)
	buf = append(buf, `,"version":`...)
	buf = appendString(buf, version)
	buf = append(buf, "}},\n"...)

	// Each section is an object of sorted entries, one a line.
	section := func(key string, names []string, entry func(buf []byte, name string) ([]byte, error)) error {
		buf = append(buf, '"')
		buf = append(buf, key...)
		buf = append(buf, `":{`...)
		for i, name := range names {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, '\n')
			buf = appendString(buf, name)
			buf = append(buf, ':')
			var err error
			if buf, err = entry(buf, name); err != nil {
				return err
			}
			if len(buf) > 64<<10 {
				if _, err := bw.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
		buf = append(buf, "\n}"...)
		return nil
	}
	steps := []struct {
		key   string
		names []string
		entry func([]byte, string) ([]byte, error)
	}{
		{"base_types", sortedKeys(c.base), c.appendBaseType},
		{"user_types", sortedKeys(c.composites), c.appendUserType},
		{"enums", sortedKeys(c.enums), c.appendEnum},
		{"symbols", sortedKeys(syms), func(buf []byte, name string) ([]byte, error) {
			return c.appendSymbol(buf, name, syms[name], in.Banner)
		}},
	}
	for i, s := range steps {
		if i > 0 {
			buf = append(buf, ",\n"...)
		}
		if err := section(s.key, s.names, s.entry); err != nil {
			return fmt.Errorf("isf: write %s: %w", s.key, err)
		}
	}
	buf = append(buf, "}\n"...)
	if _, err := bw.Write(buf); err != nil {
		return fmt.Errorf("isf: write: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("isf: write: %w", err)
	}
	return nil
}

type symEntry struct {
	addr   uint64
	global bool
}

// collectSymbols picks one address per kernel symbol name. An ISF maps a
// name to one symbol; like symbols.Table.Lookup, a global symbol beats a
// local one of the same name, else the first listed wins.
func collectSymbols(in Input, ptrSize int) (map[string]symEntry, error) {
	syms := make(map[string]symEntry, in.Symbols.Len())
	in.Symbols.Each(func(s symbols.Symbol) bool {
		if s.Module != "" {
			return true
		}
		g := s.Global()
		if old, ok := syms[s.Name]; ok && (old.global || !g) {
			return true
		}
		addr := s.Addr
		if s.Type != 'A' && s.Type != 'a' {
			addr -= uint64(in.SymbolShift)
		}
		syms[s.Name] = symEntry{addr, g}
		return true
	})
	if len(syms) == 0 {
		return nil, fmt.Errorf("symbol table %s has no kernel symbols: %w", in.Symbols.Name(), vmi.ErrNotFound)
	}
	addAbsoluteSymbols(syms, ptrSize)
	if _, ok := syms["linux_banner"]; in.Banner != "" && !ok {
		return nil, fmt.Errorf("a banner was given but symbol table %s has no linux_banner to carry it: %w",
			in.Symbols.Name(), vmi.ErrNotFound)
	}
	return syms, nil
}

// bannerData is linux_banner's bytes as dwarf2json reads them from the ELF
// (sizeof(linux_banner): the text, its newline and the NUL). Volatility
// scans memory for exactly these bytes, so the newline that a banner read
// up to "\n" lacks is put back: every kernel's banner ends with one
// (init/version.c).
func bannerData(banner string) []byte {
	b := bytes.TrimRight([]byte(banner), "\x00")
	if !bytes.HasSuffix(b, []byte{'\n'}) {
		b = append(b, '\n')
	}
	return append(b, 0)
}

func (c *converter) appendSymbol(buf []byte, name string, s symEntry, banner string) ([]byte, error) {
	buf = append(buf, `{"address":`...)
	buf = strconv.AppendUint(buf, s.addr, 10)
	if name == "linux_banner" && banner != "" {
		buf = append(buf, `,"constant_data":"`...)
		buf = base64.StdEncoding.AppendEncode(buf, bannerData(banner))
		buf = append(buf, '"')
	}
	// BTF types variables only in its per-CPU DATASEC; the well-known
	// globals get theirs from globals.go, and the rest of the symbols stay
	// untyped (dwarf2json types System.map symbols as void, which tells a
	// reader nothing either).
	t, ok := c.percpu[name]
	if !ok {
		t, ok = c.globals[name]
	}
	if a, isArray := t.(*btf.Array); ok && isArray && name == "linux_banner" && banner != "" {
		// Its length is that of the banner it holds, as DWARF has it.
		t = &btf.Array{Type: a.Type, Nelems: uint32(len(bannerData(banner)))}
	}
	if ok {
		d, err := c.desc(t)
		if err != nil {
			return nil, fmt.Errorf("symbol %s: %w", name, err)
		}
		buf = append(buf, `,"type":`...)
		buf = append(buf, d...)
	}
	return append(buf, '}'), nil
}

// The kernel's start in virtual memory on x86 (LOAD_OFFSET in
// arch/x86/kernel/vmlinux.lds.S): __START_KERNEL_map on x86_64.
const startKernelMap64 = 0xffffffff80000000

// addAbsoluteSymbols adds the linker's absolute symbols that are in a
// System.map but not in kallsyms, when they are missing: LibVMI starts from
// phys_startup_64 (phys_startup_32), defined by the linker script as
// ABSOLUTE(startup_64 - LOAD_OFFSET). On x86_64 LOAD_OFFSET is
// __START_KERNEL_map; on i386 it is PAGE_OFFSET, which the configuration
// picks (3G/1G, 2G/2G ... splits) and which is the link address of
// startup_32 with its low 28 bits (the physical start, at most 256 MiB)
// cleared.
func addAbsoluteSymbols(syms map[string]symEntry, ptrSize int) {
	add := func(name string, addr uint64) {
		if _, ok := syms[name]; !ok {
			syms[name] = symEntry{addr: addr, global: true}
		}
	}
	if s, ok := syms["startup_64"]; ok && ptrSize == 8 && s.addr >= startKernelMap64 {
		add("phys_startup_64", s.addr-startKernelMap64)
	}
	if s, ok := syms["startup_32"]; ok && ptrSize == 4 && s.addr >= 0x40000000 && s.addr <= 0xffffffff {
		add("phys_startup_32", s.addr&0x0fffffff)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// appendString appends s as a JSON string. Kernel names are plain ASCII, so
// the common case is a copy; anything else goes through encoding/json,
// which also replaces invalid UTF-8 as Volatility's reader would need.
func appendString(buf []byte, s string) []byte {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf || c == '<' || c == '>' || c == '&' {
			plain = false
			break
		}
	}
	if plain {
		buf = append(buf, '"')
		buf = append(buf, s...)
		return append(buf, '"')
	}
	b, _ := json.Marshal(s) // a string always marshals
	return append(buf, b...)
}
