package scripts_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xascript/xascript/bindings"
	"github.com/xascript/xascript/diskmon"
	"github.com/xascript/xascript/runtime"
	"github.com/xascript/xascript/scripts"
)

// slowDisk delivers its events from a goroutine, apart, as a tap would.
type slowDisk struct{ events []diskmon.Event }

type slowWatch struct {
	done chan struct{}
	once sync.Once
}

func (w *slowWatch) Close()                { w.once.Do(func() { close(w.done) }) }
func (w *slowWatch) Done() <-chan struct{} { return w.done }

func (d *slowDisk) Watch(path string, _ diskmon.WatchOptions, fn func(diskmon.Event)) (bindings.DiskWatch, error) {
	w := &slowWatch{done: make(chan struct{})}
	go func() {
		for _, e := range d.events {
			select {
			case <-time.After(60 * time.Millisecond):
			case <-w.done:
				return
			}
			e.Watch, e.Time = path, time.Now()
			fn(e)
		}
	}()
	return w, nil
}

// fakeSystem adds to a fake dcache what linux.lookup and the process walks
// read: init_task (a kernel thread, no files, alone in the task list), its
// fs_struct and the root mount, whose root dentry is root.
func (f *fakeTree) fakeSystem(root uint64) {
	for k, v := range map[string]uint64{
		"task_struct.tasks": 0, "task_struct.pid": 0x10, "task_struct.comm": 0x20, "task_struct.fs": 0x30,
		"task_struct.files": 0x38, "task_struct.flags": 0x40,
		"inode.i_ctime.tv_sec": 0x10, "inode.i_ctime.tv_nsec": 0x18, "inode.i_mtime.tv_sec": 0x20, "inode.i_mtime.tv_nsec": 0x28,
	} {
		f.g.Offsets[k] = v
	}
	task := f.alloc(0x100)
	f.g.WritePtr(task, task)
	f.g.WritePtr(task+8, task)
	f.g.Write(task+0x20, []byte("swapper/0"))
	f.u32(task+0x40, 0x00200000) // PF_KTHREAD
	mnt := f.alloc(0x100)
	f.g.WritePtr(mnt+32, root) // mount.mnt.mnt_root
	f.g.WritePtr(mnt+64, mnt+64)
	f.g.WritePtr(mnt+72, mnt+64)
	fs := f.alloc(0x100)
	f.g.WritePtr(fs, mnt+32)
	f.g.WritePtr(fs+8, root)
	f.g.WritePtr(fs+24, root)
	f.g.WritePtr(task+0x30, fs)
	f.g.Syms["init_task"] = task
}

// setCtime dates the inode of dentry d.
func (f *fakeTree) setCtime(d uint64, sec uint64) {
	in, err := f.g.ReadUintVirt(d+offInode, 8)
	if err != nil {
		panic(err)
	}
	f.g.WritePtr(in+0x10, sec)
	f.g.WritePtr(in+0x20, sec)
}

// fswatch.lua's verdicts when the two views disagree or one of them saw the
// change first, on a fake guest whose dcache holds /root/old and
// /root/kept: a new name on disk only (DISK-ONLY), a creation flushed after
// the watch began of a name already cached (agree), a removal of a name
// never cached (agree), a removal on disk of a name the dcache still shows
// (DISK-ONLY).
func TestFswatchVerdicts(t *testing.T) {
	f := newTree(false)
	root := f.dentry("/", 1, 0o040755, 2, 0, false)
	dir := f.dentry("root", 4, 0o040700, 11, 0, false)
	old := f.dentry("old", 3, 0o100644, 20, 0, false)
	kept := f.dentry("kept", 4, 0o100644, 21, 0, false)
	f.link(root, dir)
	f.link(dir, old, kept)
	for _, d := range []uint64{root, dir, old, kept} {
		f.setCtime(d, 1_700_000_000)
	}
	f.fakeSystem(root)
	disk := &slowDisk{events: []diskmon.Event{
		{Op: diskmon.OpMkfile, Path: "/root/hidden", Ino: 77, Type: diskmon.TypeFile},
		{Op: diskmon.OpMkfile, Path: "/root/old", Ino: 20, Type: diskmon.TypeFile},
		{Op: diskmon.OpRmfile, Path: "/root/gone", Ino: 30, Type: diskmon.TypeFile},
		{Op: diskmon.OpRmfile, Path: "/root/kept", Ino: 21, Type: diskmon.TypeFile},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var out strings.Builder
	rt := runtime.New(runtime.Config{Stdout: &out, Env: &bindings.Env{Guest: f.g, Disk: disk, Ctx: ctx}, Libs: scripts.Libs()})
	defer rt.Close()
	src, err := os.ReadFile("examples/fswatch.lua")
	if err != nil {
		t.Fatal(err)
	}
	err = rt.RunString(string(src), "fswatch.lua", []string{"-i", "0.02", "-b", "0.5", "/root"})
	if ctx.Err() == nil {
		t.Fatalf("fswatch.lua ended by itself: %v\n%s", err, out.String())
	}
	want := []string{
		"memory: watching /root (2 names cached)",
		"MKFILE /root/old: already in memory when watching began, on disk at ",
		"RMFILE /root/gone: on disk at ",
		"DISK-ONLY MKFILE /root/hidden: on disk at ",
		"DISK-ONLY RMFILE /root/kept: on disk at ",
	}
	t.Logf("fswatch printed:\n%s", out.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	for _, w := range want {
		n := 0
		for _, l := range lines {
			if strings.HasPrefix(l, w) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d lines start %q; fswatch printed:\n%s", n, w, out.String())
		}
	}
	for _, l := range lines {
		if strings.Contains(l, "hidden") && !strings.Contains(l, "never in the guest's dentry cache within 0.5 s, inode 77; not open, no process in the folder") {
			t.Errorf("hidden: %q", l)
		}
		if strings.Contains(l, "kept") && !strings.Contains(l, "still in the guest's dentry cache after 0.5 s") {
			t.Errorf("kept: %q", l)
		}
		if strings.HasPrefix(l, "MEMORY-ONLY") || strings.HasPrefix(l, "memory: /root") {
			t.Errorf("unexpected: %q", l)
		}
	}
}
