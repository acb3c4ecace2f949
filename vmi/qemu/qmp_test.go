package qemu

import (
	"bufio"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xascript/xascript/internal/socktest"
)

// fakeQMP serves one connection on a unix socket with handle, which gets
// each parsed command and writes what it likes.
func fakeQMP(t *testing.T, greeting string, handle func(w *bufio.Writer, cmd map[string]any)) string {
	t.Helper()
	return socktest.Serve(t, "qmp.sock", func(c net.Conn) {
		w := bufio.NewWriter(c)
		if greeting != "" {
			w.WriteString(greeting + "\n")
			w.Flush()
		}
		r := bufio.NewScanner(c)
		for r.Scan() {
			var cmd map[string]any
			if json.Unmarshal(r.Bytes(), &cmd) != nil {
				return
			}
			if cmd["execute"] == "qmp_capabilities" {
				w.WriteString(`{"event": "POWERDOWN", "data": {}}` + "\n")
				w.WriteString(reply(cmd, `{}`))
				w.Flush()
				continue
			}
			if handle == nil {
				return
			}
			handle(w, cmd)
			w.Flush()
		}
	})
}

func reply(cmd map[string]any, ret string) string {
	id, _ := json.Marshal(cmd["id"])
	return `{"return": ` + ret + `, "id": ` + string(id) + "}\n"
}

const greeting = `{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}`

func TestQMPCommands(t *testing.T) {
	var events []string
	sock := fakeQMP(t, greeting, func(w *bufio.Writer, cmd map[string]any) {
		switch cmd["execute"] {
		case "human-monitor-command":
			w.WriteString(`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}` + "\n")
			w.WriteString(reply(cmd, `"CPU#0\r\nCR0=1\r\n"`))
		case "stale":
			w.WriteString(`{"return": {}, "id": 999}` + "\n")
			w.WriteString(reply(cmd, `42`))
		case "slow":
			// no reply
		default:
			id, _ := json.Marshal(cmd["id"])
			w.WriteString(`{"error": {"class": "CommandNotFound", "desc": "The command ` + cmd["execute"].(string) + ` has not been found"}, "id": ` + string(id) + "}\n")
		}
	})
	q, err := Dial(sock, 500*time.Millisecond, func(e Event) { events = append(events, e.Name) })
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	s, err := q.HMP("info registers")
	if err != nil || s != "CPU#0\nCR0=1\n" {
		t.Errorf("HMP = %q, %v", s, err)
	}
	if got := strings.Join(events, ","); got != "POWERDOWN,STOP" {
		t.Errorf("events %q", got)
	}
	if r, err := q.Execute("stale", nil); err != nil || string(r) != "42" {
		t.Errorf("stale: %s, %v", r, err)
	}
	var qe *Error
	if _, err := q.Execute("bogus", nil); !errors.As(err, &qe) || qe.Class != "CommandNotFound" {
		t.Errorf("bogus: %v", err)
	}
	if _, err := q.Execute("slow", nil); err == nil || !strings.Contains(err.Error(), "no reply within") {
		t.Errorf("slow: %v", err)
	}
	if pid, err := q.PeerPID(); err != nil || pid != os.Getpid() {
		t.Errorf("PeerPID = %d, %v; want %d", pid, err, os.Getpid())
	}
}

func TestQMPGoneMidCommand(t *testing.T) {
	sock := fakeQMP(t, greeting, nil) // closes on the first command
	q, err := Dial(sock, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if _, err := q.Execute("query-status", nil); !errors.Is(err, ErrGone) {
		t.Errorf("got %v, want ErrGone", err)
	}
	if !q.Gone() {
		t.Error("Gone() false")
	}
	if _, err := q.Execute("query-status", nil); !errors.Is(err, ErrGone) {
		t.Errorf("second command: %v, want ErrGone", err)
	}
}

func TestQMPDialErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Dial(filepath.Join(dir, "nope"), time.Second, nil); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing: %v", err)
	}
	regular := filepath.Join(dir, "file")
	os.WriteFile(regular, nil, 0o600)
	if _, err := Dial(regular, time.Second, nil); !errors.Is(err, ErrNotQMP) {
		t.Errorf("regular file: %v", err)
	}
	// A socket that says something else.
	if _, err := Dial(fakeQMP(t, `{"hello": 1}`, nil), time.Second, nil); !errors.Is(err, ErrNotQMP) {
		t.Errorf("not QMP: %v", err)
	}
	if _, err := Dial(fakeQMP(t, `SSH-2.0-OpenSSH`, nil), time.Second, nil); !errors.Is(err, ErrNotQMP) {
		t.Errorf("not JSON: %v", err)
	}
	// A silent socket: the greeting times out.
	start := time.Now()
	if _, err := Dial(fakeQMP(t, "", nil), 200*time.Millisecond, nil); !errors.Is(err, ErrNotQMP) || !strings.Contains(err.Error(), "no greeting") {
		t.Errorf("silent: %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Error("greeting timeout not honoured")
	}
	// Left behind by a dead QEMU.
	stale := filepath.Join(dir, "stale.sock")
	l, _ := net.Listen("unix", stale)
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if _, err := Dial(stale, time.Second, nil); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("stale: %v", err)
	}
	if os.Getuid() != 0 {
		locked := fakeQMP(t, greeting, nil)
		os.Chmod(locked, 0)
		if _, err := Dial(locked, time.Second, nil); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("no permission: %v", err)
		}
	}
}
