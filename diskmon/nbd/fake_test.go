package nbd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// memBackend is an in-memory Backend that records the order of events.
type memBackend struct {
	mu      sync.Mutex
	data    []byte
	events  *eventLog
	gate    chan struct{} // when set, WriteAt waits for a token
	entered chan struct{} // when set, WriteAt signals that it started
	syncErr error
	syncs   int
	dsyncs  int
}

func newMem(size int, ev *eventLog) *memBackend {
	return &memBackend{data: make([]byte, size), events: ev}
}

func (m *memBackend) Size() int64 { return int64(len(m.data)) }

func (m *memBackend) ReadAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return copy(p, m.data[off:]), nil
}

func (m *memBackend) WriteAt(p []byte, off int64) (int, error) {
	if m.entered != nil {
		m.entered <- struct{}{}
	}
	if m.gate != nil {
		<-m.gate
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events.add(fmt.Sprintf("write %d+%d", off, len(p)))
	return copy(m.data[off:], p), nil
}

func (m *memBackend) Sync() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.syncs++
	m.events.add("sync")
	return m.syncErr
}

func (m *memBackend) DataSync() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dsyncs++
	m.events.add("datasync")
	return m.syncErr
}

func (m *memBackend) Trim(off, length int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events.add(fmt.Sprintf("trim %d+%d", off, length))
	clear(m.data[off : off+length])
	return nil
}

func (m *memBackend) WriteZeroes(off, length int64, mayTrim bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events.add(fmt.Sprintf("zero %d+%d trim=%v", off, length, mayTrim))
	clear(m.data[off : off+length])
	return nil
}

// eventLog is an ordered record shared by the backend, OnChange and the server's
// side of the connection (replies), so that "before the reply" can be checked
// without timing.
type eventLog struct {
	mu sync.Mutex
	ev []string
}

func (l *eventLog) add(s string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.ev = append(l.ev, s)
	l.mu.Unlock()
}

func (l *eventLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	ev := l.ev
	l.ev = nil
	return ev
}

// loggingConn records every write the server makes once armed (the replies of the
// transmission phase).
type loggingConn struct {
	net.Conn
	log   *eventLog
	armed chan struct{}
}

func (c *loggingConn) Write(p []byte) (int, error) {
	select {
	case <-c.armed:
		if len(p) >= 4 {
			switch binary.BigEndian.Uint32(p) {
			case magicSimpleReply, magicStructReply:
				c.log.add("reply")
			}
		}
	default:
	}
	return c.Conn.Write(p)
}

// pipeServer serves b over a unix socketpair-like pipe (a real unix socket pair, so
// writes are not synchronous as with net.Pipe) and returns the client end.
func pipeServer(t testing.TB, b Backend, opts Options, ev *eventLog) (net.Conn, chan error) {
	t.Helper()
	ln, err := net.Listen("unix", t.TempDir()+"/p.sock")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cc, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sconn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	lc := &loggingConn{Conn: sconn, log: ev, armed: make(chan struct{})}
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	s := NewServer(b, opts)
	errc := make(chan error, 1)
	go func() { errc <- s.ServeConn(t.Context(), lc) }()
	t.Cleanup(func() {
		cc.Close()
		s.Close()
	})
	// Replies start after the handshake; arm the logger when the first request goes
	// out (tests call arm via the returned conn wrapper).
	armers.Store(cc, lc.armed)
	return cc, errc
}

var armers sync.Map

// clientOn negotiates on a pipeServer connection and arms its reply logger.
func clientOn(t testing.TB, c net.Conn, o ClientOptions) *Client {
	t.Helper()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	cl, err := NewClient(c, o)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Time{})
	if ch, ok := armers.Load(c); ok {
		close(ch.(chan struct{}))
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func wantErrno(t testing.TB, err error, errno uint32) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Errno != errno {
		t.Fatalf("got error %v, want %s", err, errnoName(errno))
	}
}

// raw is a hand-driven client for negotiation tests.
type raw struct {
	t testing.TB
	c net.Conn
}

func (r raw) read(n int) []byte {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	b := make([]byte, n)
	if _, err := io.ReadFull(r.c, b); err != nil {
		r.t.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

func (r raw) write(b []byte) {
	r.t.Helper()
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// greet reads the server greeting and sends client flags.
func (r raw) greet(flags uint32) {
	r.t.Helper()
	g := r.read(18)
	if binary.BigEndian.Uint64(g) != magicInit || binary.BigEndian.Uint64(g[8:]) != magicOpt {
		r.t.Fatalf("bad greeting % x", g)
	}
	if hf := binary.BigEndian.Uint16(g[16:]); hf != flagFixedNewstyle|flagNoZeroes {
		r.t.Fatalf("handshake flags %#x", hf)
	}
	r.write(binary.BigEndian.AppendUint32(nil, flags))
}

func (r raw) opt(opt uint32, data []byte) {
	r.t.Helper()
	b := binary.BigEndian.AppendUint64(nil, magicOpt)
	b = binary.BigEndian.AppendUint32(b, opt)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	r.write(append(b, data...))
}

func (r raw) reply(wantOpt uint32) (uint32, []byte) {
	r.t.Helper()
	h := r.read(20)
	if binary.BigEndian.Uint64(h) != magicOptReply {
		r.t.Fatalf("bad option reply magic % x", h)
	}
	if o := binary.BigEndian.Uint32(h[8:]); o != wantOpt {
		r.t.Fatalf("reply for option %d, want %d", o, wantOpt)
	}
	n := binary.BigEndian.Uint32(h[16:])
	return binary.BigEndian.Uint32(h[12:]), r.read(int(n))
}

// expectClosed checks that the server hung up.
func (r raw) expectClosed() {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	var b [1]byte
	n, err := r.c.Read(b[:])
	if err == nil || n != 0 {
		r.t.Fatalf("server kept the connection open (read %d bytes, err %v)", n, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		r.t.Fatal("server did not close the connection")
	}
}

func goData(name string, infos ...uint16) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(name)))
	b = append(b, name...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(infos)))
	for _, i := range infos {
		b = binary.BigEndian.AppendUint16(b, i)
	}
	return b
}
