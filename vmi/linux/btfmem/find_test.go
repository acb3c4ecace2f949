package btfmem

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/linux/btfsrc"
)

// synthBTF marshals a small base BTF with cilium's encoder; extra members
// make the blob bigger so tests can tell blobs apart by size.
func synthBTF(tb testing.TB, extra int) []byte {
	tb.Helper()
	uint := &btf.Int{Name: "unsigned int", Size: 4}
	char := &btf.Int{Name: "char", Size: 1, Encoding: btf.Signed | btf.Char}
	listHead := &btf.Struct{Name: "list_head", Size: 16}
	listHead.Members = []btf.Member{
		{Name: "next", Type: &btf.Pointer{Target: listHead}, Offset: 0},
		{Name: "prev", Type: &btf.Pointer{Target: listHead}, Offset: 64},
	}
	members := []btf.Member{
		{Name: "state", Type: uint, Offset: 0},
		{Name: "list", Type: listHead, Offset: 64},
		{Name: "name", Type: &btf.Array{Index: uint, Type: char, Nelems: 56}, Offset: 192},
	}
	for i := range extra {
		members = append(members, btf.Member{Name: "pad" + strings.Repeat("x", i+1), Type: uint, Offset: btf.Bits(640 + 32*i)})
	}
	module := &btf.Struct{Name: "module", Size: uint32(80 + 4*extra), Members: members}
	b, err := btf.NewBuilder([]btf.Type{module}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// memWith returns size bytes of noise with each blob copied in at its offset.
func memWith(size int, blobs map[int][]byte) []byte {
	m := make([]byte, size)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range m {
		m[i] = byte(r.Uint32())
	}
	for off, b := range blobs {
		copy(m[off:], b)
	}
	return m
}

func TestFindSynthetic(t *testing.T) {
	blob := synthBTF(t, 0)
	for _, off := range []int{0, 4, 0x1234 * 4, (1<<20 - len(blob)) &^ 3} {
		mem := memWith(1<<20, map[int][]byte{off: blob})
		raw, got, err := Find(bytes.NewReader(mem), int64(len(mem)))
		if err != nil {
			t.Fatalf("offset %#x: %v", off, err)
		}
		if got != int64(off) || !bytes.Equal(raw, blob) {
			t.Fatalf("offset %#x: found %d bytes at %#x", off, len(raw), got)
		}
	}
}

// The returned blob is what btfsrc parses: layouts come out as encoded.
func TestFindThenParse(t *testing.T) {
	mem := memWith(1<<16, map[int][]byte{0x400: synthBTF(t, 0)})
	raw, _, err := Find(bytes.NewReader(mem), int64(len(mem)))
	if err != nil {
		t.Fatal(err)
	}
	ty, err := btfsrc.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		member string
		want   uint64
	}{{"name", 24}, {"list", 8}, {"list.prev", 16}} {
		if got, err := ty.Offsetof("module", c.member); err != nil || got != c.want {
			t.Errorf("offsetof(module, %s) = %d, %v; want %d", c.member, got, err, c.want)
		}
	}
}

// .BTF is 4-byte aligned: a blob anywhere else is not the kernel's.
func TestFindUnaligned(t *testing.T) {
	mem := memWith(1<<16, map[int][]byte{0x402: synthBTF(t, 0)})
	_, _, err := Find(bytes.NewReader(mem), int64(len(mem)))
	if !errors.Is(err, vmi.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}

// A header that straddles two of Find's reads, and a blob that spans them.
func TestFindAcrossChunks(t *testing.T) {
	blob := synthBTF(t, 0)
	for _, off := range []int{chunk - 4, chunk - 12, chunk - 20, chunk} {
		mem := memWith(chunk+1<<16, map[int][]byte{off: blob})
		raw, got, err := Find(bytes.NewReader(mem), int64(len(mem)))
		if err != nil || got != int64(off) || !bytes.Equal(raw, blob) {
			t.Fatalf("offset %#x: found %d bytes at %#x, %v", off, len(raw), got, err)
		}
	}
}

func TestFindPrefersLargest(t *testing.T) {
	small, big := synthBTF(t, 0), synthBTF(t, 40)
	mem := memWith(1<<18, map[int][]byte{0x1000: small, 0x20000: big, 0x30000: small})
	raw, got, err := Find(bytes.NewReader(mem), int64(len(mem)))
	if err != nil || got != 0x20000 || !bytes.Equal(raw, big) {
		t.Fatalf("found %d bytes at %#x, %v; want the %d-byte blob at 0x20000", len(raw), got, err, len(big))
	}
}

// holey fails reads that touch [holeStart, holeEnd), like a target's ReadPhys
// over a gap in the memory map.
type holey struct {
	data               []byte
	holeStart, holeEnd int64
}

func (h holey) ReadAt(p []byte, off int64) (int, error) {
	if off < h.holeEnd && off+int64(len(p)) > h.holeStart {
		return 0, &vmi.PhysError{Addr: uint64(off), Err: vmi.ErrNotPresent}
	}
	return bytes.NewReader(h.data).ReadAt(p, off)
}

func TestFindSkipsHoles(t *testing.T) {
	blob := synthBTF(t, 0)
	mem := memWith(1<<20, map[int][]byte{0x80000: blob})
	r := holey{data: mem, holeStart: 0x1000, holeEnd: 0x3000}
	raw, got, err := Find(r, int64(len(mem)))
	if err != nil || got != 0x80000 || !bytes.Equal(raw, blob) {
		t.Fatalf("found %d bytes at %#x, %v", len(raw), got, err)
	}
	// A blob cut by a hole is not returned half-read.
	r = holey{data: mem, holeStart: 0x80000 + 4096, holeEnd: 0x80000 + 8192}
	if len(blob) > 8192 {
		if _, _, err := Find(r, int64(len(mem))); !errors.Is(err, vmi.ErrNotFound) {
			t.Fatalf("blob across a hole: err = %v", err)
		}
	}
}

// A reader shorter than the window it is searched with: the tail reads as
// nothing, not as an error.
func TestFindShortReader(t *testing.T) {
	blob := synthBTF(t, 0)
	mem := memWith(1<<16, map[int][]byte{0x100: blob})
	raw, got, err := Find(bytes.NewReader(mem), 1<<24)
	if err != nil || got != 0x100 || !bytes.Equal(raw, blob) {
		t.Fatalf("found %d bytes at %#x, %v", len(raw), got, err)
	}
}

func TestFindNone(t *testing.T) {
	mem := memWith(1<<20, nil)
	_, _, err := Find(bytes.NewReader(mem), int64(len(mem)))
	if !errors.Is(err, vmi.ErrNotFound) || !strings.Contains(err.Error(), "CONFIG_DEBUG_INFO_BTF") {
		t.Fatalf("err = %v", err)
	}
	if _, _, err := Find(bytes.NewReader(nil), 0); !errors.Is(err, vmi.ErrNotFound) {
		t.Fatalf("empty: err = %v", err)
	}
	if _, _, err := Find(bytes.NewReader(nil), -1); err == nil {
		t.Fatal("negative size: no error")
	}
}

// Each mutation breaks one check Find makes; the blob must then be refused,
// and the reason must say what was wrong.
func TestFindRejects(t *testing.T) {
	blob := synthBTF(t, 0)
	le := binary.LittleEndian
	hdr := func(b []byte) header {
		h, err := parseHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	h := hdr(blob)
	strAt := int(h.hdrLen + h.strOff)
	cases := []struct {
		name string
		mut  func(b []byte)
		why  string
	}{
		{"version 2", func(b []byte) { b[2] = 2 }, ""},
		{"flags", func(b []byte) { b[3] = 1 }, ""},
		{"big endian", func(b []byte) { b[0], b[1] = 0xeb, 0x9f }, ""},
		{"hdr_len 20", func(b []byte) { le.PutUint32(b[4:], 20) }, "header length"},
		{"hdr_len huge", func(b []byte) { le.PutUint32(b[4:], 1<<20) }, "header length"},
		{"type_off far", func(b []byte) { le.PutUint32(b[8:], 1<<20) }, "type section offset"},
		{"type_len 0", func(b []byte) { le.PutUint32(b[12:], 0) }, "type section length"},
		{"strings overlap types", func(b []byte) { le.PutUint32(b[16:], h.typeLen-4) }, "string section offset"},
		{"strings far", func(b []byte) { le.PutUint32(b[16:], h.typeLen+1<<20) }, "string section offset"},
		{"str_len 0", func(b []byte) { le.PutUint32(b[20:], 0) }, "string section length"},
		{"str_len huge", func(b []byte) { le.PutUint32(b[20:], 1<<30) }, "exceeds"},
		{"str_len past window", func(b []byte) { le.PutUint32(b[20:], 1<<19) }, "past the end"},
		{"split BTF strings", func(b []byte) { b[strAt] = 'x' }, "NUL-framed"},
		{"unterminated strings", func(b []byte) { b[strAt+int(h.strLen)-1] = 'x' }, "NUL-framed"},
		{"reserved info bits", func(b []byte) { b[h.hdrLen+4+2] = 1 }, "reserved"},
		{"kind 0", func(b []byte) { b[h.hdrLen+7] &^= 0x1f }, "kind"},
		{"kind 31", func(b []byte) { b[h.hdrLen+7] |= 0x1f }, "kind"},
		{"name past strings", func(b []byte) { le.PutUint32(b[h.hdrLen:], h.strLen+100) }, "name offset"},
		{"name mid-string", func(b []byte) { le.PutUint32(b[h.hdrLen:], firstName(t, b, h)+1) }, "name offset"},
		{"vlen overruns", func(b []byte) { le.PutUint16(b[h.hdrLen+4:], 0xffff) }, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := bytes.Clone(blob)
			c.mut(b)
			mem := memWith(1<<18, map[int][]byte{0x100: b})
			raw, off, err := Find(bytes.NewReader(mem), int64(len(mem)))
			if err == nil {
				t.Fatalf("accepted a %d-byte blob at %#x", len(raw), off)
			}
			if !errors.Is(err, vmi.ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", err)
			}
			// The reason is a detail, the message one short line.
			if details := strings.Join(vmi.Details(err), "\n"); c.why != "" && !strings.Contains(details, c.why) {
				t.Errorf("err = %v, details %q, want the reason %q", err, details, c.why)
			}
			if len(err.Error()) > 160 {
				t.Errorf("message of %d bytes: %v", len(err.Error()), err)
			}
		})
	}
}

// firstName is the name offset of the first named type of blob b.
func firstName(t *testing.T, b []byte, h header) uint32 {
	types := b[h.hdrLen+h.typeOff:]
	for off := uint32(0); off < h.typeLen; {
		name, info := binary.LittleEndian.Uint32(types[off:]), binary.LittleEndian.Uint32(types[off+4:])
		if name != 0 {
			return name
		}
		n, _ := dataLen(info>>24&0x1f, info&0xffff)
		off += typeHeaderLen + uint32(n)
	}
	t.Fatal("no named type")
	return 0
}

// Memory full of headers that each claim a large blob: Find stops with
// ErrLimit instead of reading without end.
func TestFindForgedFlood(t *testing.T) {
	blob := synthBTF(t, 0)
	h, _ := parseHeader(blob)
	size := MaxBlob + 1<<20
	mem := make([]byte, size)
	// Each forged header claims ~60 MiB whose string section is NUL-framed,
	// so it passes every cheap check and must be read whole.
	for off := 0; off < 64*4096; off += 4096 {
		f := bytes.Clone(blob[:h.hdrLen])
		binary.LittleEndian.PutUint32(f[20:], 60<<20)
		copy(mem[off:], f)
	}
	_, _, err := Find(bytes.NewReader(mem), int64(size))
	if !errors.Is(err, vmi.ErrLimit) {
		t.Fatalf("err = %v, want ErrLimit", err)
	}
}

var _ io.ReaderAt = holey{}

// The kernel's struct btf keeps a copy of each blob's header (btf->hdr, 48
// bytes in on x86-64), followed by nr_types, types_size, data_size, ...:
// real guests hold one per module and one for vmlinux, often below the image.
// Such a copy claims the real blob's size; it must not be taken for it.
func TestFindIgnoresHeaderCopies(t *testing.T) {
	blob := synthBTF(t, 40)
	h, _ := parseHeader(blob)
	le := binary.LittleEndian
	fake := make([]byte, 48+24+24)
	copy(fake[48:], blob[:h.hdrLen])
	le.PutUint32(fake[72:], 9)         // nr_types
	le.PutUint32(fake[76:], h.typeLen) // types_size
	le.PutUint32(fake[80:], uint32(len(blob)))
	le.PutUint32(fake[84:], 1) // refcnt
	mem := make([]byte, 1<<20) // zeroed, as init_on_free leaves it
	copy(mem[0x1000:], fake)
	copy(mem[0x40000:], blob)
	raw, off, err := Find(bytes.NewReader(mem), int64(len(mem)))
	if err != nil || off != 0x40000 || !bytes.Equal(raw, blob) {
		t.Fatalf("found %d bytes at %#x, %v; want the blob at 0x40000", len(raw), off, err)
	}
}
