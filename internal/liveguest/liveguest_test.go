package liveguest

import (
	"bufio"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xascript/xascript/internal/socktest"
)

// fakePort answers like the guest's /init on its command port: echo-free,
// output between markers, the exit status in the end marker.
func fakePort(t *testing.T) string {
	return socktest.Serve(t, "cmd.sock", func(c net.Conn) {
		r := bufio.NewScanner(c)
		for r.Scan() {
			switch line := r.Text(); line {
			case "cat /proc/modules":
				c.Write([]byte("noise before the marker\n@@XA-BEGIN-CMD@@\nromfs 20480 0 - Live 0xffffffffc0284000\n\nisofs 53248 0 - Live 0xffffffffc02b1000\r\n@@XA-END-CMD rc=0@@\n"))
			case "false":
				c.Write([]byte("@@XA-BEGIN-CMD@@\nsh: oops\n@@XA-END-CMD rc=1@@\n"))
			case "hang":
			}
		}
	})
}

func TestRun(t *testing.T) {
	g := &Guest{CmdSocket: fakePort(t)}
	mods, err := g.Modules()
	if err != nil || strings.Join(mods, ",") != "romfs,isofs" {
		t.Errorf("Modules() = %v, %v", mods, err)
	}
	if out, err := g.Run("false", 5*time.Second); err == nil || !strings.Contains(err.Error(), "exit status 1") || out != "sh: oops\n" {
		t.Errorf("failing command: %q, %v", out, err)
	}
	if _, err := g.Run("a\nb", time.Second); err == nil {
		t.Error("two lines accepted")
	}
	t0 := time.Now()
	if _, err := g.Run("hang", 200*time.Millisecond); err == nil || time.Since(t0) > 5*time.Second {
		t.Errorf("a command that never ends: %v after %v", err, time.Since(t0))
	}
	if _, err := (&Guest{CmdSocket: filepath.Join(t.TempDir(), "none")}).Run("true", time.Second); err == nil {
		t.Error("no command port: no error")
	}
}
