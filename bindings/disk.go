package bindings

import (
	"math"

	lua "github.com/yuin/gopher-lua"

	"github.com/xascript/xascript/diskmon"
)

// DiskWatcher is the guest's disk as scripts watch it: a tracker fed by a
// tap (the NBD server, a tapfifo stream) or a before/after pair of images.
type DiskWatcher interface {
	// Watch calls fn for each event of path, on a goroutine of its own.
	Watch(path string, opts diskmon.WatchOptions, fn func(diskmon.Event)) (DiskWatch, error)
}

// DiskWatch is one watch; Done is closed when it will report no more (its
// folder went away, or a before/after comparison delivered everything).
type DiskWatch interface {
	Close()
	Done() <-chan struct{}
}

func diskArea(env *Env) Area {
	return Area{
		Name:  "disk",
		Title: "Watching the guest's disk",
		Doc: "With `--disk IMAGE --nbd SOCKET` xascript is the guest's disk: it serves IMAGE over NBD and reads every " +
			"write it serves. Watches report what the guest's file system (ext2, ext3, ext4) changed in a folder, " +
			"from the blocks alone: the guest's kernel is never asked, so a rootkit cannot hide a file that reached " +
			"the disk. Events come when the change is committed to disk (the jbd2 commit on ext3/4, a flush or a " +
			"quiet disk on ext2), which is seconds after the guest made it unless it calls `sync`. A script that " +
			"sets a watch keeps running after its last line, delivering events to the callbacks, until it calls " +
			"`stop()`, every watch is closed or ended, or it is interrupted.",
		Bindings: []Binding{
			{Name: "on_disk_event", Signature: "on_disk_event(path, fn [, opts]) -> watch",
				Doc: "Watches the folder (or file) at absolute `path` in the guest's file system and calls `fn(ev)` for each " +
					"change, with `ev` a table: `op` (`\"MKDIR\"`, `\"RMDIR\"`, `\"MKFILE\"`, `\"RMFILE\"`, `\"RENAME\"`, and for " +
					"watched files `\"WRITE\"`, `\"TRUNCATE\"`, `\"CHMOD\"`, `\"CHOWN\"`; `\"ERROR\"` when a folder cannot be read " +
					"and `\"LOST\"` when the tracker fell behind and rescanned), `path`, `old_path` (RENAME), `inode`, `type` " +
					"(`\"file\"`, `\"dir\"`, `\"symlink\"`, ...), `size`, `mode`, `uid`, `gid`, `links`, `target` (a symlink's), " +
					"`hardlink` (true when an existing file got another name), `time` (when the write reached the tap, " +
					"seconds since the epoch), `ctime` (the guest's own timestamp), `error`, `watch` (the watched path) and " +
					"`watch_ended` (the watched folder was removed: no more events). `opts`: `recursive` (watch every folder " +
					"below too), `files` (also WRITE/TRUNCATE/CHMOD/CHOWN of the files in the folder), `max_depth` (default 16), " +
					"`max_entries` (default 1,000,000). A path that does not exist yet is watched from when it is created. " +
					"Returns a watch with `w:close()` and `w.path`.",
				Fn: onDiskEvent(env)},
			{Name: "stop", Signature: "stop()",
				Doc: "Ends the event loop once the running callback returns: the script ends with status 0 and the disk is " +
					"flushed and served until then.",
				Fn: func(L *lua.LState) int {
					env.loop().Stop()
					return 0
				}},
		},
	}
}

func onDiskEvent(env *Env) lua.LGFunction {
	return func(L *lua.LState) int {
		path := L.CheckString(1)
		fn := L.CheckFunction(2)
		opts := diskmon.WatchOptions{}
		if t, ok := L.Get(3).(*lua.LTable); ok {
			opts.Recursive = lua.LVAsBool(t.RawGetString("recursive"))
			opts.Files = lua.LVAsBool(t.RawGetString("files"))
			opts.MaxDepth = intOption(L, t, "max_depth")
			opts.MaxEntries = intOption(L, t, "max_entries")
		} else if L.Get(3) != lua.LNil {
			L.ArgError(3, "options must be a table")
		}
		if env.Disk == nil {
			L.RaiseError("on_disk_event: no disk: give --disk IMAGE (with --nbd SOCKET to serve it to a guest)")
		}
		loop := env.loop()
		release := loop.Hold()
		w, err := env.Disk.Watch(path, opts, func(ev diskmon.Event) {
			loop.Post(env.Ctx, func(L *lua.LState) error { return deliverEvent(L, fn, ev) })
		})
		if err != nil {
			release()
			return fault(L, err)
		}
		go func() {
			// The loop lives while the watch can report; events already queued
			// are delivered before Run sees the release.
			select {
			case <-w.Done():
			case <-env.Ctx.Done():
			}
			loop.Post(env.Ctx, func(*lua.LState) error { release(); return nil })
		}()
		h := L.NewTable()
		h.RawSetString("path", lua.LString(path))
		h.RawSetString("close", L.NewFunction(func(L *lua.LState) int {
			w.Close()
			return 0
		}))
		L.Push(h)
		return 1
	}
}

// deliverEvent calls a watch's callback with one event.
func deliverEvent(L *lua.LState, fn *lua.LFunction, ev diskmon.Event) error {
	return L.CallByParam(lua.P{Fn: fn, NRet: 0, Protect: true}, eventTable(L, ev))
}

func intOption(L *lua.LState, t *lua.LTable, name string) int {
	v := t.RawGetString(name)
	if v == lua.LNil {
		return 0
	}
	n, ok := v.(lua.LNumber)
	if !ok || n < 1 || n > math.MaxInt32 || float64(n) != math.Trunc(float64(n)) {
		L.RaiseError("on_disk_event: option %s must be a whole number >= 1, not %s", name, v.String())
	}
	return int(n)
}

// eventFieldCount is how many fields eventTable sets for ev.
func eventFieldCount(ev diskmon.Event) int {
	n := 3 // op, path, watch
	for _, set := range []bool{ev.OldPath != "", ev.Err != "", ev.Target != "", ev.WatchEnded,
		!ev.Time.IsZero(), !ev.Ctime.IsZero()} {
		if set {
			n++
		}
	}
	if ev.Op != diskmon.OpError && ev.Op != diskmon.OpLost {
		n += 8 // inode, type, size, mode, uid, gid, links, hardlink
	}
	return n
}

func eventTable(L *lua.LState, ev diskmon.Event) *lua.LTable {
	// Sized for exactly its fields: a table grown one key at a time
	// rebuilt its map several times for each event, and one sized for
	// every field there is took twice the memory of one that fits.
	t := L.CreateTable(0, eventFieldCount(ev))
	set := func(k string, v lua.LValue) { t.RawSetString(k, v) }
	set("op", lua.LString(ev.Op))
	set("path", lua.LString(ev.Path))
	set("watch", lua.LString(ev.Watch))
	if ev.OldPath != "" {
		set("old_path", lua.LString(ev.OldPath))
	}
	if ev.Err != "" {
		set("error", lua.LString(ev.Err))
	}
	if ev.Op != diskmon.OpError && ev.Op != diskmon.OpLost {
		set("inode", lua.LNumber(ev.Ino))
		set("type", lua.LString(ev.Type.String()))
		set("size", lua.LNumber(ev.Size))
		set("mode", lua.LNumber(ev.Mode))
		set("uid", lua.LNumber(ev.UID))
		set("gid", lua.LNumber(ev.GID))
		set("links", lua.LNumber(ev.Links))
		set("hardlink", lua.LBool(ev.Hardlink))
	}
	if ev.Target != "" {
		set("target", lua.LString(ev.Target))
	}
	if ev.WatchEnded {
		set("watch_ended", lua.LTrue)
	}
	if !ev.Time.IsZero() {
		set("time", lua.LNumber(float64(ev.Time.UnixMicro())/1e6))
	}
	if !ev.Ctime.IsZero() {
		set("ctime", lua.LNumber(float64(ev.Ctime.UnixNano())/1e9))
	}
	return t
}
