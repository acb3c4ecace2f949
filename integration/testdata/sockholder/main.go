// Command sockholder holds sockets of known addresses for the live netstat
// test (netstat_live_test.go): run in the guest as `xa-sockholder`, it
// brings the loopback interface up and holds, on 127.0.0.1 and ::1,
//
//   - a TCP listener on port 40123 (IPv4) and 40124 (IPv6), each with one
//     connection to itself (ESTABLISHED on both ends);
//   - one more IPv4 connection to the 40123 listener that it closed first
//     (its client end is in TIME_WAIT for a minute);
//   - a UDP socket bound to 127.0.0.1:40125, one connected to it, and one
//     bound to [::]:40126;
//
// prints
//
//	XA-SOCKHOLDER pid=PID ready
//
// and sleeps for good. It is built static (CGO_ENABLED=0) into the guest's
// initramfs.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"syscall"
	"time"
	"unsafe"
)

func main() {
	if err := loopbackUp(); err != nil {
		fail("bring lo up", err)
	}
	var keep []any
	for _, a := range []struct{ network, addr string }{{"tcp4", "127.0.0.1:40123"}, {"tcp6", "[::1]:40124"}} {
		l, err := net.Listen(a.network, a.addr)
		if err != nil {
			fail("listen "+a.addr, err)
		}
		c, err := net.Dial(a.network, a.addr)
		if err != nil {
			fail("dial "+a.addr, err)
		}
		s, err := l.Accept()
		if err != nil {
			fail("accept "+a.addr, err)
		}
		keep = append(keep, l, c, s)
	}
	// The active closer's end goes to TIME_WAIT: the client closes, the
	// server end reads EOF and closes too.
	l := keep[0].(net.Listener)
	c, err := net.Dial("tcp4", "127.0.0.1:40123")
	if err != nil {
		fail("dial for TIME_WAIT", err)
	}
	s, err := l.Accept()
	if err != nil {
		fail("accept for TIME_WAIT", err)
	}
	c.Close()
	io.Copy(io.Discard, s)
	s.Close()
	u, err := net.ListenPacket("udp4", "127.0.0.1:40125")
	if err != nil {
		fail("udp 40125", err)
	}
	uc, err := net.Dial("udp4", "127.0.0.1:40125")
	if err != nil {
		fail("udp dial 40125", err)
	}
	u6, err := net.ListenPacket("udp6", "[::]:40126")
	if err != nil {
		fail("udp6 40126", err)
	}
	keep = append(keep, u, uc, u6)
	// Let the closed pair's FINs and ACKs settle before the test looks.
	time.Sleep(200 * time.Millisecond)
	fmt.Printf("XA-SOCKHOLDER pid=%d ready\n", os.Getpid())
	for {
		time.Sleep(time.Hour)
		runtime.KeepAlive(keep)
	}
}

// loopbackUp sets IFF_UP on lo (SIOCSIFFLAGS), as `ip link set lo up`.
func loopbackUp() error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	var ifr [40]byte // struct ifreq: the name, then ifr_flags (short)
	copy(ifr[:], "lo")
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCGIFFLAGS, uintptr(unsafe.Pointer(&ifr[0]))); e != 0 {
		return e
	}
	*(*uint16)(unsafe.Pointer(&ifr[16])) |= syscall.IFF_UP
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCSIFFLAGS, uintptr(unsafe.Pointer(&ifr[0]))); e != 0 {
		return e
	}
	return nil
}

func fail(what string, err error) {
	fmt.Fprintf(os.Stderr, "xa-sockholder: %s: %v\n", what, err)
	os.Exit(1)
}
