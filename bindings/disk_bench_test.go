package bindings

import (
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/xascript/xascript/diskmon"
)

// BenchmarkEventTable builds the Lua table of one MKFILE event, as the
// event loop does for every event a watch delivers.
func BenchmarkEventTable(b *testing.B) {
	L := lua.NewState()
	defer L.Close()
	ev := diskmon.Event{Op: diskmon.OpMkfile, Path: "/root/fig7/n1000-r1/f1", Watch: "/root/fig7", Ino: 1234,
		Type: diskmon.TypeFile, Mode: 0o644, Links: 1, Time: time.Now(), Ctime: time.Now()}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if eventTable(L, ev).RawGetString("op") == lua.LNil {
			b.Fatal("no op")
		}
	}
}
