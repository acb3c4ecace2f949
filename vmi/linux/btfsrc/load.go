package btfsrc

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/linux/kernelimage"
)

// derivedTag names the cache entry holding the .BTF extracted from a
// vmlinuz. Bump it when what is cached changes.
const derivedTag = "btfsrc-vmlinuz-btf-v1"

// Load reads the types of the kernel file at path: a vmlinuz (bzImage), a
// vmlinux ELF with a .BTF section, or a raw BTF blob, any of them possibly
// compressed. A vmlinuz is decompressed once; its .BTF is cached (see
// internal/unpack) so later loads only map the cached blob.
func Load(path string, opt unpack.Options) (*Types, error) {
	f, err := unpack.Open(path, opt)
	if err != nil {
		return nil, fmt.Errorf("btf: %w", err)
	}
	t, err := load(path, f, opt)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("btf: %s: %w", path, err)
	}
	t.attachIndex(path, opt)
	return t, nil
}

func load(path string, f *unpack.File, opt unpack.Options) (*Types, error) {
	switch k := kernelimage.Sniff(f.Data); k {
	case kernelimage.RawBTF:
		t, err := Parse(f.Data)
		if err != nil {
			return nil, err
		}
		t.file = f
		return t, nil
	case kernelimage.ELF:
		sec, ptrSize, err := ELFSection(f.Data)
		if err != nil {
			return nil, err
		}
		t, err := Parse(sec)
		if err != nil {
			return nil, fmt.Errorf(".BTF section: %w", err)
		}
		t.file, t.ptrSize = f, ptrSize
		return t, nil
	case kernelimage.BzImage:
		d, err := unpack.Derived(path, derivedTag, opt, func(w io.Writer) error {
			return extractBTF(f.Data, w)
		})
		if err != nil {
			return nil, err
		}
		f.Close()
		t, err := Parse(d.Data)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("cached .BTF %s: %w", d.CachePath(), err)
		}
		t.file = d
		return t, nil
	default:
		n := min(len(f.Data), 8)
		return nil, fmt.Errorf("not a vmlinuz, vmlinux or BTF file (starts with % x): %w", f.Data[:n], vmi.ErrFormat)
	}
}

// extractBTF decompresses the vmlinux of a bzImage and writes its .BTF.
func extractBTF(image []byte, w io.Writer) error {
	var buf bytes.Buffer
	buf.Grow(4 * len(image)) // vmlinux is ~4x its compressed size
	if err := kernelimage.ExtractVmlinux(bytes.NewReader(image), int64(len(image)), &buf); err != nil {
		return err
	}
	sec, _, err := ELFSection(buf.Bytes())
	if err != nil {
		return err
	}
	if _, err := parseBlob(sec); err != nil {
		return fmt.Errorf(".BTF section: %w", err)
	}
	_, err = w.Write(sec)
	return err
}

// ELFSection returns the .BTF section of the ELF in data (a slice of data,
// not a copy) and the ELF's pointer size.
func ELFSection(data []byte) ([]byte, int, error) {
	ef, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, 0, fmt.Errorf("ELF: %w: %w", vmi.ErrFormat, err)
	}
	ptrSize := 8
	if ef.Class == elf.ELFCLASS32 {
		ptrSize = 4
	}
	sec := ef.Section(".BTF")
	if sec == nil {
		return nil, 0, fmt.Errorf("ELF has no .BTF section (kernel built without CONFIG_DEBUG_INFO_BTF?): %w", vmi.ErrNotFound)
	}
	if sec.Type == elf.SHT_NOBITS || sec.Flags&elf.SHF_COMPRESSED != 0 {
		return nil, 0, fmt.Errorf("ELF .BTF section is empty or compressed: %w", vmi.ErrUnsupported)
	}
	if sec.Offset > uint64(len(data)) || sec.Size > uint64(len(data))-sec.Offset {
		return nil, 0, fmt.Errorf("ELF .BTF section [%#x, +%#x) lies outside the %d-byte file: %w",
			sec.Offset, sec.Size, len(data), vmi.ErrFormat)
	}
	return data[sec.Offset : sec.Offset+sec.Size], ptrSize, nil
}
