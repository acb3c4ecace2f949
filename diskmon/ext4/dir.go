package ext4

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Bounds on directory walks.
const (
	MaxDirEntries = 10_000_000 // live entries returned by one ReadDir
	MaxDirSize    = 1 << 30    // bytes of directory read by ReadDir (large_dir allows more)
	maxPathDepth  = 4096       // components in a Lookup path
	maxHtreeLevel = 3          // indirect levels + 1 with large_dir
)

// DirEntry is one live directory entry. Name holds the stored bytes
// (encrypted or casefolded names are not decoded).
type DirEntry struct {
	Name string
	Ino  uint32
	Type FileType // from the entry with the filetype feature, else TypeUnknown
}

// ReadDir returns the live entries of directory ino except "." and "..",
// in on-disk order. Hashed (htree) directories are read through all their
// blocks linearly, as the kernel's readdir falls back to; their dx root is
// validated so that a corrupt index is reported.
func (f *FS) ReadDir(ino uint32) ([]DirEntry, error) {
	in, err := f.Inode(ino)
	if err != nil {
		return nil, err
	}
	return f.readDir(in)
}

func (f *FS) readDir(in *Inode) ([]DirEntry, error) {
	if in.Type() != TypeDir {
		return nil, fmt.Errorf("ext4: inode %d: %w", in.Ino, ErrNotDir)
	}
	d := &dirReader{f: f, ino: in.Ino, filetype: f.sb.incompat&incompatFiletype != 0}
	if in.Flags&flagInlineData != 0 {
		if err := d.inline(in); err != nil {
			return nil, err
		}
		return d.out, nil
	}
	if in.Size > MaxDirSize {
		return nil, fmt.Errorf("ext4: directory inode %d of %d bytes: %w", in.Ino, in.Size, ErrTooLarge)
	}
	bs := uint64(f.sb.blockSize)
	nblk := (in.Size + bs - 1) / bs
	runs, err := f.blockRuns(in, nblk)
	if err != nil {
		return nil, err
	}
	seen := make(map[uint64]bool)
	// Holes (physical 0) are skipped, as the kernel's readdir does.
	for _, r := range runs {
		if r.physical == 0 {
			continue
		}
		for i := uint64(0); i < r.count; i++ {
			if err := f.dirBlock(d, in, seen, r.logical+i, r.physical+i, nblk); err != nil {
				return nil, err
			}
		}
	}
	return d.out, nil
}

// dirBlock reads logical block l (at physical p) of directory in.
func (f *FS) dirBlock(d *dirReader, in *Inode, seen map[uint64]bool, l, p, nblk uint64) error {
	if seen[p] {
		return corrupt(p, fmt.Sprintf("directory inode %d", in.Ino), "logical blocks share this block (loop)")
	}
	seen[p] = true
	b, err := f.readBlock(p)
	if err != nil {
		return fmt.Errorf("directory inode %d: %w", in.Ino, err)
	}
	if l == 0 && in.Flags&flagIndex != 0 && f.sb.compat&compatDirIndex != 0 {
		if err := f.checkDxRoot(b, p, in.Ino, nblk); err != nil {
			return err
		}
	}
	return d.block(b, p)
}

type dirReader struct {
	f        *FS
	ino      uint32
	filetype bool
	out      []DirEntry
}

// block parses one directory block (or inline region) of linear
// ext4_dir_entry_2 records (Documentation/filesystems/ext4/directory.rst).
func (d *dirReader) block(b []byte, blk uint64) error {
	le := binary.LittleEndian
	what := fmt.Sprintf("directory block of inode %d", d.ino)
	for off := 0; off < len(b); {
		if len(b)-off < 8 {
			return corrupt(blk, what, "entry at byte %d runs past the block", off)
		}
		ino := le.Uint32(b[off:])
		rec := int(le.Uint16(b[off+4:]))
		if d.f.sb.blockSize == 65536 && (rec == 65535 || rec == 0) && len(b) == 65536 {
			rec = 65536 // ext4_rec_len_from_disk
		}
		nameLen := int(b[off+6])
		if !d.filetype {
			nameLen |= int(b[off+7]) << 8
		}
		if rec < 8 || rec%4 != 0 || rec > len(b)-off || (ino != 0 && 8+nameLen > rec) {
			return corrupt(blk, what, "entry at byte %d: rec_len %d, name_len %d", off, rec, nameLen)
		}
		if ino != 0 && nameLen > 0 {
			if ino > d.f.sb.inodesCount {
				return corrupt(blk, what, "entry at byte %d names inode %d of %d", off, ino, d.f.sb.inodesCount)
			}
			name := string(b[off+8 : off+8+nameLen])
			if name != "." && name != ".." {
				if len(d.out) >= MaxDirEntries {
					return fmt.Errorf("ext4: directory inode %d: more than %d entries: %w", d.ino, MaxDirEntries, ErrTooLarge)
				}
				t := TypeUnknown
				if d.filetype && b[off+7] <= uint8(TypeSymlink) {
					t = FileType(b[off+7])
				}
				d.out = append(d.out, DirEntry{Name: name, Ino: ino, Type: t})
			}
		}
		off += rec
	}
	return nil
}

// checkDxRoot validates an htree root block (directory.rst, "Hash Tree
// Directories"): "." and ".." first, dx_root_info, then the count/limit
// header whose limit must match the block's capacity.
func (f *FS) checkDxRoot(b []byte, blk uint64, ino uint32, nblk uint64) error {
	le := binary.LittleEndian
	what := fmt.Sprintf("htree root of directory inode %d", ino)
	if len(b) < 0x28 || le.Uint16(b[4:]) != 12 || b[6] != 1 || b[8] != '.' ||
		int(le.Uint16(b[12+4:])) != len(b)-12 || b[12+6] != 2 || b[12+8] != '.' || b[12+9] != '.' {
		return corrupt(blk, what, `"." and ".." entries do not frame a dx root`)
	}
	hashVersion, infoLen, levels := b[0x1C], b[0x1D], b[0x1E]
	maxLevels := byte(2)
	if f.sb.incompat&incompatLargeDir != 0 {
		maxLevels = maxHtreeLevel
	}
	if infoLen != 8 || hashVersion > 6 || levels >= maxLevels {
		return corrupt(blk, what, "info length %d, hash version %d, %d indirect levels", infoLen, hashVersion, levels)
	}
	limit, count := int(le.Uint16(b[0x20:])), int(le.Uint16(b[0x22:]))
	want := (len(b) - 0x20) / 8
	if f.sb.metadataCsum() {
		want-- // struct dx_tail
	}
	if limit != want || count == 0 || count > limit {
		return corrupt(blk, what, "count %d, limit %d (want %d)", count, limit, want)
	}
	for i := 0; i < count; i++ {
		child := uint64(le.Uint32(b[0x24+8*i:]))
		if child == 0 && i > 0 || child >= nblk {
			return corrupt(blk, what, "entry %d points at logical block %d of %d", i, child, nblk)
		}
	}
	return nil
}

// Inline data (directory.rst "Inline Directories", inline_data.rst): the
// first 60 bytes live in i_block, the rest in the "system.data" xattr in
// the inode body.
func (d *dirReader) inline(in *Inode) error {
	ib := in.iBlock()
	// i_block starts with the parent's inode number (in place of ".." ).
	if err := d.block(ib[4:], in.blk); err != nil {
		return err
	}
	rest, err := inlineXattr(in)
	if err != nil || len(rest) == 0 {
		return err
	}
	return d.block(rest, in.blk)
}

// inlineXattr returns the value of the in-inode xattr system.data (name
// index 7, name "data"), or nil.
func inlineXattr(in *Inode) ([]byte, error) {
	le := binary.LittleEndian
	extra := in.extraIsize()
	start := 128 + extra
	if extra == 0 || start+4 > len(in.raw) || le.Uint32(in.raw[start:]) != 0xEA020000 {
		return nil, nil
	}
	area := in.raw[start+4:]
	what := fmt.Sprintf("inline xattrs of inode %d", in.Ino)
	for off := 0; off+16 <= len(area); {
		if le.Uint32(area[off:]) == 0 {
			return nil, nil // end of entries
		}
		nameLen, idx := int(area[off]), area[off+1]
		vOff, vSize := int(le.Uint16(area[off+2:])), int(le.Uint32(area[off+8:]))
		if off+16+nameLen > len(area) {
			return nil, corrupt(in.blk, what, "entry at %d runs past the inode", off)
		}
		name := string(area[off+16 : off+16+nameLen])
		if idx == 7 && name == "data" {
			if le.Uint32(area[off+4:]) != 0 || vOff > len(area) || vSize > len(area)-vOff {
				return nil, corrupt(in.blk, what, "system.data value %d bytes at %d", vSize, vOff)
			}
			return area[vOff : vOff+vSize], nil
		}
		off += (16 + nameLen + 3) &^ 3
	}
	return nil, nil
}

// Lookup resolves an absolute path from the root directory (inode 2)
// without following symlinks.
func (f *FS) Lookup(path string) (uint32, error) {
	if !strings.HasPrefix(path, "/") {
		return 0, fmt.Errorf("ext4: lookup %q: path must be absolute", path)
	}
	ino := uint32(rootIno)
	parts := strings.Split(path, "/")
	if len(parts) > maxPathDepth {
		return 0, fmt.Errorf("ext4: lookup %q: more than %d components: %w", path, maxPathDepth, ErrTooLarge)
	}
	for i, p := range parts {
		if p == "" || p == "." {
			continue
		}
		in, err := f.Inode(ino)
		if err != nil {
			return 0, fmt.Errorf("lookup %q: %w", path, err)
		}
		if in.Type() != TypeDir {
			return 0, fmt.Errorf("ext4: lookup %q: %s: %w", path, strings.Join(parts[:i], "/"), ErrNotDir)
		}
		if p == ".." {
			// Every directory's second entry; ReadDir hides it, so read it
			// through Lookup's own path.
			next, err := f.dotdot(in)
			if err != nil {
				return 0, fmt.Errorf("lookup %q: %w", path, err)
			}
			ino = next
			continue
		}
		ents, err := f.readDir(in)
		if err != nil {
			return 0, fmt.Errorf("lookup %q: %w", path, err)
		}
		found := false
		for _, e := range ents {
			if e.Name == p {
				ino, found = e.Ino, true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("ext4: lookup %q: %s: %w", path, strings.Join(parts[:i+1], "/"), ErrNotExist)
		}
	}
	return ino, nil
}

// dotdot is a directory's parent: the ".." entry of its first block, or
// the first 4 bytes of i_block for an inline directory.
func (f *FS) dotdot(in *Inode) (uint32, error) {
	if in.Ino == rootIno {
		return rootIno, nil
	}
	if in.Flags&flagInlineData != 0 {
		return binary.LittleEndian.Uint32(in.iBlock()), nil
	}
	runs, err := f.blockRuns(in, 1)
	if err != nil {
		return 0, err
	}
	p := physBlock(runs, 0)
	if p == 0 {
		return 0, corrupt(in.blk, fmt.Sprintf("directory inode %d", in.Ino), "no first block")
	}
	b, err := f.readBlock(p)
	if err != nil {
		return 0, err
	}
	le := binary.LittleEndian
	rec := int(le.Uint16(b[4:]))
	if rec < 12 || rec+12 > len(b) || b[rec+6] != 2 || b[rec+8] != '.' || b[rec+9] != '.' {
		return 0, corrupt(p, fmt.Sprintf("directory inode %d", in.Ino), `no ".." entry`)
	}
	return le.Uint32(b[rec:]), nil
}
