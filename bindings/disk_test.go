package bindings

import (
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/xascript/xascript/diskmon"
)

// eventTable sizes each table for its fields: the count must be the number
// of fields it then sets, for every shape of event.
func TestEventFieldCount(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	now := time.Unix(1700000000, 0)
	for _, ev := range []diskmon.Event{
		{Op: diskmon.OpRename, Path: "/a/b", OldPath: "/a/c", Watch: "/a", Ino: 12, Type: diskmon.TypeSymlink,
			Size: 5, Mode: 0o777, UID: 1, GID: 2, Links: 1, Target: "/x", Hardlink: true, WatchEnded: true, Time: now, Ctime: now, Err: "e"},
		{Op: diskmon.OpMkfile, Path: "/a/f", Watch: "/a", Ino: 13, Type: diskmon.TypeFile, Time: now, Ctime: now},
		{Op: diskmon.OpRmdir, Path: "/a", Watch: "/a", Type: diskmon.TypeDir, WatchEnded: true},
		{Op: diskmon.OpError, Path: "/a", Watch: "/a", Err: "folder unreadable", Time: now},
		{Op: diskmon.OpLost, Watch: "/a"},
	} {
		n := 0
		eventTable(L, ev).ForEach(func(lua.LValue, lua.LValue) { n++ })
		if want := eventFieldCount(ev); n != want {
			t.Errorf("%s event: %d fields set, eventFieldCount says %d", ev.Op, n, want)
		}
	}
}
