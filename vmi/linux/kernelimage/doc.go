// Package kernelimage finds the kernel ELF (vmlinux) inside a boot image
// (vmlinuz) and tells kernel file formats apart.
//
// An x86 vmlinuz is a bzImage: real-mode setup sectors, then a small
// protected-mode decompressor that carries the compressed vmlinux as its
// payload. The setup header ("HdrS" at 0x202) locates the payload through
// setup_sects, payload_offset and payload_length (boot protocol 2.08+). See
// the x86 boot protocol, https://docs.kernel.org/arch/x86/boot.html.
// The compression is found by the payload's magic: gzip, xz, lzma, bzip2,
// zstd or the LZ4 legacy frame (https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md#legacy-frame)
// that Debian's cloud kernels use. Except for gzip, the kernel build appends
// the uncompressed size as a 4-byte little-endian trailer
// (arch/x86/boot/compressed/Makefile, "*_with_size"); we strip it and use it
// as a check.
//
// XZ payloads go through github.com/therootcompany/xz (v1.0.1, a Go port of
// XZ Embedded, the decoder the kernel itself uses in lib/xz), not
// ulikunitz/xz: the kernel's scripts/xz_wrap.sh puts a BCJ filter (x86 on
// x86: rel32 operands of call/jmp made absolute) before LZMA2, and Debian's
// generic and rt kernels are built that way; ulikunitz/xz has no BCJ
// filter and refuses such a stream ("unsupported filter count"). The port
// has the x86 BCJ filter, bounds the dictionary (dictCap) and verifies the
// stream's CRC32 of the decoded bytes, so a BCJ decode gone wrong is an
// error rather than a vmlinux with corrupted code; writing the 100-line
// filter ourselves would add a second implementation to trust for no gain.
// The spec: https://tukaani.org/xz/xz-file-format.txt (filters in 5.3).
//
// Everything here reads untrusted files: sizes are checked against the file
// before use and the decompressed size is capped (MaxVmlinuxSize), so a
// hostile image costs bounded time and memory. This package never keeps
// what it extracts: callers cache it (internal/unpack.Derived).
package kernelimage
