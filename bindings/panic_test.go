package bindings_test

import (
	"strings"
	"testing"

	"github.com/xascript/xascript/bindings"
)

// panickingGuest stands in for a bug in a layer below the bindings: every
// read dereferences a nil pointer.
type panickingGuest struct {
	bindings.Guest
	missing *struct{ n int }
}

func (g *panickingGuest) ReadUintVirt(uint64, int) (uint64, error) {
	return uint64(g.missing.n), nil
}

// A Go panic under a binding reaches the script as an error naming the
// binding, the code that panicked and the script line, and pcall catches it
// like any other error: it is not a bare "nil pointer dereference".
func TestGoPanicNamesBindingAndSite(t *testing.T) {
	g := &panickingGuest{Guest: fixtureGuest()}
	_, err := runWith(t, g, false, "\nlocal v = read_u32(addr('0xffff888000001000'))")
	if err == nil {
		t.Fatal("a panicking read succeeded")
	}
	for _, want := range []string{"read_u32: internal error (bindings_test, panic_test.go:", "nil pointer dereference", "please report", "w.lua:2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	out, err := runWith(t, g, false, "local ok, msg = pcall(read_u32, addr('0xffff888000001000')) print(ok, msg:match('internal error') ~= nil)")
	if err != nil || out != "false\ttrue\n" {
		t.Errorf("pcall: %q, %v", out, err)
	}
}
