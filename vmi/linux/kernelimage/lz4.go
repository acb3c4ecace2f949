package kernelimage

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/pierrec/lz4/v4"
)

const (
	lz4LegacyMagic = 0x184c2102
	// lz4LegacyBlock is the uncompressed size of every legacy block but the last.
	lz4LegacyBlock = 8 << 20
)

// unlz4Legacy decodes the LZ4 legacy frame format: a magic, then blocks of
// {u32 LE compressed size, LZ4 block} until the input ends. A magic where a
// block size is expected starts another frame (lz4 -l output can be
// concatenated), as in the kernel's lib/decompress_unlz4.c. We decode blocks
// ourselves rather than through pierrec/lz4's Reader to control bounds and
// skip a copy.
func unlz4Legacy(in []byte, w io.Writer) error {
	if len(in) < 4 || binary.LittleEndian.Uint32(in) != lz4LegacyMagic {
		return fmt.Errorf("lz4: no legacy frame magic")
	}
	in = in[4:]
	// A block never decompresses to more than lz4LegacyBlock, nor may the
	// whole output exceed maxOutput.
	dst := make([]byte, min(lz4LegacyBlock, maxOutput))
	maxBlock := uint32(lz4.CompressBlockBound(lz4LegacyBlock))
	for len(in) > 0 {
		if len(in) < 4 {
			return fmt.Errorf("lz4: %d stray bytes at end of input", len(in))
		}
		n := binary.LittleEndian.Uint32(in)
		in = in[4:]
		if n == lz4LegacyMagic {
			continue
		}
		if n == 0 || n > maxBlock || int64(n) > int64(len(in)) {
			return fmt.Errorf("lz4: block of %d bytes with %d bytes left: %w", n, len(in), io.ErrUnexpectedEOF)
		}
		m, err := lz4.UncompressBlock(in[:n], dst)
		if err != nil {
			return fmt.Errorf("lz4: block: %w", err)
		}
		in = in[n:]
		if _, err := w.Write(dst[:m]); err != nil {
			return err
		}
	}
	return nil
}
