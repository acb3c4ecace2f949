package nbd

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"
)

// ClientOptions configure a client's negotiation.
type ClientOptions struct {
	ExportName string
	// MetaContexts are selected with NBD_OPT_SET_META_CONTEXT, e.g. "base:allocation"
	// or "qemu:dirty-bitmap:NAME"; BlockStatus reports them. Needs structured replies.
	MetaContexts []string
	// NoStructuredReplies keeps simple replies (tests of that path).
	NoStructuredReplies bool
	// UseExportName ends negotiation with NBD_OPT_EXPORT_NAME instead of NBD_OPT_GO.
	UseExportName bool
}

// Client is a minimal NBD client: fixed newstyle, structured replies, several
// requests in flight (safe for concurrent use). Everything the server sends is
// bounded before it is believed.
type Client struct {
	c          net.Conn
	br         *bufio.Reader
	size       uint64
	flags      uint16
	structured bool
	contexts   map[uint32]string

	wmu sync.Mutex

	mu      sync.Mutex
	pending map[uint64]*call
	// reading is the call whose reply the reader is taking in: it writes
	// that call's buffer and error without holding mu, so fail leaves it
	// to the reader, which ends it once the closed connection stops it.
	reading *call
	cookie  uint64
	err     error // set once the connection is unusable
	done    chan struct{}
	closing bool
}

// Extent is one block status descriptor.
type Extent struct {
	Length uint32
	Flags  uint32
}

// Flags of base:allocation and of qemu:dirty-bitmap contexts.
const (
	StateHole  = 1 << 0 // base:allocation
	StateZero  = 1 << 1 // base:allocation
	StateDirty = 1 << 0 // qemu:dirty-bitmap:NAME
)

// Request is a raw transmission request for Client.Start.
type Request struct {
	Type   Op
	Flags  uint16
	Offset uint64
	Length uint32
	// Data is the WRITE payload or the READ destination (len(Data) == Length).
	Data []byte
}

type call struct {
	req     Request
	chunks  [][2]uint64 // content chunks of a READ reply: offset, length
	err     error
	extents map[string][]Extent
	done    chan struct{}
}

// Pending is a request in flight.
type Pending struct{ c *call }

// Wait returns the request's result.
func (p *Pending) Wait() error {
	<-p.c.done
	return p.c.err
}

const (
	maxClientOptReply = 1 << 16
	// maxReplyChunk bounds a structured chunk: a full read plus its offset, or a block
	// status chunk of 2^20 extents (the spec's SHOULD NOT exceed).
	maxReplyChunk = max(MaxPayload+8, 4+8<<20)
)

// Dial connects to a unix socket and negotiates.
func Dial(ctx context.Context, path string, opts ClientOptions) (*Client, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("nbd: dial: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	cl, err := NewClient(c, opts)
	if err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return cl, nil
}

// NewClient negotiates on an open connection.
func NewClient(c net.Conn, opts ClientOptions) (*Client, error) {
	cl := &Client{c: c, br: bufio.NewReaderSize(c, 256<<10), pending: map[uint64]*call{}, done: make(chan struct{}), contexts: map[uint32]string{}}
	if err := cl.handshake(opts); err != nil {
		return nil, fmt.Errorf("nbd: negotiate: %w", err)
	}
	go cl.readLoop()
	return cl, nil
}

// NewTransmissionClient speaks the transmission phase on c without a
// handshake, with simple replies: the peer of Server.ServeTransmission, as
// Linux's NBD driver is after NBD_SET_SOCK (size and flags are what the
// driver was told with ioctls instead of by the server).
func NewTransmissionClient(c net.Conn, size uint64, flags uint16) *Client {
	cl := &Client{c: c, br: newBufReader(c), pending: map[uint64]*call{}, done: make(chan struct{}),
		contexts: map[uint32]string{}, size: size, flags: flags}
	go cl.readLoop()
	return cl
}

// Size is the export's size in bytes.
func (cl *Client) Size() uint64 { return cl.size }

// Flags are the export's transmission flags.
func (cl *Client) Flags() uint16 { return cl.flags }

// Structured reports whether structured replies were negotiated.
func (cl *Client) Structured() bool { return cl.structured }

func (cl *Client) handshake(o ClientOptions) error {
	var hello [18]byte
	if _, err := io.ReadFull(cl.br, hello[:]); err != nil {
		return fmt.Errorf("read greeting: %w", err)
	}
	if binary.BigEndian.Uint64(hello[0:]) != magicInit || binary.BigEndian.Uint64(hello[8:]) != magicOpt {
		return errors.New("not a newstyle NBD server")
	}
	hf := binary.BigEndian.Uint16(hello[16:])
	if hf&flagFixedNewstyle == 0 {
		return errors.New("server does not speak fixed newstyle")
	}
	cf := uint32(flagCFixedNewstyle)
	if hf&flagNoZeroes != 0 {
		cf |= flagCNoZeroes
	}
	if err := binary.Write(cl.c, binary.BigEndian, cf); err != nil {
		return err
	}
	if !o.NoStructuredReplies {
		if err := cl.sendOpt(optStructuredReply, nil); err != nil {
			return err
		}
		typ, data, err := cl.readOptReply(optStructuredReply)
		if err != nil {
			return err
		}
		switch typ {
		case repAck:
			cl.structured = true
		case repErrUnsup:
		default:
			return optError("NBD_OPT_STRUCTURED_REPLY", typ, data)
		}
	}
	if len(o.MetaContexts) > 0 {
		if !cl.structured {
			return errors.New("metadata contexts need structured replies, which the server refused")
		}
		if err := cl.setMetaContexts(o.ExportName, o.MetaContexts); err != nil {
			return err
		}
	}
	if !o.UseExportName {
		ok, err := cl.optGo(o.ExportName)
		if err != nil || ok {
			return err
		}
		// NBD_REP_ERR_UNSUP: an old server; fall back as the spec asks.
	}
	if err := cl.sendOpt(optExportName, []byte(o.ExportName)); err != nil {
		return err
	}
	var r [10]byte
	if _, err := io.ReadFull(cl.br, r[:]); err != nil {
		return fmt.Errorf("read NBD_OPT_EXPORT_NAME reply: %w", err)
	}
	cl.size = binary.BigEndian.Uint64(r[0:])
	cl.flags = binary.BigEndian.Uint16(r[8:])
	if hf&flagNoZeroes == 0 {
		if _, err := io.CopyN(io.Discard, cl.br, 124); err != nil {
			return err
		}
	}
	return nil
}

func (cl *Client) optGo(name string) (bool, error) {
	data := make([]byte, 4+len(name)+2+2)
	binary.BigEndian.PutUint32(data, uint32(len(name)))
	copy(data[4:], name)
	binary.BigEndian.PutUint16(data[4+len(name):], 1)
	binary.BigEndian.PutUint16(data[6+len(name):], infoBlockSize)
	if err := cl.sendOpt(optGo, data); err != nil {
		return false, err
	}
	gotExport := false
	for i := 0; i < 64; i++ {
		typ, d, err := cl.readOptReply(optGo)
		if err != nil {
			return false, err
		}
		switch typ {
		case repInfo:
			if len(d) >= 2 && binary.BigEndian.Uint16(d) == infoExport {
				if len(d) != infoExportLength {
					return false, fmt.Errorf("NBD_INFO_EXPORT of %d bytes", len(d))
				}
				cl.size = binary.BigEndian.Uint64(d[2:])
				cl.flags = binary.BigEndian.Uint16(d[10:])
				gotExport = true
			}
		case repAck:
			if !gotExport {
				return false, errors.New("NBD_OPT_GO succeeded without NBD_INFO_EXPORT")
			}
			return true, nil
		case repErrUnsup:
			return false, nil
		default:
			return false, optError("NBD_OPT_GO", typ, d)
		}
	}
	return false, errors.New("NBD_OPT_GO: too many replies")
}

func (cl *Client) setMetaContexts(name string, queries []string) error {
	n := 4 + len(name) + 4
	for _, q := range queries {
		n += 4 + len(q)
	}
	data := make([]byte, 0, n)
	data = binary.BigEndian.AppendUint32(data, uint32(len(name)))
	data = append(data, name...)
	data = binary.BigEndian.AppendUint32(data, uint32(len(queries)))
	for _, q := range queries {
		data = binary.BigEndian.AppendUint32(data, uint32(len(q)))
		data = append(data, q...)
	}
	if err := cl.sendOpt(optSetMetaContext, data); err != nil {
		return err
	}
	for i := 0; i < 1024; i++ {
		typ, d, err := cl.readOptReply(optSetMetaContext)
		if err != nil {
			return err
		}
		switch typ {
		case repMetaContext:
			if len(d) < 4 {
				return errors.New("short NBD_REP_META_CONTEXT")
			}
			cl.contexts[binary.BigEndian.Uint32(d)] = string(d[4:])
		case repAck:
			for _, q := range queries {
				found := false
				for _, c := range cl.contexts {
					found = found || c == q
				}
				if !found {
					return fmt.Errorf("server offers no metadata context %q", q)
				}
			}
			return nil
		default:
			return optError("NBD_OPT_SET_META_CONTEXT", typ, d)
		}
	}
	return errors.New("NBD_OPT_SET_META_CONTEXT: too many replies")
}

func optError(opt string, typ uint32, data []byte) error {
	if typ&repErrorBit == 0 {
		return fmt.Errorf("%s: unexpected reply type %d", opt, typ)
	}
	return fmt.Errorf("%s refused (reply %#x): %s", opt, typ, truncate(string(data)))
}

func (cl *Client) sendOpt(opt uint32, data []byte) error {
	buf := make([]byte, 16+len(data))
	binary.BigEndian.PutUint64(buf[0:], magicOpt)
	binary.BigEndian.PutUint32(buf[8:], opt)
	binary.BigEndian.PutUint32(buf[12:], uint32(len(data)))
	copy(buf[16:], data)
	_, err := cl.c.Write(buf)
	return err
}

func (cl *Client) readOptReply(opt uint32) (uint32, []byte, error) {
	var h [20]byte
	if _, err := io.ReadFull(cl.br, h[:]); err != nil {
		return 0, nil, fmt.Errorf("read reply to option %d: %w", opt, err)
	}
	if binary.BigEndian.Uint64(h[0:]) != magicOptReply {
		return 0, nil, errors.New("bad option reply magic")
	}
	if got := binary.BigEndian.Uint32(h[8:]); got != opt {
		return 0, nil, fmt.Errorf("reply for option %d while waiting for %d", got, opt)
	}
	n := binary.BigEndian.Uint32(h[16:])
	if n > maxClientOptReply {
		return 0, nil, fmt.Errorf("option reply of %d bytes", n)
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(cl.br, data); err != nil {
		return 0, nil, err
	}
	return binary.BigEndian.Uint32(h[12:]), data, nil
}

// Start sends a request and returns without waiting for its reply.
func (cl *Client) Start(r Request) (*Pending, error) {
	if (r.Type == OpWrite || r.Type == OpRead) && len(r.Data) != int(r.Length) {
		return nil, fmt.Errorf("nbd: %s of %d bytes with %d bytes of data", r.Type, r.Length, len(r.Data))
	}
	c := &call{req: r, done: make(chan struct{})}
	cl.mu.Lock()
	if cl.err != nil {
		cl.mu.Unlock()
		return nil, cl.err
	}
	cl.cookie++
	cookie := cl.cookie
	cl.pending[cookie] = c
	cl.mu.Unlock()

	var h [requestHeaderLen]byte
	binary.BigEndian.PutUint32(h[0:], magicRequest)
	binary.BigEndian.PutUint16(h[4:], r.Flags)
	binary.BigEndian.PutUint16(h[6:], uint16(r.Type))
	binary.BigEndian.PutUint64(h[8:], cookie)
	binary.BigEndian.PutUint64(h[16:], r.Offset)
	binary.BigEndian.PutUint32(h[24:], r.Length)
	parts := net.Buffers{h[:]}
	if r.Type == OpWrite {
		parts = append(parts, r.Data)
	}
	cl.wmu.Lock()
	_, err := parts.WriteTo(cl.c)
	cl.wmu.Unlock()
	if err != nil {
		cl.fail(fmt.Errorf("nbd: send %s: %w", r.Type, err))
	}
	return &Pending{c}, nil
}

// Do sends a request and waits for its reply.
func (cl *Client) Do(r Request) error {
	p, err := cl.Start(r)
	if err != nil {
		return err
	}
	return p.Wait()
}

// ReadAt reads len(p) bytes at off, in requests of at most MaxPayload bytes.
func (cl *Client) ReadAt(p []byte, off int64) (int, error) {
	done := 0
	for done < len(p) {
		n := min(len(p)-done, MaxPayload)
		if err := cl.Do(Request{Type: OpRead, Offset: uint64(off) + uint64(done), Length: uint32(n), Data: p[done : done+n]}); err != nil {
			return done, err
		}
		done += n
	}
	return done, nil
}

// WriteAt writes p at off, in requests of at most MaxPayload bytes.
func (cl *Client) WriteAt(p []byte, off int64) (int, error) {
	done := 0
	for done < len(p) {
		n := min(len(p)-done, MaxPayload)
		if err := cl.Do(Request{Type: OpWrite, Offset: uint64(off) + uint64(done), Length: uint32(n), Data: p[done : done+n]}); err != nil {
			return done, err
		}
		done += n
	}
	return done, nil
}

// Flush asks the server to make every acknowledged write durable.
func (cl *Client) Flush() error { return cl.Do(Request{Type: OpFlush}) }

// Trim discards a range.
func (cl *Client) Trim(off uint64, length uint32) error {
	return cl.Do(Request{Type: OpTrim, Offset: off, Length: length})
}

// WriteZeroes zeroes a range; noHole keeps it allocated.
func (cl *Client) WriteZeroes(off uint64, length uint32, noHole bool) error {
	var f uint16
	if noHole {
		f = CmdFlagNoHole
	}
	return cl.Do(Request{Type: OpWriteZeroes, Flags: f, Offset: off, Length: length})
}

// BlockStatus queries the negotiated metadata contexts for a range; the result maps
// each context's name to its extents, which start at off and may cover less (or, for
// the last extent, more) than length.
func (cl *Client) BlockStatus(off uint64, length uint32, reqOne bool) (map[string][]Extent, error) {
	var f uint16
	if reqOne {
		f = CmdFlagReqOne
	}
	p, err := cl.Start(Request{Type: OpBlockStatus, Flags: f, Offset: off, Length: length})
	if err != nil {
		return nil, err
	}
	if err := p.Wait(); err != nil {
		return nil, err
	}
	for _, name := range cl.contexts {
		if _, ok := p.c.extents[name]; !ok {
			return nil, fmt.Errorf("nbd: block status at %d: no extents for context %q", off, name)
		}
	}
	return p.c.extents, nil
}

// Close sends NBD_CMD_DISC once the requests in flight are answered, and closes the
// connection after the server did (or after 5 s).
func (cl *Client) Close() error {
	cl.mu.Lock()
	if cl.closing {
		cl.mu.Unlock()
		return nil
	}
	cl.closing = true
	waits := make([]*call, 0, len(cl.pending))
	for _, c := range cl.pending {
		waits = append(waits, c)
	}
	broken := cl.err != nil
	cl.mu.Unlock()
	for _, c := range waits {
		<-c.done
	}
	if !broken {
		var h [requestHeaderLen]byte
		binary.BigEndian.PutUint32(h[0:], magicRequest)
		binary.BigEndian.PutUint16(h[6:], uint16(OpDisc))
		cl.wmu.Lock()
		cl.c.Write(h[:])
		cl.wmu.Unlock()
		cl.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		<-cl.done
	}
	return cl.c.Close()
}

// fail marks the connection broken and fails every pending request.
func (cl *Client) fail(err error) {
	cl.mu.Lock()
	if cl.err == nil {
		cl.err = err
	}
	for k, c := range cl.pending {
		if c == cl.reading {
			continue
		}
		c.err = cl.err
		close(c.done)
		delete(cl.pending, k)
	}
	cl.mu.Unlock()
	cl.c.Close()
}

func (cl *Client) readLoop() {
	defer close(cl.done)
	for {
		err := cl.readReply()
		cl.mu.Lock()
		cl.reading = nil
		closing := cl.closing && len(cl.pending) == 0
		cl.mu.Unlock()
		if err != nil {
			if closing {
				err = errors.New("nbd: client closed")
			}
			cl.fail(err)
			return
		}
	}
}

func (cl *Client) lookup(cookie uint64) (*call, error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	c := cl.pending[cookie]
	if c == nil {
		return nil, fmt.Errorf("nbd: reply for unknown cookie %#x", cookie)
	}
	cl.reading = c
	return c, nil
}

// complete ends call c, unless fail ended it first. fail (a failed send in
// Start, on another goroutine) skips the call being read, so this is a guard:
// a call's done closes once.
func (cl *Client) complete(cookie uint64, c *call) {
	cl.mu.Lock()
	mine := cl.pending[cookie] == c
	if mine {
		delete(cl.pending, cookie)
	}
	cl.mu.Unlock()
	if mine {
		close(c.done)
	}
}

func (cl *Client) readReply() error {
	var m [4]byte
	if _, err := io.ReadFull(cl.br, m[:]); err != nil {
		return fmt.Errorf("nbd: read reply: %w", err)
	}
	switch binary.BigEndian.Uint32(m[:]) {
	case magicSimpleReply:
		var h [12]byte
		if _, err := io.ReadFull(cl.br, h[:]); err != nil {
			return fmt.Errorf("nbd: read reply: %w", err)
		}
		cookie := binary.BigEndian.Uint64(h[4:])
		c, err := cl.lookup(cookie)
		if err != nil {
			return err
		}
		if e := binary.BigEndian.Uint32(h[0:]); e != 0 {
			c.err = &Error{Errno: e}
		} else if c.req.Type == OpRead {
			if cl.structured {
				return errors.New("nbd: simple reply to a READ after structured replies were negotiated")
			}
			if _, err := io.ReadFull(cl.br, c.req.Data); err != nil {
				return fmt.Errorf("nbd: read data: %w", err)
			}
		}
		cl.complete(cookie, c)
		return nil
	case magicStructReply:
		if !cl.structured {
			return errors.New("nbd: structured reply that was not negotiated")
		}
		return cl.readChunk()
	default:
		return fmt.Errorf("nbd: bad reply magic %#x", m)
	}
}

func (cl *Client) readChunk() error {
	var h [16]byte
	if _, err := io.ReadFull(cl.br, h[:]); err != nil {
		return fmt.Errorf("nbd: read chunk: %w", err)
	}
	flags := binary.BigEndian.Uint16(h[0:])
	typ := binary.BigEndian.Uint16(h[2:])
	cookie := binary.BigEndian.Uint64(h[4:])
	length := binary.BigEndian.Uint32(h[12:])
	if length > maxReplyChunk {
		return fmt.Errorf("nbd: reply chunk of %d bytes", length)
	}
	c, err := cl.lookup(cookie)
	if err != nil {
		return err
	}
	r := c.req
	switch {
	case typ == replyTypeNone:
		if length != 0 || flags&replyFlagDone == 0 {
			return errors.New("nbd: malformed NBD_REPLY_TYPE_NONE")
		}
	case typ == replyTypeOffsetData && r.Type == OpRead:
		if length < 9 {
			return errors.New("nbd: short OFFSET_DATA chunk")
		}
		var o [8]byte
		if _, err := io.ReadFull(cl.br, o[:]); err != nil {
			return err
		}
		off := binary.BigEndian.Uint64(o[:])
		n := uint64(length - 8)
		if off < r.Offset || off-r.Offset > uint64(r.Length) || n > uint64(r.Length)-(off-r.Offset) {
			return fmt.Errorf("nbd: OFFSET_DATA %d+%d outside the request %d+%d", off, n, r.Offset, r.Length)
		}
		if _, err := io.ReadFull(cl.br, r.Data[off-r.Offset:off-r.Offset+n]); err != nil {
			return err
		}
		if err := c.addChunk(off, n); err != nil {
			return err
		}
	case typ == replyTypeOffsetHole && r.Type == OpRead:
		if length != 12 {
			return errors.New("nbd: OFFSET_HOLE chunk length is not 12")
		}
		var p [12]byte
		if _, err := io.ReadFull(cl.br, p[:]); err != nil {
			return err
		}
		off := binary.BigEndian.Uint64(p[:])
		n := uint64(binary.BigEndian.Uint32(p[8:]))
		if n == 0 || off < r.Offset || off-r.Offset > uint64(r.Length) || n > uint64(r.Length)-(off-r.Offset) {
			return fmt.Errorf("nbd: OFFSET_HOLE %d+%d outside the request %d+%d", off, n, r.Offset, r.Length)
		}
		clear(r.Data[off-r.Offset : off-r.Offset+n])
		if err := c.addChunk(off, n); err != nil {
			return err
		}
	case typ == replyTypeBlockStatus && r.Type == OpBlockStatus:
		if length < 12 || (length-4)%8 != 0 {
			return fmt.Errorf("nbd: BLOCK_STATUS chunk of %d bytes", length)
		}
		p := make([]byte, length)
		if _, err := io.ReadFull(cl.br, p); err != nil {
			return err
		}
		name, ok := cl.contexts[binary.BigEndian.Uint32(p)]
		if !ok {
			return fmt.Errorf("nbd: BLOCK_STATUS for unknown context id %d", binary.BigEndian.Uint32(p))
		}
		ext := make([]Extent, 0, (length-4)/8)
		for q := p[4:]; len(q) >= 8; q = q[8:] {
			e := Extent{Length: binary.BigEndian.Uint32(q), Flags: binary.BigEndian.Uint32(q[4:])}
			if e.Length == 0 {
				return errors.New("nbd: BLOCK_STATUS extent of length 0")
			}
			ext = append(ext, e)
		}
		if c.extents == nil {
			c.extents = map[string][]Extent{}
		}
		c.extents[name] = ext
	case typ&replyTypeErrorBit != 0:
		if length < 6 {
			return errors.New("nbd: error chunk shorter than 6 bytes")
		}
		p := make([]byte, length)
		if _, err := io.ReadFull(cl.br, p); err != nil {
			return err
		}
		ml := int(binary.BigEndian.Uint16(p[4:]))
		if ml > len(p)-6 {
			return errors.New("nbd: error message longer than its chunk")
		}
		if c.err == nil {
			errno := binary.BigEndian.Uint32(p)
			if errno == 0 {
				errno = EINVAL // an error chunk must carry an error; treat as the spec says
			}
			c.err = &Error{Errno: errno, Message: string(p[6 : 6+ml])}
		}
	default:
		return fmt.Errorf("nbd: unexpected chunk type %d for %s", typ, r.Type)
	}
	if flags&replyFlagDone != 0 {
		if c.err == nil && r.Type == OpRead {
			c.err = c.checkCoverage()
		}
		if c.err == nil && r.Type == OpBlockStatus && len(c.extents) == 0 {
			c.err = fmt.Errorf("nbd: block status at %d: no extents", r.Offset)
		}
		cl.complete(cookie, c)
	}
	return nil
}

func newBufReader(c net.Conn) *bufio.Reader { return bufio.NewReaderSize(c, 256<<10) }

// maxReadChunks bounds the content chunks of one READ reply (a server could
// otherwise describe a 32 MiB read one byte at a time).
const maxReadChunks = 1 << 16

func (c *call) addChunk(off, n uint64) error {
	if len(c.chunks) >= maxReadChunks {
		return fmt.Errorf("nbd: read at %d: more than %d content chunks", c.req.Offset, maxReadChunks)
	}
	c.chunks = append(c.chunks, [2]uint64{off, n})
	return nil
}

// checkCoverage: a successful READ reply must cover the request exactly once.
func (c *call) checkCoverage() error {
	slices.SortFunc(c.chunks, func(a, b [2]uint64) int { return cmp.Compare(a[0], b[0]) })
	next := c.req.Offset
	for _, ch := range c.chunks {
		if ch[0] != next {
			return fmt.Errorf("nbd: read at %d: reply chunks leave a gap or overlap at %d", c.req.Offset, min(ch[0], next))
		}
		next += ch[1]
	}
	if next != c.req.Offset+uint64(c.req.Length) {
		return fmt.Errorf("nbd: read at %d: reply covers %d of %d bytes", c.req.Offset, next-c.req.Offset, c.req.Length)
	}
	return nil
}
