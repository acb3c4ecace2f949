package kernelimage

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"

	"github.com/xascript/xascript/vmi"
)

// fakeELF is a stand-in vmlinux: ELF magic then compressible bytes.
func fakeELF(n int) []byte {
	b := make([]byte, n)
	copy(b, "\x7fELF\x02\x01\x01")
	for i := 16; i < n; i++ {
		b[i] = byte(i / 1000)
	}
	return b
}

// bzImage wraps payload in a minimal boot-protocol-2.15 header.
func bzImage(payload []byte, setupSects byte) []byte {
	pm := (int(max(setupSects, 4)) + 1) * 512
	if setupSects == 0 {
		pm = 5 * 512
	}
	img := make([]byte, pm+0x100+len(payload))
	img[offSetupSects] = setupSects
	binary.LittleEndian.PutUint16(img[offBootFlag:], 0xaa55)
	copy(img[offHeaderMagic:], "HdrS")
	binary.LittleEndian.PutUint16(img[offVersion:], 0x020f)
	binary.LittleEndian.PutUint32(img[offPayloadOffset:], 0x100)
	binary.LittleEndian.PutUint32(img[offPayloadLength:], uint32(len(payload)))
	copy(img[pm+0x100:], payload)
	return img
}

func withSize(c, raw []byte) []byte {
	return binary.LittleEndian.AppendUint32(c, uint32(len(raw)))
}

func compressAll(t *testing.T, raw []byte) map[Compression][]byte {
	out := map[Compression][]byte{}
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	gz.Write(raw)
	gz.Close()
	out[Gzip] = b.Bytes()

	var x bytes.Buffer
	xw, _ := xz.NewWriter(&x)
	xw.Write(raw)
	xw.Close()
	out[XZ] = withSize(x.Bytes(), raw)

	var l bytes.Buffer
	lw, _ := lzma.NewWriter(&l)
	lw.Write(raw)
	lw.Close()
	out[LZMA] = withSize(l.Bytes(), raw)

	enc, _ := zstd.NewWriter(nil)
	out[Zstd] = withSize(enc.EncodeAll(raw, nil), raw)

	// LZ4 legacy as lz4 -l writes it: 8 MiB blocks.
	lz := binary.LittleEndian.AppendUint32(nil, lz4LegacyMagic)
	for rest := raw; len(rest) > 0; {
		n := min(len(rest), lz4LegacyBlock)
		dst := make([]byte, lz4.CompressBlockBound(n))
		m, err := lz4.CompressBlock(rest[:n], dst, nil)
		if err != nil {
			t.Fatal(err)
		}
		lz = binary.LittleEndian.AppendUint32(lz, uint32(m))
		lz = append(lz, dst[:m]...)
		rest = rest[n:]
	}
	out[LZ4] = withSize(lz, raw)
	return out
}

func TestExtractCompressions(t *testing.T) {
	raw := fakeELF(9<<20 + 123) // more than one LZ4 legacy block
	for c, payload := range compressAll(t, raw) {
		if got := DetectCompression(payload); got != c {
			t.Errorf("DetectCompression(%s) = %q", c, got)
		}
		img := bzImage(payload, 27)
		if k := Sniff(img[:SniffLen]); k != BzImage {
			t.Errorf("%s: Sniff = %v", c, k)
		}
		var out bytes.Buffer
		if err := ExtractVmlinux(bytes.NewReader(img), int64(len(img)), &out); err != nil {
			t.Errorf("%s: %v", c, err)
			continue
		}
		if sha256.Sum256(out.Bytes()) != sha256.Sum256(raw) {
			t.Errorf("%s: extracted %d bytes differ from the original", c, out.Len())
		}
	}
}

func TestExtractErrors(t *testing.T) {
	raw := fakeELF(4096)
	good := compressAll(t, raw)[Zstd]
	notELF := compressAll(t, bytes.Repeat([]byte("x"), 4096))[Gzip]
	badSize := append(bytes.Clone(good[:len(good)-4]), 1, 0, 0, 0)
	for _, c := range []struct {
		name string
		img  []byte
		want string
		is   error
	}{
		{"short", []byte("MZ"), "unknown file", vmi.ErrFormat},
		{"not ELF", bzImage(notELF, 4), "not an ELF", vmi.ErrFormat},
		{"unknown compression", bzImage([]byte("hello world, not compressed"), 4), "not a known compression", vmi.ErrFormat},
		{"lzo", bzImage([]byte("\x89LZO\x00\x0d\x0a\x1a\x0a....."), 4), "lzo is not supported", vmi.ErrUnsupported},
		{"size trailer", bzImage(badSize, 4), "size trailer says 1", vmi.ErrFormat},
		{"truncated", bzImage(good[:len(good)/2], 4), "zstd payload", vmi.ErrFormat},
	} {
		err := ExtractVmlinux(bytes.NewReader(c.img), int64(len(c.img)), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, c.is) {
			t.Errorf("%s: %v; want %v containing %q", c.name, err, c.is, c.want)
		}
	}
	// Payload fields pointing outside the file.
	img := bzImage(good, 4)
	binary.LittleEndian.PutUint32(img[offPayloadLength:], uint32(len(img)))
	if _, err := ParseHeader(bytes.NewReader(img), int64(len(img))); !errors.Is(err, vmi.ErrFormat) {
		t.Errorf("oversized payload: %v", err)
	}
	binary.LittleEndian.PutUint16(img[offVersion:], 0x0206)
	if _, err := ParseHeader(bytes.NewReader(img), int64(len(img))); !errors.Is(err, vmi.ErrUnsupported) {
		t.Errorf("old protocol: %v", err)
	}
}

func TestSniff(t *testing.T) {
	for _, c := range []struct {
		head []byte
		want Kind
	}{
		{[]byte("\x7fELF\x02"), ELF},
		{[]byte{0x9f, 0xeb, 1, 0}, RawBTF},
		{[]byte{0xeb, 0x9f, 1, 0}, RawBTF},
		{bzImage(nil, 4)[:SniffLen], BzImage},
		{[]byte("hello"), Unknown},
		{nil, Unknown},
	} {
		if got := Sniff(c.head); got != c.want {
			t.Errorf("Sniff(% x) = %v, want %v", c.head[:min(len(c.head), 8)], got, c.want)
		}
	}
}

// realVmlinuz: see btfsrc's real tests; same file.
func realVmlinuz(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("XASCRIPT_TEST_VMLINUZ"); p != "" {
		return p
	}
	m, _ := filepath.Glob("../../../testdata/kernels/*-cloud-amd64/vmlinuz")
	if len(m) == 0 {
		tb.Fatal("no testdata/kernels/*-cloud-amd64/vmlinuz: run testdata/build-guest.sh x86_64-4level, or set XASCRIPT_TEST_VMLINUZ")
	}
	return m[0]
}

// TestRealVmlinuz extracts Debian's LZ4 cloud kernel; the size trailer
// check inside ExtractVmlinux is the cross-check (lz4 -dc agrees: 53243444
// bytes for 6.1.0-56).
func TestRealVmlinuz(t *testing.T) {
	img, err := os.ReadFile(realVmlinuz(t))
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseHeader(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if c := DetectCompression(img[h.PayloadOffset:]); c != LZ4 {
		t.Errorf("compression %q, want lz4", c)
	}
	var out bytes.Buffer
	if err := ExtractVmlinux(bytes.NewReader(img), int64(len(img)), &out); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(out.Bytes(), []byte("\x7fELF\x02\x01")) {
		t.Errorf("not an x86-64 ELF")
	}
	t.Logf("protocol %#x, payload %d bytes at %#x, vmlinux %d bytes", h.Version, h.PayloadLength, h.PayloadOffset, out.Len())
}

// x86BCJFixture is testdata/x86-bcj.xz: the first 4 KiB (ELF header) and
// 28 KiB of .text of Debian's 6.1.0-56-amd64 vmlinux, compressed by XZ
// Utils as the kernel's xz_wrap.sh does (xz --check=crc32 --x86
// --lzma2=preset=6,dict=64KiB); x86BCJSum is the SHA-256 of those 32 KiB
// (what xz -dc gives back).
const x86BCJSum = "2fbd9fbdeb416a376040ef4e84614d7f8e2c71c1d2ee4965c151d233aa05f92e"

func x86BCJPayload(tb testing.TB) []byte {
	tb.Helper()
	x, err := os.ReadFile(filepath.Join("testdata", "x86-bcj.xz"))
	if err != nil {
		tb.Fatal(err)
	}
	return binary.LittleEndian.AppendUint32(x, 32<<10)
}

// TestXZx86BCJ: an XZ payload with the x86 BCJ filter decodes to what XZ
// Utils gave (ulikunitz/xz, used before, refused it: "unsupported filter
// count").
func TestXZx86BCJ(t *testing.T) {
	img := bzImage(x86BCJPayload(t), 4)
	var out bytes.Buffer
	if err := ExtractVmlinux(bytes.NewReader(img), int64(len(img)), &out); err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(out.Bytes()); hex.EncodeToString(sum[:]) != x86BCJSum || out.Len() != 32<<10 {
		t.Errorf("decoded %d bytes with sha256 %x, want 32768 bytes with %s", out.Len(), sum, x86BCJSum)
	}
}
