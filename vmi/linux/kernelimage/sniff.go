package kernelimage

import (
	"bytes"
	"encoding/binary"
)

// Kind is what a kernel file is, judged by its first bytes.
type Kind int

// Kinds reported by Sniff.
const (
	Unknown Kind = iota
	BzImage      // x86 boot image with a compressed vmlinux payload
	ELF          // an ELF file, normally an uncompressed vmlinux
	RawBTF       // a bare BTF blob, like /sys/kernel/btf/vmlinux
)

func (k Kind) String() string {
	switch k {
	case BzImage:
		return "bzImage"
	case ELF:
		return "ELF"
	case RawBTF:
		return "raw BTF"
	}
	return "unknown"
}

// Setup header fields (boot protocol, "The Real-Mode Kernel Header").
const (
	offSetupSects    = 0x1f1
	offBootFlag      = 0x1fe // 0xAA55
	offHeaderMagic   = 0x202 // "HdrS"
	offVersion       = 0x206
	offPayloadOffset = 0x248 // protocol 2.08+
	offPayloadLength = 0x24c
	headerEnd        = 0x250

	// SniffLen is how many leading bytes Sniff needs to recognise every kind.
	SniffLen = headerEnd
)

var elfMagic = []byte("\x7fELF")

// Sniff names the kind of kernel file whose first bytes are head. Pass at
// least SniffLen bytes (fewer are fine for ELF and raw BTF).
func Sniff(head []byte) Kind {
	switch {
	case bytes.HasPrefix(head, elfMagic):
		return ELF
	case len(head) >= 2 && (binary.LittleEndian.Uint16(head) == btfMagic || binary.BigEndian.Uint16(head) == btfMagic):
		return RawBTF
	case len(head) > offHeaderMagic+4 && string(head[offHeaderMagic:offHeaderMagic+4]) == "HdrS":
		return BzImage
	}
	return Unknown
}

// btfMagic starts a BTF header (include/uapi/linux/btf.h), in the byte order
// of the BTF's target.
const btfMagic = 0xeb9f
