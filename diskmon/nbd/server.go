package nbd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Options configure a Server.
type Options struct {
	// ExportName is the one export's name. The default export ("") is always this
	// export; with ExportName "" any name is accepted.
	ExportName string
	// ReadOnly serves the backend read-only (NBD_FLAG_READ_ONLY; writes get EPERM).
	// It is implied by a backend whose ReadOnly method says so (FileBackend).
	ReadOnly bool
	// OnChange is called for every WRITE, TRIM and WRITE_ZEROES of nonzero length
	// after the backend was asked to apply it and before the reply is sent (also when
	// the backend failed: part of the range may have changed), and for every FLUSH
	// after it completed (off and length 0). It must not block (the caller queues).
	// It runs on connection goroutines, concurrently for concurrent requests.
	OnChange func(op Op, off, length uint64)
	// OnWrite, when set, is called for every WRITE with its data, before OnChange,
	// under the same rules. data is only valid during the call: copy what you keep.
	OnWrite func(off uint64, data []byte)
	// Logf receives diagnostics (protocol errors, refused requests); optional.
	Logf func(format string, args ...any)
	// MaxInFlight bounds the requests one connection processes concurrently
	// (default 16; 1 processes each connection's requests one after another).
	MaxInFlight int
	// HandshakeTimeout bounds the option haggling of one connection (default 30s).
	HandshakeTimeout time.Duration
}

const (
	defaultMaxInFlight      = 16
	defaultHandshakeTimeout = 30 * time.Second
	// inFlightBytes bounds the payload memory of one connection's in-flight requests.
	inFlightBytes = 2 * MaxPayload
	// drainWriteTimeout bounds how long a shutdown waits for a client that stopped
	// reading its replies.
	drainWriteTimeout = 10 * time.Second
	// maxConns bounds the connections (and so the memory: up to inFlightBytes each)
	// one server holds; QEMU opens one, or a few with multi-conn.
	maxConns = 64
)

// ErrServerClosed is returned by Serve and ServeConn after Close.
var ErrServerClosed = errors.New("nbd: server closed")

// Server serves one Backend as one export to any number of connections.
type Server struct {
	b    Backend
	opts Options
	ds   DataSyncer

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[*serverConn]struct{}
	connWG    sync.WaitGroup

	// syncFailed is sticky: after a failed fsync the kernel may have dropped dirty
	// pages and a later fsync can succeed without them, so no later FLUSH or FUA may
	// claim durability.
	syncFailed atomic.Bool
	nextID     atomic.Uint64
}

// NewServer returns a server for b. It does not own b: the caller closes it after
// Close returned.
func NewServer(b Backend, opts Options) *Server {
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = defaultMaxInFlight
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = defaultHandshakeTimeout
	}
	// A backend that can only read must be advertised read-only, or every write
	// would fail with EIO instead of the EPERM a client expects.
	if ro, ok := b.(interface{ ReadOnly() bool }); ok && ro.ReadOnly() {
		opts.ReadOnly = true
	}
	s := &Server{b: b, opts: opts, listeners: map[net.Listener]struct{}{}, conns: map[*serverConn]struct{}{}}
	if ds, ok := b.(DataSyncer); ok {
		s.ds = ds
	}
	return s
}

func (s *Server) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

// Serve accepts connections on l until ctx is done or Close is called, then waits for
// its connections to drain (every request read is answered), syncs the backend, and
// returns nil. It closes l.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()

	var wg sync.WaitGroup
	var acceptErr error
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() == nil && !s.isClosed() {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				acceptErr = fmt.Errorf("nbd: accept: %w", err)
			}
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.ServeConn(ctx, c); err != nil && !errors.Is(err, ErrServerClosed) {
				s.logf("%v", err)
			}
		}()
	}
	s.mu.Lock()
	delete(s.listeners, l)
	s.mu.Unlock()
	l.Close()
	if acceptErr != nil {
		// The listener failed but the clients are still the guest's disk: keep
		// serving them until they leave or the server is stopped.
		wg.Wait()
		return acceptErr
	}
	// Stopped by ctx or Close: ServeConn's own ctx hook (or Close) shuts the
	// connections down; wait for them to drain.
	wg.Wait()
	if err := s.sync(); err != nil {
		return fmt.Errorf("nbd: sync after shutdown: %w", err)
	}
	return nil
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// ServeConn serves one connection (negotiation, then transmission) until the client
// disconnects, ctx is done or Close is called; c is closed on return. It returns nil
// after a clean end (NBD_CMD_DISC, NBD_OPT_ABORT, or shutdown with every request
// answered).
func (s *Server) ServeConn(ctx context.Context, c net.Conn) error {
	return s.serve(ctx, c, true)
}

// ServeTransmission serves c as if the handshake had already happened, with simple
// replies and the export's flags: the state of a socket that Linux's NBD driver uses
// after NBD_SET_SOCK and NBD_DO_IT, where no negotiation takes place.
func (s *Server) ServeTransmission(ctx context.Context, c net.Conn) error {
	return s.serve(ctx, c, false)
}

func (s *Server) serve(ctx context.Context, c net.Conn, handshake bool) error {
	sc := newServerConn(s, c)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return ErrServerClosed
	}
	if len(s.conns) >= maxConns {
		s.mu.Unlock()
		c.Close()
		return fmt.Errorf("nbd: refused a connection: %d are open already", maxConns)
	}
	s.conns[sc] = struct{}{}
	s.connWG.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, sc)
		s.mu.Unlock()
		c.Close()
		s.connWG.Done()
	}()
	stop := context.AfterFunc(ctx, sc.shutdown)
	defer stop()

	if handshake {
		done, err := sc.handshake()
		if err != nil || done {
			if err == nil || sc.stopping.Load() {
				return nil
			}
			return fmt.Errorf("nbd: connection %d: negotiation: %w", sc.id, err)
		}
	} else {
		sc.transFlags = s.transmissionFlags(false)
	}
	if err := sc.transmission(); err != nil {
		return fmt.Errorf("nbd: connection %d: %w", sc.id, err)
	}
	return nil
}

// Close stops accepting, ends every connection cleanly (requests already read are
// processed and answered, then the connection is closed; clients see a hard
// disconnect, the only kind a server may start), waits for that, and syncs the
// backend.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	for sc := range s.conns {
		sc.shutdown()
	}
	s.mu.Unlock()
	s.connWG.Wait()
	if err := s.sync(); err != nil {
		return fmt.Errorf("nbd: sync on close: %w", err)
	}
	return nil
}

func (s *Server) sync() error {
	if s.opts.ReadOnly {
		return nil
	}
	if err := s.b.Sync(); err != nil {
		s.syncFailed.Store(true)
		return err
	}
	if s.syncFailed.Load() {
		return errors.New("an earlier sync failed; data acknowledged since may be lost")
	}
	return nil
}

func (s *Server) dataSync() error {
	if s.ds == nil {
		return s.sync()
	}
	if err := s.ds.DataSync(); err != nil {
		s.syncFailed.Store(true)
		return err
	}
	if s.syncFailed.Load() {
		return errors.New("an earlier sync failed; data acknowledged since may be lost")
	}
	return nil
}

// TransmissionFlags are the export's flags on a connection served by
// ServeTransmission (no negotiation, simple replies): what a kernel NBD device
// is told with NBD_SET_FLAGS, so that it sends FLUSH, FUA, TRIM and
// WRITE_ZEROES as this server supports them.
func (s *Server) TransmissionFlags() uint16 { return s.transmissionFlags(false) }

// transmissionFlags are the flags the export is advertised with; DF only when
// structured replies were negotiated (every READ reply is one chunk, so DF holds).
func (s *Server) transmissionFlags(structured bool) uint16 {
	f := uint16(FlagHasFlags | FlagSendFlush | FlagSendFUA | FlagCanMultiConn)
	if s.opts.ReadOnly {
		f |= FlagReadOnly
	} else {
		f |= FlagSendTrim | FlagSendWriteZeroes
	}
	if structured {
		f |= FlagSendDF
	}
	return f
}

// ListenUnix listens on a unix socket that only the owner can connect to: the socket
// is created under umask 0177 (no window in which it is open to others) and then
// chmod 0600. A stale socket at path is removed; any other existing file is refused.
func ListenUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("nbd: listen %s: exists and is not a socket (%s)", path, fi.Mode().Type())
		}
		// A socket nobody answers on is stale; one that answers belongs to a live
		// server, which we must not steal.
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("nbd: listen %s: a server is already listening there", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("nbd: listen %s: remove stale socket: %w", path, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("nbd: listen %s: %w", path, err)
	}
	umaskMu.Lock()
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	umaskMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("nbd: listen: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("nbd: listen %s: chmod: %w", path, err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(true)
	return l, nil
}

// umaskMu serializes our own umask changes; the umask is process-wide.
var umaskMu sync.Mutex
