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
// Everything here reads untrusted files: sizes are checked against the file
// before use and the decompressed size is capped (MaxVmlinuxSize), so a
// hostile image costs bounded time and memory. This package never keeps
// what it extracts: callers cache it (internal/unpack.Derived).
package kernelimage
