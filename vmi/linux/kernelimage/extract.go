package kernelimage

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	xzbcj "github.com/therootcompany/xz"
	"github.com/ulikunitz/xz/lzma"

	"github.com/xascript/xascript/vmi"
)

// MaxVmlinuxSize caps the decompressed vmlinux. Distribution kernels are
// 50-500 MB (with debug info); anything larger is a hostile or broken image.
const MaxVmlinuxSize = 1 << 30

// Bounds against hostile payloads. Variables so that the fuzz test can
// lower them: at full size a decompression bomb takes seconds per input.
var (
	// maxOutput caps the decompressed vmlinux (MaxVmlinuxSize).
	maxOutput int64 = MaxVmlinuxSize
	// dictCap bounds LZMA/XZ dictionaries named by (untrusted) stream
	// headers; the kernel build uses 32 MiB (xz) and 64 MiB (lzma -9).
	dictCap = 64 << 20
)

// Compression names a payload compression.
type Compression string

// Payload compressions (arch/x86/boot/compressed/Makefile).
const (
	Gzip  Compression = "gzip"
	XZ    Compression = "xz"
	LZMA  Compression = "lzma"
	Bzip2 Compression = "bzip2"
	LZ4   Compression = "lz4"
	Zstd  Compression = "zstd"
	LZO   Compression = "lzo"
)

// DetectCompression names the compression whose magic starts payload, or "".
func DetectCompression(payload []byte) Compression {
	switch {
	case bytes.HasPrefix(payload, []byte{0x1f, 0x8b}):
		return Gzip
	case bytes.HasPrefix(payload, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return XZ
	case bytes.HasPrefix(payload, []byte{0x5d, 0, 0}):
		// .lzma has no magic; 0x5d is the lc=3 lp=0 pb=2 properties byte
		// that every lzma(1) preset writes, followed by a dictionary size.
		return LZMA
	case bytes.HasPrefix(payload, []byte("BZh")):
		return Bzip2
	case bytes.HasPrefix(payload, []byte{0x02, 0x21, 0x4c, 0x18}):
		return LZ4
	case bytes.HasPrefix(payload, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return Zstd
	case bytes.HasPrefix(payload, []byte{0x89, 'L', 'Z', 'O'}):
		return LZO
	}
	return ""
}

// ExtractVmlinux writes the kernel ELF held by the file in r (size bytes) to
// w. A bzImage's payload is decompressed; an ELF is copied as is.
func ExtractVmlinux(r io.ReaderAt, size int64, w io.Writer) error {
	head := make([]byte, SniffLen)
	n, err := r.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("kernel image: read header: %w", err)
	}
	switch k := Sniff(head[:n]); k {
	case ELF:
		_, err := io.Copy(w, io.NewSectionReader(r, 0, size))
		return err
	case BzImage:
	default:
		return fmt.Errorf("kernel image: %s file, want a bzImage or an ELF vmlinux: %w", k, vmi.ErrFormat)
	}
	h, err := ParseHeader(r, size)
	if err != nil {
		return err
	}
	payload := make([]byte, h.PayloadLength)
	if _, err := r.ReadAt(payload, h.PayloadOffset); err != nil {
		return fmt.Errorf("bzImage: read payload: %w", err)
	}
	return Decompress(payload, w)
}

// Decompress writes the vmlinux held by a bzImage payload to w, checking that
// it is an ELF and at most MaxVmlinuxSize bytes.
func Decompress(payload []byte, w io.Writer) error {
	c := DetectCompression(payload)
	if c == "" {
		n := min(len(payload), 8)
		return fmt.Errorf("bzImage: payload starts with % x, not a known compression: %w", payload[:n], vmi.ErrFormat)
	}
	var want int64 = -1
	if c != Gzip {
		// Strip the size trailer; gzip's own trailer already holds it.
		if len(payload) < 8 {
			return fmt.Errorf("bzImage: %s payload of %d bytes is too short: %w", c, len(payload), vmi.ErrFormat)
		}
		want = int64(binary.LittleEndian.Uint32(payload[len(payload)-4:]))
		payload = payload[:len(payload)-4]
	}
	cw := &checkWriter{w: w, limit: maxOutput}
	if err := decompress(c, payload, cw); err != nil {
		if errors.Is(err, vmi.ErrLimit) {
			return fmt.Errorf("bzImage: %s payload: %w", c, err)
		}
		return fmt.Errorf("bzImage: %s payload: %w: %w", c, vmi.ErrFormat, err)
	}
	if err := cw.check(); err != nil {
		return fmt.Errorf("bzImage: %s payload: %w", c, err)
	}
	if want >= 0 && uint32(cw.n) != uint32(want) {
		return fmt.Errorf("bzImage: %s payload decompressed to %d bytes, size trailer says %d: %w", c, cw.n, want, vmi.ErrFormat)
	}
	return nil
}

func decompress(c Compression, payload []byte, w io.Writer) error {
	src := bytes.NewReader(payload)
	var rd io.Reader
	switch c {
	case Gzip:
		g, err := gzip.NewReader(src)
		if err != nil {
			return err
		}
		g.Multistream(false) // the payload ends with padding, not another member
		rd = g
	case XZ:
		// XZ Embedded's decoder: it has the BCJ filters that the kernel's
		// xz_wrap.sh puts before LZMA2 (x86 on x86), and checks the
		// stream's CRC32 of the decoded bytes, so a wrong BCJ decode is
		// an error, not a subtly corrupted vmlinux.
		x, err := xzbcj.NewReader(src, uint32(dictCap))
		if err != nil {
			return err
		}
		x.Multistream(false) // the size trailer follows the stream
		rd = x
	case LZMA:
		l, err := lzma.ReaderConfig{DictCap: dictCap}.NewReader(src)
		if err != nil {
			return err
		}
		rd = l
	case Bzip2:
		rd = bzip2.NewReader(bufio.NewReaderSize(src, 1<<16))
	case Zstd:
		d, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxWindow(1<<28), zstd.WithDecoderMaxMemory(uint64(maxOutput)))
		if err != nil {
			return err
		}
		defer d.Close()
		rd = d
	case LZ4:
		return unlz4Legacy(payload, w)
	default:
		return fmt.Errorf("%s is not supported: %w", c, vmi.ErrUnsupported)
	}
	_, err := io.Copy(w, rd)
	return err
}

// checkWriter counts, caps and checks for the ELF magic what passes through.
type checkWriter struct {
	w     io.Writer
	n     int64
	limit int64
	head  [4]byte
}

func (c *checkWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > c.limit-c.n {
		return 0, fmt.Errorf("decompressed vmlinux exceeds %d bytes: %w", c.limit, vmi.ErrLimit)
	}
	if c.n < 4 {
		copy(c.head[c.n:], p)
		// Fail early: a payload that is not a kernel ELF is not worth
		// decompressing to the end.
		if c.n+int64(len(p)) >= 4 && !bytes.Equal(c.head[:], elfMagic) {
			return 0, fmt.Errorf("decompressed payload starts with % x, not an ELF", c.head)
		}
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (c *checkWriter) check() error {
	if c.n < 4 {
		return fmt.Errorf("decompressed payload of %d bytes is not an ELF: %w", c.n, vmi.ErrFormat)
	}
	return nil
}
