package bindings_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/xascript/xascript/bindings"
	"github.com/xascript/xascript/runtime"
)

// An interrupt (the CLI cancels Env.Ctx on Ctrl-C) ends a sleeping script
// at once with an error.
func TestSleepInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	rt := runtime.New(runtime.Config{Stdout: io.Discard, Env: &bindings.Env{Ctx: ctx}})
	defer rt.Close()
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	err := rt.RunString("sleep(30)", "poll.lua", nil)
	if err == nil || !strings.Contains(err.Error(), "sleep: interrupted") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("interrupt took %v", d)
	}
}
