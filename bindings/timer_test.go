package bindings

import (
	"context"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// The timer every() returns is what luaClasses declares.
func TestLuaLSTimerClass(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // ends the timer's goroutine
	Register(L, &Env{Ctx: ctx})
	if err := L.DoString(`timer = every(0.5, function() end)`); err != nil {
		t.Fatal(err)
	}
	checkTable(t, classByName(t, "xascript.timer"), L.GetGlobal("timer"), true)
	if err := L.DoString(`timer:cancel(); timer:cancel()`); err != nil {
		t.Errorf("cancel twice: %v", err)
	}
}
