package nbd

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeServer negotiates GO with structured replies by hand and then plays the given
// transmission bytes; it drains whatever the client sends.
func fakeServer(t testing.TB, size uint64, transmission func(c net.Conn)) net.Conn {
	a, b := net.Pipe()
	go func() {
		defer a.Close()
		w := func(p []byte) { a.Write(p) }
		g := binary.BigEndian.AppendUint64(nil, magicInit)
		g = binary.BigEndian.AppendUint64(g, magicOpt)
		w(binary.BigEndian.AppendUint16(g, flagFixedNewstyle|flagNoZeroes))
		var buf [16]byte
		io.ReadFull(a, buf[:4])
		optReply := func(opt, typ uint32, data []byte) {
			h := binary.BigEndian.AppendUint64(nil, magicOptReply)
			h = binary.BigEndian.AppendUint32(h, opt)
			h = binary.BigEndian.AppendUint32(h, typ)
			h = binary.BigEndian.AppendUint32(h, uint32(len(data)))
			w(append(h, data...))
		}
		for {
			if _, err := io.ReadFull(a, buf[:]); err != nil {
				return
			}
			opt := binary.BigEndian.Uint32(buf[8:])
			io.CopyN(io.Discard, a, int64(binary.BigEndian.Uint32(buf[12:])))
			if opt == optGo {
				info := binary.BigEndian.AppendUint16(nil, infoExport)
				info = binary.BigEndian.AppendUint64(info, size)
				info = binary.BigEndian.AppendUint16(info, FlagHasFlags)
				optReply(opt, repInfo, info)
				optReply(opt, repAck, nil)
				break
			}
			optReply(opt, repAck, nil)
		}
		// The replies go out once the client's first request is arriving:
		// Start registers a request before sending it, so its cookie is
		// known by then (a reply that came first would be for an unknown
		// cookie: CI saw it).
		if _, err := io.ReadFull(a, buf[:]); err != nil {
			return
		}
		go io.Copy(io.Discard, a)
		transmission(a)
	}()
	return b
}

func chunk(flags, typ uint16, cookie uint64, payload []byte) []byte {
	h := binary.BigEndian.AppendUint32(nil, magicStructReply)
	h = binary.BigEndian.AppendUint16(h, flags)
	h = binary.BigEndian.AppendUint16(h, typ)
	h = binary.BigEndian.AppendUint64(h, cookie)
	h = binary.BigEndian.AppendUint32(h, uint32(len(payload)))
	return append(h, payload...)
}

func dataChunk(flags uint16, cookie, off uint64, data []byte) []byte {
	return chunk(flags, replyTypeOffsetData, cookie, append(binary.BigEndian.AppendUint64(nil, off), data...))
}

// TestClientReadReassembly: chunks out of order and holes are put together; gaps,
// overlaps and chunks outside the request are errors.
func TestClientReadReassembly(t *testing.T) {
	hole := binary.BigEndian.AppendUint64(nil, 104)
	hole = binary.BigEndian.AppendUint32(hole, 4)
	cases := []struct {
		name   string
		chunks [][]byte
		want   string // data, or an error substring prefixed with "!"
	}{
		{"in order", [][]byte{dataChunk(replyFlagDone, 1, 100, []byte("abcdefgh"))}, "abcdefgh"},
		{"reordered with hole", [][]byte{
			chunk(0, replyTypeOffsetHole, 1, hole),
			dataChunk(0, 1, 100, []byte("abcd")),
			chunk(replyFlagDone, replyTypeNone, 1, nil),
		}, "abcd\x00\x00\x00\x00"},
		{"gap", [][]byte{dataChunk(0, 1, 100, []byte("ab")), dataChunk(replyFlagDone, 1, 104, []byte("efgh"))}, "!gap"},
		{"overlap", [][]byte{dataChunk(0, 1, 100, []byte("abcd")), dataChunk(0, 1, 102, []byte("cd")), dataChunk(replyFlagDone, 1, 104, []byte("ef"))}, "!overlap"},
		{"short", [][]byte{dataChunk(replyFlagDone, 1, 100, []byte("abc"))}, "!covers 3 of 8"},
		{"outside", [][]byte{dataChunk(replyFlagDone, 1, 96, []byte("abcdefgh"))}, "!outside"},
		{"error chunk", [][]byte{chunk(replyFlagDone, replyTypeError, 1, append(binary.BigEndian.AppendUint32(nil, EIO), 0, 2, 'n', 'o'))}, "!EIO: no"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeServer(t, 1<<20, func(a net.Conn) {
				for _, ch := range tc.chunks {
					a.Write(ch)
				}
				time.Sleep(50 * time.Millisecond) // let the client read before the hang-up
			})
			cl, err := NewClient(c, ClientOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer cl.c.Close()
			buf := make([]byte, 8)
			err = cl.Do(Request{Type: OpRead, Offset: 100, Length: 8, Data: buf})
			if strings.HasPrefix(tc.want, "!") {
				if err == nil || !strings.Contains(err.Error(), tc.want[1:]) {
					t.Fatalf("got %v, want an error about %q", err, tc.want[1:])
				}
				return
			}
			if err != nil || string(buf) != tc.want {
				t.Fatalf("read %q, %v; want %q", buf, err, tc.want)
			}
		})
	}
}

// FuzzClient: whatever a server sends after negotiation, a READ and a BLOCK_STATUS
// end (with data or an error) and nothing panics.
func FuzzClient(f *testing.F) {
	f.Add(dataChunk(replyFlagDone, 1, 0, []byte("abcdefgh")))
	f.Add(chunk(replyFlagDone, replyTypeBlockStatus, 2, make([]byte, 12)))
	f.Add(append(binary.BigEndian.AppendUint32(nil, magicSimpleReply), make([]byte, 12)...))
	f.Fuzz(func(t *testing.T, in []byte) {
		c := fakeServer(t, 1<<20, func(a net.Conn) { a.Write(in) })
		cl, err := NewClient(c, ClientOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cl.contexts[0] = "base:allocation"
		done := make(chan struct{})
		go func() {
			defer close(done)
			p1, err1 := cl.Start(Request{Type: OpRead, Length: 8, Data: make([]byte, 8)})
			p2, err2 := cl.Start(Request{Type: OpBlockStatus, Length: 4096})
			if err1 == nil {
				p1.Wait()
			}
			if err2 == nil {
				p2.Wait()
			}
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("client requests did not end after the server hung up")
		}
		cl.c.Close()
	})
}

// failingWrites is a connection whose writes fail once broken is set.
type failingWrites struct {
	net.Conn
	broken atomic.Bool
}

func (c *failingWrites) Write(p []byte) (int, error) {
	if c.broken.Load() {
		return 0, errors.New("injected write failure")
	}
	return c.Conn.Write(p)
}

// TestClientSendFailureWhileReading: a send that fails (on the caller's
// goroutine) while the reader is half-way through a READ reply must not end
// that READ under the reader: the caller would get its buffer back while
// the reader still writes into it (the race detector sees it, make
// test-race). The READ ends with the failure once the reader has stopped.
func TestClientSendFailureWhileReading(t *testing.T) {
	halfSent := make(chan struct{})
	c := fakeServer(t, 1<<20, func(a net.Conn) {
		// A chunk of 8 data bytes of which only 4 arrive.
		whole := dataChunk(replyFlagDone, 1, 100, []byte("abcdefgh"))
		a.Write(whole[:len(whole)-4])
		close(halfSent)
		time.Sleep(5 * time.Second) // the client hangs up long before
	})
	fw := &failingWrites{Conn: c}
	cl, err := NewClient(fw, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.c.Close()
	buf := make([]byte, 8)
	read, err := cl.Start(Request{Type: OpRead, Offset: 100, Length: 8, Data: buf})
	if err != nil {
		t.Fatal(err)
	}
	<-halfSent
	time.Sleep(20 * time.Millisecond) // the reader is now blocked in the data
	fw.broken.Store(true)
	flush, err := cl.Start(Request{Type: OpFlush})
	if err != nil {
		t.Fatal(err)
	}
	if err := flush.Wait(); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Errorf("flush: %v, want the send failure", err)
	}
	werr := read.Wait()
	if werr == nil || !strings.Contains(werr.Error(), "injected") {
		t.Errorf("read: %v, want the send failure", werr)
	}
	_ = string(buf) // the caller owns buf again
}
