package nbd

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"
)

// clientStream builds what a well-behaved client sends: negotiation and requests.
func clientStream(structured bool, reqs ...[]byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, flagCFixedNewstyle|flagCNoZeroes)
	opt := func(o uint32, d []byte) {
		b = binary.BigEndian.AppendUint64(b, magicOpt)
		b = binary.BigEndian.AppendUint32(b, o)
		b = binary.BigEndian.AppendUint32(b, uint32(len(d)))
		b = append(b, d...)
	}
	if structured {
		opt(optStructuredReply, nil)
	}
	opt(optGo, goData("", infoBlockSize))
	for _, r := range reqs {
		b = append(b, r...)
	}
	return b
}

func fuzzReq(op Op, flags uint16, off uint64, length uint32, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, magicRequest)
	b = binary.BigEndian.AppendUint16(b, flags)
	b = binary.BigEndian.AppendUint16(b, uint16(op))
	b = binary.BigEndian.AppendUint64(b, 1)
	b = binary.BigEndian.AppendUint64(b, off)
	b = binary.BigEndian.AppendUint32(b, length)
	return append(b, payload...)
}

// FuzzServer feeds arbitrary client bytes to a server: it must neither panic nor
// hang, and must end the connection when the bytes run out. The first byte picks
// full negotiation or transmission only (the kernel-driver mode).
func FuzzServer(f *testing.F) {
	reqs := [][]byte{
		fuzzReq(OpWrite, CmdFlagFUA, 512, 4, []byte("abcd")),
		fuzzReq(OpRead, CmdFlagDF, 0, 1024, nil),
		fuzzReq(OpFlush, 0, 0, 0, nil),
		fuzzReq(OpTrim, 0, 4096, 4096, nil),
		fuzzReq(OpWriteZeroes, CmdFlagNoHole, 0, 8192, nil),
		fuzzReq(OpRead, 0, 1<<40, 1, nil),
		fuzzReq(OpWrite, 0, 0, MaxPayload+1, nil),
		fuzzReq(OpBlockStatus, CmdFlagReqOne, 0, 512, nil),
		fuzzReq(OpDisc, 0, 0, 0, nil),
	}
	f.Add(append([]byte{0}, clientStream(true, reqs...)...))
	f.Add(append([]byte{0}, clientStream(false, reqs...)...))
	f.Add(append([]byte{1}, fuzzReq(OpWrite, 0, 0, 3, []byte("xyz"))...))
	f.Add([]byte{0, 0, 0, 0, 3})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		mode, in := in[0], in[1:]
		a, b := net.Pipe()
		s := NewServer(newMem(64<<10, nil), Options{HandshakeTimeout: 2 * time.Second})
		done := make(chan error, 1)
		go func() {
			if mode&1 == 0 {
				done <- s.ServeConn(context.Background(), a)
			} else {
				done <- s.ServeTransmission(context.Background(), a)
			}
		}()
		go io.Copy(io.Discard, b) // net.Pipe is synchronous: take every reply
		b.SetWriteDeadline(time.Now().Add(5 * time.Second))
		b.Write(in) // the server may hang up early; that is fine
		b.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("server still running 10 s after the client closed (input %d bytes)", len(in))
		}
	})
}
