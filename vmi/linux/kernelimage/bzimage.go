package kernelimage

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/xascript/xascript/vmi"
)

// Header is the part of a bzImage setup header that locates the payload.
type Header struct {
	Version       uint16 // boot protocol version, e.g. 0x020f
	SetupSects    int    // 512-byte setup sectors after the boot sector
	PayloadOffset int64  // file offset of the compressed vmlinux
	PayloadLength int64  // its length, including any size trailer
}

// ParseHeader reads and checks the setup header of the bzImage in r (size
// bytes long). The payload must lie inside the file.
func ParseHeader(r io.ReaderAt, size int64) (Header, error) {
	var h Header
	if size < headerEnd {
		return h, fmt.Errorf("bzImage: file of %d bytes is shorter than the setup header: %w", size, vmi.ErrFormat)
	}
	buf := make([]byte, headerEnd)
	if _, err := r.ReadAt(buf, 0); err != nil {
		return h, fmt.Errorf("bzImage: read setup header: %w", err)
	}
	if string(buf[offHeaderMagic:offHeaderMagic+4]) != "HdrS" {
		return h, fmt.Errorf("bzImage: no \"HdrS\" magic at %#x: %w", offHeaderMagic, vmi.ErrFormat)
	}
	h.Version = binary.LittleEndian.Uint16(buf[offVersion:])
	if h.Version < 0x0208 {
		// payload_offset/length appeared in 2.08 (kernel 2.6.26); older
		// images would need a scan for compression magics.
		return h, fmt.Errorf("bzImage: boot protocol %d.%02d has no payload fields (need 2.08+): %w",
			h.Version>>8, h.Version&0xff, vmi.ErrUnsupported)
	}
	h.SetupSects = int(buf[offSetupSects])
	if h.SetupSects == 0 {
		h.SetupSects = 4 // boot.rst: "if this field is 0, the real value is 4"
	}
	pmStart := int64(h.SetupSects+1) * 512
	off := int64(binary.LittleEndian.Uint32(buf[offPayloadOffset:]))
	n := int64(binary.LittleEndian.Uint32(buf[offPayloadLength:]))
	h.PayloadOffset = pmStart + off
	h.PayloadLength = n
	if n == 0 || h.PayloadOffset >= size || n > size-h.PayloadOffset {
		return h, fmt.Errorf("bzImage: payload [%#x, +%#x) lies outside the %d-byte file: %w",
			h.PayloadOffset, n, size, vmi.ErrFormat)
	}
	return h, nil
}
