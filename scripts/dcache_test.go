package scripts_test

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/xascript/xascript/bindings"
	"github.com/xascript/xascript/internal/fakeguest"
	"github.com/xascript/xascript/runtime"
	"github.com/xascript/xascript/scripts"
)

// The dcache walks of linux.lua on a synthetic guest that lies: lists that
// loop, a name length of 64 KiB, more children than the bound, unreadable
// pointers, parents that point at each other. Real layouts and contents are
// tested on real guests (integration.TestGuestDcache, fswatche2e); this is
// about the guest as the attacker, in both the 6.1 (d_subdirs list) and
// 6.8+ (d_children hlist) shapes.

// A made-up struct dentry: d_flags @0, d_parent @8, d_name @16 (qstr: len
// @+4, name @+8), d_inode @32, d_hash @40 (pprev @48), d_sb @56, children
// @64, sibling node @80. struct inode: i_mode @0, i_ino @0x40.
const (
	offFlags, offParent, offLen, offName, offInode, offPprev, offSb, offKids, offSib = 0, 8, 20, 24, 32, 48, 56, 64, 80
	dcursor                                                                          = 0x20000000
)

type fakeTree struct {
	g     *fakeguest.Guest
	hlist bool
	next  uint64
}

func newTree(hlist bool) *fakeTree {
	g := fakeguest.New()
	for k, v := range map[string]uint64{
		"dentry.d_name": 16, "qstr.len": 4, "qstr.name": 8, "dentry.d_inode": 32, "dentry.d_parent": 8,
		"dentry.d_sb": 56, "dentry.d_flags": 0, "dentry.d_hash.pprev": 48, "inode.i_ino": 0x40, "inode.i_mode": 0,
		"fs_struct.root.mnt": 0, "fs_struct.root.dentry": 8, "fs_struct.pwd.dentry": 24, "mount.mnt": 32,
		"vfsmount.mnt_root": 0, "mount.mnt_mounts": 64, "mount.mnt_mountpoint": 16, "mount.mnt_child": 80,
		"list_head.next": 0, "list_head.prev": 8,
	} {
		g.Offsets[k] = v
	}
	if hlist {
		g.Offsets["dentry.d_children"], g.Offsets["dentry.d_sib"] = offKids, offSib
	} else {
		g.Offsets["dentry.d_subdirs"], g.Offsets["dentry.d_child"] = offKids, offSib
	}
	return &fakeTree{g: g, hlist: hlist, next: fakeguest.VirtOffset + 0x100000}
}

func (f *fakeTree) alloc(n uint64) uint64 {
	a := f.next
	f.next += (n + 0xfff) &^ 0xfff
	f.g.Write(a, make([]byte, n))
	return a
}

func (f *fakeTree) u32(va uint64, v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	f.g.Write(va, b[:])
}

// dentry makes a dentry named name (nameLen overrides the length) with an
// inode of mode and ino (mode 0: negative), hashed unless unhashed.
func (f *fakeTree) dentry(name string, nameLen uint32, mode uint16, ino uint64, flags uint32, unhashed bool) uint64 {
	d := f.alloc(0x100)
	buf := f.alloc(0x1000)
	f.g.Write(buf, []byte(strings.Repeat(name, 1+300/max(1, len(name)))))
	f.u32(d+offLen, nameLen)
	f.g.WritePtr(d+offName, buf)
	f.u32(d+offFlags, flags)
	f.g.WritePtr(d+offParent, d)
	f.g.WritePtr(d+offSb, 0x5b5b)
	if !unhashed {
		f.g.WritePtr(d+offPprev, d+0x99)
	}
	if mode != 0 {
		in := f.alloc(0x100)
		f.g.Write(in, []byte{byte(mode), byte(mode >> 8)})
		f.g.WritePtr(in+0x40, ino)
		f.g.WritePtr(d+offInode, in)
	}
	return d
}

// link makes kids the children of dir, in order, each with dir as parent.
func (f *fakeTree) link(dir uint64, kids ...uint64) {
	for _, k := range kids {
		f.g.WritePtr(k+offParent, dir)
	}
	if f.hlist {
		next := uint64(0)
		for i := len(kids) - 1; i >= 0; i-- {
			f.g.WritePtr(kids[i]+offSib, next)
			next = kids[i] + offSib
		}
		f.g.WritePtr(dir+offKids, next)
		return
	}
	prev := dir + offKids
	for _, k := range kids {
		f.g.WritePtr(prev, k+offSib)
		f.g.WritePtr(k+offSib+8, prev)
		prev = k + offSib
	}
	f.g.WritePtr(prev, dir+offKids)
	f.g.WritePtr(dir+offKids+8, prev)
}

func (f *fakeTree) run(t *testing.T, src string) (string, error) {
	t.Helper()
	var out strings.Builder
	rt := runtime.New(runtime.Config{Stdout: &out, Env: &bindings.Env{Guest: f.g}, Libs: scripts.Libs()})
	defer rt.Close()
	err := rt.RunString(`local linux = require("linux")
local function show(kids, trunc)
  local s = {}
  for _, k in ipairs(kids) do
    s[#s + 1] = #k.name .. ":" .. k.name:sub(1, 4) .. ":" .. (k.type or "neg") .. ":" .. tostring(k.ino) ..
      (k.unhashed and ":unhashed" or "") .. (k.truncated and ":trunc" or "")
  end
  print(table.concat(s, " ") .. (trunc and " TRUNCATED" or ""))
end
`+src, "t.lua", nil)
	return out.String(), err
}

func TestDcacheHostile(t *testing.T) {
	for _, shape := range []struct {
		name  string
		hlist bool
	}{{"list", false}, {"hlist", true}} {
		t.Run(shape.name, func(t *testing.T) {
			f := newTree(shape.hlist)
			dir := f.dentry("dir", 3, 0o040755, 2, 0, false)
			a := f.dentry("a", 1, 0o100644, 11, 0, false)
			b := f.dentry("b", 1, 0o040755, 12, 0, false)
			neg := f.dentry("neg", 3, 0, 0, 0, false)
			cursor := f.dentry("/", 1, 0o040755, 2, dcursor, false)
			gone := f.dentry("gone", 4, 0o100600, 13, 0, true)
			long := f.dentry("x", 0x10000, 0o100644, 14, 0, false)
			f.link(dir, a, b, neg, cursor, gone, long)
			f.g.Syms["dir"] = dir

			out, err := f.run(t, `
show(linux.dentry_children(symbol("dir")))
show(linux.dentry_children(symbol("dir"), {negative = true, unhashed = true}))
show(linux.dentry_children(symbol("dir"), {max_children = 2}))
show(linux.dentry_children(symbol("dir"), {max_name = 8}))`)
			if err != nil {
				t.Fatal(err)
			}
			want := "1:a:file:11 1:b:dir:12 255:xxxx:file:14:trunc\n" +
				"1:a:file:11 1:b:dir:12 3:neg:neg:nil 4:gone:file:13:unhashed 255:xxxx:file:14:trunc\n" +
				"1:a:file:11 1:b:dir:12 TRUNCATED\n" +
				"1:a:file:11 1:b:dir:12 8:xxxx:file:14:trunc\n"
			if out != want {
				t.Errorf("got\n%swant\n%s", out, want)
			}

			// A sibling link back into the list, not to its head: a loop.
			f.link(dir, a, b)
			f.g.WritePtr(b+offSib, a+offSib)
			out, err = f.run(t, `local k, err = linux.dentry_children(symbol("dir")); print(k, err)`)
			if err != nil || !strings.HasPrefix(out, "nil\t") || !(strings.Contains(out, "loops") || strings.Contains(out, "cyclic")) {
				t.Errorf("looping list: %q, %v", out, err)
			}
			// A sibling pointer into nothing.
			f.g.WritePtr(b+offSib, 0xffff_9999_0000_0000)
			out, err = f.run(t, `local k, err = linux.dentry_children(symbol("dir")); print(k, err)`)
			if err != nil || !strings.HasPrefix(out, "nil\t") {
				t.Errorf("unreadable sibling: %q, %v", out, err)
			}
			// Parents pointing at each other: dentry_path gives up.
			f.g.WritePtr(a+offParent, b)
			f.g.WritePtr(b+offParent, a)
			out, err = f.run(t, `print(linux.dentry_path(`+hex(a)+`))`)
			if err != nil || !strings.Contains(out, "deeper than max_depth") {
				t.Errorf("parent cycle: %q, %v", out, err)
			}
		})
	}
}

func hex(v uint64) string { return fmt.Sprintf("addr(%q)", fmt.Sprintf("%#x", v)) }

// inode_times reads the pre-6.6 i_ctime/i_mtime timespec64 and the 6.11+
// i_ctime_sec/_nsec layouts; a time64_t before 1970 is negative, and one
// beyond 2^53 seconds either way is an error, not a crash.
func TestInodeTimes(t *testing.T) {
	for _, layout := range []string{"timespec64", "sec_nsec"} {
		t.Run(layout, func(t *testing.T) {
			f := newTree(false)
			if layout == "timespec64" {
				f.g.Offsets["inode.i_ctime.tv_sec"], f.g.Offsets["inode.i_ctime.tv_nsec"] = 0x10, 0x18
				f.g.Offsets["inode.i_mtime.tv_sec"], f.g.Offsets["inode.i_mtime.tv_nsec"] = 0x20, 0x28
			} else {
				f.g.Offsets["inode.i_ctime_sec"], f.g.Offsets["inode.i_ctime_nsec"] = 0x10, 0x18
				f.g.Offsets["inode.i_mtime_sec"], f.g.Offsets["inode.i_mtime_nsec"] = 0x20, 0x28
			}
			in := f.alloc(0x100)
			put := func(sec int64, nsec uint32) {
				f.g.WritePtr(in+0x10, uint64(sec))
				f.u32(in+0x18, nsec)
				f.g.WritePtr(in+0x20, uint64(sec+1))
				f.u32(in+0x28, 0)
			}
			f.g.Syms["ino"] = in
			show := `local t, err = linux.inode_times(symbol("ino")); if t then print(string.format("%.1f %.1f", t.ctime, t.mtime)) else print(err) end`
			for _, c := range []struct {
				sec  int64
				nsec uint32
				want string
			}{
				{1_700_000_000, 500_000_000, "1700000000.5 1700000001.0"},
				{-5, 0, "-5.0 -4.0"},
				{1 << 60, 0, "ctime of inode"},
				{-(1 << 60), 0, "ctime of inode"},
			} {
				put(c.sec, c.nsec)
				out, err := f.run(t, show)
				if err != nil || !strings.HasPrefix(out, c.want) {
					t.Errorf("sec %d: %q, %v; want %q", c.sec, out, err, c.want)
				}
			}
		})
	}
}
