//go:build linux

package kernelnbd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xascript/xascript/diskmon/nbd"
)

// The ioctls of include/uapi/linux/nbd.h: _IO(0xab, n).
const (
	ioctlSetSock       = 0xab<<8 | 0
	ioctlSetBlksize    = 0xab<<8 | 1
	ioctlDoIt          = 0xab<<8 | 3
	ioctlClearSock     = 0xab<<8 | 4
	ioctlSetSizeBlocks = 0xab<<8 | 7
	ioctlDisconnect    = 0xab<<8 | 8
	ioctlSetTimeout    = 0xab<<8 | 9
	ioctlSetFlags      = 0xab<<8 | 10
)

const (
	// startTimeout bounds the wait for the driver to bring the device up
	// after NBD_DO_IT (it reads the partition table through us first).
	startTimeout = 10 * time.Second
	// stopTimeout bounds the wait for NBD_DO_IT to return after
	// NBD_DISCONNECT; after it the socket is cleared by force.
	stopTimeout = 30 * time.Second
	// IOTimeout is the driver's request timeout (NBD_SET_TIMEOUT): a request
	// the server has not answered after it fails with EIO and the device's
	// connection is dropped, so that a server that hangs (the process
	// stopped, or stuck) fails the guest's I/O instead of holding it, and
	// whatever waits on that I/O (blkback, `xl destroy` of the domU) ends.
	// Without it the driver waits for ever. A live server answers in
	// milliseconds; a minute leaves room for a host that is very busy.
	IOTimeout = 60 * time.Second
)

// Device is a kernel NBD device connected to a Server.
type Device struct {
	path string
	f    *os.File
	conn net.Conn
	logf func(string, ...any)

	doIt   chan error // NBD_DO_IT's result
	served chan error // ServeTransmission's result

	closeOnce sync.Once
	closeErr  error
}

// Attach connects the kernel NBD device at path (/dev/nbd0) to s, which serves
// an export of size bytes, and returns once the device is up. The device must
// be free (not connected to another server). ctx ends the serving abruptly
// (the device then fails its I/O); Close is the clean end.
func Attach(ctx context.Context, path string, s *nbd.Server, size int64, logf func(string, ...any)) (*Device, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	blksize := int64(4096)
	if size%blksize != 0 {
		blksize = 512
	}
	if size <= 0 || size%blksize != 0 {
		return nil, fmt.Errorf("nbd device %s: the image's size %d is not a multiple of 512 bytes", path, size)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("nbd device: %w", err)
	}
	d := &Device{path: path, f: f, logf: logf}
	fail := func(what string, err error) (*Device, error) {
		if d.conn != nil {
			d.conn.Close()
		}
		f.Close()
		if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) && what == "NBD_SET_BLKSIZE" {
			return nil, fmt.Errorf("nbd device %s: %s: %w (not an NBD device? load nbd.ko and use /dev/nbdN)", path, what, err)
		}
		if errors.Is(err, unix.EBUSY) {
			return nil, fmt.Errorf("nbd device %s: %s: %w (the device is connected to another server)", path, what, err)
		}
		return nil, fmt.Errorf("nbd device %s: %s: %w", path, what, err)
	}
	fd := int(f.Fd())
	if err := ioctl(fd, ioctlSetBlksize, uintptr(blksize)); err != nil {
		return fail("NBD_SET_BLKSIZE", err)
	}
	if err := ioctl(fd, ioctlSetSizeBlocks, uintptr(size/blksize)); err != nil {
		return fail("NBD_SET_SIZE_BLOCKS", err)
	}
	if err := ioctl(fd, ioctlSetFlags, uintptr(s.TransmissionFlags())); err != nil {
		return fail("NBD_SET_FLAGS", err)
	}
	if err := ioctl(fd, ioctlSetTimeout, uintptr(IOTimeout/time.Second)); err != nil {
		return fail("NBD_SET_TIMEOUT", err)
	}
	kernelEnd, conn, err := socketPair()
	if err != nil {
		return fail("socketpair", err)
	}
	d.conn = conn
	// The driver takes its own reference to the socket's file: ours is
	// closed at once, so the socket dies with the driver's use of it.
	err = ioctl(fd, ioctlSetSock, kernelEnd.Fd())
	kernelEnd.Close()
	if err != nil {
		return fail("NBD_SET_SOCK", err)
	}
	d.served = make(chan error, 1)
	go func() { d.served <- s.ServeTransmission(ctx, conn) }()
	d.doIt = make(chan error, 1)
	go d.run(fd)

	// NBD_DO_IT returns only at the end; the device is up once the driver
	// published its pid in sysfs.
	pidFile := filepath.Join("/sys/block", filepath.Base(path), "pid")
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case err := <-d.doIt:
			d.doIt <- err
			d.Close()
			if err == nil {
				err = errors.New("returned at once")
			}
			return nil, fmt.Errorf("nbd device %s: NBD_DO_IT: %w", path, err)
		default:
		}
		if _, err := os.Stat(pidFile); err == nil {
			return d, nil
		}
		if time.Now().After(deadline) {
			d.Close()
			return nil, fmt.Errorf("nbd device %s: not up %v after NBD_DO_IT (no %s)", path, startTimeout, pidFile)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// run is NBD_DO_IT on a thread of its own with every signal blocked: the
// driver's wait is interruptible, and an interrupted wait shuts the socket
// down. The thread is never unlocked, so it exits with this goroutine and
// its signal mask goes with it.
func (d *Device) run(fd int) {
	runtime.LockOSThread()
	var all unix.Sigset_t
	for i := range all.Val {
		all.Val[i] = ^all.Val[i]
	}
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &all, nil); err != nil {
		d.doIt <- fmt.Errorf("block signals: %w", err)
		return
	}
	// No EINTR retry: with every signal blocked none can interrupt it, and a
	// second NBD_DO_IT on a device that was shut down would only fail.
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), ioctlDoIt, 0)
	if errno != 0 {
		d.doIt <- errno
		return
	}
	d.doIt <- nil
}

// Path is the device's path.
func (d *Device) Path() string { return d.path }

// Close disconnects the device cleanly and frees it: fsync, NBD_DISCONNECT,
// wait for NBD_DO_IT and the server to end, NBD_CLEAR_SOCK. It is safe to
// call more than once.
func (d *Device) Close() error {
	d.closeOnce.Do(func() { d.closeErr = d.close() })
	return d.closeErr
}

func (d *Device) close() error {
	fd := int(d.f.Fd())
	var errs []error
	running := d.doIt != nil
	if running {
		select {
		case err := <-d.doIt:
			d.doIt <- err
			running = false
		default:
		}
	}
	if running {
		// Whatever the host cached of the device reaches the server, which
		// makes the image durable (FLUSH).
		if err := unix.Fsync(fd); err != nil {
			errs = append(errs, fmt.Errorf("nbd device %s: fsync: %w", d.path, err))
		}
		if err := ioctl(fd, ioctlDisconnect, 0); err != nil {
			errs = append(errs, fmt.Errorf("nbd device %s: NBD_DISCONNECT: %w", d.path, err))
		}
		select {
		case err := <-d.doIt:
			if err != nil {
				d.logf("nbd device %s: NBD_DO_IT: %v", d.path, err)
			}
		case <-time.After(stopTimeout):
			errs = append(errs, fmt.Errorf("nbd device %s: still connected %v after NBD_DISCONNECT; clearing the socket", d.path, stopTimeout))
		}
	}
	if err := ioctl(fd, ioctlClearSock, 0); err != nil {
		errs = append(errs, fmt.Errorf("nbd device %s: NBD_CLEAR_SOCK: %w", d.path, err))
	}
	if d.served != nil {
		select {
		case err := <-d.served:
			if err != nil && !errors.Is(err, nbd.ErrServerClosed) {
				errs = append(errs, err)
			}
		case <-time.After(stopTimeout):
			d.conn.Close()
			errs = append(errs, fmt.Errorf("nbd device %s: the server did not end after the disconnect", d.path))
		}
	}
	if err := d.f.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// socketPair returns the two ends of a unix stream socketpair: the kernel's
// (a file, for NBD_SET_SOCK) and the server's.
func socketPair() (*os.File, net.Conn, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	kernelEnd := os.NewFile(uintptr(fds[0]), "nbd-kernel")
	serverFile := os.NewFile(uintptr(fds[1]), "nbd-server")
	conn, err := net.FileConn(serverFile) // dups the descriptor
	serverFile.Close()
	if err != nil {
		kernelEnd.Close()
		return nil, nil, err
	}
	return kernelEnd, conn, nil
}

func ioctl(fd int, req, arg uintptr) error {
	for {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, arg)
		switch errno {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return errno
	}
}
