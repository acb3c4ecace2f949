package qemu

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrGone is wrapped by every error after QEMU closed the QMP connection or
// its process vanished (it exited, was killed, or quit).
var ErrGone = errors.New("QEMU has gone away (exited, was killed or quit)")

// ErrNotQMP is wrapped by Dial's error when the socket does not speak QMP.
var ErrNotQMP = errors.New("not a QMP socket")

// Error is an error reply to a QMP command.
type Error struct {
	Command string
	Class   string
	Desc    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("qmp %s: %s: %s", e.Command, e.Class, e.Desc)
}

// Event is an asynchronous QMP event.
type Event struct {
	Name string
	Data json.RawMessage
}

// message is any line the server sends.
type message struct {
	QMP    *json.RawMessage `json:"QMP"`
	Return json.RawMessage  `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
	ID    json.RawMessage `json:"id"`
}

// Client is a QMP connection. Commands are serialised; events are handed to
// the OnEvent function given to Dial from the reader goroutine.
type Client struct {
	path    string
	conn    *net.UnixConn
	timeout time.Duration
	onEvent func(Event)

	mu     sync.Mutex // one command at a time
	nextID uint64
	msgs   chan message  // replies (and the greeting) from the reader
	done   chan struct{} // closed when the reader stops
	err    error         // why the reader stopped; set before done is closed
	gone   atomic.Bool
	closed atomic.Bool
}

// Dial connects to the QMP socket at path, reads the greeting and enters
// command mode. timeout bounds the greeting and every later command.
// onEvent (may be nil) receives events; it runs on the reader goroutine and
// must not block or call the Client.
func Dial(path string, timeout time.Duration, onEvent func(Event)) (*Client, error) {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("qmp %s: socket does not exist (is QEMU running with -qmp unix:%s,server,nowait?)", path, path)
	case err != nil:
		return nil, fmt.Errorf("qmp %s: %w", path, err)
	case st.Mode()&os.ModeSocket == 0:
		return nil, fmt.Errorf("qmp %s: %w: it is a %s, not a unix socket", path, ErrNotQMP, fileKind(st.Mode()))
	}
	c, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		switch {
		case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
			return nil, fmt.Errorf("qmp %s: permission denied (QEMU's socket belongs to another user; run as that user or change its mode): %w", path, err)
		case errors.Is(err, syscall.ECONNREFUSED):
			return nil, fmt.Errorf("qmp %s: connection refused: nothing listens on the socket (QEMU exited and left it behind?): %w", path, err)
		}
		return nil, fmt.Errorf("qmp %s: %w", path, err)
	}
	q := &Client{
		path:    path,
		conn:    c.(*net.UnixConn),
		timeout: timeout,
		onEvent: onEvent,
		msgs:    make(chan message, 1),
		done:    make(chan struct{}),
	}
	go q.read()
	if err := q.handshake(); err != nil {
		q.Close()
		return nil, err
	}
	return q, nil
}

func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m.IsRegular():
		return "regular file"
	case m&os.ModeNamedPipe != 0:
		return "FIFO"
	}
	return "special file"
}

func (q *Client) handshake() error {
	t := time.NewTimer(q.timeout)
	defer t.Stop()
	select {
	case m := <-q.msgs:
		if m.QMP == nil {
			return fmt.Errorf("qmp %s: %w: first message is not a QMP greeting", q.path, ErrNotQMP)
		}
	case <-q.done:
		if errors.Is(q.err, ErrGone) {
			return fmt.Errorf("qmp %s: %w: closed before any greeting", q.path, ErrNotQMP)
		}
		return fmt.Errorf("qmp %s: %w: %v", q.path, ErrNotQMP, q.err)
	case <-t.C:
		return fmt.Errorf("qmp %s: %w: no greeting within %v (or QEMU is serving another QMP client on it)", q.path, ErrNotQMP, q.timeout)
	}
	if _, err := q.Execute("qmp_capabilities", nil); err != nil {
		return err
	}
	return nil
}

// read runs until the connection fails, passing replies to msgs and events
// to onEvent.
func (q *Client) read() {
	r := bufio.NewReaderSize(q.conn, 64<<10)
	var err error
	for {
		var line []byte
		line, err = r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var m message
			if jerr := json.Unmarshal(line, &m); jerr != nil {
				err = fmt.Errorf("%w: bad JSON from server: %v", ErrNotQMP, jerr)
				break
			}
			if m.Event != "" {
				if q.onEvent != nil {
					q.onEvent(Event{Name: m.Event, Data: m.Data})
				}
				continue
			}
			select {
			case q.msgs <- m:
			case <-time.After(q.timeout):
				// Nobody waits (a command timed out): drop the reply.
			}
		}
		if err != nil {
			break
		}
	}
	if q.closed.Load() {
		err = net.ErrClosed
	} else {
		err = ErrGone
	}
	q.err = err
	q.gone.Store(true)
	close(q.done)
}

// Gone reports whether the connection has ended (QEMU exited or Close ran).
// It is cheap enough to call before every memory read.
func (q *Client) Gone() bool { return q.gone.Load() }

// Execute runs one command and returns its "return" value.
func (q *Client) Execute(cmd string, args any) (json.RawMessage, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.gone.Load() {
		return nil, fmt.Errorf("qmp %s: %w", cmd, q.err)
	}
	q.nextID++
	id := q.nextID
	req := map[string]any{"execute": cmd, "id": id}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("qmp %s: %w", cmd, err)
	}
	q.conn.SetWriteDeadline(time.Now().Add(q.timeout))
	if _, err := q.conn.Write(append(b, '\n')); err != nil {
		if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
			return nil, fmt.Errorf("qmp %s: %w", cmd, ErrGone)
		}
		return nil, fmt.Errorf("qmp %s: write: %w", cmd, err)
	}
	t := time.NewTimer(q.timeout)
	defer t.Stop()
	want := fmt.Sprint(id)
	for {
		select {
		case m := <-q.msgs:
			if string(m.ID) != want {
				continue // a late reply to a command that timed out
			}
			if m.Error != nil {
				return nil, &Error{Command: cmd, Class: m.Error.Class, Desc: m.Error.Desc}
			}
			if m.Return == nil {
				return nil, fmt.Errorf("qmp %s: reply has neither return nor error", cmd)
			}
			return m.Return, nil
		case <-q.done:
			return nil, fmt.Errorf("qmp %s: %w", cmd, q.err)
		case <-t.C:
			return nil, fmt.Errorf("qmp %s: no reply within %v", cmd, q.timeout)
		}
	}
}

// HMP runs a human-monitor-command and returns its text, with the
// monitor's \r\n line ends turned into \n.
func (q *Client) HMP(line string) (string, error) {
	raw, err := q.Execute("human-monitor-command", map[string]string{"command-line": line})
	if err != nil {
		return "", err
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("qmp human-monitor-command %q: %w", line, err)
	}
	return string(bytes.ReplaceAll([]byte(s), []byte("\r\n"), []byte("\n"))), nil
}

// PeerPID is the pid of the process at the other end of the socket (QEMU),
// from SO_PEERCRED.
func (q *Client) PeerPID() (int, error) {
	rc, err := q.conn.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, fmt.Errorf("qmp %s: SO_PEERCRED: %w", q.path, cerr)
	}
	return int(cred.Pid), nil
}

// Close ends the connection. It is idempotent.
func (q *Client) Close() error {
	if q.closed.Swap(true) {
		return nil
	}
	err := q.conn.Close()
	<-q.done
	return err
}
