package ext4

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// seedTree writes the tree that every variant is made from: nested
// folders, small and multi-block files, a file large enough for double
// indirect blocks on 1 KiB ext2, a sparse file reaching the triple
// indirect block, fast and slow symlinks, a hard link, a FIFO, and a
// folder of nfiles files (an htree once it outgrows one block).
func seedTree(t testing.TB, nfiles int) string {
	t.Helper()
	d := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(d, "root/foo/bar/baz"), 0o755))
	must(os.MkdirAll(filepath.Join(d, "etc/cron.d"), 0o700))
	must(os.WriteFile(filepath.Join(d, "root/bar"), []byte("bar\n"), 0o644))
	must(os.WriteFile(filepath.Join(d, "root/foo/bar/baz/deep.txt"), []byte("deep\n"), 0o600))
	must(os.WriteFile(filepath.Join(d, "etc/cron.d/job"), []byte("* * * * * root true\n"), 0o644))
	big := make([]byte, 300*1024+123)
	for i := range big {
		big[i] = byte(i*7 + i/4096)
	}
	must(os.WriteFile(filepath.Join(d, "root/big.bin"), big, 0o644))
	// Sparse: data at 70 MiB needs the triple indirect block with 1 KiB
	// blocks (12 + 256 + 65536 blocks = 64.3 MiB before it).
	sp, err := os.Create(filepath.Join(d, "root/sparse.bin"))
	must(err)
	_, err = sp.WriteAt([]byte("tail of a sparse file"), 70<<20)
	must(err)
	must(sp.Close())
	must(os.Symlink("bar", filepath.Join(d, "root/fastlink")))
	must(os.Symlink("/"+strings.Repeat("long/", 30)+"target", filepath.Join(d, "root/slowlink")))
	must(os.Link(filepath.Join(d, "root/bar"), filepath.Join(d, "root/hardbar")))
	must(syscall.Mkfifo(filepath.Join(d, "root/fifo"), 0o644))
	// With inline_data: a folder whose entries spill from i_block into the
	// system.data xattr, and a file that does the same.
	must(os.MkdirAll(filepath.Join(d, "inl"), 0o755))
	for i := 1; i <= 6; i++ {
		must(os.WriteFile(filepath.Join(d, "inl", fmt.Sprintf("a%d", i)), []byte{byte('0' + i)}, 0o644))
	}
	must(os.WriteFile(filepath.Join(d, "inl/mid.txt"), bytes.Repeat([]byte("m"), 100), 0o644))
	must(os.MkdirAll(filepath.Join(d, "many"), 0o755))
	for i := 0; i < nfiles; i++ {
		must(os.WriteFile(filepath.Join(d, "many", fmt.Sprintf("file-%05d-with-a-longer-name", i)), nil, 0o644))
	}
	return d
}

type variant struct {
	name, kind, size string
	args             []string
	kindWant         string
}

var variants = []variant{
	{"ext2-1k", "ext2", "96M", []string{"-b", "1024"}, "ext2"},
	{"ext2-4k-128", "ext2", "96M", []string{"-b", "4096", "-I", "128"}, "ext2"},
	{"ext3-1k", "ext3", "96M", []string{"-b", "1024"}, "ext3"},
	{"ext3-4k", "ext3", "96M", []string{"-b", "4096"}, "ext3"},
	{"ext4", "ext4", "96M", nil, "ext4"},
	{"ext4-1k-32bit", "ext4", "96M", []string{"-b", "1024", "-O", "^64bit"}, "ext4"},
	{"ext4-nocsum", "ext4", "96M", []string{"-O", "^metadata_csum,^64bit,uninit_bg"}, "ext4"},
	{"ext4-inode128", "ext4", "96M", []string{"-I", "128"}, "ext4"},
	{"ext4-inode1024", "ext4", "96M", []string{"-I", "1024"}, "ext4"},
	{"ext4-inline", "ext4", "96M", []string{"-O", "inline_data"}, "ext4"},
	{"ext4-metabg", "ext4", "96M", []string{"-b", "1024", "-O", "meta_bg,^resize_inode"}, "ext4"},
	{"ext4-sparse2", "ext4", "96M", []string{"-O", "sparse_super2"}, "ext4"},
	{"ext4-noextents", "ext4", "96M", []string{"-O", "^extent,^flex_bg,^64bit"}, "ext4"},
	{"ext4-largedir", "ext4", "96M", []string{"-O", "large_dir"}, "ext4"},
}

// TestRealImages compares every directory, inode and file of images made
// by mkfs -d with what debugfs (e2fsprogs' own reader) and the source tree
// say.
func TestRealImages(t *testing.T) {
	src := seedTree(t, 600)
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			img := mkfs(t, v.kind, v.size, src, v.args...)
			f := openImage(t, img, Options{})
			if f.Kind() != v.kindWant {
				t.Errorf("Kind = %q, want %q", f.Kind(), v.kindWant)
			}
			compareTree(t, f, img, src)
		})
	}
}

// compareTree walks the image from / and checks each directory against
// debugfs ls -p, each inode against it and debugfs stat, and each file
// and symlink against the source tree.
func compareTree(t *testing.T, f *FS, img, src string) {
	t.Helper()
	dirs := []string{"/"}
	checked := 0
	for len(dirs) > 0 {
		p := dirs[0]
		dirs = dirs[1:]
		ino, err := f.Lookup(p)
		if err != nil {
			t.Fatalf("Lookup(%q): %v", p, err)
		}
		got, err := f.ReadDir(ino)
		if err != nil {
			t.Fatalf("ReadDir(%q): %v", p, err)
		}
		want := debugfsLs(t, img, p)
		if len(got) != len(want) {
			t.Fatalf("%s: %d entries, debugfs lists %d", p, len(got), len(want))
		}
		byName := map[string]dfsEntry{}
		for _, w := range want {
			byName[w.name] = w
		}
		for i, e := range got {
			w, ok := byName[e.Name]
			if !ok || w.ino != e.Ino {
				t.Fatalf("%s: entry %d %q ino %d; debugfs has %+v", p, i, e.Name, e.Ino, w)
			}
			if e.Name != want[i].name {
				t.Errorf("%s: entry %d is %q, debugfs order has %q", p, i, e.Name, want[i].name)
			}
			in, err := f.Inode(e.Ino)
			if err != nil {
				t.Fatalf("Inode(%d) %s/%s: %v", e.Ino, p, e.Name, err)
			}
			if in.Mode != w.mode || in.UID != w.uid || in.GID != w.gid || (w.sizeParsed && in.Size != w.size) {
				t.Errorf("%s/%s: mode %o uid %d gid %d size %d; debugfs %o %d %d %d", p, e.Name, in.Mode, in.UID, in.GID, in.Size, w.mode, w.uid, w.gid, w.size)
			}
			if e.Type != TypeUnknown && e.Type != in.Type() {
				t.Errorf("%s/%s: entry type %v, inode type %v", p, e.Name, e.Type, in.Type())
			}
			full := strings.TrimSuffix(p, "/") + "/" + e.Name
			if lk, err := f.Lookup(full); err != nil || lk != e.Ino {
				t.Errorf("Lookup(%q) = %d, %v; want %d", full, lk, err, e.Ino)
			}
			host := filepath.Join(src, filepath.FromSlash(full))
			switch in.Type() {
			case TypeDir:
				if e.Name != "lost+found" {
					dirs = append(dirs, full)
				}
			case TypeRegular:
				if e.Name == "sparse.bin" || e.Name == "big.bin" || len(dirs) < 50 {
					data, err := f.ReadFile(e.Ino, 128<<20)
					if err != nil {
						t.Fatalf("ReadFile(%s): %v", full, err)
					}
					hostData, err := os.ReadFile(host)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(data, hostData) {
						t.Errorf("%s: contents differ from the source (%d vs %d bytes)", full, len(data), len(hostData))
					}
				}
			case TypeSymlink:
				l, err := f.ReadLink(e.Ino)
				hl, herr := os.Readlink(host)
				if err != nil || herr != nil || l != hl {
					t.Errorf("ReadLink(%s) = %q, %v; source %q", full, l, err, hl)
				}
			}
			if checked < 40 || e.Name == "hardbar" || e.Name == "bar" {
				links, gen := debugfsStat(t, img, e.Ino)
				if uint64(in.Links) != links || uint64(in.Generation) != gen {
					t.Errorf("%s: links %d gen %d; debugfs %d %d", full, in.Links, in.Generation, links, gen)
				}
				checked++
			}
		}
	}
	// The hard link: both names, one inode, two links.
	a, _ := f.Lookup("/root/bar")
	b, _ := f.Lookup("/root/hardbar")
	if in, err := f.Inode(a); a == 0 || a != b || err != nil || in.Links != 2 {
		t.Errorf("hard link: /root/bar %d, /root/hardbar %d, inode %+v %v", a, b, in, err)
	}
	if _, err := f.Lookup("/root/nope/x"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Lookup of a missing path: %v, want ErrNotExist", err)
	}
	if _, err := f.Lookup("/root/bar/x"); !errors.Is(err, ErrNotDir) {
		t.Errorf("Lookup through a file: %v, want ErrNotDir", err)
	}
	if ino, err := f.Lookup("/root/foo/bar/../../bar"); err != nil || ino != a {
		t.Errorf(`Lookup with "..": %d, %v; want %d`, ino, err, a)
	}
	if f.sb.incompat&incompatInlineData != 0 {
		// mke2fs -d stores small files inline but gives every folder a
		// block; inline folders come from the kernel (ext4-inline-journal).
		for _, p := range []string{"/inl/mid.txt"} {
			ino, _ := f.Lookup(p)
			in, err := f.Inode(ino)
			if err != nil || in.Flags&flagInlineData == 0 {
				t.Errorf("%s is not inline (%v)", p, err)
			} else if x, _ := inlineXattr(in); len(x) == 0 {
				t.Errorf("%s has no system.data beyond i_block", p)
			}
		}
	}
	many, _ := f.Lookup("/many")
	if in, _ := f.Inode(many); in == nil || (f.sb.compat&compatDirIndex != 0 && in.Flags&flagIndex == 0) {
		t.Errorf("/many is not an htree directory (flags %#x)", in.Flags)
	}
}

// TestHtree10k: a 10,000-entry htree folder reads completely and in the
// order debugfs lists it.
func TestHtree10k(t *testing.T) {
	src := seedTree(t, 10000)
	img := mkfs(t, "ext4", "256M", src)
	f := openImage(t, img, Options{})
	ino, err := f.Lookup("/many")
	if err != nil {
		t.Fatal(err)
	}
	in, err := f.Inode(ino)
	if err != nil || in.Flags&flagIndex == 0 {
		t.Fatalf("/many: %v, want the htree flag", err)
	}
	got, err := f.ReadDir(ino)
	if err != nil {
		t.Fatal(err)
	}
	want := debugfsLs(t, img, "/many")
	if len(got) != 10000 || len(want) != 10000 {
		t.Fatalf("%d entries, debugfs %d, want 10000", len(got), len(want))
	}
	names := make([]string, len(got))
	for i, e := range got {
		if e.Name != want[i].name || e.Ino != want[i].ino || e.Type != TypeRegular {
			t.Fatalf("entry %d: %+v, debugfs %+v", i, e, want[i])
		}
		names[i] = e.Name
	}
	sort.Strings(names)
	for i, n := range names {
		if n != fmt.Sprintf("file-%05d-with-a-longer-name", i) {
			t.Fatalf("sorted entry %d is %q", i, n)
		}
	}
}

// TestDebugfsChanges changes an image with debugfs -w (mkdir, rm, ln,
// symlink, a rename as link+unlink) and checks that a Refresh shows it.
func TestDebugfsChanges(t *testing.T) {
	src := seedTree(t, 10)
	for _, kind := range []string{"ext2", "ext3", "ext4"} {
		t.Run(kind, func(t *testing.T) {
			img := mkfs(t, kind, "96M", src)
			f := openImage(t, img, Options{})
			root, _ := f.Lookup("/root")
			before, err := f.ReadDir(root)
			if err != nil {
				t.Fatal(err)
			}
			debugfs(t, img, true,
				"mkdir /root/newdir",
				"rm /root/bar",
				"ln /root/big.bin /root/big-link",
				"symlink /root/sym /etc/cron.d/job",
				"link /root/foo /root/renamed",
				"unlink /root/foo",
			)
			if err := f.Refresh(); err != nil {
				t.Fatal(err)
			}
			after, err := f.ReadDir(root)
			if err != nil {
				t.Fatal(err)
			}
			names := func(es []DirEntry) map[string]uint32 {
				m := map[string]uint32{}
				for _, e := range es {
					m[e.Name] = e.Ino
				}
				return m
			}
			b, a := names(before), names(after)
			if _, ok := a["bar"]; ok {
				t.Error("bar still listed after rm")
			}
			if a["newdir"] == 0 || a["sym"] == 0 || a["big-link"] != b["big.bin"] || a["renamed"] != b["foo"] {
				t.Errorf("after: %v (before %v)", a, b)
			}
			if _, ok := a["foo"]; ok {
				t.Error("foo still listed after unlink")
			}
			if l, err := f.ReadLink(a["sym"]); err != nil || l != "/etc/cron.d/job" {
				t.Errorf("ReadLink(sym) = %q, %v", l, err)
			}
			compareDir(t, f, img, "/root")
		})
	}
}

func compareDir(t *testing.T, f *FS, img, p string) {
	t.Helper()
	ino, err := f.Lookup(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.ReadDir(ino)
	if err != nil {
		t.Fatal(err)
	}
	want := debugfsLs(t, img, p)
	if len(got) != len(want) {
		t.Fatalf("%s: %v, debugfs %v", p, got, want)
	}
	for i := range got {
		if got[i].Name != want[i].name || got[i].Ino != want[i].ino {
			t.Fatalf("%s entry %d: %+v, debugfs %+v", p, i, got[i], want[i])
		}
	}
}
