package ext4

import (
	"encoding/binary"
	"fmt"
)

// MaxSymlink bounds a slow symlink's target (PATH_MAX is 4096; ext4
// allows a target up to the block size).
const MaxSymlink = 65536

// ReadLink returns a symlink's target: in i_block for a fast symlink (or
// inline data), else in its first data block. Encrypted targets come back
// as stored.
func (f *FS) ReadLink(ino uint32) (string, error) {
	in, err := f.Inode(ino)
	if err != nil {
		return "", err
	}
	if in.Type() != TypeSymlink {
		return "", fmt.Errorf("ext4: inode %d is a %s, not a symlink", ino, in.Type())
	}
	if in.Size > MaxSymlink || in.Size > uint64(f.sb.blockSize) {
		return "", corrupt(in.blk, fmt.Sprintf("symlink inode %d", ino), "target of %d bytes", in.Size)
	}
	// The kernel's ext4_inode_is_fast_symlink: no inline data and no
	// blocks but an xattr block's: the target is in i_block.
	ea := uint64(0)
	if binary.LittleEndian.Uint32(in.raw[0x68:]) != 0 || binary.LittleEndian.Uint16(in.raw[0x76:]) != 0 {
		ea = uint64(f.sb.blockSize / 512)
	}
	if in.Flags&flagInlineData == 0 && in.Blocks == ea {
		if in.Size >= iBlockSize {
			return "", corrupt(in.blk, fmt.Sprintf("symlink inode %d", ino), "fast symlink of %d bytes", in.Size)
		}
		return string(in.iBlock()[:in.Size]), nil
	}
	b, err := f.readData(in, int64(in.Size))
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// ReadFile returns the contents of a regular file (or symlink) of at most
// max bytes; a larger file is an error wrapping ErrTooLarge.
func (f *FS) ReadFile(ino uint32, max int64) ([]byte, error) {
	in, err := f.Inode(ino)
	if err != nil {
		return nil, err
	}
	if t := in.Type(); t != TypeRegular && t != TypeSymlink {
		return nil, fmt.Errorf("ext4: inode %d is a %s, not a file", ino, t)
	}
	if max < 0 || in.Size > uint64(max) {
		return nil, fmt.Errorf("ext4: inode %d has %d bytes, more than %d: %w", ino, in.Size, max, ErrTooLarge)
	}
	return f.readData(in, int64(in.Size))
}

// readData reads the first n bytes (n <= in.Size, already bounded by the
// caller) of an inode's data: inline or through its block map. Holes and
// uninitialised extents read as zeros. Data blocks go through the overlay
// too: with data=journal the journal holds them.
func (f *FS) readData(in *Inode, n int64) ([]byte, error) {
	out := make([]byte, 0, n)
	if in.Flags&flagInlineData != 0 {
		out = append(out, in.iBlock()...)
		rest, err := inlineXattr(in)
		if err != nil {
			return nil, err
		}
		out = append(out, rest...)
		if int64(len(out)) < n {
			return nil, corrupt(in.blk, fmt.Sprintf("inline data of inode %d", in.Ino), "%d bytes inline for a %d-byte file", len(out), n)
		}
		return out[:n], nil
	}
	bs := int64(f.sb.blockSize)
	nblk := uint64((n + bs - 1) / bs)
	runs, err := f.blockRuns(in, nblk)
	if err != nil {
		return nil, err
	}
	zero := make([]byte, bs)
	for l := uint64(0); l < nblk; l++ {
		b := zero
		if p := physBlock(runs, l); p != 0 {
			if b, err = f.readBlock(p); err != nil {
				return nil, fmt.Errorf("inode %d: %w", in.Ino, err)
			}
		}
		out = append(out, b[:min(bs, n-int64(len(out)))]...)
	}
	return out, nil
}
