package nbd

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

func TestNegotiation(t *testing.T) {
	m := newMem(1<<20, nil)
	c, errc := pipeServer(t, m, Options{ExportName: "disk0"}, nil)
	r := raw{t, c}
	r.greet(flagCFixedNewstyle | flagCNoZeroes)

	r.opt(optList, nil)
	typ, d := r.reply(optList)
	if typ != repServer || binary.BigEndian.Uint32(d) != 5 || string(d[4:]) != "disk0" {
		t.Fatalf("NBD_OPT_LIST: reply %d %q", typ, d)
	}
	if typ, _ = r.reply(optList); typ != repAck {
		t.Fatalf("NBD_OPT_LIST not ended by ACK: %#x", typ)
	}
	r.opt(optList, []byte{1})
	if typ, _ = r.reply(optList); typ != repErrInvalid {
		t.Fatalf("NBD_OPT_LIST with data: %#x", typ)
	}
	r.opt(optStartTLS, nil)
	if typ, _ = r.reply(optStartTLS); typ != repErrUnsup {
		t.Fatalf("STARTTLS: %#x", typ)
	}
	r.opt(77, []byte("whatever"))
	if typ, _ = r.reply(77); typ != repErrUnsup {
		t.Fatalf("unknown option: %#x", typ)
	}
	// Meta contexts need structured replies first, then select nothing.
	meta := binary.BigEndian.AppendUint32(nil, 5)
	meta = append(meta, "disk0"...)
	meta = binary.BigEndian.AppendUint32(meta, 1)
	meta = binary.BigEndian.AppendUint32(meta, 15)
	meta = append(meta, "base:allocation"...)
	r.opt(optSetMetaContext, meta)
	if typ, _ = r.reply(optSetMetaContext); typ != repErrInvalid {
		t.Fatalf("SET_META_CONTEXT before structured replies: %#x", typ)
	}
	r.opt(optStructuredReply, []byte{0})
	if typ, _ = r.reply(optStructuredReply); typ != repErrInvalid {
		t.Fatalf("STRUCTURED_REPLY with data: %#x", typ)
	}
	r.opt(optStructuredReply, nil)
	if typ, _ = r.reply(optStructuredReply); typ != repAck {
		t.Fatalf("STRUCTURED_REPLY: %#x", typ)
	}
	r.opt(optSetMetaContext, meta)
	if typ, _ = r.reply(optSetMetaContext); typ != repAck {
		t.Fatalf("SET_META_CONTEXT: %#x, want a bare ACK (no contexts)", typ)
	}
	r.opt(optListMetaContext, meta[:len(meta)-1]) // query runs past the option
	if typ, _ = r.reply(optListMetaContext); typ != repErrInvalid {
		t.Fatalf("truncated LIST_META_CONTEXT: %#x", typ)
	}
	// INFO and GO: unknown name, malformed data, then the real one.
	r.opt(optInfo, goData("other"))
	if typ, d = r.reply(optInfo); typ != repErrUnknown || !strings.Contains(string(d), "other") {
		t.Fatalf("INFO for unknown export: %#x %q", typ, d)
	}
	bad := goData("disk0", infoBlockSize)
	r.opt(optGo, bad[:len(bad)-1])
	if typ, _ = r.reply(optGo); typ != repErrInvalid {
		t.Fatalf("GO with a short info list: %#x", typ)
	}
	bad = binary.BigEndian.AppendUint32(nil, 1000) // name longer than the option
	bad = append(bad, 0, 0, 0, 0, 0, 0)
	r.opt(optGo, bad)
	if typ, _ = r.reply(optGo); typ != repErrInvalid {
		t.Fatalf("GO with an oversized name length: %#x", typ)
	}
	for _, opt := range []uint32{optInfo, optGo} {
		r.opt(opt, goData("disk0", infoBlockSize))
		var gotExport, gotBS bool
		for {
			typ, d := r.reply(opt)
			if typ == repAck {
				break
			}
			if typ != repInfo {
				t.Fatalf("option %d: reply %#x %q", opt, typ, d)
			}
			switch binary.BigEndian.Uint16(d) {
			case infoExport:
				gotExport = len(d) == 12 && binary.BigEndian.Uint64(d[2:]) == 1<<20 &&
					binary.BigEndian.Uint16(d[10:])&FlagSendDF != 0
			case infoBlockSize:
				gotBS = len(d) == 14 && binary.BigEndian.Uint32(d[2:]) == 1 &&
					binary.BigEndian.Uint32(d[6:]) == 4096 && binary.BigEndian.Uint32(d[10:]) == MaxPayload
			}
		}
		if !gotExport || !gotBS {
			t.Fatalf("option %d: export info %v, block size info %v", opt, gotExport, gotBS)
		}
	}
	// Transmission: a structured read.
	req := make([]byte, 28)
	binary.BigEndian.PutUint32(req[0:], magicRequest)
	binary.BigEndian.PutUint16(req[6:], uint16(OpRead))
	binary.BigEndian.PutUint64(req[8:], 0xc00c1e)
	binary.BigEndian.PutUint32(req[24:], 4)
	r.write(req)
	h := r.read(28 + 4)
	if binary.BigEndian.Uint32(h) != magicStructReply || binary.BigEndian.Uint16(h[4:]) != replyFlagDone ||
		binary.BigEndian.Uint16(h[6:]) != replyTypeOffsetData || binary.BigEndian.Uint64(h[8:]) != 0xc00c1e ||
		binary.BigEndian.Uint32(h[16:]) != 12 || binary.BigEndian.Uint64(h[20:]) != 0 {
		t.Fatalf("read reply % x", h)
	}
	// A bad request magic ends the connection.
	binary.BigEndian.PutUint32(req[0:], 0xdeadbeef)
	r.write(req)
	r.expectClosed()
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "magic") {
		t.Fatalf("ServeConn: %v, want a bad-magic error", err)
	}
}

func TestNegotiationEnds(t *testing.T) {
	cases := []struct {
		name    string
		run     func(r raw)
		wantErr string // "" for a clean end
	}{
		{"abort", func(r raw) {
			r.greet(flagCFixedNewstyle)
			r.opt(optAbort, []byte("ignored"))
			if typ, _ := r.reply(optAbort); typ != repAck {
				r.t.Fatalf("ABORT: %#x", typ)
			}
			r.expectClosed()
		}, ""},
		{"unknown client flags", func(r raw) {
			r.greet(1 << 5)
			r.expectClosed()
		}, "client flags"},
		{"bad option magic", func(r raw) {
			r.greet(flagCFixedNewstyle)
			r.write(make([]byte, 16))
			r.expectClosed()
		}, "magic"},
		{"oversized option", func(r raw) {
			r.greet(flagCFixedNewstyle)
			b := binary.BigEndian.AppendUint64(nil, magicOpt)
			b = binary.BigEndian.AppendUint32(b, optGo)
			b = binary.BigEndian.AppendUint32(b, 1<<30)
			r.write(b)
			r.expectClosed()
		}, "bytes of data"},
		{"export name unknown", func(r raw) {
			r.greet(flagCFixedNewstyle)
			r.opt(optExportName, []byte("nope"))
			r.expectClosed()
		}, "unknown export"},
		{"too many options", func(r raw) {
			r.greet(flagCFixedNewstyle)
			for i := 0; i < maxOptions; i++ {
				r.opt(optList, nil)
				r.reply(optList)
				r.reply(optList)
			}
			r.expectClosed() // without reading the next option

		}, "options"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, errc := pipeServer(t, newMem(4096, nil), Options{ExportName: "x"}, nil)
			tc.run(raw{t, c})
			err := <-errc
			if tc.wantErr == "" && err != nil {
				t.Fatalf("ServeConn: %v, want a clean end", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("ServeConn: %v, want an error about %q", err, tc.wantErr)
			}
		})
	}
}

func TestExportNameNoZeroes(t *testing.T) {
	for _, nz := range []bool{false, true} {
		c, _ := pipeServer(t, newMem(8192, nil), Options{}, nil)
		r := raw{t, c}
		f := uint32(flagCFixedNewstyle)
		if nz {
			f |= flagCNoZeroes
		}
		r.greet(f)
		r.opt(optExportName, []byte("any name is fine"))
		h := r.read(10)
		if binary.BigEndian.Uint64(h) != 8192 || binary.BigEndian.Uint16(h[8:])&FlagHasFlags == 0 {
			t.Fatalf("EXPORT_NAME reply % x", h)
		}
		if !nz {
			if z := r.read(124); string(z) != string(make([]byte, 124)) {
				t.Fatal("padding is not zero")
			}
		}
		// The next bytes are the reply to a flush: no padding in between.
		req := make([]byte, 28)
		binary.BigEndian.PutUint32(req[0:], magicRequest)
		binary.BigEndian.PutUint16(req[6:], uint16(OpFlush))
		binary.BigEndian.PutUint64(req[8:], 9)
		r.write(req)
		rep := r.read(16)
		if binary.BigEndian.Uint32(rep) != magicSimpleReply || binary.BigEndian.Uint64(rep[8:]) != 9 {
			t.Fatalf("flush reply % x (no_zeroes=%v)", rep, nz)
		}
	}
}

func TestHandshakeTimeout(t *testing.T) {
	c, errc := pipeServer(t, newMem(4096, nil), Options{HandshakeTimeout: 50 * time.Millisecond}, nil)
	r := raw{t, c}
	r.read(18) // greeting; then say nothing
	r.expectClosed()
	if err := <-errc; err == nil {
		t.Fatal("a silent client was not dropped")
	}
}
