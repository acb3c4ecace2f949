package nbd

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// serverConn is one client connection.
type serverConn struct {
	s  *Server
	c  net.Conn
	br *bufio.Reader
	id uint64

	wmu sync.Mutex // one reply at a time on the socket

	mu           sync.Mutex // phase changes against shutdown
	transmitting bool
	stopping     atomic.Bool

	structured bool
	noZeroes   bool
	transFlags uint16

	slots  chan struct{} // in-flight request count
	budget byteBudget    // in-flight payload bytes
	wg     sync.WaitGroup

	logged   atomic.Int32 // refused requests logged so far
	writeErr atomic.Pointer[error]
}

// maxLogged bounds the diagnostics one connection can produce: a client choosing its
// requests could otherwise fill a log.
const maxLogged = 20

func newServerConn(s *Server, c net.Conn) *serverConn {
	sc := &serverConn{
		s:     s,
		c:     c,
		id:    s.nextID.Add(1),
		br:    bufio.NewReaderSize(c, 256<<10),
		slots: make(chan struct{}, s.opts.MaxInFlight),
	}
	sc.budget.init(inFlightBytes)
	return sc
}

func (sc *serverConn) logf(format string, args ...any) {
	if sc.logged.Add(1) <= maxLogged {
		sc.s.logf("nbd: connection %d: "+format, append([]any{sc.id}, args...)...)
	}
}

// shutdown ends the connection cleanly: the reader stops at the next request
// boundary (the read deadline wakes it), requests already read still get their
// replies, but a client that stopped reading cannot hold the drain for long.
func (sc *serverConn) shutdown() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.stopping.Store(true)
	if sc.transmitting {
		sc.c.SetReadDeadline(time.Now())
		sc.c.SetWriteDeadline(time.Now().Add(drainWriteTimeout))
	} else {
		sc.c.SetDeadline(time.Now())
	}
}

func (sc *serverConn) enterTransmission() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.transmitting = true
	sc.c.SetDeadline(time.Time{})
	if sc.stopping.Load() {
		sc.c.SetReadDeadline(time.Now())
		sc.c.SetWriteDeadline(time.Now().Add(drainWriteTimeout))
	}
}

var errAbort = errors.New("client aborted the negotiation")

// handshake runs fixed newstyle negotiation. done reports that the session ended
// cleanly without transmission (NBD_OPT_ABORT).
func (sc *serverConn) handshake() (done bool, err error) {
	sc.c.SetDeadline(time.Now().Add(sc.s.opts.HandshakeTimeout))
	var hello [18]byte
	binary.BigEndian.PutUint64(hello[0:], magicInit)
	binary.BigEndian.PutUint64(hello[8:], magicOpt)
	binary.BigEndian.PutUint16(hello[16:], flagFixedNewstyle|flagNoZeroes)
	if _, err := sc.c.Write(hello[:]); err != nil {
		return false, fmt.Errorf("send greeting: %w", err)
	}
	var cf [4]byte
	if _, err := io.ReadFull(sc.br, cf[:]); err != nil {
		return false, fmt.Errorf("read client flags: %w", err)
	}
	flags := binary.BigEndian.Uint32(cf[:])
	if flags&^(flagCFixedNewstyle|flagCNoZeroes) != 0 {
		return false, fmt.Errorf("client flags %#x include unknown bits", flags)
	}
	sc.noZeroes = flags&flagCNoZeroes != 0

	var hdr [16]byte
	for i := 0; ; i++ {
		if i >= maxOptions {
			return false, fmt.Errorf("more than %d options without choosing an export", maxOptions)
		}
		if _, err := io.ReadFull(sc.br, hdr[:]); err != nil {
			return false, fmt.Errorf("read option header: %w", err)
		}
		if m := binary.BigEndian.Uint64(hdr[0:]); m != magicOpt {
			return false, fmt.Errorf("bad option magic %#x", m)
		}
		opt := binary.BigEndian.Uint32(hdr[8:])
		length := binary.BigEndian.Uint32(hdr[12:])
		if length > maxOptionLen {
			// Reading it only to refuse it would let a client make us wait for up to
			// 4 GiB; the spec allows a hard disconnect for such abuse.
			return false, fmt.Errorf("option %d with %d bytes of data (limit %d)", opt, length, maxOptionLen)
		}
		data := make([]byte, length)
		if _, err := io.ReadFull(sc.br, data); err != nil {
			return false, fmt.Errorf("read option %d data: %w", opt, err)
		}
		enter, err := sc.option(opt, data)
		if err == errAbort {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		if enter {
			return false, nil
		}
	}
}

// option handles one option; enter reports that transmission starts now.
func (sc *serverConn) option(opt uint32, data []byte) (enter bool, err error) {
	if sc.stopping.Load() && opt != optAbort {
		return false, sc.optReply(opt, repErrShutdown, []byte("server is shutting down"))
	}
	switch opt {
	case optExportName:
		name := string(data)
		if !sc.nameOK(name) {
			// No way to send an error for EXPORT_NAME: the session must end.
			return false, fmt.Errorf("NBD_OPT_EXPORT_NAME for unknown export %q", truncate(name))
		}
		sc.transFlags = sc.s.transmissionFlags(sc.structured)
		reply := make([]byte, 10, 10+124)
		binary.BigEndian.PutUint64(reply[0:], uint64(sc.s.b.Size()))
		binary.BigEndian.PutUint16(reply[8:], sc.transFlags)
		if !sc.noZeroes {
			reply = reply[:10+124]
		}
		if _, err := sc.c.Write(reply); err != nil {
			return false, fmt.Errorf("reply to NBD_OPT_EXPORT_NAME: %w", err)
		}
		return true, nil
	case optAbort:
		sc.optReply(opt, repAck, nil) // the client may already be gone
		return false, errAbort
	case optList:
		if len(data) != 0 {
			return false, sc.optReply(opt, repErrInvalid, []byte("NBD_OPT_LIST takes no data"))
		}
		name := []byte(sc.s.opts.ExportName)
		rep := make([]byte, 4+len(name))
		binary.BigEndian.PutUint32(rep, uint32(len(name)))
		copy(rep[4:], name)
		if err := sc.optReply(opt, repServer, rep); err != nil {
			return false, err
		}
		return false, sc.optReply(opt, repAck, nil)
	case optInfo, optGo:
		return sc.infoGo(opt, data)
	case optStructuredReply:
		if len(data) != 0 {
			return false, sc.optReply(opt, repErrInvalid, []byte("NBD_OPT_STRUCTURED_REPLY takes no data"))
		}
		sc.structured = true
		return false, sc.optReply(opt, repAck, nil)
	case optListMetaContext, optSetMetaContext:
		if !sc.structured {
			return false, sc.optReply(opt, repErrInvalid, []byte("metadata contexts need structured replies first"))
		}
		if msg := checkMetaContextOption(data); msg != "" {
			return false, sc.optReply(opt, repErrInvalid, []byte(msg))
		}
		// This server offers no metadata context: a valid query selects none.
		return false, sc.optReply(opt, repAck, nil)
	}
	return false, sc.optReply(opt, repErrUnsup, []byte(fmt.Sprintf("option %d is not supported", opt)))
}

func (sc *serverConn) nameOK(name string) bool {
	return len(name) <= maxStringLen && (name == "" || sc.s.opts.ExportName == "" || name == sc.s.opts.ExportName)
}

// infoGo answers NBD_OPT_INFO and NBD_OPT_GO.
func (sc *serverConn) infoGo(opt uint32, data []byte) (bool, error) {
	if len(data) < 6 {
		return false, sc.optReply(opt, repErrInvalid, []byte("option data shorter than 6 bytes"))
	}
	nameLen := binary.BigEndian.Uint32(data)
	if uint64(nameLen) > uint64(len(data)-6) {
		return false, sc.optReply(opt, repErrInvalid, []byte("export name longer than the option"))
	}
	name := string(data[4 : 4+nameLen])
	rest := data[4+nameLen:]
	n := int(binary.BigEndian.Uint16(rest))
	if len(rest) != 2+2*n {
		return false, sc.optReply(opt, repErrInvalid, []byte("information request list does not match the option length"))
	}
	if !sc.nameOK(name) {
		return false, sc.optReply(opt, repErrUnknown, []byte(fmt.Sprintf("no export named %q", truncate(name))))
	}
	flags := sc.s.transmissionFlags(sc.structured)
	var ex [infoExportLength]byte
	binary.BigEndian.PutUint16(ex[0:], infoExport)
	binary.BigEndian.PutUint64(ex[2:], uint64(sc.s.b.Size()))
	binary.BigEndian.PutUint16(ex[10:], flags)
	if err := sc.optReply(opt, repInfo, ex[:]); err != nil {
		return false, err
	}
	// Our constraints are the defaults; saying so costs nothing and lets clients
	// that asked (QEMU does) size their requests without guessing.
	var bs [infoBlockSizeLen]byte
	binary.BigEndian.PutUint16(bs[0:], infoBlockSize)
	binary.BigEndian.PutUint32(bs[2:], 1)
	binary.BigEndian.PutUint32(bs[6:], preferredBlockSize)
	binary.BigEndian.PutUint32(bs[10:], MaxPayload)
	if err := sc.optReply(opt, repInfo, bs[:]); err != nil {
		return false, err
	}
	if err := sc.optReply(opt, repAck, nil); err != nil {
		return false, err
	}
	if opt == optGo {
		sc.transFlags = flags
		return true, nil
	}
	return false, nil
}

// checkMetaContextOption checks the syntax of LIST/SET_META_CONTEXT data: export
// name, query count, queries; everything must lie inside the option.
func checkMetaContextOption(data []byte) string {
	if len(data) < 8 {
		return "option data shorter than 8 bytes"
	}
	nameLen := binary.BigEndian.Uint32(data)
	if uint64(nameLen) > uint64(len(data)-8) || nameLen > maxStringLen {
		return "export name longer than the option"
	}
	p := data[4+nameLen:]
	n := binary.BigEndian.Uint32(p)
	p = p[4:]
	if uint64(n) > uint64(len(p)/4) {
		return "more queries than the option can hold"
	}
	for i := uint32(0); i < n; i++ {
		if len(p) < 4 {
			return fmt.Sprintf("query %d runs past the option", i)
		}
		l := binary.BigEndian.Uint32(p)
		if uint64(l) > uint64(len(p)-4) || l > maxStringLen {
			return fmt.Sprintf("query %d runs past the option", i)
		}
		p = p[4+l:]
	}
	if len(p) != 0 {
		return "trailing bytes after the queries"
	}
	return ""
}

func (sc *serverConn) optReply(opt, typ uint32, data []byte) error {
	buf := make([]byte, 20+len(data))
	binary.BigEndian.PutUint64(buf[0:], magicOptReply)
	binary.BigEndian.PutUint32(buf[8:], opt)
	binary.BigEndian.PutUint32(buf[12:], typ)
	binary.BigEndian.PutUint32(buf[16:], uint32(len(data)))
	copy(buf[20:], data)
	if _, err := sc.c.Write(buf); err != nil {
		return fmt.Errorf("reply to option %d: %w", opt, err)
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
