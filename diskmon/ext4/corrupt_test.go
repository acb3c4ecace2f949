package ext4

import (
	"encoding/binary"
	"errors"
	"os"
	"testing"
)

// Deterministic corruptions of real images: each must come back as a
// *CorruptError naming the block that holds the bad bytes, and the rest
// of the filesystem must stay readable.

// inodeOffset is the byte offset of inode ino in the image.
func inodeOffset(t *testing.T, f *FS, ino uint32) int64 {
	t.Helper()
	s := f.sb
	desc, _, err := f.groupDesc((ino - 1) / s.inodesPerGroup)
	if err != nil {
		t.Fatal(err)
	}
	off := uint64((ino-1)%s.inodesPerGroup) * uint64(s.inodeSize)
	return int64(s.inodeTable(desc))*int64(s.blockSize) + int64(off)
}

func patch(t *testing.T, img string, off int64, b []byte) {
	t.Helper()
	w, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func wantCorrupt(t *testing.T, err error, block uint64) {
	t.Helper()
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v, want a *CorruptError", err)
	}
	if ce.Block != block {
		t.Fatalf("CorruptError names block %d, want %d: %v", ce.Block, block, ce)
	}
	t.Logf("ok: %v", err)
}

// extentRoot builds an i_block extent root: depth, then entries of three
// words each (leaf: logical, len, physical; index: logical, child, 0).
func extentRoot(depth uint16, entries ...[3]uint32) []byte {
	b := make([]byte, 60)
	le := binary.LittleEndian
	le.PutUint16(b[0:], extentMagic)
	le.PutUint16(b[2:], uint16(len(entries)))
	le.PutUint16(b[4:], 4)
	le.PutUint16(b[6:], depth)
	for i, e := range entries {
		o := 12 + 12*i
		le.PutUint32(b[o:], e[0])
		if depth == 0 {
			le.PutUint16(b[o+4:], uint16(e[1]))
			le.PutUint32(b[o+8:], e[2])
		} else {
			le.PutUint32(b[o+4:], e[1])
		}
	}
	return b
}

func TestCorruptions(t *testing.T) {
	src := seedTree(t, 300)
	// No metadata_csum: a hand-edited inode would otherwise fail its
	// checksum before the structure under test is reached.
	img := mkfs(t, "ext4", "96M", src, "-O", "^metadata_csum,^64bit")
	f := openImage(t, img, Options{NoJournal: true})
	bs := int64(f.BlockSize())
	// edit changes the image under f, then Refresh: f keeps metadata it
	// has read (the last inode-table block) until the view changes.
	edit := func(t *testing.T, off int64, b []byte) {
		t.Helper()
		patch(t, img, off, b)
		if err := f.Refresh(); err != nil {
			t.Fatal(err)
		}
	}
	lookup := func(p string) (uint32, *Inode) {
		t.Helper()
		ino, err := f.Lookup(p)
		if err != nil {
			t.Fatal(err)
		}
		in, err := f.Inode(ino)
		if err != nil {
			t.Fatal(err)
		}
		return ino, in
	}
	firstBlock := func(in *Inode) uint64 {
		runs, err := f.blockRuns(in, 1)
		if err != nil {
			t.Fatal(err)
		}
		return physBlock(runs, 0)
	}
	free := uint64(f.sb.blocksCount - 10)           // unused blocks near the end
	deep, _ := lookup("/root/foo/bar/baz/deep.txt") // before /root/foo breaks

	t.Run("dirent rec_len 0", func(t *testing.T) {
		ino, in := lookup("/etc/cron.d")
		blk := firstBlock(in)
		edit(t, int64(blk)*bs+12+4, []byte{0, 0}) // ".." rec_len
		_, err := f.ReadDir(ino)
		wantCorrupt(t, err, blk)
	})
	t.Run("dirent name past rec_len", func(t *testing.T) {
		ino, in := lookup("/root/foo/bar")
		blk := firstBlock(in)
		edit(t, int64(blk)*bs+6, []byte{200}) // "." name_len 200 in rec_len 12
		_, err := f.ReadDir(ino)
		wantCorrupt(t, err, blk)
	})
	t.Run("htree root limit", func(t *testing.T) {
		ino, in := lookup("/many")
		if in.Flags&flagIndex == 0 {
			t.Fatal("/many is not an htree")
		}
		blk := firstBlock(in)
		edit(t, int64(blk)*bs+0x20, []byte{7, 0})
		_, err := f.ReadDir(ino)
		wantCorrupt(t, err, blk)
	})
	t.Run("directory blocks shared", func(t *testing.T) {
		ino, in := lookup("/root/foo")
		blk := firstBlock(in)
		// Two logical blocks on the same physical block.
		edit(t, inodeOffset(t, f, ino)+4, []byte{byte(2 * bs), byte(2 * bs >> 8), 0, 0})
		edit(t, inodeOffset(t, f, ino)+iBlockOffset, extentRoot(0, [3]uint32{0, 1, uint32(blk)}, [3]uint32{1, 1, uint32(blk)}))
		_, err := f.ReadDir(ino)
		wantCorrupt(t, err, blk)
	})
	t.Run("extent tree visits a node twice", func(t *testing.T) {
		ino, _ := lookup("/root/big.bin")
		leaf := free
		node := make([]byte, bs)
		copy(node, extentRoot(0, [3]uint32{0, 1, uint32(free - 1)}))
		binary.LittleEndian.PutUint16(node[4:], uint16((bs-12)/12))
		edit(t, int64(leaf)*bs, node)
		edit(t, inodeOffset(t, f, ino)+iBlockOffset, extentRoot(1, [3]uint32{0, uint32(leaf), 0}, [3]uint32{10, uint32(leaf), 0}))
		_, err := f.ReadFile(ino, 1<<30)
		wantCorrupt(t, err, leaf)
	})
	t.Run("extent depth lies", func(t *testing.T) {
		ino := deep
		edit(t, inodeOffset(t, f, ino)+iBlockOffset, extentRoot(9, [3]uint32{0, uint32(free), 0}))
		in, _ := f.Inode(ino)
		_, err := f.ReadFile(ino, 1<<20)
		wantCorrupt(t, err, in.blk)
	})
	t.Run("rest still readable", func(t *testing.T) {
		if _, err := f.ReadDir(rootIno); err != nil {
			t.Fatal(err)
		}
		if ino, err := f.Lookup("/root/bar"); err != nil || ino == 0 {
			t.Fatal(err)
		}
	})
}

func TestCorruptIndirectLoop(t *testing.T) {
	src := seedTree(t, 0)
	img := mkfs(t, "ext2", "96M", src, "-b", "1024")
	f := openImage(t, img, Options{})
	ino, err := f.Lookup("/root/big.bin") // 300 KiB: double indirect at 1 KiB blocks
	if err != nil {
		t.Fatal(err)
	}
	in, _ := f.Inode(ino)
	dind := uint64(binary.LittleEndian.Uint32(in.iBlock()[13*4:]))
	if dind == 0 {
		t.Fatal("big.bin has no double indirect block")
	}
	// The double indirect block's first pointer: itself.
	var p [4]byte
	binary.LittleEndian.PutUint32(p[:], uint32(dind))
	patch(t, img, int64(dind)*1024, p[:])
	_, err = f.ReadFile(ino, 1<<20)
	wantCorrupt(t, err, dind)
}

func TestCorruptSuperblock(t *testing.T) {
	img := mkfs(t, "ext4", "16M", "", "-O", "^metadata_csum")
	cases := []struct {
		name string
		off  int64
		val  []byte
	}{
		{"magic", 1024 + 0x38, []byte{0, 0}},
		{"inodes count lies", 1024 + 0x0, []byte{0xff, 0xff, 0xff, 0x7f}},
		{"blocks count beyond device", 1024 + 0x4, []byte{0xff, 0xff, 0xff, 0x00}},
		{"block size", 1024 + 0x18, []byte{30, 0, 0, 0}},
		{"journal device", 1024 + 0x60, []byte{0x08 | 0x02, 0, 0, 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cp := copyFile(t, img)
			patch(t, cp, c.off, c.val)
			fh, err := os.Open(cp)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			st, _ := fh.Stat()
			_, err = Open(fh, st.Size(), Options{})
			if c.name == "journal device" {
				if !errors.Is(err, ErrUnsupported) {
					t.Fatalf("%v, want ErrUnsupported", err)
				}
				return
			}
			wantCorrupt(t, err, 0)
		})
	}
}
