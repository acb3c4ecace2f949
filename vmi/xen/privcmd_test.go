package xen

import (
	"os"
	"strings"
	"testing"
)

// Failures of the device surface as errors naming what was asked, never as
// panics (no Xen here: /dev/null stands in for a privcmd that refuses).
func TestPrivcmdErrorsWithoutXen(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := &privcmd{fd: int(f.Fd())}
	frames := make([]uint64, chunkFrames)
	if _, _, err := p.MapFrames(3, frames, false); err == nil || !strings.Contains(err.Error(), "frames") {
		t.Errorf("MapFrames on /dev/null: %v", err)
	}
	if _, err := p.hypercall(hypercallXenVer, xenverVersion, 0); err == nil {
		t.Error("hypercall on /dev/null succeeded")
	}
}
