package kernelimage_test

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/linux/btfsrc"
	"github.com/xascript/xascript/vmi/linux/kernelimage"
)

// genericDir holds Debian's generic (not cloud) 6.1 kernel, the one
// compressed with XZ and the x86 BCJ filter, with the same ABI as the
// committed cloud guests (6.1.0-56). Made by `testdata/fetch.sh
// amd64-generic` with XA_AMD64_KVER=6.1.0-56-cloud-amd64; vmlinux.sha256 is
// the SHA-256 of what XZ Utils' decoder (xz -dc, liblzma's own BCJ and
// LZMA2) gets out of the payload, written by that script.
const genericDir = "../../../testdata/kernels/6.1.0-56-amd64"

// The release in the image's setup header and banner.
const genericRelease = "6.1.0-56-amd64"

type genericKernel struct {
	img     []byte
	payload []byte // without the 4-byte size trailer
	vmlinux []byte
}

func loadGeneric(t *testing.T, extract bool) genericKernel {
	t.Helper()
	img, err := os.ReadFile(filepath.Join(genericDir, "vmlinuz"))
	if err != nil {
		t.Fatalf("%v: run testdata/fetch.sh amd64-generic (XA_AMD64_KVER=6.1.0-56-cloud-amd64) and copy vmlinuz, config, vmlinux.sha256 there", err)
	}
	h, err := kernelimage.ParseHeader(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	payload := img[h.PayloadOffset : h.PayloadOffset+h.PayloadLength]
	if c := kernelimage.DetectCompression(payload); c != kernelimage.XZ {
		t.Fatalf("payload compression %q, want xz", c)
	}
	g := genericKernel{img: img, payload: payload[:len(payload)-4]}
	if extract {
		var out bytes.Buffer
		if err := kernelimage.ExtractVmlinux(bytes.NewReader(img), int64(len(img)), &out); err != nil {
			t.Fatal(err)
		}
		g.vmlinux = out.Bytes()
	}
	return g
}

// TestRealGenericVmlinuzXZBCJ extracts Debian's generic kernel, whose
// payload is XZ with the x86 BCJ filter before LZMA2. BCJ rewrites only the
// rel32 operands of call (e8) and jmp (e9) instructions, so a wrong BCJ
// decode leaves the ELF headers and .BTF intact and corrupts code: the test
// checks the decoded bytes as a whole against XZ Utils, and the code on its
// own terms (call targets), besides the BTF.
func TestRealGenericVmlinuzXZBCJ(t *testing.T) {
	g := loadGeneric(t, true)

	// The stream really uses the x86 BCJ filter (else this test would
	// prove nothing about it): filter IDs in the first block header.
	if ids, err := xzBlockFilters(g.payload); err != nil || len(ids) != 2 || ids[0] != 0x04 || ids[1] != 0x21 {
		t.Fatalf("xz block filters %#x, %v; want x86 BCJ (0x04) then LZMA2 (0x21)", ids, err)
	}

	// 1. Byte for byte what XZ Utils decodes (an independent decoder).
	ref, err := os.ReadFile(filepath.Join(genericDir, "vmlinux.sha256"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(g.vmlinux)
	if got, want := hex.EncodeToString(sum[:]), strings.TrimSpace(string(ref)); got != want {
		t.Errorf("vmlinux (%d bytes) sha256 %s; xz -dc gives %s", len(g.vmlinux), got, want)
	}

	// 2. A consistent x86-64 ELF: every section inside the file.
	f, err := elf.NewFile(bytes.NewReader(g.vmlinux))
	if err != nil {
		t.Fatal(err)
	}
	if f.Machine != elf.EM_X86_64 || f.Class != elf.ELFCLASS64 {
		t.Fatalf("ELF machine %v class %v", f.Machine, f.Class)
	}
	for _, s := range f.Sections {
		if s.Type != elf.SHT_NOBITS && s.Offset+s.Size > uint64(len(g.vmlinux)) {
			t.Errorf("section %s [%#x, +%#x) beyond the %d-byte file", s.Name, s.Offset, s.Size, len(g.vmlinux))
		}
	}
	text := f.Section(".text")
	if text == nil || text.Addr != 0xffffffff81000000 {
		t.Fatalf(".text %+v", text)
	}
	code, err := text.Data()
	if err != nil {
		t.Fatal(err)
	}

	// 3. The code itself, judged without any decoder: calls (e8 rel32)
	// concentrate on a few functions (__fentry__, the return and
	// retpoline thunks) when their operands are relative again; left as
	// BCJ's absolute addresses they scatter. Measured on this kernel: the
	// most called address in .text gets 38252 calls and the top ten
	// 78131; decoding the same LZMA2 data without BCJ (Python's lzma,
	// raw LZMA2 filter) gives at most 3 calls per address, 24 for the top
	// ten.
	top1, top10 := callConcentration(code)
	if top1 < 10000 || top10 < 50000 {
		t.Errorf(".text calls: the most called address gets %d, the top ten %d; a correct decode of this kernel gives 38252 and 78131", top1, top10)
	}

	// 4. The banner in the decompressed kernel is the one the setup
	// header (not compressed) names: kernel_version at 0x20e points to
	// it, 0x200 bytes off.
	kv := binary.LittleEndian.Uint16(g.img[0x20e:]) + 0x200
	end := bytes.IndexByte(g.img[kv:], 0)
	if end < 0 {
		t.Fatal("setup header kernel_version is not terminated")
	}
	version := string(g.img[int(kv) : int(kv)+end])
	if !strings.HasPrefix(version, genericRelease+" ") {
		t.Fatalf("setup header version %q", version)
	}
	rodata := f.Section(".rodata")
	ro, err := rodata.Data()
	if err != nil {
		t.Fatal(err)
	}
	// The setup header leaves out the compiler part of the banner:
	// "R (builder) #1 SMP ..." there, "Linux version R (builder) (gcc ...)
	// #1 SMP ...\n" in linux_banner.
	who, tail, ok := strings.Cut(version, ") #")
	if !ok {
		t.Fatalf("setup header version %q has no ') #'", version)
	}
	// .rodata has two such lines (the other one reads "# SMP ...",
	// without the build number); one must match.
	var banners []string
	for rest, n := ro, 0; n < 16; n++ {
		i := bytes.Index(rest, []byte("Linux version "+who+") ("))
		if i < 0 {
			break
		}
		line, _, _ := bytes.Cut(rest[i:], []byte("\n"))
		banners = append(banners, string(line))
		rest = rest[i+len(line):]
	}
	if !slices.ContainsFunc(banners, func(b string) bool { return strings.HasSuffix(b, ") #"+tail) }) {
		t.Errorf("no linux_banner in .rodata matches the setup header's %q: %q", version, banners)
	}
	// The kernel's build id (what VMCOREINFO and a memory profile key on).
	if id := buildID(t, f); len(id) != 20 {
		t.Errorf("GNU build id %x, want 20 bytes", id)
	}

	// 5. BTF through the --btf path (btfsrc.Load of the vmlinuz, which
	// goes through ExtractVmlinux), against cilium/ebpf reading the .BTF
	// section of the ELF decoded here.
	ty, err := btfsrc.Load(filepath.Join(genericDir, "vmlinuz"), unpack.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer ty.Close()
	sec := f.Section(".BTF")
	if sec == nil {
		t.Fatal("no .BTF section")
	}
	raw, err := sec.Data()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, ty.Raw()) {
		t.Errorf("btfsrc's BTF (%d bytes) is not the .BTF section (%d bytes)", len(ty.Raw()), len(raw))
	}
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, c := range []struct{ strct, member string }{
		{"task_struct", "comm"}, {"task_struct", "tasks"}, {"task_struct", "mm"}, {"task_struct", "pid"},
		{"mm_struct", "pgd"}, {"module", "list"}, {"module", "name"}, {"list_head", "prev"},
	} {
		var s *btf.Struct
		if err := spec.TypeByName(c.strct, &s); err != nil {
			t.Fatalf("cilium: %v", err)
		}
		want, ok := ciliumOffset(s, c.member)
		if !ok {
			t.Fatalf("cilium: no %s.%s", c.strct, c.member)
		}
		got, err := ty.Offsetof(c.strct, c.member)
		if err != nil || got != want {
			t.Errorf("offsetof(%s, %s) = %d, %v; cilium/ebpf says %d", c.strct, c.member, got, err, want)
		}
		checked++
	}
	n, err := btfsrc.CrossCheck(ty, btfsrc.CheckedStructs)
	if err != nil || n < 100 {
		t.Errorf("cross-check with cilium/ebpf: %d members, %v", n, err)
	}
	t.Logf("vmlinux %d bytes, .text calls top1 %d top10 %d, BTF %d bytes, %d+%d members agree", len(g.vmlinux), top1, top10, len(raw), checked, n)
}

// TestRealGenericVmlinuzIntegrity: the decoder checks the stream's CRC32
// of the decoded bytes, so a decode that goes wrong anywhere (BCJ
// included) is an error. Flipping a bit of the stored check must fail.
func TestRealGenericVmlinuzIntegrity(t *testing.T) {
	g := loadGeneric(t, false)
	at, err := xzBlockCheckOffset(g.payload)
	if err != nil {
		t.Fatal(err)
	}
	img := bytes.Clone(g.img)
	h, _ := kernelimage.ParseHeader(bytes.NewReader(img), int64(len(img)))
	img[h.PayloadOffset+int64(at)] ^= 1
	err = kernelimage.ExtractVmlinux(bytes.NewReader(img), int64(len(img)), &bytes.Buffer{})
	if !errors.Is(err, vmi.ErrFormat) || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("payload with a wrong CRC32: %v, want a format error saying corrupt", err)
	}
}

// xzBlockFilters returns the filter IDs of the first block of an .xz
// stream (xz-file-format.txt 3.1.2: header size, flags, then per filter
// an ID and a properties size as multibyte integers, and the properties).
func xzBlockFilters(s []byte) ([]uint64, error) {
	const streamHeader = 12
	if len(s) < streamHeader+2 {
		return nil, errors.New("short stream")
	}
	size := (int(s[streamHeader]) + 1) * 4
	hdr := s[streamHeader : streamHeader+size]
	flags := hdr[1]
	p := 2
	if flags&0x40 != 0 {
		_, n := binary.Uvarint(hdr[p:])
		p += n
	}
	if flags&0x80 != 0 {
		_, n := binary.Uvarint(hdr[p:])
		p += n
	}
	var ids []uint64
	for range int(flags&3) + 1 {
		id, n := binary.Uvarint(hdr[p:])
		if n <= 0 {
			return nil, errors.New("bad filter id")
		}
		p += n
		psize, n := binary.Uvarint(hdr[p:])
		if n <= 0 {
			return nil, errors.New("bad properties size")
		}
		p += n + int(psize)
		ids = append(ids, id)
	}
	return ids, nil
}

// xzBlockCheckOffset is where the (single) block's CRC32 sits in an .xz
// stream: just before the index, whose size the stream footer gives
// (xz-file-format.txt 2.1.2.2 Backward Size).
func xzBlockCheckOffset(s []byte) (int, error) {
	if len(s) < 24 || string(s[len(s)-2:]) != "YZ" || s[7] != 1 {
		return 0, errors.New("not a single .xz stream with CRC32")
	}
	backward := (int(binary.LittleEndian.Uint32(s[len(s)-8:])) + 1) * 4
	return len(s) - 12 - backward - 4, nil
}

// callConcentration counts, for every e8 byte in code read as a call
// rel32 whose target stays inside code, the calls per target, and returns
// the count of the most called target and of the ten most called.
func callConcentration(code []byte) (top1, top10 int) {
	calls := map[int]int{}
	for i := 0; i+5 <= len(code); i++ {
		if code[i] != 0xe8 {
			continue
		}
		tgt := i + 5 + int(int32(binary.LittleEndian.Uint32(code[i+1:])))
		if tgt >= 0 && tgt < len(code) {
			calls[tgt]++
		}
	}
	var best [10]int
	for _, n := range calls {
		for j := range best {
			if n > best[j] {
				copy(best[j+1:], best[j:len(best)-1])
				best[j] = n
				break
			}
		}
	}
	for _, n := range best {
		top10 += n
	}
	return best[0], top10
}

// ciliumOffset is the byte offset of a (possibly nested anonymous) member.
func ciliumOffset(s *btf.Struct, name string) (uint64, bool) {
	var walk func(ms []btf.Member, base uint64, depth int) (uint64, bool)
	walk = func(ms []btf.Member, base uint64, depth int) (uint64, bool) {
		for _, m := range ms {
			off := base + uint64(m.Offset)
			if m.Name == name {
				return off / 8, true
			}
			if m.Name == "" && depth < 8 {
				switch in := btf.UnderlyingType(m.Type).(type) {
				case *btf.Struct:
					if o, ok := walk(in.Members, off, depth+1); ok {
						return o, true
					}
				case *btf.Union:
					if o, ok := walk(in.Members, off, depth+1); ok {
						return o, true
					}
				}
			}
		}
		return 0, false
	}
	return walk(s.Members, 0, 0)
}

// buildID is the GNU build id note of f.
func buildID(t *testing.T, f *elf.File) []byte {
	t.Helper()
	for _, s := range f.Sections {
		if s.Type != elf.SHT_NOTE {
			continue
		}
		d, err := s.Data()
		if err != nil {
			t.Fatal(err)
		}
		for len(d) >= 12 {
			nsz, dsz, typ := binary.LittleEndian.Uint32(d), binary.LittleEndian.Uint32(d[4:]), binary.LittleEndian.Uint32(d[8:])
			nEnd := 12 + (int(nsz)+3)&^3
			dEnd := nEnd + (int(dsz)+3)&^3
			if nsz > 1<<16 || dsz > 1<<16 || dEnd > len(d) {
				break
			}
			if typ == 3 && string(d[12:12+nsz]) == "GNU\x00" {
				return d[nEnd : nEnd+int(dsz)]
			}
			d = d[dEnd:]
		}
	}
	return nil
}
