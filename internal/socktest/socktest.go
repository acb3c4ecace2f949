// Package socktest serves one connection on a unix socket, for tests that
// stand in for a peer (QEMU's QMP, a guest's command port): the socket is
// in the test's temporary folder and closed when the test ends.
package socktest

import (
	"net"
	"path/filepath"
	"testing"
)

// Serve listens on a unix socket named name and runs handle, in a
// goroutine, on the first connection (closing it after handle returns).
// It returns the socket's path.
func Serve(t testing.TB, name string, handle func(c net.Conn)) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), name)
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		handle(c)
	}()
	return sock
}
