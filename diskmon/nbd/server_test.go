package nbd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestReadWriteVariants(t *testing.T) {
	for _, o := range []ClientOptions{
		{},
		{NoStructuredReplies: true},
		{UseExportName: true},
		{UseExportName: true, NoStructuredReplies: true},
	} {
		t.Run(fmt.Sprintf("%+v", o), func(t *testing.T) {
			b, img := newImage(t, 4<<20)
			_, sock := startServer(t, b, Options{})
			c := dial(t, sock, o)
			if c.Size() != 4<<20 {
				t.Fatalf("size %d", c.Size())
			}
			if c.Structured() == o.NoStructuredReplies {
				t.Fatalf("structured=%v with %+v", c.Structured(), o)
			}
			data := bytes.Repeat([]byte("xascript"), 64<<10) // 512 KiB
			if _, err := c.WriteAt(data, 100_001); err != nil {
				t.Fatal(err)
			}
			if err := c.Flush(); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(data)+2)
			if _, err := c.ReadAt(got, 100_000); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[1:len(data)+1], data) {
				t.Fatal("read back differs from what was written")
			}
			onDisk, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(onDisk[100_001:100_001+len(data)], data) || onDisk[100_000] != got[0] {
				t.Fatal("image file differs from what was written")
			}
			// A zero-length read and write are harmless no-ops.
			if err := c.Do(Request{Type: OpRead, Offset: 5, Data: []byte{}}); err != nil {
				t.Fatal(err)
			}
			if err := c.Do(Request{Type: OpWrite, Offset: 5, Data: []byte{}}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestTransmissionFlags(t *testing.T) {
	base := uint16(FlagHasFlags | FlagSendFlush | FlagSendFUA | FlagCanMultiConn)
	for _, tc := range []struct {
		ro, structured bool
		want           uint16
	}{
		{false, true, base | FlagSendTrim | FlagSendWriteZeroes | FlagSendDF},
		{false, false, base | FlagSendTrim | FlagSendWriteZeroes},
		{true, true, base | FlagReadOnly | FlagSendDF},
		{true, false, base | FlagReadOnly},
	} {
		c, _ := pipeServer(t, newMem(1<<20, nil), Options{ReadOnly: tc.ro}, nil)
		cl := clientOn(t, c, ClientOptions{NoStructuredReplies: !tc.structured})
		if cl.Flags() != tc.want {
			t.Errorf("ro=%v structured=%v: flags %#x, want %#x", tc.ro, tc.structured, cl.Flags(), tc.want)
		}
	}
}

// TestFlushAndFUAOrder checks, from one ordered log written by the backend, OnChange
// and the server's socket, that FLUSH syncs before its reply, a FUA write is synced
// (fdatasync) before its reply, and OnChange runs after the backend and before the
// reply.
func TestFlushAndFUAOrder(t *testing.T) {
	ev := &eventLog{}
	m := newMem(1<<20, ev)
	var changes []string
	var cmu sync.Mutex
	c, _ := pipeServer(t, m, Options{OnChange: func(op Op, off, length uint64) {
		ev.add(fmt.Sprintf("change %s %d+%d", op, off, length))
		cmu.Lock()
		changes = append(changes, op.String())
		cmu.Unlock()
	}, OnWrite: func(off uint64, data []byte) {
		ev.add(fmt.Sprintf("data %d+%d", off, len(data)))
	}}, ev)
	cl := clientOn(t, c, ClientOptions{})
	step := func(name string, r Request, want ...string) {
		t.Helper()
		ev.take()
		if err := cl.Do(r); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := ev.take(); !slices.Equal(got, want) {
			t.Fatalf("%s: events %q, want %q", name, got, want)
		}
	}
	step("write", Request{Type: OpWrite, Offset: 512, Length: 4, Data: []byte("abcd")},
		"write 512+4", "data 512+4", "change WRITE 512+4", "reply")
	step("fua write", Request{Type: OpWrite, Flags: CmdFlagFUA, Offset: 4096, Length: 2, Data: []byte("ef")},
		"write 4096+2", "datasync", "data 4096+2", "change WRITE 4096+2", "reply")
	step("flush", Request{Type: OpFlush},
		"sync", "change FLUSH 0+0", "reply")
	step("trim fua", Request{Type: OpTrim, Flags: CmdFlagFUA, Offset: 8192, Length: 4096},
		"trim 8192+4096", "datasync", "change TRIM 8192+4096", "reply")
	step("zeroes", Request{Type: OpWriteZeroes, Offset: 0, Length: 1024},
		"zero 0+1024 trim=true", "change WRITE_ZEROES 0+1024", "reply")
	step("zeroes no hole", Request{Type: OpWriteZeroes, Flags: CmdFlagNoHole, Offset: 0, Length: 1024},
		"zero 0+1024 trim=false", "change WRITE_ZEROES 0+1024", "reply")
	step("read", Request{Type: OpRead, Offset: 4096, Length: 2, Data: make([]byte, 2)}, "reply")
	step("read fua", Request{Type: OpRead, Flags: CmdFlagFUA, Offset: 4096, Length: 2, Data: make([]byte, 2)}, "reply")
	// Zero-length changes change nothing and are not reported.
	step("empty trim", Request{Type: OpTrim, Offset: 0, Length: 0}, "reply")
}

// TestErrors covers every refusal; the connection must stay usable after each.
func TestErrors(t *testing.T) {
	const size = 1 << 20
	for _, structured := range []bool{true, false} {
		t.Run(fmt.Sprintf("structured=%v", structured), func(t *testing.T) {
			c, _ := pipeServer(t, newMem(size, nil), Options{}, nil)
			cl := clientOn(t, c, ClientOptions{NoStructuredReplies: !structured})
			big := uint32(MaxPayload + 1)
			overflowReadErr := uint32(EINVAL)
			if structured {
				overflowReadErr = EOVERFLOW
			}
			cases := []struct {
				name  string
				r     Request
				errno uint32
			}{
				{"read past end", Request{Type: OpRead, Offset: size - 1, Length: 2, Data: make([]byte, 2)}, EINVAL},
				{"read offset overflow", Request{Type: OpRead, Offset: math.MaxUint64, Length: 2, Data: make([]byte, 2)}, EINVAL},
				{"write past end", Request{Type: OpWrite, Offset: size, Length: 1, Data: []byte{1}}, ENOSPC},
				{"trim past end", Request{Type: OpTrim, Offset: size - 1, Length: 2}, EINVAL},
				{"zeroes past end", Request{Type: OpWriteZeroes, Offset: math.MaxUint64 - 1, Length: 4}, ENOSPC},
				{"oversized read", Request{Type: OpRead, Offset: 0, Length: big, Data: make([]byte, big)}, overflowReadErr},
				{"oversized write", Request{Type: OpWrite, Offset: 0, Length: big, Data: make([]byte, big)}, EINVAL},
				{"unknown command", Request{Type: 42}, EINVAL},
				{"cache not offered", Request{Type: OpCache, Length: 512}, EINVAL},
				{"block status without context", Request{Type: OpBlockStatus, Length: 512}, EINVAL},
				{"unknown flag", Request{Type: OpFlush, Flags: 1 << 9}, EINVAL},
				{"no-hole on write", Request{Type: OpWrite, Flags: CmdFlagNoHole, Length: 1, Data: []byte{1}}, EINVAL},
				{"fast zero not offered", Request{Type: OpWriteZeroes, Flags: CmdFlagFastZero, Length: 512}, EINVAL},
				{"req-one on read", Request{Type: OpRead, Flags: CmdFlagReqOne, Length: 1, Data: []byte{0}}, EINVAL},
			}
			if !structured {
				cases = append(cases, struct {
					name  string
					r     Request
					errno uint32
				}{"DF without structured replies", Request{Type: OpRead, Flags: CmdFlagDF, Length: 1, Data: []byte{0}}, EINVAL})
			}
			for _, tc := range cases {
				err := cl.Do(tc.r)
				var e *Error
				if !errors.As(err, &e) || e.Errno != tc.errno {
					t.Errorf("%s: got %v, want %s", tc.name, err, errnoName(tc.errno))
				}
				if structured && e != nil && e.Message == "" {
					t.Errorf("%s: structured error without a message", tc.name)
				}
				// Still in step with the server?
				buf := make([]byte, 3)
				if err := cl.Do(Request{Type: OpRead, Offset: 7, Length: 3, Data: buf}); err != nil {
					t.Fatalf("after %s: connection broken: %v", tc.name, err)
				}
			}
			if structured {
				if err := cl.Do(Request{Type: OpRead, Flags: CmdFlagDF, Length: 64 << 10, Data: make([]byte, 64<<10)}); err != nil {
					t.Errorf("DF read: %v", err)
				}
			}
		})
	}
}

func TestReadOnly(t *testing.T) {
	m := newMem(1<<20, nil)
	m.data[10] = 0x5a
	c, _ := pipeServer(t, m, Options{ReadOnly: true}, nil)
	cl := clientOn(t, c, ClientOptions{})
	wantErrno(t, cl.Do(Request{Type: OpWrite, Offset: 10, Length: 1, Data: []byte{1}}), EPERM)
	wantErrno(t, cl.Do(Request{Type: OpTrim, Offset: 0, Length: 512}), EPERM)
	wantErrno(t, cl.Do(Request{Type: OpWriteZeroes, Offset: 0, Length: 512}), EPERM)
	if err := cl.Flush(); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := cl.ReadAt(b, 10); err != nil || b[0] != 0x5a {
		t.Fatalf("read %#x, %v", b[0], err)
	}
	if m.syncs != 0 {
		t.Errorf("read-only export synced the backend %d times", m.syncs)
	}
}

func TestStickySyncFailure(t *testing.T) {
	m := newMem(1<<20, nil)
	c, _ := pipeServer(t, m, Options{}, nil)
	cl := clientOn(t, c, ClientOptions{})
	m.mu.Lock()
	m.syncErr = syscall.EIO
	m.mu.Unlock()
	wantErrno(t, cl.Flush(), EIO)
	m.mu.Lock()
	m.syncErr = nil
	m.mu.Unlock()
	// The backend says all is well now, but what was dirty at the failure may be gone.
	wantErrno(t, cl.Flush(), EIO)
	wantErrno(t, cl.Do(Request{Type: OpWrite, Flags: CmdFlagFUA, Length: 1, Data: []byte{1}}), EIO)
}

func TestMultiConn(t *testing.T) {
	b, _ := newImage(t, 1<<20)
	_, sock := startServer(t, b, Options{})
	c1 := dial(t, sock, ClientOptions{})
	c2 := dial(t, sock, ClientOptions{NoStructuredReplies: true})
	if c1.Flags()&FlagCanMultiConn == 0 {
		t.Fatal("multi-conn not advertised")
	}
	var wg sync.WaitGroup
	for i, c := range []*Client{c1, c2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				off := int64(i*512<<10 + j*4096)
				if _, err := c.WriteAt(bytes.Repeat([]byte{byte(i + 1)}, 4096), off); err != nil {
					t.Error(err)
					return
				}
			}
			if err := c.Flush(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// Each connection sees the other's writes.
	for i, c := range []*Client{c2, c1} {
		other := 1 - i
		buf := make([]byte, 50*4096)
		if _, err := c.ReadAt(buf, int64(other*512<<10)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, bytes.Repeat([]byte{byte(other + 1)}, len(buf))) {
			t.Fatalf("connection %d does not see connection %d's writes", 1-other, other)
		}
	}
}

// TestDisconnectDrains sends writes that the backend holds, then NBD_CMD_DISC: every
// write must still be applied and answered before the server closes.
func TestDisconnectDrains(t *testing.T) {
	m := newMem(1<<20, nil)
	m.gate = make(chan struct{})
	m.entered = make(chan struct{}, 64)
	c, errc := pipeServer(t, m, Options{}, nil)
	cl := clientOn(t, c, ClientOptions{})
	const n = 8
	var ps []*Pending
	for i := 0; i < n; i++ {
		p, err := cl.Start(Request{Type: OpWrite, Offset: uint64(i) * 4096, Length: 4096, Data: bytes.Repeat([]byte{byte(i + 1)}, 4096)})
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	<-m.entered // at least one write is inside the backend
	var h [requestHeaderLen]byte
	binary.BigEndian.PutUint32(h[0:], magicRequest)
	binary.BigEndian.PutUint16(h[6:], uint16(OpDisc))
	cl.wmu.Lock()
	if _, err := cl.c.Write(h[:]); err != nil {
		t.Fatal(err)
	}
	cl.wmu.Unlock()
	for i := 0; i < n; i++ {
		m.gate <- struct{}{}
	}
	for i, p := range ps {
		if err := p.Wait(); err != nil {
			t.Fatalf("write %d after DISC: %v", i, err)
		}
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("ServeConn after DISC: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("server did not end the connection after DISC")
	}
	for i := 0; i < n; i++ {
		if m.data[i*4096] != byte(i+1) {
			t.Fatalf("write %d not applied", i)
		}
	}
}

// TestCloseDrains: Server.Close answers what is in flight, closes, then syncs.
func TestCloseDrains(t *testing.T) {
	ev := &eventLog{}
	m := newMem(1<<20, ev)
	m.gate = make(chan struct{})
	m.entered = make(chan struct{}, 64)
	s := NewServer(m, Options{Logf: t.Logf})
	dir := t.TempDir()
	l, err := ListenUnix(filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(t.Context(), l) }()
	cl := dial(t, filepath.Join(dir, "s"), ClientOptions{})
	p, err := cl.Start(Request{Type: OpWrite, Offset: 0, Length: 3, Data: []byte("abc")})
	if err != nil {
		t.Fatal(err)
	}
	<-m.entered
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	m.gate <- struct{}{}
	if err := p.Wait(); err != nil {
		t.Fatalf("in-flight write during Close: %v", err)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close did not return")
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	evs := ev.take()
	if len(evs) < 2 || evs[0] != "write 0+3" || evs[len(evs)-1] != "sync" {
		t.Fatalf("events %q: want the write, then a final sync", evs)
	}
	// New requests fail: the connection is gone.
	if err := cl.Flush(); err == nil {
		t.Fatal("request after Close succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "s")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file left behind: %v", err)
	}
}

func TestServeTransmission(t *testing.T) {
	m := newMem(1<<20, nil)
	a, b := net.Pipe()
	s := NewServer(m, Options{})
	errc := make(chan error, 1)
	go func() { errc <- s.ServeTransmission(t.Context(), a) }()
	// The kernel's NBD driver speaks simple replies from the first byte.
	cl := NewTransmissionClient(b, 1<<20, s.TransmissionFlags())
	if err := cl.Flush(); err != nil {
		t.Fatalf("flush on a transmission-only connection: %v", err)
	}
	if f := s.TransmissionFlags(); f&(FlagHasFlags|FlagSendFlush|FlagSendFUA|FlagSendTrim|FlagSendWriteZeroes) != FlagHasFlags|FlagSendFlush|FlagSendFUA|FlagSendTrim|FlagSendWriteZeroes || f&FlagSendDF != 0 {
		t.Errorf("transmission flags %#x: want HAS_FLAGS, SEND_FLUSH, SEND_FUA, SEND_TRIM, SEND_WRITE_ZEROES and no DF (no structured replies)", f)
	}
	if _, err := cl.WriteAt([]byte("kernel"), 100); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 6)
	if _, err := cl.ReadAt(got, 100); err != nil || string(got) != "kernel" {
		t.Fatalf("read %q, %v", got, err)
	}
	cl.Close()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestFileBackendTrimAndZeroes(t *testing.T) {
	b, img := newImage(t, 4<<20)
	_, sock := startServer(t, b, Options{})
	c := dial(t, sock, ClientOptions{})
	blocks := func() int64 {
		var st syscall.Stat_t
		if err := syscall.Stat(img, &st); err != nil {
			t.Fatal(err)
		}
		return st.Blocks
	}
	before := blocks()
	if err := c.Trim(1<<20, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	afterTrim := blocks()
	if afterTrim > before-(1<<20)/512 {
		t.Errorf("trim of 1 MiB freed %d sectors (before %d, after %d); want a punched hole", before-afterTrim, before, afterTrim)
	}
	if err := c.WriteZeroes(2<<20, 1<<20, false); err != nil {
		t.Fatal(err)
	}
	if blocks() >= afterTrim {
		t.Errorf("write-zeroes without NO_HOLE did not punch a hole")
	}
	// NO_HOLE must leave the range allocated, yet zero.
	afterHole := blocks()
	if err := c.WriteZeroes(1<<20, 1<<20, true); err != nil {
		t.Fatal(err)
	}
	if blocks() < afterHole+(1<<20)/512 {
		t.Errorf("write-zeroes with NO_HOLE left the range unallocated")
	}
	buf := make([]byte, 2<<20)
	if _, err := c.ReadAt(buf, 1<<20); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, make([]byte, len(buf))) {
		t.Fatal("zeroed range does not read back as zeroes")
	}
	st, err := os.Stat(img)
	if err != nil || st.Size() != 4<<20 {
		t.Fatalf("image size changed: %v %v", st.Size(), err)
	}
}

func TestOpenFile(t *testing.T) {
	_, img := newImage(t, 1<<20)
	if _, err := OpenFile(img, false); err == nil {
		t.Fatal("second writable open of a served image succeeded; want the flock to refuse it")
	}
	if _, err := OpenFile(t.TempDir(), false); err == nil {
		t.Fatal("opened a directory as an image")
	}
	if _, err := OpenFile(filepath.Join(t.TempDir(), "missing"), true); err == nil {
		t.Fatal("opened a missing image")
	}
}

func TestListenUnix(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "s.sock")
	l, err := ListenUnix(p)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want 0600", st.Mode().Perm())
	}
	if _, err := ListenUnix(p); err == nil {
		t.Error("ListenUnix replaced a live socket")
	}
	// A stale socket (nobody listening) is replaced.
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	l2, err := ListenUnix(p)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	l2.Close()
	// Anything else is left alone.
	f := filepath.Join(dir, "file")
	os.WriteFile(f, []byte("keep"), 0o600)
	if _, err := ListenUnix(f); err == nil {
		t.Error("ListenUnix replaced a regular file")
	}
	if b, _ := os.ReadFile(f); string(b) != "keep" {
		t.Error("regular file was modified")
	}
}

func TestReadOnlyFileBackend(t *testing.T) {
	img := filepath.Join(t.TempDir(), "ro.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	fb, err := OpenFile(img, true)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	_, sock := startServer(t, fb, Options{ExportName: "ro"})
	c := dial(t, sock, ClientOptions{}) // the default export is the export
	if c.Flags()&FlagReadOnly == 0 {
		t.Fatal("read-only file served writable")
	}
	wantErrno(t, c.Do(Request{Type: OpWrite, Length: 1, Data: []byte{1}}), EPERM)
}
