package socktest

import (
	"bufio"
	"encoding/json"
	"net"
	"sync"
	"testing"
)

// QMPGreeting is the greeting of QEMU 7.2.
const QMPGreeting = `{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}`

// QMP is a fake QEMU monitor that keeps a run state as QEMU does: `stop`
// and `cont` change it and send the STOP and RESUME events that QEMU sends
// (only on a change: stopping a stopped guest says nothing), and
// `query-status` reports it. A guest can start paused (QEMU's -S, or an
// operator's stop before we attached), and the test can play the operator
// with Stop and Cont, which change the state and send the events as
// another monitor's commands would.
//
// Other commands go to Handle, which returns the reply's "return" value as
// JSON, or ok false for QMP's CommandNotFound.
type QMP struct {
	// Paused is the state at the start; read it afterwards with IsPaused.
	Paused bool
	// Handle answers the commands the fake does not know itself; nil
	// answers none.
	Handle func(cmd string, args map[string]any) (ret string, ok bool)

	mu       sync.Mutex
	conn     net.Conn
	w        *bufio.Writer
	commands []string
	stops    int // stop commands that stopped a running guest
	conts    int // cont commands that resumed a paused guest
}

// Serve starts the fake on a socket in the test's temporary folder and
// returns its path. It serves one connection.
func (q *QMP) Serve(t testing.TB) string {
	t.Helper()
	t.Cleanup(q.Quit)
	return Serve(t, "qmp.sock", func(c net.Conn) {
		q.mu.Lock()
		q.conn, q.w = c, bufio.NewWriter(c)
		q.w.WriteString(QMPGreeting + "\n")
		q.w.Flush()
		q.mu.Unlock()
		r := bufio.NewScanner(c)
		r.Buffer(make([]byte, 64<<10), 1<<20)
		for r.Scan() {
			var cmd struct {
				Execute   string          `json:"execute"`
				Arguments map[string]any  `json:"arguments"`
				ID        json.RawMessage `json:"id"`
			}
			if json.Unmarshal(r.Bytes(), &cmd) != nil {
				return
			}
			q.mu.Lock()
			q.command(cmd.Execute, cmd.Arguments, cmd.ID)
			err := q.w.Flush()
			q.mu.Unlock()
			if err != nil {
				return
			}
		}
	})
}

// command answers one command; q.mu is held.
func (q *QMP) command(name string, args map[string]any, id json.RawMessage) {
	q.commands = append(q.commands, name)
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	ret := func(v string) { q.w.WriteString(`{"return": ` + v + `, "id": ` + string(id) + "}\n") }
	switch name {
	case "qmp_capabilities":
		ret(`{}`)
	case "query-status":
		status := "running"
		if q.Paused {
			status = "paused"
		}
		ret(`{"running": ` + boolJSON(!q.Paused) + `, "singlestep": false, "status": "` + status + `"}`)
	case "stop":
		if !q.Paused {
			q.stops++
			q.setPaused(true) // QEMU sends the event before the reply
		}
		ret(`{}`)
	case "cont":
		if q.Paused {
			q.conts++
			q.setPaused(false)
		}
		ret(`{}`)
	default:
		if q.Handle != nil {
			if v, ok := q.Handle(name, args); ok {
				ret(v)
				return
			}
		}
		desc, _ := json.Marshal("The command " + name + " has not been found")
		q.w.WriteString(`{"error": {"class": "CommandNotFound", "desc": ` + string(desc) + `}, "id": ` + string(id) + "}\n")
	}
}

// setPaused changes the state and sends its event; q.mu is held.
func (q *QMP) setPaused(p bool) {
	q.Paused = p
	ev := `{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "RESUME"}`
	if p {
		ev = `{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}`
	}
	q.w.WriteString(ev + "\n")
}

func boolJSON(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// Stop is an operator's `stop` on another monitor: the guest stops (if it
// ran) and the client sees a STOP event.
func (q *QMP) Stop() { q.operator(true) }

// Cont is an operator's `cont` on another monitor.
func (q *QMP) Cont() { q.operator(false) }

func (q *QMP) operator(pause bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.Paused == pause {
		return
	}
	if q.w == nil { // nobody connected yet: only the state changes
		q.Paused = pause
		return
	}
	q.setPaused(pause)
	q.w.Flush()
}

// IsPaused reports the fake guest's run state now.
func (q *QMP) IsPaused() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.Paused
}

// Counts returns how many stop commands stopped a running guest and how
// many cont commands resumed a paused one (the operator's excluded).
func (q *QMP) Counts() (stops, conts int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.stops, q.conts
}

// Commands returns the names of the commands received so far, in order.
func (q *QMP) Commands() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]string(nil), q.commands...)
}

// Quit drops the connection, as QEMU does when it exits.
func (q *QMP) Quit() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.conn != nil {
		q.conn.Close()
	}
}
