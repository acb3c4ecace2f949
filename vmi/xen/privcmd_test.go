package xen

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
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

// What no wait cures is marked ErrNoAccess (a caller waiting for a domain
// to appear gives up at once on it) and keeps its own message and cause.
func TestNoAccessErrors(t *testing.T) {
	cause := fmt.Errorf("open %s: %w (run xascript in dom0)", PrivcmdPath, unix.ENOENT)
	err := error(accessError{cause})
	if !errors.Is(err, ErrNoAccess) || !errors.Is(err, unix.ENOENT) || err.Error() != cause.Error() {
		t.Errorf("accessError: %v (is ErrNoAccess %v, is ENOENT %v)", err, errors.Is(err, ErrNoAccess), errors.Is(err, unix.ENOENT))
	}
	if errors.Is(fmt.Errorf("domain %q: %w", "web1", ErrNoDomain), ErrNoAccess) {
		t.Error("a missing domain counts as no access")
	}
	// Here, outside dom0 (no privcmd device) or as another user, Open
	// fails with it.
	if _, serr := os.Stat(PrivcmdPath); serr == nil && os.Geteuid() == 0 {
		t.Logf("%s exists and we are root: Open's refusal is not exercised here", PrivcmdPath)
		return
	}
	if _, err := Open("web1", Options{}); !errors.Is(err, ErrNoAccess) {
		t.Errorf("Open without privcmd or root: %v, want ErrNoAccess", err)
	}
}
